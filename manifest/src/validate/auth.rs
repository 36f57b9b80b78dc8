//! `[auth]`: mode, secret source and sign method.

use std::path::Path;

use super::{Result, err, resolve};
use crate::model::{Auth, AuthMode, SecretSource};
use crate::raw::RawAuth;

pub(super) fn auth(raw: &RawAuth, base_dir: &Path) -> Result<Auth> {
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
pub(super) fn secret(value: &toml::Value, base_dir: &Path) -> Result<SecretSource> {
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
