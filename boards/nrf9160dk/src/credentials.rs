//! Login material from the credentials partition on the NVMC, never from the image.
//!
//! The manifest's `[flash.credentials]` partition is split in two halves on this board
//! (`aliot_kernel::store::provisioned_and_registered`, the layout `aliot-provision` writes):
//!
//! - the lower half, **provisioned**: written once by the provisioning command, never by the
//!   firmware, as the kernel's factory record (`aliot_kernel::store::read_factory`: a checked
//!   header and one record of kind DeviceSecret with the device's ProductKey and DeviceName).
//!   It holds the secret the manifest's `auth.mode` needs: the DeviceSecret (`device_secret`)
//!   or the ProductSecret (`register`, `regnwl`);
//! - the upper half, **registered**: what a 一型一密 registration issued, written by the
//!   kernel's `RegisteredLogin` through a `CredentialStore` (power-fail-safe
//!   `sequential-storage` records); only in a build with a `register-*` feature.
//!
//! The firmware must never overwrite the factory secret while storing a registration, so the
//! halves are apart. Each half needs 2 pages, so the partition needs 4 (the manifest's
//! default); with fewer, or with nothing provisioned, the board logs why and does not log in.
//!
//! UNTESTED ON HARDWARE: the NVMC side (the factory reader and the store are tested on the
//! host, the store with power cuts at every word).

use aliot_kernel::config::{AuthMode, DeviceConfig};
#[cfg(any(feature = "register-mqtt", feature = "register-https"))]
use aliot_kernel::credentials::RegisteredLogin;
use aliot_kernel::credentials::{
    Credentials, CredentialsError, DeviceSecretLogin, Readiness, Secret,
};
use aliot_kernel::registration::{Issued, RegistrationError};
#[cfg(any(feature = "register-mqtt", feature = "register-https"))]
use aliot_kernel::store::{BlockingFlash, CredentialStore};
use aliot_kernel::store::{provisioned_and_registered, read_factory};

use crate::flash::NvmcPart;

/// The flash the stores use: the whole NVMC (partitions are absolute addresses), shared with
/// the update slot ([`crate::flash`]).
#[cfg(any(feature = "register-mqtt", feature = "register-https"))]
pub type Flash<'a> = BlockingFlash<NvmcPart<'a>>;

/// Why there is no login.
#[derive(Debug, Clone, Copy, defmt::Format)]
pub enum NoLogin {
    /// The partition has fewer than 4 pages.
    PartitionTooSmall,
    /// The store refused the partition or could not read it.
    Store,
    /// Nothing is provisioned for this device.
    NotProvisioned,
    /// The provisioned secret is empty.
    Empty,
}

/// The provider the manifest's `auth.mode` asks for, with its secret read from the
/// provisioned half. One type, so the runner is compiled once.
// One value, made once at boot and owned by the runner: boxing the large variant would only
// move it onto the kernel's heap, whose size is the kernel's worst case.
#[allow(clippy::large_enum_variant)]
pub enum BoardCredentials<'a> {
    /// 一机一密.
    Device(DeviceSecretLogin),
    /// 一型一密, registered credentials in the upper half. Only in a build that registers (a
    /// `register-*` feature; build.rs refuses a 一型一密 manifest without one), so an image
    /// without registration keeps none of its code (issue 11).
    #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
    Registered(RegisteredLogin<CredentialStore<Flash<'a>>>),
    /// Never made: holds the lifetime in a build without registration.
    #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
    #[allow(dead_code)] // uninhabited by design
    Never(
        core::convert::Infallible,
        core::marker::PhantomData<NvmcPart<'a>>,
    ),
}

