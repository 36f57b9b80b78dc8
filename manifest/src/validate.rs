//! Turns the raw serde structs into a checked [`Manifest`].
//!
//! Each check returns the first problem as a [`ManifestError::Field`] naming the dotted path
//! of the field and what is allowed. Error messages never repeat a value that might be a
//! secret.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::ManifestError;
use crate::model::{
    App, Auth, AuthMode, Device, Direction, Endpoint, EndpointKind, Manifest, Mqtt, SecretSource,
    Tls, Topic,
};
use crate::raw::{RawApp, RawAuth, RawDevice, RawEndpoint, RawManifest, RawMqtt, RawTls};
use crate::topic;

/// Smallest app RAM budget in bytes.
pub const APP_MEMORY_MIN: u32 = 1024;
/// Largest app RAM budget in bytes.
pub const APP_MEMORY_MAX: u32 = 262_144;
/// App RAM budgets must be a multiple of this (ARMv8-M MPU granularity).
pub const APP_MEMORY_ALIGN: u32 = 32;
/// Keep-alive range the platform accepts, in seconds.
pub const KEEPALIVE_RANGE: std::ops::RangeInclusive<i64> = 30..=1200;
/// Longest MQTT client id the platform accepts.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Longest app name.
pub const MAX_APP_NAME_LEN: usize = 16;
/// Longest topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 32;
/// Longest app setting value.
pub const MAX_SETTING_LEN: usize = 256;

type Result<T> = std::result::Result<T, ManifestError>;

fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(ManifestError::field(field, message))
}

/// Checks everything and resolves relative paths against `base_dir`.
pub(crate) fn validate(raw: RawManifest, base_dir: &Path) -> Result<Manifest> {
    let base_dir = std::path::absolute(base_dir).map_err(|e| {
        ManifestError::field("", format!("cannot make the base directory absolute: {e}"))
    })?;
    let device = device(&raw.device)?;
    let auth = auth(&raw.auth, &base_dir)?;
    let endpoint = endpoint(&raw.endpoint, &device.product_key)?;
    let mqtt = mqtt(&raw.mqtt)?;
    let tls = tls(&raw.tls, &base_dir)?;
    let topics = topics(&raw, &device)?;
    let apps = apps(&raw.apps, &topics)?;
    Ok(Manifest {
        base_dir,
        device,
        auth,
        endpoint,
        mqtt,
        tls,
        topics,
        apps,
    })
}

