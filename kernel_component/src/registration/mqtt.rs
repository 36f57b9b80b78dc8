//! 一型一密 over MQTT (spec §2.1): the registration CONNECT strings, the pushed answer, and
//! the `authType=connwl` login with a device token.
//!
//! The CONNECT carries `authType=register|regnwl` and a fresh `random`, and is signed with
//! the ProductSecret. No SUBSCRIBE is needed: after CONNACK the platform pushes one PUBLISH
//! on `/ext/register` (`deviceSecret`) or `/ext/regnwl` (`clientId` + `deviceToken`).
//!
//! `securemode` (spec §2.1): the documentation gives `-2` with `instanceId=` for new public
//! and enterprise instances and `2` for old public instances; `regnwl` (and its later
//! `connwl` login) is `-2` in every source. LINKSDK sends `2` everywhere; we send the
//! documented form.

use alloc::string::{String, ToString};
use core::fmt::Write;

#[cfg(feature = "register-mqtt")]
use super::Issued;
use super::RegistrationError;
use crate::auth::{LoginCredentials, hmac_hex, register_sign_content, sign_method_name};
use crate::config::{AuthMode, DeviceConfig};
use crate::credentials::Secret;
#[cfg(feature = "register-mqtt")]
use crate::flat_json::{Member, members};
use crate::link::Refusal;

/// Topic of the pushed answer for a pre-registered device.
pub const REGISTER_TOPIC: &str = "/ext/register";
/// Topic of the pushed answer for a device that was not pre-registered.
pub const REGNWL_TOPIC: &str = "/ext/regnwl";

/// Longest client id, DeviceSecret or token accepted from an answer (the platform's are 32
/// to 64 characters); a longer one is refused as a bad reply rather than stored.
pub const MAX_ISSUED_LEN: usize = 128;

/// `authType` for `mode`; `None` for 一机一密.
pub fn auth_type(mode: AuthMode) -> Option<&'static str> {
    match mode {
        AuthMode::DeviceSecret => None,
        AuthMode::ProductSecretRegister => Some("register"),
        AuthMode::ProductSecretNoPreRegister => Some("regnwl"),
    }
}

/// The `securemode` of a registration CONNECT (module docs).
pub fn securemode(mode: AuthMode, instance_id: Option<&str>) -> &'static str {
    match (mode, instance_id) {
        (AuthMode::ProductSecretRegister, None) => "2",
        _ => "-2",
    }
}

/// The CONNECT strings of a registration of the device `config` describes, signed with the
/// ProductSecret. `None` for a 一机一密 configuration.
pub fn registration_login(
    config: &DeviceConfig,
    product_secret: &[u8],
    random: &str,
) -> Option<LoginCredentials> {
    let auth_type = auth_type(config.auth)?;
    let instance_id = config.registration.instance_id;
    let mut client_id = String::new();
    let _ = write!(
        client_id,
        "{}|securemode={},authType={auth_type},random={random},signmethod={}",
        config.client_id,
        securemode(config.auth, instance_id),
        sign_method_name(config.sign_method),
    );
    if let Some(id) = instance_id {
        let _ = write!(client_id, ",instanceId={id}");
    }
    client_id.push('|');
    let content = register_sign_content(config.device_name, config.product_key, random);
    Some(LoginCredentials {
        client_id,
        username: username(config),
        password: hmac_hex(config.sign_method, product_secret, content.as_bytes()),
    })
}

/// The CONNECT strings of a login with a device token (spec §2.1 "Logging in with a
/// DeviceToken"): `${clientId}|securemode=-2,authType=connwl|`, the token as the password.
pub fn token_login(config: &DeviceConfig, client_id: &str, token: &Secret) -> LoginCredentials {
    let mut id = String::with_capacity(client_id.len() + 32);
    id.push_str(client_id);
    id.push_str("|securemode=-2,authType=connwl|");
    // A token that is not UTF-8 cannot have come from the platform's JSON; an empty
    // password makes the login fail visibly.
    let password = core::str::from_utf8(token.expose())
        .map(ToString::to_string)
        .unwrap_or_default();
    LoginCredentials {
        client_id: id,
        username: username(config),
        password,
    }
}

fn username(config: &DeviceConfig) -> String {
    let mut s = String::with_capacity(config.device_name.len() + 1 + config.product_key.len());
    s.push_str(config.device_name);
    s.push('&');
    s.push_str(config.product_key);
    s
}

