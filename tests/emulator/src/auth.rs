//! The login checker: what the platform decides for an MQTT CONNECT.
//!
//! Pure logic over the registry (no I/O), so every rule and the spec's test vectors can be
//! checked without a network. Rules follow `shared/spec/aliyun-protocol.md` §1-2.

use std::collections::BTreeMap;

use crate::registry::{Device, Registry};
use crate::sign::{self, SignMethod};

/// Keep-alive range the platform enforces for normal logins (seconds).
pub const KEEPALIVE_RANGE: std::ops::RangeInclusive<u16> = 30..=1200;

/// Longest client identifier (the part before the first `|`).
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// The clientId split into the identifier and its `|k=v,...|` extension parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdParts {
    /// The free-form identifier before the first `|` (may be empty).
    pub id: String,
    /// Extension parameters; unknown keys (`_ss`, `ext`, `_v`, `lan`, `gw`, ...) are kept but ignored.
    pub params: BTreeMap<String, String>,
}

/// Splits `id|k=v,k=v|`. A clientId without any `|` is accepted with no parameters.
pub fn parse_client_id(raw: &str) -> Result<ClientIdParts, String> {
    let Some((id, rest)) = raw.split_once('|') else {
        return Ok(ClientIdParts {
            id: raw.to_string(),
            params: BTreeMap::new(),
        });
    };
    let Some(inner) = rest.strip_suffix('|') else {
        return Err("clientId extension must end with '|'".into());
    };
    if inner.contains('|') {
        return Err("clientId has more than two '|'".into());
    }
    let mut params = BTreeMap::new();
    for item in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("clientId parameter {item:?} is not key=value"));
        };
        params.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(ClientIdParts {
        id: id.to_string(),
        params,
    })
}

/// What a CONNECT carried, independent of the MQTT version.
#[derive(Clone)]
pub struct ConnectRequest {
    /// Full MQTT ClientId.
    pub client_id: String,
    /// MQTT username (`deviceName&productKey`).
    pub username: Option<String>,
    /// MQTT password bytes (never logged).
    pub password: Option<Vec<u8>>,
    /// Keep-alive in seconds.
    pub keep_alive: u16,
    /// CONNECT had a will message.
    pub has_will: bool,
    /// 4 for MQTT 3.1.1 (3 for 3.1), 5 for MQTT 5.
    pub mqtt_version: u8,
    /// The connection came in over TLS.
    pub tls: bool,
}

impl std::fmt::Debug for ConnectRequest {
    // The password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password_len", &self.password.as_ref().map(Vec::len))
            .field("keep_alive", &self.keep_alive)
            .field("has_will", &self.has_will)
            .field("mqtt_version", &self.mqtt_version)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Why a login was refused, mapped to a CONNACK code per MQTT version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// Bad username or password: 3.1.1 code 4, MQTT 5 0x86.
    BadCredentials,
    /// Malformed clientId: 3.1.1 code 2, MQTT 5 0x85.
    IdentifierRejected,
    /// Server unavailable (fault injection): 3.1.1 code 3, MQTT 5 0x88.
    ServerUnavailable,
    /// Not authorised (e.g. registration over plain TCP, will on 3.1.1): 3.1.1 code 5, MQTT 5 0x87.
    NotAuthorized,
    /// Keep-alive outside 30..1200 s: 3.1.1 code 2, MQTT 5 0x82 (the platform's exact code is
    /// UNCONFIRMED; it documents only that such CONNECTs are rejected).
    BadKeepAlive,
}

impl RefuseCode {
    /// CONNACK return code for MQTT 3.1.1.
    pub fn v3_code(self) -> u8 {
        match self {
            RefuseCode::BadCredentials => 4,
            RefuseCode::IdentifierRejected | RefuseCode::BadKeepAlive => 2,
            RefuseCode::ServerUnavailable => 3,
            RefuseCode::NotAuthorized => 5,
        }
    }
    /// CONNACK reason code for MQTT 5.
    pub fn v5_code(self) -> u8 {
        match self {
            RefuseCode::BadCredentials => 0x86,
            RefuseCode::IdentifierRejected => 0x85,
            RefuseCode::ServerUnavailable => 0x88,
            RefuseCode::NotAuthorized => 0x87,
            RefuseCode::BadKeepAlive => 0x82,
        }
    }
}

/// A refused login: the code and a reason a person can read (never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// CONNACK code class.
    pub code: RefuseCode,
    /// Human reason.
    pub reason: String,
}

