//! What this build of the kernel can do: its cargo features, so a device builds only what its
//! manifest needs (issue 11). [`missing`] names the feature a configuration needs that this
//! build compiled out; the runner refuses such a configuration before it connects
//! ([`crate::runner::Runner::run_until`]), and a board's build script can refuse its manifest
//! earlier with the same rule ([`needed`]).
//!
//! | feature | needed when |
//! |---|---|
//! | `mqtt-v311` | `mqtt.version = "3.1.1"`, or registration over MQTT (always 3.1.1) |
//! | `mqtt-v5` | `mqtt.version = "5"` |
//! | `register-mqtt` | `auth.mode` `register` or `regnwl` with `auth.registration = "mqtt"` |
//! | `register-https` | `auth.mode = "register"` with `auth.registration = "https"` |
//! | `sign-hmacmd5`, `sign-hmacsha1`, `sign-hmacsha256` | `auth.sign_method` |
//! | `ota` | the board runs the OTA service (`Runner::with_ota`); no manifest field asks for it |

use crate::config::{AuthMode, DeviceConfig, MqttVersion, RegistrationTransport, SignMethod};

/// One kernel feature, by its cargo name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `mqtt-v311`.
    MqttV311,
    /// `mqtt-v5`.
    MqttV5,
    /// `register-mqtt`.
    RegisterMqtt,
    /// `register-https`.
    RegisterHttps,
    /// `sign-hmacmd5`.
    SignHmacMd5,
    /// `sign-hmacsha1`.
    SignHmacSha1,
    /// `sign-hmacsha256`.
    SignHmacSha256,
}

impl Feature {
    /// The cargo feature's name.
    pub const fn name(self) -> &'static str {
        match self {
            Feature::MqttV311 => "mqtt-v311",
            Feature::MqttV5 => "mqtt-v5",
            Feature::RegisterMqtt => "register-mqtt",
            Feature::RegisterHttps => "register-https",
            Feature::SignHmacMd5 => "sign-hmacmd5",
            Feature::SignHmacSha1 => "sign-hmacsha1",
            Feature::SignHmacSha256 => "sign-hmacsha256",
        }
    }

    /// Whether this build has it.
    pub const fn enabled(self) -> bool {
        match self {
            Feature::MqttV311 => cfg!(feature = "mqtt-v311"),
            Feature::MqttV5 => cfg!(feature = "mqtt-v5"),
            Feature::RegisterMqtt => cfg!(feature = "register-mqtt"),
            Feature::RegisterHttps => cfg!(feature = "register-https"),
            Feature::SignHmacMd5 => cfg!(feature = "sign-hmacmd5"),
            Feature::SignHmacSha1 => cfg!(feature = "sign-hmacsha1"),
            Feature::SignHmacSha256 => cfg!(feature = "sign-hmacsha256"),
        }
    }
}

/// The features a device with this MQTT version, auth mode, registration transport and
/// signature needs, each with the manifest setting that needs it.
pub fn needed(
    version: MqttVersion,
    auth: AuthMode,
    transport: RegistrationTransport,
    sign: SignMethod,
) -> impl Iterator<Item = (Feature, &'static str)> {
    let link = match version {
        MqttVersion::V311 => (Feature::MqttV311, "mqtt.version = \"3.1.1\""),
        MqttVersion::V5 => (Feature::MqttV5, "mqtt.version = \"5\""),
    };
    let registration = match (auth, transport) {
        (AuthMode::DeviceSecret, _) => None,
        (_, RegistrationTransport::Mqtt) => {
            Some((Feature::RegisterMqtt, "auth.registration = \"mqtt\""))
        }
        (_, RegistrationTransport::Https) => {
            Some((Feature::RegisterHttps, "auth.registration = \"https\""))
        }
    };
    let sign = match sign {
        SignMethod::HmacMd5 => (Feature::SignHmacMd5, "auth.sign_method = \"hmacmd5\""),
        SignMethod::HmacSha1 => (Feature::SignHmacSha1, "auth.sign_method = \"hmacsha1\""),
        SignMethod::HmacSha256 => (Feature::SignHmacSha256, "auth.sign_method = \"hmacsha256\""),
    };
    core::iter::once(link)
        .chain(registration)
        .chain(core::iter::once(sign))
}

/// A feature `config` needs that `enabled` says is missing, with the setting that needs it.
pub fn missing_from(
    config: &DeviceConfig,
    enabled: impl Fn(Feature) -> bool,
) -> Option<(Feature, &'static str)> {
    needed(
        config.mqtt_version,
        config.auth,
        config.registration.transport,
        config.sign_method,
    )
    .find(|(f, _)| !enabled(*f))
}

/// A feature `config` needs that this build compiled out, with the setting that needs it.
pub fn missing(config: &DeviceConfig) -> Option<(Feature, &'static str)> {
    missing_from(config, Feature::enabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TEST_CONFIG;

    #[test]
    fn a_device_secret_device_needs_only_its_link() {
        let mut cfg = TEST_CONFIG;
        cfg.auth = AuthMode::DeviceSecret;
        cfg.mqtt_version = MqttVersion::V5;
        let only_v5 = |f| matches!(f, Feature::MqttV5 | Feature::SignHmacSha256);
        assert_eq!(missing_from(&cfg, only_v5), None);
        cfg.mqtt_version = MqttVersion::V311;
        assert_eq!(
            missing_from(&cfg, only_v5),
            Some((Feature::MqttV311, "mqtt.version = \"3.1.1\""))
        );
    }

    #[test]
    fn registration_needs_its_transport() {
        let mut cfg = TEST_CONFIG;
        cfg.auth = AuthMode::ProductSecretNoPreRegister;
        cfg.mqtt_version = MqttVersion::V311;
        cfg.registration.transport = RegistrationTransport::Mqtt;
        let links_only = |f| {
            matches!(
                f,
                Feature::MqttV311 | Feature::MqttV5 | Feature::SignHmacSha256
            )
        };
        assert_eq!(
            missing_from(&cfg, links_only),
            Some((Feature::RegisterMqtt, "auth.registration = \"mqtt\""))
        );
        cfg.auth = AuthMode::ProductSecretRegister;
        cfg.registration.transport = RegistrationTransport::Https;
        let no_https = |f| f != Feature::RegisterHttps;
        assert_eq!(
            missing_from(&cfg, no_https),
            Some((Feature::RegisterHttps, "auth.registration = \"https\""))
        );
        assert_eq!(missing_from(&cfg, |_| true), None);
    }

    #[test]
    fn the_signature_needs_its_hash() {
        let mut cfg = TEST_CONFIG;
        cfg.sign_method = SignMethod::HmacMd5;
        let no_md5 = |f| f != Feature::SignHmacMd5;
        assert_eq!(
            missing_from(&cfg, no_md5),
            Some((Feature::SignHmacMd5, "auth.sign_method = \"hmacmd5\""))
        );
        cfg.sign_method = SignMethod::HmacSha1;
        assert_eq!(missing_from(&cfg, no_md5), None);
    }

    #[test]
    fn the_default_build_has_everything() {
        for f in [
            Feature::MqttV311,
            Feature::MqttV5,
            Feature::RegisterMqtt,
            Feature::RegisterHttps,
            Feature::SignHmacMd5,
            Feature::SignHmacSha1,
            Feature::SignHmacSha256,
        ] {
            assert!(f.enabled(), "{}", f.name());
        }
    }
}
