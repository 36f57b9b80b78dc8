//! Login material behind a provider, and the secret type that carries it.
//!
//! The session does not hold the DeviceSecret: it asks a [`Credentials`] provider for the
//! strings of each CONNECT ([`Credentials::login_params`]) and drops them as soon as the
//! CONNECT has been answered. [`DeviceSecretLogin`] is 一机一密 (the secret read by the board
//! from the source the manifest names); [`RegisteredLogin`] is 一型一密: it logs in with what a
//! registration stored (a DeviceSecret, or a clientId and token for `connwl`), and until then
//! hands the runner the ProductSecret to register with.
//!
//! Secrets live in [`Secret`]: zeroized when dropped and never printed (it implements neither
//! `Debug` nor `Display`). The password derived from it ([`LoginCredentials::password`], an
//! HMAC that logs in as well as the secret does) is zeroized when the credentials are dropped.
//!
//! The links encode the CONNECT into their write buffers and read a registration answer into
//! their receive buffers; those buffers are wiped when the link is dropped (`link::WipedBuf`;
//! `tests/zeroize.rs` checks freed memory for the password and the secret). What is still not
//! wiped: `rust-mqtt`'s own copies inside the MQTT 5 link, and the TLS stack's buffers.

use alloc::vec::Vec;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::auth::{DeviceIdentity, LoginCredentials, device_login};
use crate::config::{AuthMode, DeviceConfig};
use crate::quoted::Quoted;
use crate::registration::mqtt::token_login;
use crate::registration::{Issued, RegistrationError, StoredCredentials};

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

/// Why a provider has no login material. Its `Debug` (a session's end is logged with it)
/// quotes the strings without `str`'s `Debug` (`quoted.rs`, issue 11).
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// The provider serves another `auth.mode` than the configuration's (a board wired the
    /// wrong provider).
    WrongMode {
        /// What the configuration says.
        configured: AuthMode,
    },
    /// The secret is empty.
    EmptySecret,
    /// A 一型一密 device was asked to log in before it registered.
    NotRegistered,
    /// The configuration needs a kernel feature this build compiled out
    /// ([`crate::features::missing`]): the board must be built with it.
    CompiledOut {
        /// The cargo feature, e.g. `mqtt-v5`.
        feature: &'static str,
        /// The manifest setting that needs it, e.g. `mqtt.version = "5"`.
        setting: &'static str,
    },
}

impl core::fmt::Debug for CredentialsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CredentialsError::WrongMode { configured } => {
                write!(f, "WrongMode {{ configured: {configured:?} }}")
            }
            CredentialsError::EmptySecret => f.write_str("EmptySecret"),
            CredentialsError::NotRegistered => f.write_str("NotRegistered"),
            CredentialsError::CompiledOut { feature, setting } => write!(
                f,
                "CompiledOut {{ feature: {}, setting: {} }}",
                Quoted(feature),
                Quoted(setting)
            ),
        }
    }
}

impl core::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CredentialsError::WrongMode { configured } => write!(
                f,
                "this credentials provider cannot log in a device whose auth.mode is {}",
                auth_mode_name(*configured)
            ),
            CredentialsError::EmptySecret => f.write_str("the secret is empty"),
            CredentialsError::NotRegistered => {
                f.write_str("the device has not registered yet (一型一密)")
            }
            CredentialsError::CompiledOut { feature, setting } => write!(
                f,
                "the manifest's {setting} needs the kernel feature `{feature}`, which this firmware was built without; build it with that feature"
            ),
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

/// What a provider needs before its first login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// It can log in now.
    Ready,
    /// It has no login material: the runner must register (一型一密) first.
    MustRegister,
}

/// Where the session gets what it logs in with.
#[allow(async_fn_in_trait)] // single-threaded executors on every board
pub trait Credentials {
    /// Whether this provider can log in the device `config` describes at all. The runner asks
    /// once, before its first connection, and stops with the error if not.
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError>;

    /// The CONNECT strings for the next login of the device `config` describes (TLS or not
    /// changes the `securemode` in the client id). The caller drops them, and with them the
    /// password, as soon as the CONNECT is answered. An error stops the runner.
    fn login_params(&mut self, config: &DeviceConfig)
    -> Result<LoginCredentials, CredentialsError>;

    /// Called once after [`Credentials::check`]: a registering provider looks for what it
    /// stored (flash) and says whether the runner must register first.
    async fn prepare(&mut self, _config: &DeviceConfig) -> Readiness {
        Readiness::Ready
    }

