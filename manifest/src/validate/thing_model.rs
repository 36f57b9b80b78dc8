//! `[thing_model]`: the console's TSL export (read and checked by [`crate::tsl`]) and the app
//! that owns it. The file is read at build time, like the secret file is not: a thing model
//! is no secret, and a TSL that does not parse must stop the build, naming the identifier.

use std::io::Read as _;
use std::path::Path;

use super::{Result, err, resolve};
use crate::model::{App, Device, ThingModelConfig};
use crate::raw::RawThingModel;
use crate::tsl::parse_tsl;

pub(super) fn thing_model(
    raw: &RawThingModel,
    base_dir: &Path,
    device: &Device,
    apps: &[App],
) -> Result<ThingModelConfig> {
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
    Ok(ThingModelConfig { file, app, model })
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
