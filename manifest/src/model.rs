//! The validated manifest: typed, public, and complete (defaults filled in, templates expanded,
//! paths absolute), so build scripts, boards and tests can inspect it without re-checking.

use std::path::PathBuf;

use aliot_kernel::budget::AppBudget;
use serde::Deserialize;

/// A validated device manifest.
// Not `Eq`: the thing model's ranges are floating-point.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Directory the manifest was read from; relative paths in it are resolved against it.
    pub base_dir: PathBuf,
    /// Who the device is.
    pub device: Device,
    /// How it logs in.
    pub auth: Auth,
    /// Where it connects.
    pub endpoint: Endpoint,
    /// MQTT session settings.
    pub mqtt: Mqtt,
    /// TLS settings.
    pub tls: Tls,
    /// The firmware's identity for the platform's OTA service.
    pub firmware: Firmware,
    /// The cellular modem's settings (boards with a modem: the nRF9160 DK).
    pub modem: Modem,
    /// The thing model (物模型), when the manifest names one.
    pub thing_model: Option<ThingModelConfig>,
    /// The device's flash and its partitions.
    pub flash: Flash,
    /// The kernel's memory budget.
    pub kernel: Kernel,
    /// Named topics in manifest order, templates expanded.
    pub topics: Vec<Topic>,
    /// Apps in manifest order (index = app id in the kernel).
    pub apps: Vec<App>,
}

/// `[device]`: the Alibaba identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Alibaba ProductKey.
    pub product_key: String,
    /// Alibaba DeviceName.
    pub device_name: String,
    /// MQTT client id (expanded; default `${productKey}.${deviceName}`).
    pub client_id: String,
}

/// `[auth]`: how the device proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The authentication mode.
    pub mode: AuthMode,
    /// Where the secret comes from at start-up: the DeviceSecret (`auth.secret`) for
    /// [`AuthMode::DeviceSecret`], the ProductSecret (`auth.product_secret`) for the 一型一密
    /// modes.
    pub secret: SecretSource,
    /// HMAC algorithm of the login signature.
    pub sign_method: SignMethod,
    /// How a 一型一密 device registers; `None` for [`AuthMode::DeviceSecret`].
    pub registration: Option<Registration>,
}

/// How a 一型一密 device obtains its own credentials (spec §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Over a TLS connection to the MQTT endpoint (`authType=register|regnwl`, spec §2.1);
    /// both modes.
    Mqtt,
    /// `POST /auth/register/device` to this HTTPS endpoint (spec §2.2); pre-registered
    /// devices (`register`) only.
    Https(HttpsEndpoint),
}

/// The HTTPS registration endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsEndpoint {
    /// Host name (`iot-auth.${region}.aliyuncs.com` by default; a placeholder for the
    /// emulator).
    pub host: String,
    /// TCP port (443 by default; 0 for the emulator: the board substitutes its port).
    pub port: u16,
    /// The host board's emulator serves it.
    pub emulator: bool,
}

/// Authentication modes the manifest can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthMode {
    /// 一机一密: ProductKey + DeviceName + DeviceSecret.
    #[serde(rename = "device_secret")]
    DeviceSecret,
    /// 一型一密 with a pre-registered device: the ProductSecret buys a DeviceSecret once.
    #[serde(rename = "register")]
    Register,
    /// 一型一密 without pre-registration: the ProductSecret buys a client id and a device
    /// token once.
    #[serde(rename = "regnwl")]
    Regnwl,
}

/// Where a secret (DeviceSecret or ProductSecret) is read from; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, absolute path (resolved against the manifest's directory).
    File(PathBuf),
    /// An environment variable name, read by the board at start-up.
    Env(String),
    /// The board's provisioned secure storage.
    Provisioned,
}

/// HMAC algorithm for the login signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignMethod {
    /// `hmacmd5`.
    #[serde(rename = "hmacmd5")]
    HmacMd5,
    /// `hmacsha1`.
    #[serde(rename = "hmacsha1")]
    HmacSha1,
    /// `hmacsha256` (the default, what Alibaba's SDKs send).
    #[serde(rename = "hmacsha256")]
    HmacSha256,
}