    /// The ProductSecret a registration is signed with; `None` for providers that never
    /// register. The runner signs with it and keeps no copy.
    fn product_secret(&self) -> Option<&Secret> {
        None
    }

    /// A registration issued `issued`: store it so that no power cut loses it, read it back,
    /// and use it from now on. Only after `Ok` does the runner close the registration
    /// connection and log in.
    async fn registered(
        &mut self,
        _config: &DeviceConfig,
        _issued: Issued,
    ) -> Result<(), RegistrationError> {
        Err(RegistrationError::Storage)
    }
}

/// 一机一密: every login is signed with the DeviceSecret.
pub struct DeviceSecretLogin {
    secret: Secret,
}

impl DeviceSecretLogin {
    /// A provider for a device whose DeviceSecret is `secret`. Fails for an empty secret.
    pub fn new(secret: Secret) -> Result<Self, CredentialsError> {
        if secret.is_empty() {
            return Err(CredentialsError::EmptySecret);
        }
        Ok(Self { secret })
    }
}

impl Credentials for DeviceSecretLogin {
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError> {
        match config.auth {
            AuthMode::DeviceSecret => Ok(()),
            configured => Err(CredentialsError::WrongMode { configured }),
        }
    }

    fn login_params(
        &mut self,
        config: &DeviceConfig,
    ) -> Result<LoginCredentials, CredentialsError> {
        // Checked again: the provider may have been made for another configuration.
        self.check(config)?;
        Ok(signed_login(config, &self.secret))
    }
}

/// Where a registering provider keeps what registration issued (the board's flash, through
/// [`crate::store::CredentialStore`]).
#[allow(async_fn_in_trait)]
pub trait CredentialStorage {
    /// Why storage failed (printed in logs; never carries secret bytes).
    type Error: crate::Loggable;
    /// What is stored for this ProductKey and DeviceName, if anything.
    async fn load(
        &mut self,
        product_key: &str,
        device_name: &str,
    ) -> Result<Option<StoredCredentials>, Self::Error>;
    /// Store `creds` power-fail-safe, read them back and compare.
    async fn save(&mut self, creds: &StoredCredentials) -> Result<(), Self::Error>;
}

/// 一型一密: logs in with what a registration stored (a DeviceSecret, or a clientId and a
/// token); until something is stored, the runner registers with the ProductSecret.
pub struct RegisteredLogin<S> {
    product_secret: Secret,
    storage: S,
    stored: Option<StoredCredentials>,
}

impl<S: CredentialStorage> RegisteredLogin<S> {
    /// A provider that registers with `product_secret` and keeps the result in `storage`.
    pub fn new(product_secret: Secret, storage: S) -> Result<Self, CredentialsError> {
        if product_secret.is_empty() {
            return Err(CredentialsError::EmptySecret);
        }
        Ok(Self {
            product_secret,
            storage,
            stored: None,
        })
    }

    /// The storage, back (tests, and boards that erase it on request).
    pub fn into_storage(self) -> S {
        self.storage
    }
}

impl<S: CredentialStorage> Credentials for RegisteredLogin<S> {
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError> {
        match config.auth {
            AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => Ok(()),
            configured => Err(CredentialsError::WrongMode { configured }),
        }
    }

    fn login_params(
        &mut self,
        config: &DeviceConfig,
    ) -> Result<LoginCredentials, CredentialsError> {
        self.check(config)?;
        match &self.stored {
            None => Err(CredentialsError::NotRegistered),
            Some(StoredCredentials {
                issued: Issued::DeviceSecret(secret),
                ..
            }) => Ok(signed_login(config, secret)),
            Some(StoredCredentials {
                issued: Issued::Token { client_id, token },
                ..
            }) => Ok(token_login(config, client_id, token)),
        }
    }

    async fn prepare(&mut self, config: &DeviceConfig) -> Readiness {
        if self.stored.is_some() {
            return Readiness::Ready;
        }
        match self
            .storage
            .load(config.product_key, config.device_name)
            .await
        {
            Ok(Some(stored)) => {
                log_info!(
                    "stored credentials found for {}/{} ({}): logging in with them",
                    config.product_key,
                    config.device_name,
                    issued_kind(&stored.issued)
                );
                self.stored = Some(stored);
                Readiness::Ready
            }
            Ok(None) => Readiness::MustRegister,
            Err(e) => {
                log_warn!(
                    "the credentials partition could not be read ({}); registering as if it were empty",
                    e
                );
                Readiness::MustRegister
            }
        }
    }

