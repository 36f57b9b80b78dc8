//! The kernel features a manifest needs (`aliot_kernel::features`): a board that builds the
//! kernel without its default features passes these (the nRF9160 DK through `aliot-image`),
//! and its build script refuses a manifest that needs one it was built without.

use aliot_kernel::config as k;

use crate::model::{AuthMode, Manifest, MqttVersion, Registration, SignMethod};

/// The kernel features `m` needs, each with the setting that needs it, in cargo's spelling
/// (`mqtt-v311`, `mqtt-v5`, `register-mqtt`, `register-https`, `sign-hmacmd5`,
/// `sign-hmacsha1`, `sign-hmacsha256`), and `ota` with `[firmware] ota = true` (the kernel's
/// OTA service; a board that always runs it, like the host board, builds it anyway).
pub fn kernel_features(m: &Manifest) -> Vec<(&'static str, &'static str)> {
    let version = match m.mqtt.version {
        MqttVersion::V311 => k::MqttVersion::V311,
        MqttVersion::V5 => k::MqttVersion::V5,
    };
    let auth = match m.auth.mode {
        AuthMode::DeviceSecret => k::AuthMode::DeviceSecret,
        AuthMode::Register => k::AuthMode::ProductSecretRegister,
        AuthMode::Regnwl => k::AuthMode::ProductSecretNoPreRegister,
    };
    let transport = match m.auth.registration {
        Some(Registration::Https(_)) => k::RegistrationTransport::Https,
        Some(Registration::Mqtt) | None => k::RegistrationTransport::Mqtt,
    };
    let sign = match m.auth.sign_method {
        SignMethod::HmacMd5 => k::SignMethod::HmacMd5,
        SignMethod::HmacSha1 => k::SignMethod::HmacSha1,
        SignMethod::HmacSha256 => k::SignMethod::HmacSha256,
    };
    let mut features: Vec<(&'static str, &'static str)> =
        aliot_kernel::features::needed(version, auth, transport, sign)
            .map(|(f, setting)| (f.name(), setting))
            .collect();
    if m.firmware.ota {
        features.push(("ota", "firmware.ota = true"));
    }
    features
}

/// For a build script: an error naming every feature `m` needs that this build lacks, given
/// `enabled` (whether the board's own feature of that name is on: cargo's
/// `CARGO_FEATURE_<NAME>`).
pub fn check_kernel_features(m: &Manifest, enabled: impl Fn(&str) -> bool) -> Result<(), String> {
    let missing: Vec<String> = kernel_features(m)
        .into_iter()
        .filter(|(f, _)| !enabled(f))
        .map(|(f, setting)| format!("`{f}` (for {setting})"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<&str> = kernel_features(m).into_iter().map(|(f, _)| f).collect();
    Err(format!(
        "the manifest needs the kernel feature(s) {}, which this build leaves out; build with `--no-default-features --features {}` (aliot-image --board nrf9160dk picks them from the manifest)",
        missing.join(", "),
        all.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(auth: &str) -> Manifest {
        let text = std::fs::read_to_string(crate::workspace_root().join("manifest/device.toml"))
            .unwrap()
            .replace("version = \"3.1.1\"", "version = \"5\"")
            .replace("ram_budget = 60416", "ram_budget = 73728");
        let text = if auth.is_empty() {
            text
        } else {
            text.replace(
                "mode = \"device_secret\"",
                &format!("mode = \"register\"\n{auth}"),
            )
            .replace(
                "secret = { file = \"secrets/demo-device.secret\" }",
                "product_secret = \"provisioned\"",
            )
        };
        parse(&text)
    }

    fn parse(text: &str) -> Manifest {
        crate::parse(text, &crate::workspace_root().join("manifest")).unwrap()
    }

    #[test]
    fn features_follow_the_version_and_the_registration() {
        let sha256 = ("sign-hmacsha256", "auth.sign_method = \"hmacsha256\"");
        assert_eq!(
            kernel_features(&manifest("")),
            [("mqtt-v5", "mqtt.version = \"5\""), sha256]
        );
        assert_eq!(
            kernel_features(&manifest("registration = \"https\"")),
            [
                ("mqtt-v5", "mqtt.version = \"5\""),
                ("register-https", "auth.registration = \"https\""),
                sha256
            ]
        );
    }

    #[test]
    fn ota_is_a_feature_only_when_the_manifest_asks_for_it() {
        let m = manifest("");
        assert!(!kernel_features(&m).iter().any(|(f, _)| *f == "ota"));
        let text = std::fs::read_to_string(crate::workspace_root().join("manifest/device.toml"))
            .unwrap()
            .replace("# [firmware]\n", "[firmware]\nota = true\n");
        let m = parse(&text);
        assert!(m.firmware.ota);
        assert_eq!(
            kernel_features(&m).last(),
            Some(&("ota", "firmware.ota = true"))
        );
        let e = check_kernel_features(&m, |f| f != "ota").unwrap_err();
        assert!(e.contains("`ota` (for firmware.ota = true)"), "{e}");
    }

    #[test]
    fn a_missing_feature_is_named_with_its_setting() {
        let m = manifest("registration = \"https\"");
        let e = check_kernel_features(&m, |f| f != "register-https").unwrap_err();
        assert!(
            e.contains("`register-https` (for auth.registration = \"https\")"),
            "{e}"
        );
        assert!(
            e.contains("--features mqtt-v5,register-https,sign-hmacsha256"),
            "{e}"
        );
        assert!(check_kernel_features(&m, |_| true).is_ok());
    }
}