fn device(raw: &RawDevice) -> Result<Device> {
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

fn auth(raw: &RawAuth, base_dir: &Path) -> Result<Auth> {
    match raw.mode {
        AuthMode::DeviceSecret => {}
        AuthMode::Register | AuthMode::Regnwl => {
            let name = if raw.mode == AuthMode::Register {
                "register"
            } else {
                "regnwl"
            };
            // UNFINISHED: 一型一密 (dynamic registration) is parsed but the kernel does not
            // implement it yet; accept it here once the registration issue lands.
            return err(
                "auth.mode",
                format!(
                    "`{name}` (一型一密, dynamic registration) is not implemented yet; allowed now: device_secret"
                ),
            );
        }
    }
    Ok(Auth {
        mode: raw.mode,
        secret: secret(&raw.secret, base_dir)?,
        sign_method: raw.sign_method,
    })
}

const SECRET_FORMS: &str = "allowed: { file = \"path\" } (relative to the manifest), { env = \"VARIABLE\" } or \"provisioned\"";

const INLINE_SECRET: &str = "inline secrets are not allowed: a manifest is committed and compiled into images, so a secret written here would leak";

/// `auth.secret`: a table with exactly one of `file`/`env`, or the string `"provisioned"`.
/// Parsed by hand so that an inline secret gets an explanation instead of serde's
/// "unknown field", and so that the secret's value never appears in a message.
fn secret(value: &toml::Value, base_dir: &Path) -> Result<SecretSource> {
    const FIELD: &str = "auth.secret";
    let table = match value {
        toml::Value::String(s) if s == "provisioned" => return Ok(SecretSource::Provisioned),
        toml::Value::String(_) => {
            return err(FIELD, format!("{INLINE_SECRET}; {SECRET_FORMS}"));
        }
        toml::Value::Table(t) => t,
        other => {
            return err(
                FIELD,
                format!("found a value of type {}; {SECRET_FORMS}", other.type_str()),
            );
        }
    };
    for key in table.keys() {
        if key != "file" && key != "env" {
            let why = if matches!(
                key.as_str(),
                "value" | "secret" | "inline" | "device_secret" | "text" | "password" | "key"
            ) {
                INLINE_SECRET.to_owned()
            } else {
                format!("unknown field `{key}`")
            };
            return err(format!("{FIELD}.{key}"), format!("{why}; {SECRET_FORMS}"));
        }
    }
    match (table.get("file"), table.get("env")) {
        (Some(_), Some(_)) => err(
            FIELD,
            format!("`file` and `env` are both set; give exactly one; {SECRET_FORMS}"),
        ),
        (None, None) => err(FIELD, format!("empty; {SECRET_FORMS}")),
        (Some(file), None) => {
            let Some(file) = file.as_str().filter(|f| !f.is_empty()) else {
                return err(format!("{FIELD}.file"), "expected a non-empty path string");
            };
            Ok(SecretSource::File(resolve(
                base_dir,
                file,
                "auth.secret.file",
            )?))
        }
        (None, Some(env)) => {
            let Some(env) = env.as_str() else {
                return err(
                    format!("{FIELD}.env"),
                    "expected a string naming an environment variable",
                );
            };
            let ok = env.len() <= 128
                && env
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return err(
                    format!("{FIELD}.env"),
                    format!(
                        "`{env}` is not an environment variable name; allowed: a letter or `_`, then letters, digits and `_` (at most 128), e.g. \"ALIOT_DEVICE_SECRET\""
                    ),
                );
            }
            Ok(SecretSource::Env(env.to_owned()))
        }
    }
}

/// Resolves `path` against the manifest's directory; the result must be valid UTF-8 because
/// it is written into generated Rust source.
fn resolve(base_dir: &Path, path: &str, field: &str) -> Result<PathBuf> {
    let joined = normalize(&base_dir.join(path));
    if joined.to_str().is_none() {
        return err(
            field,
            "the resolved path is not valid UTF-8; allowed: UTF-8 paths",
        );
    }
    Ok(joined)
}

/// Drops `.` components (`/a/./b` → `/a/b`); `..` is kept because it may cross a symlink.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

const ENDPOINT_CHOICES: &str = "choose exactly one of: emulator = true, region = \"cn-shanghai\", instance_id = \"iot-06z00ab\", host = \"mqtt.example.com\"";