/// What a refused registration CONNECT means. The platform's codes for registration are
/// UNCONFIRMED; LINKSDK names `0x02` identifier rejected, `0x03` server unavailable and
/// `0x04` bad user name or password for it (spec §2.1). We read 4 as a bad signature
/// (ProductSecret), 2 as a device the product does not know, 5 (not authorised) as a device
/// that may not register any more: activated.
pub fn classify_refusal(refusal: Refusal) -> RegistrationError {
    match refusal {
        Refusal::BadCredentials => RegistrationError::BadProductSecret,
        Refusal::IdentifierRejected => RegistrationError::UnknownDevice,
        Refusal::NotAuthorized => RegistrationError::AlreadyActivated,
        Refusal::ServerUnavailable => RegistrationError::Refused(3),
        Refusal::Other(code) => RegistrationError::Refused(u32::from(code)),
    }
}

/// The answer's members this module reads; the others are ignored.
#[derive(Default)]
struct Answer<'a> {
    product_key: Option<&'a str>,
    device_name: Option<&'a str>,
    device_secret: Option<&'a str>,
    client_id: Option<&'a str>,
    device_token: Option<&'a str>,
}

#[cfg(feature = "register-mqtt")]
impl<'a> Answer<'a> {
    /// The answer in `payload`: one JSON object. A member read here must be a string without
    /// escapes (or `null`, read as missing) and appear once; anything else is a bad reply.
    fn parse(payload: &'a [u8]) -> Result<Self, RegistrationError> {
        let text = core::str::from_utf8(payload).map_err(|_| RegistrationError::BadReply)?;
        let mut answer = Answer::default();
        members(text, |key, value| {
            let slot = match key {
                "productKey" => &mut answer.product_key,
                "deviceName" => &mut answer.device_name,
                "deviceSecret" => &mut answer.device_secret,
                "clientId" => &mut answer.client_id,
                "deviceToken" => &mut answer.device_token,
                _ => return Ok(()),
            };
            match value {
                Member::Str(s) if slot.is_none() => {
                    *slot = Some(s);
                    Ok(())
                }
                Member::Null if slot.is_none() => Ok(()),
                _ => Err(()),
            }
        })
        .map_err(|()| RegistrationError::BadReply)?;
        Ok(answer)
    }
}

/// Whether `topic` is the pushed answer to a registration in `mode`.
pub fn is_answer(mode: AuthMode, topic: &str) -> bool {
    match mode {
        AuthMode::ProductSecretRegister => topic == REGISTER_TOPIC,
        AuthMode::ProductSecretNoPreRegister => topic == REGNWL_TOPIC,
        AuthMode::DeviceSecret => false,
    }
}

#[cfg(feature = "register-mqtt")]
/// Reads the pushed answer (spec §2.1): `deviceSecret` for `register`, `clientId` and
/// `deviceToken` for `regnwl`. Tolerant on input: extra fields are ignored, and a missing
/// `productKey`/`deviceName` is accepted; present, they must name this device.
pub fn parse_answer(config: &DeviceConfig, payload: &[u8]) -> Result<Issued, RegistrationError> {
    let answer = Answer::parse(payload)?;
    if answer
        .product_key
        .is_some_and(|pk| pk != config.product_key)
        || answer
            .device_name
            .is_some_and(|dn| dn != config.device_name)
    {
        return Err(RegistrationError::BadReply);
    }
    match config.auth {
        AuthMode::ProductSecretRegister => Ok(Issued::DeviceSecret(Secret::new(
            field(answer.device_secret)?.as_bytes().to_vec(),
        ))),
        AuthMode::ProductSecretNoPreRegister => {
            let client_id = field(answer.client_id)?;
            // The client id goes into the CONNECT before `|`: refuse one that would break it.
            if client_id.contains(['|', ',']) || !client_id.is_ascii() {
                return Err(RegistrationError::BadReply);
            }
            Ok(Issued::Token {
                client_id: client_id.to_string(),
                token: Secret::new(field(answer.device_token)?.as_bytes().to_vec()),
            })
        }
        AuthMode::DeviceSecret => Err(RegistrationError::BadReply),
    }
}

/// A non-empty value of at most [`MAX_ISSUED_LEN`] bytes.
fn field(value: Option<&str>) -> Result<&str, RegistrationError> {
    match value {
        Some(v) if !v.is_empty() && v.len() <= MAX_ISSUED_LEN => Ok(v),
        _ => Err(RegistrationError::BadReply),
    }
}

#[cfg(test)]
#[cfg(feature = "register-mqtt")]
mod tests;