    fn product_secret(&self) -> Option<&Secret> {
        Some(&self.product_secret)
    }

    async fn registered(
        &mut self,
        config: &DeviceConfig,
        issued: Issued,
    ) -> Result<(), RegistrationError> {
        let creds = StoredCredentials {
            product_key: config.product_key.into(),
            device_name: config.device_name.into(),
            issued,
        };
        match self.storage.save(&creds).await {
            Ok(()) => {
                self.stored = Some(creds);
                Ok(())
            }
            Err(e) => {
                log_error!(
                    "the credentials registration issued could not be stored ({}); they are not used, and the next attempt registers again",
                    e
                );
                Err(RegistrationError::Storage)
            }
        }
    }
}

/// The 一机一密 login of the device `config` describes, signed with its DeviceSecret.
fn signed_login(config: &DeviceConfig, device_secret: &Secret) -> LoginCredentials {
    let id = DeviceIdentity {
        product_key: config.product_key,
        device_name: config.device_name,
        client_id: config.client_id,
        device_secret: device_secret.expose(),
    };
    device_login(&id, config.sign_method, config.tls.enabled)
}

/// "DeviceSecret" or "device token", for logs.
pub fn issued_kind(issued: &Issued) -> &'static str {
    match issued {
        Issued::DeviceSecret(_) => "DeviceSecret",
        Issued::Token { .. } => "clientId and device token",
    }
}

#[cfg(test)]
mod tests {
    use alloc::borrow::ToOwned;
    use alloc::string::String;

    use super::*;
    use crate::auth::device_login_at;
    use crate::config::*;

    static CONFIG: DeviceConfig = DeviceConfig {
        device_name: "device",
        client_id: "12345",
        sign_method: SignMethod::HmacSha1,
        ..TEST_CONFIG
    };

    fn block_on<F: core::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    #[test]
    fn device_secret_login_signs_with_the_secret() {
        let mut creds = DeviceSecretLogin::new(Secret::from("secret".to_owned())).unwrap();
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
        assert!(creds.product_secret().is_none());
        assert_eq!(block_on(creds.prepare(&CONFIG)), Readiness::Ready);
    }

