//! Every manifest in `examples/` is valid, and each one resolves to what its comments promise:
//! the secret it names, how it registers (transport, HTTPS endpoint), the instance id a
//! registration sends (which also decides `securemode`, spec §2.1), TLS, the credentials
//! partition, the firmware identity and the OTA layout, in the model and in the generated
//! kernel config. An example without an entry here, or an entry without its file, fails the
//! test.
//!
//! The generated config of each example is also committed under `tests/generated/`, where
//! `tests/kernel_types.rs` compiles it against the kernel's types. The last test here keeps
//! those files current; `BLESS=1 cargo test -p aliot-manifest --test examples` rewrites them
//! (review the diff).

use std::path::{Path, PathBuf};

use aliot_manifest::{
    AuthMode, HttpsEndpoint, Partition, Registration, SecretSource, generate_kernel_config, load,
};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The `.toml` files in `examples/`, by file name, sorted.
fn example_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// What one example must resolve to.
struct Expect {
    file: &'static str,
    mode: AuthMode,
    secret: SecretSource,
    registration: Option<Registration>,
    instance_id: Option<&'static str>,
    mqtt_host: &'static str,
    credentials: Partition,
    /// The generated `registration:`, `credentials_partition:` and `ota:` lines, with `K::`
    /// for `aliot_kernel::config::`.
    generated: [&'static str; 3],
}

/// The default credentials partition: the last 4 pages of 1 MiB.
const LAST_4_PAGES: Partition = Partition {
    offset: 0xFC000,
    size: 0x4000,
};

/// The generated `ota:` line of the defaults: version 1.0.0 of the default module, the
/// nRF9160 layout of 1 MiB.
const DEFAULT_OTA: &str = "ota: K::OtaConfig { version: \"1.0.0\", module: \"default\", bootloader: K::FlashPartition { offset: 0x0, size: 0x8000, erase_page: 4096 }, active: K::FlashPartition { offset: 0x8000, size: 0x79000, erase_page: 4096 }, update: K::FlashPartition { offset: 0x81000, size: 0x7A000, erase_page: 4096 }, boot_state: K::FlashPartition { offset: 0xFB000, size: 0x1000, erase_page: 4096 } },";

/// The one example that asks for the OTA service on boards that can leave it out.
const WITH_OTA: &str = "device-secret.toml";

fn expectations() -> Vec<Expect> {
    vec![
        Expect {
            file: "device-secret.toml",
            mode: AuthMode::DeviceSecret,
            secret: SecretSource::Env("ALIOT_DEVICE_SECRET".into()),
            registration: None,
            instance_id: Some("iot-06z00ab"),
            mqtt_host: "iot-06z00ab.mqtt.iothub.aliyuncs.com",
            credentials: LAST_4_PAGES,
            // No registration: the kernel ignores the block; nothing in it is made up.
            generated: [
                "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: None, https: K::Endpoint { host: \"\", port: 0, emulator: false } },",
                "credentials_partition: K::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },",
                DEFAULT_OTA,
            ],
        },
        Expect {
            file: "emulator-register.toml",
            mode: AuthMode::Register,
            secret: SecretSource::Env("ALIOT_PRODUCT_SECRET".into()),
            registration: Some(Registration::Mqtt),
            instance_id: None,
            mqtt_host: "127.0.0.1",
            credentials: LAST_4_PAGES,
            generated: [
                "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: None, https: K::Endpoint { host: \"\", port: 0, emulator: false } },",
                "credentials_partition: K::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },",
                DEFAULT_OTA,
            ],
        },
        Expect {
            file: "register-https.toml",
            mode: AuthMode::Register,
            secret: SecretSource::Env("ALIOT_PRODUCT_SECRET".into()),
            registration: Some(Registration::Https(HttpsEndpoint {
                host: "iot-auth.cn-shanghai.aliyuncs.com".into(),
                port: 443,
                emulator: false,
            })),
            instance_id: None,
            mqtt_host: "a1ExamplePk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
            credentials: LAST_4_PAGES,
            generated: [
                "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Https, instance_id: None, https: K::Endpoint { host: \"iot-auth.cn-shanghai.aliyuncs.com\", port: 443, emulator: false } },",
                "credentials_partition: K::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },",
                DEFAULT_OTA,
            ],
        },
        Expect {
            file: "register.toml",
            mode: AuthMode::Register,
            secret: SecretSource::Env("ALIOT_PRODUCT_SECRET".into()),
            registration: Some(Registration::Mqtt),
            // Old public instance: no instanceId, securemode=2.
            instance_id: None,
            mqtt_host: "a1ExamplePk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
            credentials: LAST_4_PAGES,
            generated: [
                "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: None, https: K::Endpoint { host: \"\", port: 0, emulator: false } },",
                "credentials_partition: K::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },",
                DEFAULT_OTA,
            ],
        },
        Expect {
            file: "regnwl.toml",
            mode: AuthMode::Regnwl,
            secret: SecretSource::Provisioned,
            registration: Some(Registration::Mqtt),
            instance_id: Some("iot-06z00ab"),
            mqtt_host: "iot-06z00ab.mqtt.iothub.aliyuncs.com",
            credentials: Partition {
                offset: 0xFA000,
                size: 0x2000,
            },
            generated: [
                "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: Some(\"iot-06z00ab\"), https: K::Endpoint { host: \"\", port: 0, emulator: false } },",
                "credentials_partition: K::FlashPartition { offset: 0xFA000, size: 0x2000, erase_page: 4096 },",
                "ota: K::OtaConfig { version: \"2.1.0\", module: \"default\", bootloader: K::FlashPartition { offset: 0x0, size: 0x8000, erase_page: 4096 }, active: K::FlashPartition { offset: 0x8000, size: 0x78000, erase_page: 4096 }, update: K::FlashPartition { offset: 0x80000, size: 0x79000, erase_page: 4096 }, boot_state: K::FlashPartition { offset: 0xF9000, size: 0x1000, erase_page: 4096 } },",
            ],
        },
    ]
}

#[test]
fn every_example_has_expectations_and_every_expectation_a_file() {
    let files = example_files();
    let expected: Vec<&str> = expectations().iter().map(|e| e.file).collect();
    assert_eq!(files, expected, "examples/ and this test's table differ");
}

#[test]
fn examples_resolve_to_what_they_say() {
    for e in expectations() {
        let path = examples_dir().join(e.file);
        let m = load(&path).unwrap_or_else(|err| panic!("{err}"));
        let at = e.file;
        assert_eq!(m.auth.mode, e.mode, "{at}: auth.mode");
        assert_eq!(m.firmware.ota, e.file == WITH_OTA, "{at}: firmware.ota");
        assert_eq!(m.auth.secret, e.secret, "{at}: secret source");
        assert_eq!(m.auth.registration, e.registration, "{at}: registration");
        assert_eq!(
            m.endpoint.instance_id.as_deref(),
            e.instance_id,
            "{at}: instance id"
        );
        assert_eq!(m.endpoint.host, e.mqtt_host, "{at}: MQTT host");
        // Every example is TLS (registration requires it, spec §2.1).
        assert!(m.tls.enabled, "{at}: TLS");
        assert_eq!(m.flash.size, 0x10_0000, "{at}: flash size");
        assert_eq!(m.flash.erase_page, 4096, "{at}: erase page");
        assert_eq!(m.flash.credentials, e.credentials, "{at}: credentials");

        let src = generate_kernel_config(&m);
        let auth = match e.mode {
            AuthMode::DeviceSecret => "DeviceSecret",
            AuthMode::Register => "ProductSecretRegister",
            AuthMode::Regnwl => "ProductSecretNoPreRegister",
        };
        let mut lines = vec![
            format!("auth: K::AuthMode::{auth},"),
            "tls: K::TlsConfig { enabled: true, ca_file: None },".to_owned(),
        ];
        lines.extend(e.generated.iter().map(|l| (*l).to_owned()));
        for line in lines {
            let line = format!("    {}\n", line.replace("K::", "aliot_kernel::config::"));
            assert!(
                src.contains(&line),
                "{at}: generated config lacks\n{line}in\n{src}"
            );
        }
    }
}

fn generated_path(example: &Path) -> PathBuf {
    let stem = example.file_stem().expect("file stem");
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/generated")
        .join(stem)
        .with_extension("rs")
}

#[test]
fn committed_generated_configs_are_current() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut stale = Vec::new();
    for file in example_files() {
        let example = examples_dir().join(&file);
        let m = load(&example).unwrap_or_else(|e| panic!("{e}"));
        let now = generate_kernel_config(&m);
        let path = generated_path(&example);
        if bless {
            std::fs::write(&path, &now).expect("write generated config");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == now => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated configs (rerun with BLESS=1 and review the diff): {stale:?}"
    );
    // The examples name no files: no machine's paths in committed text.
    let here = env!("CARGO_MANIFEST_DIR");
    for file in example_files() {
        let text = std::fs::read_to_string(generated_path(&examples_dir().join(file)))
            .expect("generated config");
        assert!(!text.contains(here), "a local path in:\n{text}");
    }
}
