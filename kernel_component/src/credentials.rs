//! Login material behind a provider, and the secret type that carries it.
//!
//! The session does not hold the DeviceSecret: it asks a [`Credentials`] provider for the
//! strings of each CONNECT ([`Credentials::login_params`]) and drops them as soon as the
//! CONNECT has been answered. Today the only provider is [`DeviceSecretLogin`] (一机一密, the
//! secret read by the board from the source the manifest names); the next ones (一型一密:
//! the DeviceSecret a registration returned, or a token from a not-pre-registered
//! registration) keep what they stored behind the same trait, so the session does not change.
//!
//! Secrets live in [`Secret`]: zeroized when dropped and never printed (it implements neither
//! `Debug` nor `Display`). The password derived from it ([`LoginCredentials::password`], an
//! HMAC that logs in as well as the secret does) is zeroized when the credentials are dropped.
//!
//! What this module cannot clear: the links encode the CONNECT into their write buffers (3.1.1
//! `tx`, 5 the pipe), where the password stays until the next packet overwrites it.

use alloc::vec::Vec;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::auth::{DeviceIdentity, LoginCredentials, device_login};
use crate::config::{AuthMode, DeviceConfig};

/// A secret (DeviceSecret, ProductSecret, token). Zeroized on drop; neither `Debug` nor
/// `Display`, so it cannot reach a log by accident:
///
/// ```compile_fail,E0277
/// let secret = aliot_kernel::credentials::Secret::new(b"s3cr3t".to_vec());
/// let _ = format!("{secret:?}");
/// ```
///
/// ```compile_fail,E0277
/// let secret = aliot_kernel::credentials::Secret::new(b"s3cr3t".to_vec());
/// let _ = format!("{secret}");
/// ```
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Takes ownership of `bytes` (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The secret's bytes, for signing. Do not copy them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// True for an empty secret (which no login accepts).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<alloc::string::String> for Secret {
    /// Takes the string's buffer (no copy is made).
    fn from(text: alloc::string::String) -> Self {
        Self::new(text.into_bytes())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Clears the whole allocation, capacity included.
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

/// Why a provider has no login material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// The manifest's `auth.mode` needs dynamic registration (一型一密), which this kernel
    /// does not implement yet.
    RegistrationNotImplemented(AuthMode),
    /// The secret is empty.
    EmptySecret,
}

impl core::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CredentialsError::RegistrationNotImplemented(mode) => write!(
                f,
                "auth mode {} (一型一密): registration is not implemented yet; \
                 use auth.mode = \"device_secret\" with the device's DeviceSecret",
                auth_mode_name(*mode)
            ),
            CredentialsError::EmptySecret => f.write_str("the device secret is empty"),
        }
    }
}

/// The manifest's spelling of `mode`.
pub fn auth_mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::DeviceSecret => "device_secret",
        AuthMode::ProductSecretRegister => "register",
        AuthMode::ProductSecretNoPreRegister => "regnwl",
    }
}

/// Whether this kernel can log in the way `mode` says. Boards call it at start, before they
/// look for any secret, so an unsupported manifest fails at once with a clear message.
pub fn check_auth_mode(mode: AuthMode) -> Result<(), CredentialsError> {
    match mode {
        AuthMode::DeviceSecret => Ok(()),
        other => Err(CredentialsError::RegistrationNotImplemented(other)),
    }
}

/// Where the session gets what it logs in with.
pub trait Credentials {
    /// Whether this provider can log in the device `config` describes at all. The runner asks
    /// once, before its first connection, and stops with the error if not.
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError>;

    /// The CONNECT strings for the next login of the device `config` describes (TLS or not
    /// changes the `securemode` in the client id). The caller drops them, and with them the
    /// password, as soon as the CONNECT is answered. An error stops the runner.
    fn login_params(&mut self, config: &DeviceConfig)
    -> Result<LoginCredentials, CredentialsError>;
}