/// `[endpoint]`: the resolved MQTT endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Which of the four choices the manifest made.
    pub kind: EndpointKind,
    /// Host name (derived for region / instance id; a placeholder for the emulator).
    pub host: String,
    /// TCP port (0 for the emulator: the board picks a free one).
    pub port: u16,
    /// The instance id a 一型一密 registration sends (`instanceId`, spec §2.1):
    /// `endpoint.instance_id`, or the first label of an explicit host
    /// `<id>.mqtt.iothub.aliyuncs.com`; `None` for an old public instance (`region`), the
    /// emulator and other hosts.
    pub instance_id: Option<String>,
}

/// The endpoint choice as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    /// The host board's built-in emulator.
    Emulator,
    /// Old public instance in a region: `${productKey}.iot-as-mqtt.${region}.aliyuncs.com`.
    Region(String),
    /// New public or enterprise instance: `${instanceId}.mqtt.iothub.aliyuncs.com`.
    InstanceId(String),
    /// An explicit host name.
    Host,
}

/// `[mqtt]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mqtt {
    /// Protocol version.
    pub version: MqttVersion,
    /// Keep-alive in seconds, 30..=1200.
    pub keepalive_secs: u16,
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MqttVersion {
    /// `"3.1.1"`
    #[serde(rename = "3.1.1")]
    V311,
    /// `"5"` (also accepted: `"5.0"`)
    #[serde(rename = "5", alias = "5.0")]
    V5,
}

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Whether TLS is used.
    pub enabled: bool,
    /// CA file (absolute); `None` = the board's default CA.
    pub ca_file: Option<PathBuf>,
}

/// `[firmware]`: what the device reports on `/ota/device/inform` after every login (spec
/// "OTA"), so the console shows it and an OTA job can target it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// The running firmware's version: 1..=64 printable ASCII characters without spaces, `"`
    /// or `\` (default `"1.0.0"`).
    pub version: String,
    /// The OTA module: 1..=64 letters, digits, `_ - .` (default `"default"`, the whole
    /// device's firmware).
    pub module: String,
    /// Whether a board that can leave the OTA service out builds and runs it (`ota = true`;
    /// default `false`). The nRF9160 DK builds the kernel's `ota` feature and its NVMC update
    /// slot only then ([`crate::kernel_features`]); the host board always runs the service.
    pub ota: bool,
}

/// `[thing_model]`: the console's TSL export, read and checked, and the app that owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingModelConfig {
    /// The TSL file (absolute).
    pub file: PathBuf,
    /// The owning app's index in [`Manifest::apps`] (its app id).
    pub app: usize,
    /// The model.
    pub model: crate::tsl::ThingModel,
    /// What the owning app is granted, each list in TSL order (default: all of the model).
    pub grants: ThingGrants,
}

/// Which parts of the thing model its app may use: the `/sys/.../thing/...` topics the
/// manifest grants it are derived from these (see [`crate::thing_topics`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThingGrants {
    /// Properties the app may post (`thing.event.property.post`).
    pub post: Vec<String>,
    /// Properties the cloud may set (`thing.service.property.set`); only `rw` ones.
    pub set: Vec<String>,
    /// Events the app may post.
    pub events: Vec<String>,
    /// Services the app answers.
    pub services: Vec<String>,
    /// The app receives RRPC requests (`/sys/.../rrpc/request/+`) and answers them; needed
    /// for synchronous services, which arrive that way.
    pub rrpc: bool,
}

/// `[modem]`: what a board with a cellular modem (the nRF9160's) needs from the manifest.
/// Boards without one ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modem {
    /// The modem security tag holding the CA certificate the modem's TLS verifies the
    /// platform against (provisioned with `AT%CMNG`): 0..=2147483647 (higher tags are
    /// reserved by Nordic), default 42.
    pub security_tag: u32,
    /// Power saving mode requested after attach (`[modem] psm`); `None`: PSM off.
    pub psm: Option<Psm>,
    /// The eDRX cycle requested after attach (`[modem] edrx`); `None`: the modem's default.
    pub edrx: Option<Edrx>,
}

/// `[modem] psm`: the periodic TAU and the active time, as requested and encoded
/// ([`crate::power`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psm {
    /// The periodic tracking-area update, in seconds.
    pub tau_secs: u64,
    /// Its T3412 extended octet.
    pub tau_bits: u8,
    /// How long the modem stays reachable after the link is released, in seconds.
    pub active_secs: u64,
    /// Its T3324 octet.
    pub active_bits: u8,
}

/// `[modem] edrx`: LTE-M's eDRX cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edrx {
    /// The cycle in hundredths of a second.
    pub centis: u64,
    /// Its 4-bit value.
    pub bits: u8,
}