fn refuse<T>(code: RefuseCode, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        reason: reason.into(),
    })
}

/// What an accepted CONNECT is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A device session (signed login or `connwl` token login).
    Device {
        /// ProductKey.
        pk: String,
        /// DeviceName.
        dn: String,
        /// `authType=connwl` token login.
        token_login: bool,
    },
    /// A dynamic-registration connect: push `topic` with `payload`, then close.
    Registration {
        /// ProductKey.
        pk: String,
        /// DeviceName.
        dn: String,
        /// `/ext/register` or `/ext/regnwl`.
        topic: String,
        /// JSON payload carrying the new secret or token.
        payload: String,
    },
}

/// Identity named by the username, when it can be parsed: `(productKey, deviceName)`.
pub fn identity(username: Option<&str>) -> Option<(String, String)> {
    let (dn, pk) = username?.split_once('&')?;
    (!dn.is_empty() && !pk.is_empty()).then(|| (pk.to_string(), dn.to_string()))
}

/// Decides a CONNECT the way the platform does; registration connects change the registry
/// (a new secret or token is issued). `new_secret` supplies fresh random secrets.
pub fn authorize(
    reg: &mut Registry,
    req: &ConnectRequest,
    new_secret: &mut dyn FnMut() -> String,
) -> Result<Accepted, Refusal> {
    let parts = parse_client_id(&req.client_id).map_err(|e| Refusal {
        code: RefuseCode::IdentifierRejected,
        reason: e,
    })?;
    if parts.id.len() > MAX_CLIENT_ID_LEN {
        return refuse(
            RefuseCode::IdentifierRejected,
            "clientId longer than 64 characters",
        );
    }
    let Some((pk, dn)) = identity(req.username.as_deref()) else {
        return refuse(
            RefuseCode::BadCredentials,
            "username is not deviceName&productKey",
        );
    };
    let password = req.password.clone().unwrap_or_default();
    if password.is_empty() {
        return refuse(RefuseCode::BadCredentials, "no password");
    }
    let auth_type = parts.params.get("authType").map(String::as_str);
    match auth_type {
        Some("register") | Some("regnwl") => register(
            reg,
            req,
            &parts,
            &pk,
            &dn,
            &password,
            auth_type == Some("regnwl"),
            new_secret,
        ),
        Some("connwl") => {
            check_common(req)?;
            token_login(reg, &parts, &pk, &dn, &password, req.mqtt_version)
        }
        Some(other) => refuse(
            RefuseCode::BadCredentials,
            format!("unknown authType {other:?}"),
        ),
        None => {
            check_common(req)?;
            signed_login(reg, &parts, &pk, &dn, &password, req.mqtt_version)
        }
    }
}

/// Rules for every non-registration login: keep-alive range and no will on 3.1.1.
fn check_common(req: &ConnectRequest) -> Result<(), Refusal> {
    if !KEEPALIVE_RANGE.contains(&req.keep_alive) {
        return refuse(
            RefuseCode::BadKeepAlive,
            format!("keepalive {} s outside 30..1200", req.keep_alive),
        );
    }
    if req.has_will && req.mqtt_version < 5 {
        return refuse(
            RefuseCode::NotAuthorized,
            "will messages are not supported on MQTT 3.1.1",
        );
    }
    Ok(())
}

fn signed_login(
    reg: &mut Registry,
    parts: &ClientIdParts,
    pk: &str,
    dn: &str,
    password: &[u8],
    mqtt_version: u8,
) -> Result<Accepted, Refusal> {
    let method = match parts.params.get("signmethod") {
        None => SignMethod::HmacMd5,
        Some(m) => match SignMethod::parse(m) {
            Some(m) => m,
            None => {
                return refuse(
                    RefuseCode::BadCredentials,
                    format!("unknown signmethod {m:?}"),
                );
            }
        },
    };
    let Some(product) = reg.product(pk) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown productKey {pk}"),
        );
    };
    let Some(device) = product.device(dn) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown device {pk}/{dn}"),
        );
    };
    let Some(secret) = device.secret.as_deref() else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("device {pk}/{dn} has no DeviceSecret yet"),
        );
    };
    // clientId and timestamp are optional in the sign content, but when signed they must be
    // the values sent; try the combinations of what was sent.
    let ts = parts.params.get("timestamp").map(String::as_str);
    let ok = [Some(parts.id.as_str()), None].into_iter().any(|cid| {
        [ts, None].into_iter().any(|t| {
            let content = sign::login_sign_content(cid, dn, pk, t);
            sign::hex_matches(
                &sign::hmac_hex(method, secret.as_bytes(), content.as_bytes()),
                password,
            )
        })
    });
    if !ok {
        return refuse(
            RefuseCode::BadCredentials,
            format!("bad password for {pk}/{dn} ({})", method.name()),
        );
    }
    activate(reg, pk, dn, mqtt_version)?;
    Ok(Accepted::Device {
        pk: pk.to_string(),
        dn: dn.to_string(),
        token_login: false,
    })
}

