//! `[auth]`: mode, the secret's source, sign method, and for 一型一密 how the device
//! registers (spec §2).
//!
//! Which secret the manifest names depends on the mode: 一机一密 logs in with the
//! DeviceSecret (`auth.secret`); 一型一密 has only the ProductSecret (`auth.product_secret`)
//! and buys its own credentials with it once. Naming the other one is an error rather than
//! ignored, so a manifest never carries a secret source nothing reads.

use std::path::Path;

use super::endpoint::host_name;
use super::{DEFAULT_HTTPS_PORT, REGNWL_REGION, Result, err, resolve};
use crate::model::{
    Auth, AuthMode, Endpoint, EndpointKind, HttpsEndpoint, Registration, SecretSource, Tls,
};
use crate::raw::{RawAuth, RawRegistration};

/// `auth.mode` as written in the manifest.
fn mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::DeviceSecret => "device_secret",
        AuthMode::Register => "register",
        AuthMode::Regnwl => "regnwl",
    }
}

/// `[auth]`, checked against the endpoint and TLS settings it depends on.
pub(super) fn auth(raw: &RawAuth, base_dir: &Path, endpoint: &Endpoint, tls: &Tls) -> Result<Auth> {
    let mode = mode_name(raw.mode);
    if raw.mode == AuthMode::DeviceSecret {
        if raw.product_secret.is_some() {
            return err(
                "auth.product_secret",
                "not used with auth.mode = \"device_secret\" (一机一密 logs in with the DeviceSecret); remove it and give the DeviceSecret's source in auth.secret, or set auth.mode = \"register\" / \"regnwl\" for 一型一密",
            );
        }
        for (field, given) in [
            ("auth.registration", raw.registration.is_some()),
            ("auth.https_host", raw.https_host.is_some()),
            ("auth.https_port", raw.https_port.is_some()),
        ] {
            if given {
                return err(
                    field,
                    "not applicable with auth.mode = \"device_secret\": only a 一型一密 device (auth.mode = \"register\" or \"regnwl\") registers; remove it",
                );
            }
        }
        let Some(value) = &raw.secret else {
            return err(
                "auth.secret",
                format!(
                    "required with auth.mode = \"device_secret\" (where the DeviceSecret comes from); {SECRET_FORMS}"
                ),
            );
        };
        return Ok(Auth {
            mode: raw.mode,
            secret: secret(value, base_dir, DEVICE_SECRET)?,
            sign_method: raw.sign_method,
            registration: None,
        });
    }
    if raw.secret.is_some() {
        return err(
            "auth.secret",
            format!(
                "not used with auth.mode = \"{mode}\" (一型一密: the device gets its own credentials by registering, and stores them in flash); remove it and give the ProductSecret's source in auth.product_secret"
            ),
        );
    }
    let Some(value) = &raw.product_secret else {
        return err(
            "auth.product_secret",
            format!(
                "required with auth.mode = \"{mode}\" (where the ProductSecret comes from; 一型一密 registers with it); {SECRET_FORMS}"
            ),
        );
    };
    let secret = secret(value, base_dir, PRODUCT_SECRET)?;
    // Spec §2.1: the platform refuses registration over plain TCP.
    if !tls.enabled {
        return err(
            "tls.enabled",
            format!(
                "false is not allowed with auth.mode = \"{mode}\": dynamic registration (一型一密) needs TLS, the platform refuses it over plain TCP; set tls.enabled = true"
            ),
        );
    }
    if raw.mode == AuthMode::Regnwl {
        regnwl_endpoint(endpoint)?;
    }
    let registration = match raw.registration.unwrap_or(RawRegistration::Mqtt) {
        RawRegistration::Mqtt => {
            for (field, given) in [
                ("auth.https_host", raw.https_host.is_some()),
                ("auth.https_port", raw.https_port.is_some()),
            ] {
                if given {
                    return err(
                        field,
                        "only used with auth.registration = \"https\" (registration goes over the MQTT endpoint by default); remove it or set auth.registration = \"https\"",
                    );
                }
            }
            Registration::Mqtt
        }
        // Spec §2.1 "Limits": HTTPS does not support registration without pre-registration.
        RawRegistration::Https if raw.mode == AuthMode::Regnwl => {
            return err(
                "auth.registration",
                "\"https\" is not allowed with auth.mode = \"regnwl\": the platform's HTTPS registration serves pre-registered devices only; use auth.registration = \"mqtt\", or auth.mode = \"register\" with the device pre-registered in the console",
            );
        }
        RawRegistration::Https => Registration::Https(https_endpoint(raw, endpoint)?),
    };
    Ok(Auth {
        mode: raw.mode,
        secret,
        sign_method: raw.sign_method,
        registration: Some(registration),
    })
}

/// Registration without pre-registration is documented for cn-shanghai only (spec §2.1
/// "Limits"); an old public instance elsewhere is refused here rather than by the platform
/// after the device has shipped. Instance ids and hosts do not say their region, so they
/// pass (the README tells the user to check).
fn regnwl_endpoint(endpoint: &Endpoint) -> Result<()> {
    match &endpoint.kind {
        EndpointKind::Region(region) if region != REGNWL_REGION => err(
            "endpoint.region",
            format!(
                "`{region}` is not allowed with auth.mode = \"regnwl\": the platform documents registration without pre-registration for {REGNWL_REGION} only; allowed: region = \"{REGNWL_REGION}\", an enterprise instance in {REGNWL_REGION} (endpoint.instance_id), or auth.mode = \"register\" with the device pre-registered in the console"
            ),
        ),
        _ => Ok(()),
    }
}

