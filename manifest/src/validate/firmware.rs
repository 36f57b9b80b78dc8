//! `[firmware]`: the version and module the device reports on `/ota/device/inform` after every
//! login (spec "OTA": `{"id":"123","params":{"version":"1.0.1","module":"MCU"}}`).
//!
//! The console shows the version and an OTA job targets it (a differential package needs the
//! version reported first), so it must be exactly what the platform stores. Both go into a JSON
//! string, so the characters allowed never need escaping there.

use super::{
    DEFAULT_FIRMWARE_MODULE, DEFAULT_FIRMWARE_VERSION, MAX_FIRMWARE_MODULE_LEN,
    MAX_FIRMWARE_VERSION_LEN, Result, err,
};
use crate::model::Firmware;
use crate::raw::RawFirmware;

pub(super) fn firmware(raw: &RawFirmware) -> Result<Firmware> {
    let version = raw.version.as_deref().unwrap_or(DEFAULT_FIRMWARE_VERSION);
    let allowed = format!(
        "allowed: 1 to {MAX_FIRMWARE_VERSION_LEN} printable ASCII characters without spaces, `\"` or `\\` (the console shows it and OTA jobs target it), e.g. \"1.0.0\""
    );
    check(
        version,
        "firmware.version",
        MAX_FIRMWARE_VERSION_LEN,
        &allowed,
        |c| c.is_ascii_graphic() && !matches!(c, '"' | '\\'),
    )?;
    let module = raw.module.as_deref().unwrap_or(DEFAULT_FIRMWARE_MODULE);
    let allowed = format!(
        "allowed: 1 to {MAX_FIRMWARE_MODULE_LEN} letters, digits and `_ - .`, as the module is named in the console; default \"{DEFAULT_FIRMWARE_MODULE}\""
    );
    check(
        module,
        "firmware.module",
        MAX_FIRMWARE_MODULE_LEN,
        &allowed,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
    )?;
    let ota = match &raw.ota {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            return err(
                "firmware.ota",
                format!(
                    "{other} is not allowed; allowed: true (the device runs the OTA service: download, A/B swap, confirm) or false (it does not; boards that can leave it out, like the nRF9160 DK, build without it); default false"
                ),
            );
        }
    };
    Ok(Firmware {
        version: version.to_owned(),
        module: module.to_owned(),
        ota,
    })
}

/// `value` is 1..=`max` characters, each one `ok`; the error shows the value (escaped: it may
/// hold control characters) and the first character refused.
fn check(value: &str, field: &str, max: usize, allowed: &str, ok: fn(char) -> bool) -> Result<()> {
    let count = value.chars().count();
    if count == 0 {
        return err(field, format!("the value is empty; {allowed}"));
    }
    if count > max {
        return err(field, format!("{count} characters is too long; {allowed}"));
    }
    if let Some(c) = value.chars().find(|c| !ok(*c)) {
        return err(field, format!("{value:?} contains {c:?}; {allowed}"));
    }
    Ok(())
}
