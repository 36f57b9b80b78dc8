//! The device's build-time configuration, as generated from the manifest.
//!
//! The manifest crate's build-time generator writes Rust source that builds one
//! [`DeviceConfig`] as a `const`, so nothing here is parsed at run time and every table lives
//! in flash. Topic templates are already expanded (`${productKey}`, `${deviceName}` replaced).

pub use crate::budget::AppBudget;
use crate::quoted::Quoted;

/// Everything the kernel needs to know about this device and its apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Alibaba ProductKey.
    pub product_key: &'static str,
    /// Alibaba DeviceName.
    pub device_name: &'static str,
    /// MQTT client id before the `|...|` extension; the SDKs use `${productKey}.${deviceName}`.
    pub client_id: &'static str,
    /// How the device proves who it is.
    pub auth: AuthMode,
    /// Where the secret comes from (never written in the manifest itself): the DeviceSecret
    /// for [`AuthMode::DeviceSecret`], the ProductSecret for the 一型一密 modes.
    pub secret: SecretSource,
    /// How a 一型一密 device registers (ignored for [`AuthMode::DeviceSecret`]).
    pub registration: RegistrationConfig,
    /// Where the credentials a registration returned are stored (power-fail-safe records).
    pub credentials_partition: FlashPartition,
    /// OTA: what this image is and where the A/B slots are.
    pub ota: OtaConfig,
    /// MQTT host name and port.
    pub endpoint: Endpoint,
    /// MQTT protocol version spoken to the platform.
    pub mqtt_version: MqttVersion,
    /// TLS settings.
    pub tls: TlsConfig,
    /// MQTT keep-alive in seconds (the platform accepts 30..=1200).
    pub keepalive_secs: u16,
    /// HMAC algorithm used to sign the login.
    pub sign_method: SignMethod,
    /// Named topics, expanded.
    pub topics: &'static [TopicDef],
    /// The apps and their grants, in manifest order (index = app id).
    pub apps: &'static [AppDef],
    /// Most RAM the kernel may need in the worst case (`kernel.ram_budget` in the manifest);
    /// the build fails when [`crate::budget::worst_case_ram`] exceeds it.
    pub kernel_ram_budget: u32,
}

/// How the device authenticates.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// 一机一密: ProductKey + DeviceName + DeviceSecret.
    DeviceSecret,
    /// 一型一密, pre-registered device (`authType=register`): the ProductSecret buys a
    /// DeviceSecret once, which is stored and then used like 一机一密.
    ProductSecretRegister,
    /// 一型一密, device not pre-registered (`authType=regnwl`): the ProductSecret buys a
    /// clientId and a device token once, stored and then used for `authType=connwl` logins.
    ProductSecretNoPreRegister,
}

/// 一型一密 registration settings (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Over the MQTT endpoint (both modes) or HTTPS (pre-registered devices only).
    pub transport: RegistrationTransport,
    /// `instanceId` for the registration client id on a new public or enterprise instance
    /// (spec §2.1; it also selects `securemode=-2`); `None` on an old public instance.
    pub instance_id: Option<&'static str>,
    /// The HTTPS registration endpoint (`iot-auth.${region}.aliyuncs.com:443`), used with
    /// [`RegistrationTransport::Https`]; `emulator` when the board's emulator serves it.
    pub https: Endpoint,
}

/// How registration reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationTransport {
    /// A TLS MQTT connection whose CONNECT carries `authType=register|regnwl`; the platform
    /// pushes `/ext/register` or `/ext/regnwl` (spec §2.1).
    Mqtt,
    /// `POST /auth/register/device` over TLS (spec §2.2; pre-registered devices only).
    Https,
}

/// OTA (spec §3): the running image's version and module, and the A/B flash layout the boot
/// stage (`embassy-boot`) swaps in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtaConfig {
    /// The running firmware's version, reported on `/ota/device/inform` after every login.
    pub version: &'static str,
    /// The OTA module (`default` unless the product defines modules).
    pub module: &'static str,
    /// The boot stage.
    pub bootloader: FlashPartition,
    /// The image that runs.
    pub active: FlashPartition,
    /// Where a download is written (embassy-boot's DFU partition: one page larger than
    /// `active`, for the swap).
    pub update: FlashPartition,
    /// The boot stage's state (swap progress).
    pub boot_state: FlashPartition,
}

/// The manifest's default firmware identity and A/B layout for the nRF9160's 1 MiB of flash
/// with 4 KiB pages (the credentials take the last 4 pages, 0xFC000..0x100000): boot stage
/// 32 KiB at 0, the active slot, the update slot one page larger, and one page of boot state.
pub const NRF9160_OTA: OtaConfig = OtaConfig {
    version: "1.0.0",
    module: "default",
    bootloader: FlashPartition {
        offset: 0,
        size: 0x8000,
        erase_page: 4096,
    },
    active: FlashPartition {
        offset: 0x8000,
        size: 0x79000,
        erase_page: 4096,
    },
    update: FlashPartition {
        offset: 0x81000,
        size: 0x7A000,
        erase_page: 4096,
    },
    boot_state: FlashPartition {
        offset: 0xFB000,
        size: 0x1000,
        erase_page: 4096,
    },
};

