//! The manifest exactly as serde reads it from TOML, before validation.
//!
//! Unknown fields are rejected everywhere (`deny_unknown_fields`). Numbers are read as `i64`
//! so that an out-of-range value gets our message with the allowed range instead of serde's
//! "expected u16". Fields whose shape is checked by hand (the secret, app settings) are read
//! as raw TOML values.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::model::{AuthMode, Direction, MqttVersion, RestartPolicy, SignMethod};

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub device: RawDevice,
    pub auth: RawAuth,
    pub endpoint: RawEndpoint,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub firmware: RawFirmware,
    #[serde(default)]
    pub modem: RawModem,
    pub thing_model: Option<RawThingModel>,
    #[serde(default)]
    pub flash: RawFlash,
    #[serde(default)]
    pub kernel: RawKernel,
    #[serde(default)]
    pub topics: IndexMap<String, RawTopic>,
    #[serde(default)]
    pub apps: Vec<RawApp>,
}

/// `[device]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    pub product_key: String,
    pub device_name: String,
    pub client_id: Option<String>,
}

/// `[auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub mode: AuthMode,
    /// The DeviceSecret's source. Checked by hand: a string (`"provisioned"`) or a table with
    /// exactly one of `file`/`env`. Required or refused depending on `mode`.
    pub secret: Option<toml::Value>,
    /// The ProductSecret's source (一型一密), the same forms as `secret`.
    pub product_secret: Option<toml::Value>,
    #[serde(default = "default_sign_method")]
    pub sign_method: SignMethod,
    /// Defaults to MQTT for the 一型一密 modes; refused with `device_secret`.
    pub registration: Option<RawRegistration>,
    pub https_host: Option<String>,
    pub https_port: Option<i64>,
}

/// `auth.registration`: how a 一型一密 device registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawRegistration {
    Mqtt,
    Https,
}

fn default_sign_method() -> SignMethod {
    SignMethod::HmacSha256
}

/// `[endpoint]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEndpoint {
    pub emulator: Option<bool>,
    pub region: Option<String>,
    pub instance_id: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
}

/// `[mqtt]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMqtt {
    #[serde(default = "default_mqtt_version")]
    pub version: MqttVersion,
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: i64,
}

impl Default for RawMqtt {
    fn default() -> Self {
        RawMqtt {
            version: default_mqtt_version(),
            keepalive_secs: default_keepalive(),
        }
    }
}

fn default_mqtt_version() -> MqttVersion {
    MqttVersion::V311
}

fn default_keepalive() -> i64 {
    300
}

/// `[tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub ca_file: Option<String>,
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            enabled: true,
            ca_file: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `[firmware]`: what the device reports to the platform's OTA service. Checked by hand.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFirmware {
    pub version: Option<String>,
    pub module: Option<String>,
    pub ota: Option<toml::Value>,
}

/// `[thing_model]`: the console's TSL export and the app that owns it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThingModel {
    pub file: String,
    pub app: String,
    /// Grants; `None` means all the model defines (of the allowed kind).
    pub post: Option<Vec<String>>,
    pub set: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub services: Option<Vec<String>>,
    /// RRPC for the owner; `None`: on exactly when a granted service is synchronous.
    pub rrpc: Option<bool>,
}

/// `[modem]`: settings of the nRF9160's cellular modem. Checked by hand.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModem {
    pub security_tag: Option<i64>,
    pub psm: Option<RawPsm>,
    pub edrx: Option<String>,
}

/// `[modem] psm = { tau = "1h", active = "10s" }`. Checked by hand.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with both timers, e.g. { tau = \"1h\", active = \"10s\" }"
)]
pub(crate) struct RawPsm {
    pub tau: String,
    pub active: String,
}

/// `[flash]`. Every number is optional so that validation can fill in defaults that depend
/// on the others (the credentials default to the last pages of the flash, the boot state to
/// the page below them, the slots to what lies between the bootloader and the boot state).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlash {
    pub size: Option<i64>,
    pub erase_page: Option<i64>,
    pub write_size: Option<i64>,
    #[serde(default)]
    pub bootloader: RawPartition,
    #[serde(default)]
    pub active: RawPartition,
    #[serde(default)]
    pub update: RawPartition,
    #[serde(default)]
    pub boot_state: RawPartition,
    #[serde(default)]
    pub credentials: RawPartition,
}

/// One `[flash.<partition>]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPartition {
    pub offset: Option<i64>,
    pub size: Option<i64>,
}

/// `[kernel]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKernel {
    #[serde(default = "default_ram_budget")]
    pub ram_budget: i64,
}

impl Default for RawKernel {
    fn default() -> Self {
        RawKernel {
            ram_budget: default_ram_budget(),
        }
    }
}

fn default_ram_budget() -> i64 {
    crate::validate::DEFAULT_KERNEL_RAM_BUDGET.into()
}

/// One entry of `[topics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopic {
    pub template: String,
    pub direction: Direction,
}

/// One `[[apps]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub name: String,
    pub memory: i64,
    /// Flash bytes for the app's image on a board that links each app on its own.
    pub flash: Option<i64>,
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub subscribe: Vec<String>,
    #[serde(default = "default_restart")]
    pub restart: RestartPolicy,
    /// Checked by hand: values may be strings, integers, floats or booleans.
    #[serde(default)]
    pub settings: IndexMap<String, toml::Value>,
    /// The app's share of kernel memory (these four). Their defaults depend on `max_payload`
    /// and the grants, so validation fills them in.
    pub max_payload: Option<i64>,
    pub event_queue_bytes: Option<i64>,
    pub outbox_bytes: Option<i64>,
    pub subscriptions: Option<i64>,
}

fn default_restart() -> RestartPolicy {
    RestartPolicy::OnFailure
}