fn token_login(
    reg: &mut Registry,
    parts: &ClientIdParts,
    pk: &str,
    dn: &str,
    password: &[u8],
    mqtt_version: u8,
) -> Result<Accepted, Refusal> {
    let Some(device) = reg.device(pk, dn) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown device {pk}/{dn}"),
        );
    };
    let Some((cid, token)) = device.token.as_ref() else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("device {pk}/{dn} has no token"),
        );
    };
    if *cid != parts.id || token.as_bytes() != password {
        return refuse(
            RefuseCode::BadCredentials,
            format!("bad clientId or token for {pk}/{dn}"),
        );
    }
    activate(reg, pk, dn, mqtt_version)?;
    Ok(Accepted::Device {
        pk: pk.to_string(),
        dn: dn.to_string(),
        token_login: true,
    })
}

/// Marks a successful login; refuses a 3.1.1 login of a device that already used MQTT 5 when
/// the product has `mqtt5_sticky` set (the platform: "a device that has connected with MQTT 5.0
/// can no longer connect with 3.1/3.1.1").
fn activate(reg: &mut Registry, pk: &str, dn: &str, mqtt_version: u8) -> Result<(), Refusal> {
    let sticky = reg.product(pk).is_some_and(|p| p.mqtt5_sticky);
    if let Some(d) = reg.device_mut(pk, dn) {
        if sticky && d.used_mqtt5 && mqtt_version < 5 {
            return refuse(
                RefuseCode::NotAuthorized,
                format!("{pk}/{dn} has connected with MQTT 5.0 and can no longer use 3.1.1"),
            );
        }
        d.activated = true;
        d.used_mqtt5 |= mqtt_version >= 5;
    }
    Ok(())
}

/// Device names a not-pre-registered registration may create: `[A-Za-z0-9_.@:-]{4,32}`.
pub fn valid_new_device_name(dn: &str) -> bool {
    (4..=32).contains(&dn.len())
        && dn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b))
}

/// Checks a registration signature (shared by MQTT and HTTPS registration).
pub fn check_register_sign(
    product_secret: &str,
    pk: &str,
    dn: &str,
    random: &str,
    method: SignMethod,
    sign_hex: &[u8],
) -> bool {
    let content = sign::register_sign_content(dn, pk, random);
    sign::hex_matches(
        &sign::hmac_hex(method, product_secret.as_bytes(), content.as_bytes()),
        sign_hex,
    )
}

/// Issues a new DeviceSecret to a pre-registered, not yet activated device.
///
/// Shared by MQTT (`authType=register`) and HTTPS (`/auth/register/device`).
pub fn issue_secret(
    reg: &mut Registry,
    pk: &str,
    dn: &str,
    new_secret: &mut dyn FnMut() -> String,
) -> Result<String, Refusal> {
    let Some(product) = reg.product_mut(pk) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown productKey {pk}"),
        );
    };
    if !product.dynamic_registration {
        return refuse(
            RefuseCode::NotAuthorized,
            format!("dynamic registration is off for {pk}"),
        );
    }
    // The platform's codes for registration refusals are UNCONFIRMED (spec §2.1); LINKSDK
    // names 2 (identifier rejected) among them, which fits an unknown device best.
    let Some(device) = product.device_mut(dn) else {
        return refuse(
            RefuseCode::IdentifierRejected,
            format!("device {pk}/{dn} is not pre-registered"),
        );
    };
    if device.activated {
        return refuse(
            RefuseCode::NotAuthorized,
            format!("device {pk}/{dn} is already activated; reset it before registering again"),
        );
    }
    let secret = new_secret();
    device.secret = Some(secret.clone());
    Ok(secret)
}