/// A region of the device's flash, in bytes from the start of the flash.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashPartition {
    /// First byte; a multiple of `erase_page`.
    pub offset: u32,
    /// Length; a multiple of `erase_page`.
    pub size: u32,
    /// The flash's erase page (nRF9160 NVMC: 4096).
    pub erase_page: u32,
}

/// Where a secret is read from at start-up. Its `Debug` (a login refusal's log line names it)
/// quotes the name without `str`'s `Debug` (`quoted.rs`, issue 11).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable (host board), read at start-up.
    Env(&'static str),
    /// A file path (host board), read at start-up.
    File(&'static str),
    /// The board's provisioned secure storage (written at the factory).
    Provisioned,
}

impl core::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "Env({})", Quoted(name)),
            SecretSource::File(path) => write!(f, "File({})", Quoted(path)),
            SecretSource::Provisioned => f.write_str("Provisioned"),
        }
    }
}

/// The same as its `Debug`, for the kernel's defmt log lines (logging.rs).
#[cfg(feature = "defmt")]
impl defmt::Format for SecretSource {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            SecretSource::Env(name) => defmt::write!(f, "Env(\"{=str}\")", name),
            SecretSource::File(path) => defmt::write!(f, "File(\"{=str}\")", path),
            SecretSource::Provisioned => defmt::write!(f, "Provisioned"),
        }
    }
}

/// Where the MQTT endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (already derived from region or instance id when the manifest gave one).
    pub host: &'static str,
    /// TCP port.
    pub port: u16,
    /// The manifest asked for the built-in emulator (host board only): `host`/`port` are
    /// placeholders the board replaces with the emulator's address.
    pub emulator: bool,
}

/// MQTT protocol version.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (every Alibaba instance).
    V311,
    /// MQTT 5.0 (newer instances only).
    V5,
}

/// TLS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsConfig {
    /// Use TLS (the platform requires it for new devices).
    pub enabled: bool,
    /// PEM file with the CA to trust (host board); `None` = the board's built-in root.
    pub ca_file: Option<&'static str>,
}

/// HMAC algorithm for the login signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// `hmacmd5` (the platform's documented default, LuatOS's choice).
    HmacMd5,
    /// `hmacsha1`.
    HmacSha1,
    /// `hmacsha256` (what Alibaba's own SDKs send).
    HmacSha256,
}

/// Which way messages on a topic may flow, from the device's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Device publishes.
    Publish,
    /// Device subscribes.
    Subscribe,
    /// Both.
    Both,
}

/// One named topic (or filter, for subscribe topics) from the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDef {
    /// Name used in the manifest's app grants.
    pub name: &'static str,
    /// Expanded topic or topic filter.
    pub topic: &'static str,
    /// Allowed direction.
    pub direction: Direction,
}

/// One app and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppDef {
    /// App name (also the host board's process name).
    pub name: &'static str,
    /// RAM budget in bytes (MPU region on hardware; advisory on the host).
    pub memory: u32,
    /// Topics (expanded) the app may publish to; filters here match topics.
    pub publish: &'static [&'static str],
    /// Filters (expanded) the app may subscribe to, or narrow down.
    pub subscribe: &'static [&'static str],
    /// What to do when the app dies.
    pub restart: RestartPolicy,
    /// App-specific settings from the manifest (`key`, `value`), e.g. a publish interval.
    pub settings: &'static [(&'static str, &'static str)],
    /// The app's share of kernel memory.
    pub budget: AppBudget,
}

/// What the board does when an app faults or exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Leave it stopped.
    Never,
    /// Restart it after a fault, not after a clean exit.
    OnFailure,
    /// Always restart it.
    Always,
}

/// A device for unit tests (and the fuzz targets, feature `fuzzing`): ProductKey `pk`,
/// DeviceName `dn`, no apps, MQTT 3.1.1 without TLS; tests override what they need with
/// `DeviceConfig { apps: &APPS, ..TEST_CONFIG }`.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub const TEST_CONFIG: DeviceConfig = DeviceConfig {
    product_key: "pk",
    device_name: "dn",
    client_id: "pk.dn",
    auth: AuthMode::DeviceSecret,
    secret: SecretSource::Provisioned,
    registration: RegistrationConfig {
        transport: RegistrationTransport::Mqtt,
        instance_id: None,
        https: Endpoint {
            host: "localhost",
            port: 443,
            emulator: false,
        },
    },
    credentials_partition: FlashPartition {
        offset: 0,
        size: 8192,
        erase_page: 4096,
    },
    ota: NRF9160_OTA,
    endpoint: Endpoint {
        host: "localhost",
        port: 1883,
        emulator: false,
    },
    mqtt_version: MqttVersion::V311,
    tls: TlsConfig {
        enabled: false,
        ca_file: None,
    },
    keepalive_secs: 300,
    sign_method: SignMethod::HmacSha256,
    topics: &[],
    apps: &[],
    kernel_ram_budget: 49152,
};