impl Modem {
    /// The AT commands that request this power saving, sent after every attach: `AT+CPSMS`
    /// with both timers, `AT+CEDRXS` for LTE-M (mode 2: on, with `+CEDRXP` reports).
    pub fn after_attach(&self) -> Vec<String> {
        use crate::power::bit_string;
        let mut commands = Vec::new();
        if let Some(p) = self.psm {
            commands.push(format!(
                "AT+CPSMS=1,,,\"{}\",\"{}\"",
                bit_string(p.tau_bits, 8),
                bit_string(p.active_bits, 8)
            ));
        }
        if let Some(e) = self.edrx {
            commands.push(format!("AT+CEDRXS=2,4,\"{}\"", bit_string(e.bits, 4)));
        }
        commands
    }
}

/// `[flash]`: the device's flash layout, checked (every partition page-aligned, inside the
/// flash, no two sharing a page; the slots sized for embassy-boot's swap). The kernel config
/// carries it (`credentials_partition`, `ota`), and [`crate::generate_memory_x`] turns it into
/// linker regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flash {
    /// Total size in bytes (nRF9160: 1 MiB).
    pub size: u32,
    /// Erase page in bytes, a power of two (nRF9160 NVMC: 4096); embassy-boot's page.
    pub erase_page: u32,
    /// Smallest write in bytes, a power of two (nRF9160 NVMC: 4, one 32-bit word); sizes the
    /// boot state.
    pub write_size: u32,
    /// The boot stage, at offset 0 (`[flash.bootloader]`).
    pub bootloader: Partition,
    /// The image that runs (`[flash.active]`).
    pub active: Partition,
    /// Where a download is written (`[flash.update]`, embassy-boot's DFU partition): at least
    /// one erase page larger than `active`.
    pub update: Partition,
    /// The boot stage's state: swap magic and progress (`[flash.boot_state]`).
    pub boot_state: Partition,
    /// Where the credentials a registration returned are kept (`[flash.credentials]`).
    pub credentials: Partition,
}

/// A region of the flash, page-aligned and inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// First byte, from the start of the flash; a multiple of the erase page.
    pub offset: u32,
    /// Length in bytes; a multiple of the erase page.
    pub size: u32,
}

impl Partition {
    /// One past the last byte, from the start of the flash (never wraps: a checked partition
    /// lies inside a flash below 4 GiB).
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.size)
    }
}

/// `[kernel]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    /// Bytes the kernel may use in the worst case (queues, tables, the link's buffers); the
    /// manifest is rejected when [`crate::ram_report`] exceeds it.
    pub ram_budget: u32,
}

/// One named topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Name used in app grants and as the constant's name (upper-cased).
    pub name: String,
    /// The template as written.
    pub template: String,
    /// The template with `${productKey}` / `${deviceName}` expanded.
    pub topic: String,
    /// Allowed direction.
    pub direction: Direction,
}

/// Direction of a topic from the device's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The device publishes.
    Publish,
    /// The device subscribes.
    Subscribe,
    /// Both.
    Both,
}

impl Direction {
    /// Whether apps may publish on a topic with this direction.
    pub fn can_publish(self) -> bool {
        matches!(self, Direction::Publish | Direction::Both)
    }

    /// Whether apps may subscribe to a topic with this direction.
    pub fn can_subscribe(self) -> bool {
        matches!(self, Direction::Subscribe | Direction::Both)
    }
}

/// One app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Unique name, `[a-z][a-z0-9_]{0,15}`.
    pub name: String,
    /// RAM budget in bytes.
    pub memory: u32,
    /// Flash bytes for the app's own image (header, code, constants) on boards that link each
    /// app at its own region; default [`crate::DEFAULT_APP_FLASH`].
    pub flash: u32,
    /// Names of topics the app may publish to.
    pub publish: Vec<String>,
    /// Names of topics the app may subscribe to.
    pub subscribe: Vec<String>,
    /// What to do when the app dies.
    pub restart: RestartPolicy,
    /// Free-form settings, values as strings, in manifest order.
    pub settings: Vec<(String, String)>,
    /// The app's share of kernel memory (defaults filled in).
    pub budget: AppBudget,
}

/// What the board does when an app faults or exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Leave it stopped.
    Never,
    /// Restart after a fault, not after a clean exit.
    OnFailure,
    /// Always restart.
    Always,
}

impl Manifest {
    /// The topic with this name.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The app with this name.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }
}
