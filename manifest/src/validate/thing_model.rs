//! `[thing_model]`: the console's TSL export (read and checked by [`crate::tsl`]) and the app
//! that owns it. The file is read at build time, like the secret file is not: a thing model
//! is no secret, and a TSL that does not parse must stop the build, naming the identifier.

use std::io::Read as _;
use std::path::Path;

use crate::model::Direction;

use super::{Result, err, resolve};
use crate::model::{Device, ThingGrants, ThingModelConfig, Topic};
use crate::raw::{RawApp, RawThingModel};
use crate::thing_topics::thing_topics;
use crate::topic;
use crate::tsl::{ThingModel, parse_tsl};

/// The checked `[thing_model]` and the topics it grants its app (named `thing_*`, added to
/// the manifest's topics and to the app's grants before its budget is worked out).
pub(super) struct Checked {
    pub config: ThingModelConfig,
    pub topics: Vec<Topic>,
}

pub(super) fn thing_model(
    raw: &RawThingModel,
    base_dir: &Path,
    device: &Device,
    apps: &[RawApp],
) -> Result<Checked> {
    let Some(app) = apps.iter().position(|a| a.name == raw.app) else {
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        return err(
            "thing_model.app",
            format!(
                "{:?} is not an app of this manifest; allowed: {}",
                raw.app,
                names.join(", ")
            ),
        );
    };
    let file = resolve(base_dir, &raw.file, "thing_model.file")?;
    let text = match read_bounded(&file) {
        Ok(t) => t,
        Err(e) => {
            return err(
                "thing_model.file",
                format!("cannot read {:?} (relative to the manifest): {e}", raw.file),
            );
        }
    };
    let model = match parse_tsl(&text) {
        Ok(m) => m,
        Err(e) => return err("thing_model.file", format!("{:?}: {e}", raw.file)),
    };
    if let Some(pk) = &model.product_key
        && !pk.is_empty()
        && *pk != device.product_key
    {
        return err(
            "thing_model.file",
            format!(
                "{:?} is the thing model of product {pk:?}; allowed: one of this device's product {:?}",
                raw.file, device.product_key
            ),
        );
    }
    let grants = grants(raw, &model)?;
    let mut topics = Vec::new();
    for t in thing_topics(&model, &grants) {
        // The identifiers are checked (letters, digits, `_`), so only the length can fail.
        let expanded = topic::expand(&t.template, &device.product_key, &device.device_name)
            .and_then(|e| topic::check(&e, t.direction == Direction::Subscribe).map(|()| e))
            .or_else(|e| err("thing_model", format!("the thing model's topic {e}")))?;
        topics.push(Topic {
            name: t.name,
            template: t.template,
            topic: expanded,
            direction: t.direction,
        });
    }
    Ok(Checked {
        config: ThingModelConfig {
            file,
            app,
            model,
            grants,
        },
        topics,
    })
}

/// The grant lists: each named identifier must exist in the model (a property to `set` must
/// be `rw`), once; a list left out grants all the model allows.
fn grants(raw: &RawThingModel, model: &ThingModel) -> Result<ThingGrants> {
    let properties: Vec<&str> = model
        .properties
        .iter()
        .map(|p| p.identifier.as_str())
        .collect();
    let writable: Vec<&str> = model
        .properties
        .iter()
        .filter(|p| p.writable)
        .map(|p| p.identifier.as_str())
        .collect();
    let events: Vec<&str> = model.events.iter().map(|e| e.identifier.as_str()).collect();
    let services: Vec<&str> = model
        .services
        .iter()
        .map(|s| s.identifier.as_str())
        .collect();
    Ok(ThingGrants {
        post: list(raw.post.as_deref(), &properties, "post", "properties")?,
        set: list(
            raw.set.as_deref(),
            &writable,
            "set",
            "properties with accessMode \"rw\"",
        )?,
        events: list(raw.events.as_deref(), &events, "events", "events")?,
        services: list(raw.services.as_deref(), &services, "services", "services")?,
    })
}

/// One grant list, in TSL order.
fn list(named: Option<&[String]>, known: &[&str], key: &str, what: &str) -> Result<Vec<String>> {
    let Some(named) = named else {
        return Ok(known.iter().map(|s| (*s).to_owned()).collect());
    };
    for (i, id) in named.iter().enumerate() {
        let field = format!("thing_model.{key}[{i}]");
        if !known.contains(&id.as_str()) {
            let allowed = if known.is_empty() {
                "none (the thing model defines no such item)".to_owned()
            } else {
                known.join(", ")
            };
            return err(
                field,
                format!("{id:?} is not one of the thing model's {what}; allowed: {allowed}"),
            );
        }
        if named[..i].contains(id) {
            return err(field, format!("{id:?} is listed twice"));
        }
    }
    Ok(known
        .iter()
        .filter(|k| named.iter().any(|n| n == *k))
        .map(|s| (*s).to_owned())
        .collect())
}

/// Largest TSL file read (a console export of a large product is some tens of KiB).
pub const MAX_TSL_BYTES: u64 = 1024 * 1024;

/// The file's text, at most [`MAX_TSL_BYTES`]: a path to something endless (a device file)
/// must not stall the build.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TSL_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TSL_BYTES {
        return Err(std::io::Error::other(format!(
            "longer than {MAX_TSL_BYTES} bytes; allowed: a TSL export up to 1 MiB"
        )));
    }
    Ok(text)
}
