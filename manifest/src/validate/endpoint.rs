//! `[endpoint]`, `[mqtt]` and `[tls]`: where and how the device connects.

use std::path::Path;

use super::{KEEPALIVE_RANGE, Result, err, resolve};
use crate::model::{Endpoint, EndpointKind, Mqtt, Tls};
use crate::raw::{RawEndpoint, RawMqtt, RawTls};

const ENDPOINT_CHOICES: &str = "choose exactly one of: emulator = true, region = \"cn-shanghai\", instance_id = \"iot-06z00ab\", host = \"mqtt.example.com\"";

pub(super) fn endpoint(raw: &RawEndpoint, product_key: &str) -> Result<Endpoint> {
    let mut chosen = Vec::new();
    if raw.emulator == Some(true) {
        chosen.push("emulator");
    }
    if raw.region.is_some() {
        chosen.push("region");
    }
    if raw.instance_id.is_some() {
        chosen.push("instance_id");
    }
    if raw.host.is_some() {
        chosen.push("host");
    }
    match chosen.len() {
        0 => return err("endpoint", format!("no endpoint given; {ENDPOINT_CHOICES}")),
        1 => {}
        _ => {
            return err(
                "endpoint",
                format!(
                    "{} are set together; {ENDPOINT_CHOICES}",
                    chosen.join(" and ")
                ),
            );
        }
    }
    let port = match raw.port {
        None => 1883,
        Some(_) if chosen[0] == "emulator" => {
            return err(
                "endpoint.port",
                "not allowed with emulator = true: the host board picks a free port for its emulator",
            );
        }
        Some(p) => match u16::try_from(p) {
            Ok(p) if p != 0 => p,
            _ => {
                return err(
                    "endpoint.port",
                    format!(
                        "{p} is out of range; allowed: 1..=65535 (default 1883, the documented port; TLS is served there too)"
                    ),
                );
            }
        },
    };
    if let Some(region) = &raw.region {
        let ok = !region.is_empty()
            && region.len() <= 32
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return err(
                "endpoint.region",
                format!(
                    "`{region}` is not a region id; allowed: 1 to 32 of lowercase letters, digits and `-`, e.g. \"cn-shanghai\""
                ),
            );
        }
        return Ok(Endpoint {
            kind: EndpointKind::Region(region.clone()),
            host: format!("{product_key}.iot-as-mqtt.{region}.aliyuncs.com"),
            port,
        });
    }
    if let Some(id) = &raw.instance_id {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return err(
                "endpoint.instance_id",
                format!(
                    "`{id}` is not an instance id; allowed: 1 to 64 of letters, digits, `-` and `_`, e.g. \"iot-06z00ab\""
                ),
            );
        }
        return Ok(Endpoint {
            kind: EndpointKind::InstanceId(id.clone()),
            host: format!("{id}.mqtt.iothub.aliyuncs.com"),
            port,
        });
    }
    if let Some(host) = &raw.host {
        if host.contains(':') {
            return err(
                "endpoint.host",
                format!(
                    "`{host}` contains `:`; write the host name alone and the port in endpoint.port"
                ),
            );
        }
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return err(
                "endpoint.host",
                format!(
                    "`{host}` is not a host name; allowed: dot-separated labels of letters, digits and `-` (an IPv4 address works too)"
                ),
            );
        }
        return Ok(Endpoint {
            kind: EndpointKind::Host,
            host: host.clone(),
            port,
        });
    }
    Ok(Endpoint {
        kind: EndpointKind::Emulator,
        host: "127.0.0.1".to_owned(),
        port: 0,
    })
}

pub(super) fn mqtt(raw: &RawMqtt) -> Result<Mqtt> {
    let ka = raw.keepalive_secs;
    let keepalive_secs = match u16::try_from(ka) {
        Ok(k) if KEEPALIVE_RANGE.contains(&ka) => k,
        _ => {
            return err(
                "mqtt.keepalive_secs",
                format!(
                    "{ka} is out of range; allowed: 30..=1200 (the platform rejects anything else)"
                ),
            );
        }
    };
    Ok(Mqtt {
        version: raw.version,
        keepalive_secs,
    })
}

pub(super) fn tls(raw: &RawTls, base_dir: &Path) -> Result<Tls> {
    let ca_file = match raw.ca_file.as_deref() {
        None => None,
        Some("") => {
            return err(
                "tls.ca_file",
                "empty; give a PEM file path relative to the manifest, or leave it out for the board's default CA",
            );
        }
        Some(p) => Some(resolve(base_dir, p, "tls.ca_file")?),
    };
    if ca_file.is_some() && !raw.enabled {
        return err(
            "tls.ca_file",
            "set while tls.enabled = false; remove it or enable TLS",
        );
    }
    Ok(Tls {
        enabled: raw.enabled,
        ca_file,
    })
}
