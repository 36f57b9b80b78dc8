//! `[thing_model]`: the console's TSL export (read and checked by [`crate::tsl`]) and the app
//! that owns it. The file is read at build time, like the secret file is not: a thing model
//! is no secret, and a TSL that does not parse must stop the build, naming the identifier.

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
    let text = match std::fs::read_to_string(&file) {
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
