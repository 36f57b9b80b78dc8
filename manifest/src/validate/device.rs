//! `[device]`: ProductKey, DeviceName and the MQTT client id.

use super::{MAX_CLIENT_ID_LEN, Result, err};
use crate::model::Device;
use crate::raw::RawDevice;
use crate::topic;

pub(super) fn device(raw: &RawDevice) -> Result<Device> {
    let pk = &raw.product_key;
    if pk.is_empty() || pk.len() > 32 || !pk.chars().all(|c| c.is_ascii_alphanumeric()) {
        return err(
            "device.product_key",
            format!(
                "`{pk}` is not a ProductKey; allowed: 1 to 32 ASCII letters and digits (the console shows it, e.g. \"a1NrfDemo01\")"
            ),
        );
    }
    let dn = &raw.device_name;
    let dn_ok = (4..=32).contains(&dn.len())
        && dn
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | ':' | '-'));
    if !dn_ok {
        return err(
            "device.device_name",
            format!(
                "`{dn}` is not a DeviceName; allowed: 4 to 32 characters of letters, digits and `_ . @ : -`"
            ),
        );
    }
    let client_id = match &raw.client_id {
        None => format!("{pk}.{dn}"),
        Some(t) => topic::expand(t, pk, dn).or_else(|e| err("device.client_id", e))?,
    };
    if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID_LEN {
        return err(
            "device.client_id",
            format!(
                "`{client_id}` has {} characters after expansion; allowed: 1 to {MAX_CLIENT_ID_LEN}",
                client_id.chars().count()
            ),
        );
    }
    if let Some(c) = client_id
        .chars()
        .find(|c| matches!(c, '|' | ',') || !c.is_ascii_graphic())
    {
        return err(
            "device.client_id",
            format!(
                "`{client_id}` contains {c:?}; allowed: printable ASCII without spaces, `|` or `,` (they delimit the client id's extension parameters)"
            ),
        );
    }
    Ok(Device {
        product_key: pk.clone(),
        device_name: dn.clone(),
        client_id,
    })
}
