//! Alibaba IoT login signing (一机一密): the three MQTT CONNECT strings.
//!
//! Spec §1.1: the password is HMAC(sign method, DeviceSecret, sign content) in hex, where the
//! sign content is the parameters sorted by name and concatenated as `name` + `value`:
//! `clientId<id>deviceName<dn>productKey<pk>timestamp<ts>`. The platform does not check the
//! timestamp's freshness, so we send the fixed value the official SDKs send and need no clock.

use alloc::string::String;
use core::fmt::Write;

use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroize;

use crate::config::SignMethod;

/// The timestamp both official C SDKs sign with (2050-01-01T00:00:00Z in ms).
pub const FIXED_TIMESTAMP: &str = "2524608000000";

/// securemode for a TLS connection (TLS直连).
pub const SECUREMODE_TLS: &str = "2";
/// securemode for a plain TCP connection (TCP直连).
pub const SECUREMODE_TCP: &str = "3";

/// What an MQTT CONNECT carries to log in. `password` is a secret: never log it. It is
/// zeroized when the credentials are dropped, so the runner drops them right after CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginCredentials {
    /// `clientId|securemode=..,signmethod=..,timestamp=..|`
    pub client_id: String,
    /// `deviceName&productKey`
    pub username: String,
    /// Uppercase hex HMAC.
    pub password: String,
}

impl Drop for LoginCredentials {
    fn drop(&mut self) {
        // The HMAC is as good as the secret for logging in until the secret changes.
        self.password.zeroize();
    }
}

impl core::fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoginCredentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Inputs of a 一机一密 login.
#[derive(Clone, Copy)]
pub struct DeviceIdentity<'a> {
    /// ProductKey.
    pub product_key: &'a str,
    /// DeviceName.
    pub device_name: &'a str,
    /// Client id before the `|` (the SDKs use `${productKey}.${deviceName}`).
    pub client_id: &'a str,
    /// DeviceSecret (secret).
    pub device_secret: &'a [u8],
}

/// The `signmethod` value as the platform spells it.
pub fn sign_method_name(method: SignMethod) -> &'static str {
    match method {
        SignMethod::HmacMd5 => "hmacmd5",
        SignMethod::HmacSha1 => "hmacsha1",
        SignMethod::HmacSha256 => "hmacsha256",
    }
}

/// The sign content for a login: parameters sorted by name, `name` + `value` concatenated.
pub fn login_sign_content(id: &DeviceIdentity<'_>, timestamp: &str) -> String {
    let mut s = String::new();
    // Sorted by parameter name: clientId < deviceName < productKey < timestamp.
    for (name, value) in [
        ("clientId", id.client_id),
        ("deviceName", id.device_name),
        ("productKey", id.product_key),
        ("timestamp", timestamp),
    ] {
        s.push_str(name);
        s.push_str(value);
    }
    s
}

/// The registration sign content: the signed parameters sorted by name, `name` + `value`
/// concatenated, raw (not URL-encoded): `deviceName<dn>productKey<pk>random<r>` (spec §2.1,
/// §2.2; `sign` and `signMethod` are not signed).
pub fn register_sign_content(device_name: &str, product_key: &str, random: &str) -> String {
    let mut s = String::with_capacity(
        "deviceNameproductKeyrandom".len() + device_name.len() + product_key.len() + random.len(),
    );
    for (name, value) in [
        ("deviceName", device_name),
        ("productKey", product_key),
        ("random", random),
    ] {
        s.push_str(name);
        s.push_str(value);
    }
    s
}

/// HMAC of `message` under `key` with `method`, as uppercase hex (what every official SDK sends).
pub fn hmac_hex(method: SignMethod, key: &[u8], message: &[u8]) -> String {
    match method {
        #[cfg(feature = "sign-hmacmd5")]
        SignMethod::HmacMd5 => mac_hex::<Hmac<md5::Md5>>(key, message),
        #[cfg(feature = "sign-hmacsha1")]
        SignMethod::HmacSha1 => mac_hex::<Hmac<sha1::Sha1>>(key, message),
        #[cfg(feature = "sign-hmacsha256")]
        SignMethod::HmacSha256 => mac_hex::<Hmac<sha2::Sha256>>(key, message),
        // Compiled out (its `sign-*` feature): the runner refuses such a configuration before
        // it starts (`crate::features::missing`); an empty signature fails visibly.
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}

fn mac_hex<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail here; were it to, an
    // empty signature makes the login fail visibly rather than the kernel panic.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message);
    let mut digest = mac.finalize().into_bytes();
    // Sized once, so no reallocation leaves a partial copy behind.
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        let _ = write!(out, "{byte:02X}");
    }
    digest.as_mut_slice().zeroize();
    out
}