/// The HTTPS registration endpoint: `auth.https_host` (and `auth.https_port`) when given,
/// else `iot-auth.${region}.aliyuncs.com:443` for a region (spec §2.2), else the emulator's.
fn https_endpoint(raw: &RawAuth, endpoint: &Endpoint) -> Result<HttpsEndpoint> {
    let port = match raw.https_port {
        None => DEFAULT_HTTPS_PORT,
        Some(_) if raw.https_host.is_none() => {
            return err(
                "auth.https_port",
                "set without auth.https_host; the port goes with a host you name (the default endpoint is fixed), so give auth.https_host too or remove auth.https_port",
            );
        }
        Some(p) => match u16::try_from(p) {
            Ok(p) if p != 0 => p,
            _ => {
                return err(
                    "auth.https_port",
                    format!(
                        "{p} is out of range; allowed: 1..=65535 (default {DEFAULT_HTTPS_PORT})"
                    ),
                );
            }
        },
    };
    if let Some(host) = &raw.https_host {
        host_name("auth.https_host", host, "auth.https_port")?;
        return Ok(HttpsEndpoint {
            host: host.clone(),
            port,
            emulator: false,
        });
    }
    match &endpoint.kind {
        EndpointKind::Region(region) => Ok(HttpsEndpoint {
            host: format!("iot-auth.{region}.aliyuncs.com"),
            port,
            emulator: false,
        }),
        // Placeholders: the host board substitutes its emulator's HTTPS address.
        EndpointKind::Emulator => Ok(HttpsEndpoint {
            host: "localhost".to_owned(),
            port: 0,
            emulator: true,
        }),
        EndpointKind::InstanceId(_) | EndpointKind::Host => err(
            "auth.https_host",
            format!(
                "required with auth.registration = \"https\" when the endpoint is given by endpoint.{}: the HTTPS registration host is derived only from endpoint.region (iot-auth.${{region}}.aliyuncs.com); give the host, e.g. https_host = \"iot-auth.{REGNWL_REGION}.aliyuncs.com\", or use auth.registration = \"mqtt\"",
                if endpoint.kind == EndpointKind::Host {
                    "host"
                } else {
                    "instance_id"
                }
            ),
        ),
    }
}

/// Which secret a source is for: its field and an example variable name for messages.
struct SecretField {
    field: &'static str,
    example_env: &'static str,
}

const DEVICE_SECRET: SecretField = SecretField {
    field: "auth.secret",
    example_env: "ALIOT_DEVICE_SECRET",
};

const PRODUCT_SECRET: SecretField = SecretField {
    field: "auth.product_secret",
    example_env: "ALIOT_PRODUCT_SECRET",
};

const SECRET_FORMS: &str = "allowed: { file = \"path\" } (relative to the manifest), { env = \"VARIABLE\" } or \"provisioned\"";

const INLINE_SECRET: &str = "inline secrets are not allowed: a manifest is committed and compiled into images, so a secret written here would leak";

/// `auth.secret` or `auth.product_secret` (`which`): a table with exactly one of
/// `file`/`env`, or the string `"provisioned"`. Parsed by hand so that an inline secret gets
/// an explanation instead of serde's "unknown field", and so that the secret's value never
/// appears in a message.
fn secret(value: &toml::Value, base_dir: &Path, which: SecretField) -> Result<SecretSource> {
    let field = which.field;
    let table = match value {
        toml::Value::String(s) if s == "provisioned" => return Ok(SecretSource::Provisioned),
        toml::Value::String(_) => {
            return err(field, format!("{INLINE_SECRET}; {SECRET_FORMS}"));
        }
        toml::Value::Table(t) => t,
        other => {
            return err(
                field,
                format!("found a value of type {}; {SECRET_FORMS}", other.type_str()),
            );
        }
    };
    for key in table.keys() {
        if key != "file" && key != "env" {
            let why = if matches!(
                key.as_str(),
                "value"
                    | "secret"
                    | "inline"
                    | "device_secret"
                    | "product_secret"
                    | "text"
                    | "password"
                    | "key"
            ) {
                INLINE_SECRET.to_owned()
            } else {
                format!("unknown field `{key}`")
            };
            return err(format!("{field}.{key}"), format!("{why}; {SECRET_FORMS}"));
        }
    }
    match (table.get("file"), table.get("env")) {
        (Some(_), Some(_)) => err(
            field,
            format!("`file` and `env` are both set; give exactly one; {SECRET_FORMS}"),
        ),
        (None, None) => err(field, format!("empty; {SECRET_FORMS}")),
        (Some(file), None) => {
            let Some(file) = file.as_str().filter(|f| !f.is_empty()) else {
                return err(format!("{field}.file"), "expected a non-empty path string");
            };
            Ok(SecretSource::File(resolve(
                base_dir,
                file,
                &format!("{field}.file"),
            )?))
        }
        (None, Some(env)) => {
            let Some(env) = env.as_str() else {
                return err(
                    format!("{field}.env"),
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
                    format!("{field}.env"),
                    format!(
                        "`{env}` is not an environment variable name; allowed: a letter or `_`, then letters, digits and `_` (at most 128), e.g. \"{}\"",
                        which.example_env
                    ),
                );
            }
            Ok(SecretSource::Env(env.to_owned()))
        }
    }
}
