//! `[endpoint]`, `[mqtt]` and `[tls]`: where and how the device connects, and the instance
//! id a 一型一密 registration needs (spec §1.3, §2.1).

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
            instance_id: None,
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
            host: format!("{id}{INSTANCE_HOST_SUFFIX}"),
            port,
            instance_id: Some(id.clone()),
        });
    }
    if let Some(host) = &raw.host {
        host_name("endpoint.host", host, "endpoint.port")?;
        return Ok(Endpoint {
            kind: EndpointKind::Host,
            host: host.clone(),
            port,
            instance_id: instance_id_of_host(host),
        });
    }
    Ok(Endpoint {
        kind: EndpointKind::Emulator,
        host: "127.0.0.1".to_owned(),
        port: 0,
        instance_id: None,
    })
}

/// Checks a host name written in the manifest (`field`); `port_field` is where its port goes.
pub(super) fn host_name(field: &str, host: &str, port_field: &str) -> Result<()> {
    if host.contains(':') {
        return err(
            field,
            format!(
                "`{host}` contains `:`; write the host name alone and the port in {port_field}"
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
            field,
            format!(
                "`{host}` is not a host name; allowed: dot-separated labels of letters, digits and `-` (an IPv4 address works too)"
            ),
        );
    }
    Ok(())
}

/// Domain of new public and enterprise instance hosts, `${instanceId}` + this (spec §1.3).
const INSTANCE_HOST_SUFFIX: &str = ".mqtt.iothub.aliyuncs.com";

/// The instance id in an instance host `<id>.mqtt.iothub.aliyuncs.com`, as LINKSDK's
/// dynregmq derives it (spec §1.3). Only when `<id>` is one label: a longer prefix is not an
/// instance host the platform issues, and guessing which label is the id could send a wrong
/// `instanceId`.
fn instance_id_of_host(host: &str) -> Option<String> {
    let lower = host.to_ascii_lowercase();
    let id_len = lower.strip_suffix(INSTANCE_HOST_SUFFIX)?.len();
    let id = host.get(..id_len)?;
    (!id.is_empty() && !id.contains('.')).then(|| id.to_owned())
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

#[cfg(test)]
mod tests {
    use super::instance_id_of_host;

    #[test]
    fn instance_id_comes_from_an_instance_host_only() {
        let id = |h: &str| instance_id_of_host(h);
        assert_eq!(
            id("iot-06z00ab.mqtt.iothub.aliyuncs.com").as_deref(),
            Some("iot-06z00ab")
        );
        // Host names are case-insensitive; the id keeps the case it was written in.
        assert_eq!(
            id("IOT-06Z00AB.MQTT.IOTHUB.ALIYUNCS.COM").as_deref(),
            Some("IOT-06Z00AB")
        );
        assert_eq!(id("mqtt.iothub.aliyuncs.com"), None);
        assert_eq!(id(".mqtt.iothub.aliyuncs.com"), None);
        assert_eq!(id("a.b.mqtt.iothub.aliyuncs.com"), None);
        assert_eq!(id("a1Pk.iot-as-mqtt.cn-shanghai.aliyuncs.com"), None);
        assert_eq!(
            id("iot-06z00ab.mqtt.iothub.aliyuncs.com.evil.example"),
            None
        );
        assert_eq!(id("10.0.0.7"), None);
    }
}