/// 一机一密: every login is signed with the DeviceSecret.
pub struct DeviceSecretLogin {
    secret: Secret,
}

impl DeviceSecretLogin {
    /// A provider for a device whose manifest says `auth` and whose DeviceSecret is `secret`.
    /// Fails for the 一型一密 modes and for an empty secret.
    pub fn new(auth: AuthMode, secret: Secret) -> Result<Self, CredentialsError> {
        check_auth_mode(auth)?;
        if secret.is_empty() {
            return Err(CredentialsError::EmptySecret);
        }
        Ok(Self { secret })
    }
}

impl Credentials for DeviceSecretLogin {
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError> {
        check_auth_mode(config.auth)
    }

    fn login_params(
        &mut self,
        config: &DeviceConfig,
    ) -> Result<LoginCredentials, CredentialsError> {
        // Checked again: the provider may have been made for another configuration.
        self.check(config)?;
        let id = DeviceIdentity {
            product_key: config.product_key,
            device_name: config.device_name,
            client_id: config.client_id,
            device_secret: self.secret.expose(),
        };
        Ok(device_login(&id, config.sign_method, config.tls.enabled))
    }
}

#[cfg(test)]
mod tests {
    use alloc::borrow::ToOwned;

    use super::*;
    use crate::auth::device_login_at;
    use crate::config::*;

    static CONFIG: DeviceConfig = DeviceConfig {
        device_name: "device",
        client_id: "12345",
        sign_method: SignMethod::HmacSha1,
        ..TEST_CONFIG
    };

    #[test]
    fn device_secret_login_signs_with_the_secret() {
        let mut creds =
            DeviceSecretLogin::new(AuthMode::DeviceSecret, Secret::from("secret".to_owned()))
                .unwrap();
        let login = creds.login_params(&CONFIG).unwrap();
        // The documented vector of `auth.rs` (securemode 3: no TLS).
        let expected = device_login_at(
            &DeviceIdentity {
                product_key: "pk",
                device_name: "device",
                client_id: "12345",
                device_secret: b"secret",
            },
            SignMethod::HmacSha1,
            false,
            crate::auth::FIXED_TIMESTAMP,
        );
        assert_eq!(login, expected);
        assert!(login.client_id.contains("securemode=3"));
    }

    #[test]
    fn registration_modes_fail_clearly_and_do_not_panic() {
        for mode in [
            AuthMode::ProductSecretRegister,
            AuthMode::ProductSecretNoPreRegister,
        ] {
            let err = DeviceSecretLogin::new(mode, Secret::from("s".to_owned()))
                .err()
                .unwrap();
            assert_eq!(err, CredentialsError::RegistrationNotImplemented(mode));
            let text = alloc::format!("{err}");
            assert!(
                text.contains("registration is not implemented yet"),
                "{text}"
            );
            assert!(text.contains(auth_mode_name(mode)), "{text}");
            assert_eq!(check_auth_mode(mode), Err(err));
        }
        // A provider made for device_secret refuses a configuration that says otherwise.
        let mut creds =
            DeviceSecretLogin::new(AuthMode::DeviceSecret, Secret::from("s".to_owned())).unwrap();
        let mut config = CONFIG;
        config.auth = AuthMode::ProductSecretNoPreRegister;
        assert!(creds.check(&config).is_err());
        assert_eq!(
            creds.login_params(&config),
            Err(CredentialsError::RegistrationNotImplemented(
                AuthMode::ProductSecretNoPreRegister
            ))
        );
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(
            DeviceSecretLogin::new(AuthMode::DeviceSecret, Secret::new(Vec::new())),
            Err(CredentialsError::EmptySecret)
        ));
    }

    #[test]
    fn secrets_zeroize_on_drop() {
        fn zeroizes_on_drop<T: ZeroizeOnDrop>() {}
        zeroizes_on_drop::<Secret>();
    }
}