fn endpoint(raw: &RawEndpoint, product_key: &str) -> Result<Endpoint> {
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

fn mqtt(raw: &RawMqtt) -> Result<Mqtt> {
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

fn tls(raw: &RawTls, base_dir: &Path) -> Result<Tls> {
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

/// `[a-z]` then `[a-z0-9_]`, at most `max` characters: usable as a Rust module name and,
/// upper-cased, as a constant name.
fn is_ident(name: &str, max: usize) -> bool {
    name.len() <= max
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Rust keywords (strict and reserved): an app name becomes a module name in generated code.
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn topics(raw: &RawManifest, device: &Device) -> Result<Vec<Topic>> {
    let mut out = Vec::with_capacity(raw.topics.len());
    for (name, t) in &raw.topics {
        let field = format!("topics.{name}");
        if !is_ident(name, MAX_TOPIC_NAME_LEN) {
            return err(
                field,
                format!(
                    "`{name}` is not a valid topic name; allowed: a lowercase letter, then lowercase letters, digits and `_`, at most {MAX_TOPIC_NAME_LEN} characters"
                ),
            );
        }
        let field = format!("{field}.template");
        let expanded = topic::expand(&t.template, &device.product_key, &device.device_name)
            .or_else(|e| err(&field, e))?;
        topic::check(&expanded, t.direction == Direction::Subscribe).or_else(|e| err(&field, e))?;
        out.push(Topic {
            name: name.clone(),
            template: t.template.clone(),
            topic: expanded,
            direction: t.direction,
        });
    }
    Ok(out)
}

fn apps(raw: &[RawApp], topics: &[Topic]) -> Result<Vec<App>> {
    if raw.is_empty() {
        return err("apps", "no apps; at least one [[apps]] entry is required");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, app) in raw.iter().enumerate() {
        let at = format!("apps[{i}]");
        let name = &app.name;
        if !is_ident(name, MAX_APP_NAME_LEN) {
            return err(
                format!("{at}.name"),
                format!(
                    "`{name}` is not a valid app name; allowed: a lowercase letter, then lowercase letters, digits and `_`, at most {MAX_APP_NAME_LEN} characters"
                ),
            );
        }
        if RUST_KEYWORDS.contains(&name.as_str()) {
            return err(
                format!("{at}.name"),
                format!(
                    "`{name}` is a Rust keyword and cannot name the app's generated module; choose another name"
                ),
            );
        }
        if !seen.insert(name.as_str()) {
            return err(
                format!("{at}.name"),
                format!("`{name}` is used by an earlier app; app names must be unique"),
            );
        }
        let memory = match u32::try_from(app.memory) {
            Ok(m)
                if (APP_MEMORY_MIN..=APP_MEMORY_MAX).contains(&m) && m % APP_MEMORY_ALIGN == 0 =>
            {
                m
            }
            _ => {
                return err(
                    format!("{at}.memory"),
                    format!(
                        "{} bytes is not allowed; allowed: {APP_MEMORY_MIN}..={APP_MEMORY_MAX}, a multiple of {APP_MEMORY_ALIGN}",
                        app.memory
                    ),
                );
            }
        };
        let publish = grants(&app.publish, topics, &format!("{at}.publish"), true)?;
        let subscribe = grants(&app.subscribe, topics, &format!("{at}.subscribe"), false)?;
        let mut settings = Vec::with_capacity(app.settings.len());
        for (key, value) in &app.settings {
            let field = format!("{at}.settings.{key}");
            let key_ok = !key.is_empty()
                && key.len() <= 32
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok {
                return err(
                    field,
                    "not a valid setting name; allowed: 1 to 32 of letters, digits and `_ - .`",
                );
            }
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return err(
                        field,
                        format!(
                            "a value of type {} is not allowed; allowed: a string, number or boolean (handed to the app as a string)",
                            other.type_str()
                        ),
                    );
                }
            };
            if value.len() > MAX_SETTING_LEN {
                return err(
                    field,
                    format!(
                        "{} bytes long; allowed: at most {MAX_SETTING_LEN}",
                        value.len()
                    ),
                );
            }
            settings.push((key.clone(), value));
        }
        out.push(App {
            name: name.clone(),
            memory,
            publish,
            subscribe,
            restart: app.restart,
            settings,
        });
    }
    Ok(out)
}

/// Checks one grant list: every name is a defined topic whose direction allows the use.
fn grants(names: &[String], topics: &[Topic], field: &str, publish: bool) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let at = format!("{field}[{j}]");
        let Some(topic) = topics.iter().find(|t| &t.name == name) else {
            let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            return err(
                at,
                format!("unknown topic `{name}`; allowed: a name from [topics] (defined: {known})"),
            );
        };
        let (ok, want) = if publish {
            (topic.direction.can_publish(), "\"publish\" or \"both\"")
        } else {
            (topic.direction.can_subscribe(), "\"subscribe\" or \"both\"")
        };
        if !ok {
            let dir = match topic.direction {
                Direction::Publish => "publish",
                Direction::Subscribe => "subscribe",
                Direction::Both => "both",
            };
            let verb = if publish { "publish" } else { "subscribe" };
            return err(
                at,
                format!(
                    "topic `{name}` has direction = \"{dir}\"; a {verb} grant needs direction {want}"
                ),
            );
        }
        if out.contains(name) {
            return err(at, format!("`{name}` is listed twice"));
        }
        out.push(name.clone());
    }
    Ok(out)
}