/// Build the CONNECT strings for a 一机一密 login with the fixed SDK timestamp.
pub fn device_login(id: &DeviceIdentity<'_>, method: SignMethod, tls: bool) -> LoginCredentials {
    device_login_at(id, method, tls, FIXED_TIMESTAMP)
}

/// Like [`device_login`] with an explicit timestamp (for test vectors).
pub fn device_login_at(
    id: &DeviceIdentity<'_>,
    method: SignMethod,
    tls: bool,
    timestamp: &str,
) -> LoginCredentials {
    let securemode = if tls { SECUREMODE_TLS } else { SECUREMODE_TCP };
    let mut client_id = String::new();
    let _ = write!(
        client_id,
        "{}|securemode={},signmethod={},timestamp={}|",
        id.client_id,
        securemode,
        sign_method_name(method),
        timestamp
    );
    let mut username = String::new();
    let _ = write!(username, "{}&{}", id.device_name, id.product_key);
    let content = login_sign_content(id, timestamp);
    LoginCredentials {
        client_id,
        username,
        password: hmac_hex(method, id.device_secret, content.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str) -> SignMethod {
        match name {
            "hmacmd5" => SignMethod::HmacMd5,
            "hmacsha1" => SignMethod::HmacSha1,
            "hmacsha256" => SignMethod::HmacSha256,
            other => panic!("unknown sign method in vectors: {other}"),
        }
    }

    #[test]
    fn spec_login_vectors() {
        let text = include_str!("../tests/data/vectors.json");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut checked = 0;
        for v in doc["vectors"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap();
            if s("kind") != "login" {
                continue;
            }
            let id = DeviceIdentity {
                product_key: s("product_key"),
                device_name: s("device_name"),
                client_id: s("client_id"),
                device_secret: s("device_secret").as_bytes(),
            };
            assert_eq!(
                login_sign_content(&id, s("timestamp")),
                s("sign_content"),
                "{}",
                s("id")
            );
            let creds = device_login_at(&id, method(s("signmethod")), false, s("timestamp"));
            assert_eq!(creds.password, s("password"), "{}", s("id"));
            checked += 1;
        }
        assert!(
            checked >= 7,
            "expected the spec's login vectors, found {checked}"
        );
    }

    #[test]
    fn registration_vectors_sign_like_login() {
        // V6/V7 sign `deviceName..productKey..random..` with the ProductSecret.
        let text = include_str!("../tests/data/vectors.json");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap();
            if s("kind") != "register" {
                continue;
            }
            let got = hmac_hex(
                method(s("signmethod")),
                s("product_secret").as_bytes(),
                s("sign_content").as_bytes(),
            );
            assert_eq!(got, s("password"), "{}", s("id"));
        }
    }

    #[test]
    fn connect_strings_have_the_documented_shape() {
        let id = DeviceIdentity {
            product_key: "pk",
            device_name: "device",
            client_id: "12345",
            device_secret: b"secret",
        };
        let c = device_login_at(&id, SignMethod::HmacSha1, false, "789");
        assert_eq!(
            c.client_id,
            "12345|securemode=3,signmethod=hmacsha1,timestamp=789|"
        );
        assert_eq!(c.username, "device&pk");
        assert_eq!(c.password, "FAFD82A3D602B37FB0FA8B7892F24A477F851A14");
        let tls = device_login(&id, SignMethod::HmacSha256, true);
        assert!(
            tls.client_id
                .starts_with("12345|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|")
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let id = DeviceIdentity {
            product_key: "pk",
            device_name: "device",
            client_id: "c",
            device_secret: b"secret",
        };
        let c = device_login(&id, SignMethod::HmacSha256, true);
        let shown = alloc::format!("{c:?}");
        assert!(!shown.contains(&c.password));
        assert!(shown.contains("redacted"));
    }
}