#[allow(clippy::too_many_arguments)]
fn register(
    reg: &mut Registry,
    req: &ConnectRequest,
    parts: &ClientIdParts,
    pk: &str,
    dn: &str,
    password: &[u8],
    nwl: bool,
    new_secret: &mut dyn FnMut() -> String,
) -> Result<Accepted, Refusal> {
    if !req.tls {
        return refuse(RefuseCode::NotAuthorized, "dynamic registration needs TLS");
    }
    match parts.params.get("securemode").map(String::as_str) {
        Some("2") | Some("-2") => {}
        other => {
            return refuse(
                RefuseCode::BadCredentials,
                format!("registration needs securemode 2 or -2, got {other:?}"),
            );
        }
    }
    let method = match parts.params.get("signmethod").map(|m| SignMethod::parse(m)) {
        None => SignMethod::HmacMd5,
        Some(Some(m)) => m,
        Some(None) => return refuse(RefuseCode::BadCredentials, "unknown signmethod"),
    };
    let Some(random) = parts.params.get("random") else {
        return refuse(RefuseCode::BadCredentials, "registration without random");
    };
    let Some(product) = reg.product(pk) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown productKey {pk}"),
        );
    };
    if !check_register_sign(&product.product_secret, pk, dn, random, method, password) {
        return refuse(
            RefuseCode::BadCredentials,
            format!("bad registration sign for {pk}/{dn}"),
        );
    }
    if !nwl {
        let secret = issue_secret(reg, pk, dn, new_secret)?;
        let payload =
            serde_json::json!({"productKey": pk, "deviceName": dn, "deviceSecret": secret});
        return Ok(Accepted::Registration {
            pk: pk.into(),
            dn: dn.into(),
            topic: "/ext/register".into(),
            payload: payload.to_string(),
        });
    }
    // Not pre-registered: create the device if needed and issue a clientId + token.
    let Some(product) = reg.product_mut(pk) else {
        return refuse(
            RefuseCode::BadCredentials,
            format!("unknown productKey {pk}"),
        );
    };
    if !product.dynamic_registration || !product.allow_unregistered {
        return refuse(
            RefuseCode::NotAuthorized,
            format!("registration without pre-registration is off for {pk}"),
        );
    }
    if product.device(dn).is_none() {
        if !valid_new_device_name(dn) {
            return refuse(
                RefuseCode::BadCredentials,
                format!("device name {dn:?} not allowed"),
            );
        }
        product.devices.push(Device {
            name: dn.to_string(),
            ..Device::default()
        });
    }
    let Some(device) = product.device_mut(dn) else {
        return refuse(RefuseCode::BadCredentials, "device vanished");
    };
    if device.activated {
        return refuse(
            RefuseCode::NotAuthorized,
            format!("device {pk}/{dn} is already activated; reset it before registering again"),
        );
    }
    let token = new_secret();
    let rand_part: String = new_secret().chars().take(8).collect();
    let client_id = format!("{dn}.{rand_part}");
    device.token = Some((client_id.clone(), token.clone()));
    let payload = serde_json::json!({
        "clientId": client_id, "productKey": pk, "deviceName": dn, "deviceToken": token
    });
    Ok(Accepted::Registration {
        pk: pk.into(),
        dn: dn.into(),
        topic: "/ext/regnwl".into(),
        payload: payload.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_with_unknown_keys() {
        let p = parse_client_id(
            "a.b|securemode=2,signmethod=hmacsha256,_ss=1,ext=3,_v=sdk-c-4.0.0,lan=C,gw=0,sii=x|",
        )
        .expect("parses");
        assert_eq!(p.id, "a.b");
        assert_eq!(p.params.get("securemode").map(String::as_str), Some("2"));
        assert_eq!(p.params.get("_v").map(String::as_str), Some("sdk-c-4.0.0"));
    }

    #[test]
    fn parse_errors() {
        assert!(parse_client_id("a|securemode=2").is_err());
        assert!(parse_client_id("a|x|y|").is_err());
        assert!(parse_client_id("a|novalue|").is_err());
        assert_eq!(parse_client_id("plain").expect("ok").id, "plain");
    }

    #[test]
    fn new_device_names() {
        assert!(valid_new_device_name("dev-01"));
        assert!(valid_new_device_name("a@b:c.d_e"));
        assert!(!valid_new_device_name("abc"));
        assert!(!valid_new_device_name("has space"));
        assert!(!valid_new_device_name(&"x".repeat(33)));
    }
}