    #[test]
    fn providers_refuse_a_configuration_of_the_other_mode() {
        let mut creds = DeviceSecretLogin::new(Secret::from("s".to_owned())).unwrap();
        let mut config = CONFIG;
        config.auth = AuthMode::ProductSecretNoPreRegister;
        let err = CredentialsError::WrongMode {
            configured: AuthMode::ProductSecretNoPreRegister,
        };
        assert_eq!(creds.check(&config), Err(err));
        assert_eq!(creds.login_params(&config), Err(err));
        assert!(alloc::format!("{err}").contains("regnwl"));
        let registering =
            RegisteredLogin::new(Secret::from("ps".to_owned()), Memory::default()).unwrap();
        assert_eq!(
            registering.check(&CONFIG),
            Err(CredentialsError::WrongMode {
                configured: AuthMode::DeviceSecret
            })
        );
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(
            DeviceSecretLogin::new(Secret::new(Vec::new())),
            Err(CredentialsError::EmptySecret)
        ));
        assert!(matches!(
            RegisteredLogin::new(Secret::new(Vec::new()), Memory::default()),
            Err(CredentialsError::EmptySecret)
        ));
    }

    #[test]
    fn secrets_zeroize_on_drop() {
        fn zeroizes_on_drop<T: ZeroizeOnDrop>() {}
        zeroizes_on_drop::<Secret>();
    }

    /// Storage in memory: what was saved, and whether the next save fails.
    #[derive(Default)]
    struct Memory {
        saved: Option<(String, String, Vec<u8>, Option<String>)>,
        fail_save: bool,
        fail_load: bool,
        saves: u32,
    }

    impl CredentialStorage for Memory {
        type Error = &'static str;
        async fn load(
            &mut self,
            pk: &str,
            dn: &str,
        ) -> Result<Option<StoredCredentials>, &'static str> {
            if self.fail_load {
                return Err("flash error");
            }
            Ok(self.saved.as_ref().and_then(|(p, d, secret, cid)| {
                (p == pk && d == dn).then(|| StoredCredentials {
                    product_key: p.clone(),
                    device_name: d.clone(),
                    issued: match cid {
                        None => Issued::DeviceSecret(Secret::new(secret.clone())),
                        Some(c) => Issued::Token {
                            client_id: c.clone(),
                            token: Secret::new(secret.clone()),
                        },
                    },
                })
            }))
        }
        async fn save(&mut self, creds: &StoredCredentials) -> Result<(), &'static str> {
            self.saves += 1;
            if self.fail_save {
                return Err("flash full");
            }
            let (secret, cid) = match &creds.issued {
                Issued::DeviceSecret(s) => (s.expose().to_vec(), None),
                Issued::Token { client_id, token } => {
                    (token.expose().to_vec(), Some(client_id.clone()))
                }
            };
            self.saved = Some((
                creds.product_key.clone(),
                creds.device_name.clone(),
                secret,
                cid,
            ));
            Ok(())
        }
    }

    const REGISTER: DeviceConfig = DeviceConfig {
        auth: AuthMode::ProductSecretRegister,
        tls: TlsConfig {
            enabled: true,
            ca_file: None,
        },
        ..CONFIG
    };

    #[test]
    fn registered_login_registers_stores_then_logs_in_with_what_was_issued() {
        let mut creds =
            RegisteredLogin::new(Secret::from("ps".to_owned()), Memory::default()).unwrap();
        assert_eq!(creds.product_secret().map(Secret::expose), Some(&b"ps"[..]));
        assert_eq!(block_on(creds.prepare(&REGISTER)), Readiness::MustRegister);
        assert_eq!(
            creds.login_params(&REGISTER),
            Err(CredentialsError::NotRegistered)
        );
        block_on(creds.registered(
            &REGISTER,
            Issued::DeviceSecret(Secret::from("ds".to_owned())),
        ))
        .unwrap();
        let login = creds.login_params(&REGISTER).unwrap();
        let expected = device_login(
            &DeviceIdentity {
                product_key: "pk",
                device_name: "device",
                client_id: "12345",
                device_secret: b"ds",
            },
            SignMethod::HmacSha1,
            true,
        );
        assert_eq!(login, expected);
        // A new boot over the same storage finds it and does not register.
        let storage = creds.into_storage();
        assert_eq!(storage.saves, 1);
        let mut again = RegisteredLogin::new(Secret::from("ps".to_owned()), storage).unwrap();
        assert_eq!(block_on(again.prepare(&REGISTER)), Readiness::Ready);
        assert_eq!(again.login_params(&REGISTER).unwrap(), expected);
        // Another device name on the same storage must register.
        let other = DeviceConfig {
            device_name: "other",
            ..REGISTER
        };
        let mut third =
            RegisteredLogin::new(Secret::from("ps".to_owned()), again.into_storage()).unwrap();
        assert_eq!(block_on(third.prepare(&other)), Readiness::MustRegister);
    }

    #[test]
    fn a_token_logs_in_with_connwl() {
        let config = DeviceConfig {
            auth: AuthMode::ProductSecretNoPreRegister,
            ..REGISTER
        };
        let mut creds =
            RegisteredLogin::new(Secret::from("ps".to_owned()), Memory::default()).unwrap();
        block_on(creds.registered(
            &config,
            Issued::Token {
                client_id: "device.abc".to_owned(),
                token: Secret::from("t0k".to_owned()),
            },
        ))
        .unwrap();
        let login = creds.login_params(&config).unwrap();
        assert_eq!(login.client_id, "device.abc|securemode=-2,authType=connwl|");
        assert_eq!(login.password, "t0k");
    }

    #[test]
    fn nothing_is_used_that_was_not_stored() {
        let memory = Memory {
            fail_save: true,
            ..Memory::default()
        };
        let mut creds = RegisteredLogin::new(Secret::from("ps".to_owned()), memory).unwrap();
        assert_eq!(
            block_on(creds.registered(
                &REGISTER,
                Issued::DeviceSecret(Secret::from("ds".to_owned()))
            )),
            Err(RegistrationError::Storage)
        );
        assert_eq!(
            creds.login_params(&REGISTER),
            Err(CredentialsError::NotRegistered)
        );
        assert_eq!(creds.into_storage().saves, 1);
    }

    #[test]
    fn an_unreadable_partition_means_register() {
        let memory = Memory {
            fail_load: true,
            ..Memory::default()
        };
        let mut creds = RegisteredLogin::new(Secret::from("ps".to_owned()), memory).unwrap();
        assert_eq!(block_on(creds.prepare(&REGISTER)), Readiness::MustRegister);
    }
}
