//! HMAC signing as the platform does it: login passwords and registration signatures.
//!
//! Hand-written glue only; the HMAC and digest algorithms come from the RustCrypto crates.

use hmac::{Hmac, Mac};

/// A `signmethod` the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// `hmacmd5` (the platform default when `signmethod` is absent).
    HmacMd5,
    /// `hmacsha1`.
    HmacSha1,
    /// `hmacsha256` (what the official SDKs send).
    HmacSha256,
}

impl SignMethod {
    /// Parses a sign method name case-insensitively (`hmacsha256`, `HmacMD5`, ...).
    ///
    /// Also accepts `sha256`, which one English version of the login document lists.
    pub fn parse(name: &str) -> Option<SignMethod> {
        match name.to_ascii_lowercase().as_str() {
            "hmacmd5" => Some(SignMethod::HmacMd5),
            "hmacsha1" => Some(SignMethod::HmacSha1),
            "hmacsha256" | "sha256" => Some(SignMethod::HmacSha256),
            _ => None,
        }
    }

    /// Canonical lower-case name, as written in a clientId.
    pub fn name(self) -> &'static str {
        match self {
            SignMethod::HmacMd5 => "hmacmd5",
            SignMethod::HmacSha1 => "hmacsha1",
            SignMethod::HmacSha256 => "hmacsha256",
        }
    }
}

/// HMAC of `msg` with `key`, as upper-case hex (what the official SDKs emit).
pub fn hmac_hex(method: SignMethod, key: &[u8], msg: &[u8]) -> String {
    // `new_from_slice` accepts keys of any length for HMAC, so the error branch is unreachable;
    // an empty string then simply never matches any password.
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> String {
        match <M as hmac::digest::KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(msg);
                hex::encode_upper(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }
    match method {
        SignMethod::HmacMd5 => run::<Hmac<md5::Md5>>(key, msg),
        SignMethod::HmacSha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        SignMethod::HmacSha256 => run::<Hmac<sha2::Sha256>>(key, msg),
    }
}

/// Sign content of a login: the parameters present, sorted by name, `name` + `value` concatenated.
///
/// The sorted order is always clientId, deviceName, productKey, timestamp.
pub fn login_sign_content(
    client_id: Option<&str>,
    device_name: &str,
    product_key: &str,
    timestamp: Option<&str>,
) -> String {
    let mut s = String::new();
    if let Some(c) = client_id {
        s.push_str("clientId");
        s.push_str(c);
    }
    s.push_str("deviceName");
    s.push_str(device_name);
    s.push_str("productKey");
    s.push_str(product_key);
    if let Some(t) = timestamp {
        s.push_str("timestamp");
        s.push_str(t);
    }
    s
}

/// Sign content of a dynamic registration (MQTT and HTTPS): deviceName, productKey, random.
pub fn register_sign_content(device_name: &str, product_key: &str, random: &str) -> String {
    format!("deviceName{device_name}productKey{product_key}random{random}")
}

/// Compares a received hex password with the expected upper-case hex, accepting either case.
pub fn hex_matches(expected_upper: &str, given: &[u8]) -> bool {
    !expected_upper.is_empty()
        && expected_upper.len() == given.len()
        && expected_upper
            .bytes()
            .zip(given.iter())
            .all(|(e, g)| e == g.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_official_vector() {
        let content = login_sign_content(Some("12345"), "device", "pk", Some("789"));
        assert_eq!(
            content,
            "clientId12345deviceNamedeviceproductKeypktimestamp789"
        );
        let pw = hmac_hex(SignMethod::HmacSha1, b"secret", content.as_bytes());
        assert_eq!(pw, "FAFD82A3D602B37FB0FA8B7892F24A477F851A14");
    }

    #[test]
    fn parse_is_case_insensitive() {
        assert_eq!(SignMethod::parse("HmacMD5"), Some(SignMethod::HmacMd5));
        assert_eq!(
            SignMethod::parse("HMACSHA256"),
            Some(SignMethod::HmacSha256)
        );
        assert_eq!(SignMethod::parse("md5"), None);
    }

    #[test]
    fn hex_either_case() {
        assert!(hex_matches("AB12", b"ab12"));
        assert!(hex_matches("AB12", b"AB12"));
        assert!(!hex_matches("AB12", b"AB13"));
        assert!(!hex_matches("", b""));
    }
}