/// Reads the provisioned secret and builds the provider. Logs (without the secret) what is
/// missing.
pub fn load<'a>(
    config: &DeviceConfig,
    flash: NvmcPart<'a>,
) -> Result<BoardCredentials<'a>, NoLogin> {
    let Some((provisioned, registered)) = provisioned_and_registered(config.credentials_partition)
    else {
        defmt::error!(
            "credentials: [flash.credentials] has {=u32} bytes; this board needs at least 4 erase pages (2 provisioned, 2 for registration)",
            config.credentials_partition.size
        );
        return Err(NoLogin::PartitionTooSmall);
    };
    let mut flash = flash;
    let found = read_factory(
        &mut flash,
        provisioned,
        config.product_key,
        config.device_name,
    );
    let secret = match found {
        Ok(Some(stored)) => match stored.issued {
            Issued::DeviceSecret(secret) => secret,
            // A token is never provisioned; treat it as nothing.
            Issued::Token { .. } => return Err(not_provisioned(config)),
        },
        Ok(None) => return Err(not_provisioned(config)),
        Err(e) => {
            defmt::error!("credentials: the provisioned half cannot be read: {}", e);
            return Err(NoLogin::Store);
        }
    };
    match config.auth {
        AuthMode::DeviceSecret => DeviceSecretLogin::new(secret)
            .map(BoardCredentials::Device)
            .map_err(|_| empty()),
        #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
        AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => {
            let store =
                CredentialStore::new(BlockingFlash::new(flash), registered).map_err(|e| {
                    defmt::error!("credentials: registration half refused: {}", e);
                    NoLogin::Store
                })?;
            RegisteredLogin::new(secret, store)
                .map(BoardCredentials::Registered)
                .map_err(|_| empty())
        }
        // Not reached: build.rs refuses a 一型一密 manifest for a build without registration.
        #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
        AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => {
            let _ = (flash, registered);
            defmt::error!("credentials: this firmware was built without registration");
            Err(NoLogin::Store)
        }
    }
}

fn not_provisioned(config: &DeviceConfig) -> NoLogin {
    defmt::error!(
        "credentials: no {=str} provisioned for {=str}/{=str} in the credentials partition: no login. Provision it (see the crate docs) and reset.",
        secret_name(config.auth),
        config.product_key,
        config.device_name
    );
    NoLogin::NotProvisioned
}

fn empty() -> NoLogin {
    defmt::error!("credentials: the provisioned secret is empty: no login");
    NoLogin::Empty
}

/// Which secret the provisioned half must hold for `mode`.
pub fn secret_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::DeviceSecret => "DeviceSecret",
        AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => "ProductSecret",
    }
}

impl Credentials for BoardCredentials<'_> {
    fn check(&self, config: &DeviceConfig) -> Result<(), CredentialsError> {
        match self {
            BoardCredentials::Device(c) => c.check(config),
            #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
            BoardCredentials::Registered(c) => c.check(config),
            #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
            BoardCredentials::Never(never, _) => match *never {},
        }
    }

    fn login_params(
        &mut self,
        config: &DeviceConfig,
    ) -> Result<aliot_kernel::auth::LoginCredentials, CredentialsError> {
        match self {
            BoardCredentials::Device(c) => c.login_params(config),
            #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
            BoardCredentials::Registered(c) => c.login_params(config),
            #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
            BoardCredentials::Never(never, _) => match *never {},
        }
    }

    async fn prepare(&mut self, config: &DeviceConfig) -> Readiness {
        match self {
            BoardCredentials::Device(c) => c.prepare(config).await,
            #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
            BoardCredentials::Registered(c) => c.prepare(config).await,
            #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
            BoardCredentials::Never(never, _) => match *never {},
        }
    }

    fn product_secret(&self) -> Option<&Secret> {
        match self {
            BoardCredentials::Device(c) => c.product_secret(),
            #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
            BoardCredentials::Registered(c) => c.product_secret(),
            #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
            BoardCredentials::Never(never, _) => match *never {},
        }
    }

    async fn registered(
        &mut self,
        config: &DeviceConfig,
        issued: Issued,
    ) -> Result<(), RegistrationError> {
        match self {
            BoardCredentials::Device(c) => c.registered(config, issued).await,
            #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
            BoardCredentials::Registered(c) => c.registered(config, issued).await,
            #[cfg(not(any(feature = "register-mqtt", feature = "register-https")))]
            BoardCredentials::Never(never, _) => match *never {},
        }
    }
}
