//! Valid 一型一密 and flash-layout manifests: which secret, which registration transport and
//! HTTPS endpoint, which instance id, and where the credentials go. Each test starts from
//! `tests/good/minimal_register.toml` (or `minimal.toml`) with one change.

use std::path::{Path, PathBuf};

use aliot_manifest::{
    AuthMode, HttpsEndpoint, Manifest, Partition, Registration, SecretSource,
    generate_kernel_config, parse,
};

fn good(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/good")
        .join(name);
    std::fs::read_to_string(path).expect("good manifest")
}

/// `text` with one replacement, which must match exactly once.
fn replaced(text: &str, old: &str, new: &str) -> String {
    assert_eq!(text.matches(old).count(), 1, "`{old}` must occur once");
    text.replace(old, new)
}

/// The 一型一密 base with one replacement.
fn register(old: &str, new: &str) -> String {
    replaced(&good("minimal_register.toml"), old, new)
}

/// The 一机一密 base with one replacement.
fn device_secret(old: &str, new: &str) -> String {
    replaced(&good("minimal.toml"), old, new)
}

fn ok(text: &str) -> Manifest {
    parse(text, Path::new("/srv/dev")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const PRODUCT_SECRET: &str = "product_secret = { env = \"ALIOT_PRODUCT_SECRET\" }";

/// The generated `registration:` line.
fn generated_registration(m: &Manifest) -> String {
    let src = generate_kernel_config(m);
    src.lines()
        .find(|l| l.trim_start().starts_with("registration:"))
        .unwrap_or_else(|| panic!("no registration line in\n{src}"))
        .trim()
        .replace("aliot_kernel::config::", "K::")
}

#[test]
fn register_uses_the_product_secret_and_registers_over_mqtt_by_default() {
    let m = ok(&good("minimal_register.toml"));
    assert_eq!(m.auth.mode, AuthMode::Register);
    assert_eq!(
        m.auth.secret,
        SecretSource::Env("ALIOT_PRODUCT_SECRET".into())
    );
    assert_eq!(m.auth.registration, Some(Registration::Mqtt));
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("    auth: aliot_kernel::config::AuthMode::ProductSecretRegister,\n"),
        "{src}"
    );
    assert!(
        src.contains(
            "    secret: aliot_kernel::config::SecretSource::Env(\"ALIOT_PRODUCT_SECRET\"),\n"
        ),
        "{src}"
    );
    assert_eq!(
        generated_registration(&m),
        "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: None, https: K::Endpoint { host: \"\", port: 0, emulator: false } },"
    );
}

#[test]
fn product_secret_file_is_resolved_against_the_manifest_dir() {
    let m = ok(&register(
        PRODUCT_SECRET,
        "product_secret = { file = \"secrets/product.secret\" }",
    ));
    assert_eq!(
        m.auth.secret,
        SecretSource::File(PathBuf::from("/srv/dev/secrets/product.secret"))
    );
}

#[test]
fn device_secret_has_no_registration() {
    let m = ok(&device_secret(
        "emulator = true",
        "instance_id = \"iot-06z00ab\"",
    ));
    assert_eq!(m.auth.registration, None);
    // The endpoint knows its instance; the kernel is not told, since nothing registers.
    assert_eq!(m.endpoint.instance_id.as_deref(), Some("iot-06z00ab"));
    assert_eq!(
        generated_registration(&m),
        "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: None, https: K::Endpoint { host: \"\", port: 0, emulator: false } },"
    );
}

#[test]
fn instance_id_is_sent_from_endpoint_instance_id() {
    let m = ok(&register(
        "emulator = true",
        "instance_id = \"iot-06z00ab\"",
    ));
    assert_eq!(
        generated_registration(&m),
        "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Mqtt, instance_id: Some(\"iot-06z00ab\"), https: K::Endpoint { host: \"\", port: 0, emulator: false } },"
    );
}

#[test]
fn instance_id_is_derived_from_an_instance_host() {
    let m = ok(&register(
        "emulator = true",
        "host = \"iot-06z00cd.mqtt.iothub.aliyuncs.com\"\nport = 443",
    ));
    assert_eq!(m.endpoint.instance_id.as_deref(), Some("iot-06z00cd"));
    assert!(
        generated_registration(&m).contains("instance_id: Some(\"iot-06z00cd\")"),
        "{}",
        generated_registration(&m)
    );
    // Any other host, a region and the emulator send none.
    for endpoint in [
        "host = \"mqtt.example.com\"",
        "host = \"a1NrfDemo01.iot-as-mqtt.cn-shanghai.aliyuncs.com\"",
        "region = \"cn-shanghai\"",
        "emulator = true",
    ] {
        let m = ok(&register("emulator = true", endpoint));
        assert_eq!(m.endpoint.instance_id, None, "{endpoint}");
        assert!(
            generated_registration(&m).contains("instance_id: None"),
            "{endpoint}"
        );
    }
}

#[test]
fn https_registration_defaults_to_the_regions_iot_auth_host() {
    let m = ok(&register(
        "[endpoint]\nemulator = true",
        "registration = \"https\"\n\n[endpoint]\nregion = \"ap-southeast-1\"",
    ));
    assert_eq!(
        m.auth.registration,
        Some(Registration::Https(HttpsEndpoint {
            host: "iot-auth.ap-southeast-1.aliyuncs.com".into(),
            port: 443,
            emulator: false,
        }))
    );
    assert_eq!(
        generated_registration(&m),
        "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Https, instance_id: None, https: K::Endpoint { host: \"iot-auth.ap-southeast-1.aliyuncs.com\", port: 443, emulator: false } },"
    );
}

#[test]
fn https_registration_with_the_emulator_is_the_emulators() {
    let m = ok(&register(
        PRODUCT_SECRET,
        &format!("{PRODUCT_SECRET}\nregistration = \"https\""),
    ));
    assert_eq!(
        m.auth.registration,
        Some(Registration::Https(HttpsEndpoint {
            host: "localhost".into(),
            port: 0,
            emulator: true,
        }))
    );
    assert!(
        generated_registration(&m)
            .contains("https: K::Endpoint { host: \"localhost\", port: 0, emulator: true }"),
        "{}",
        generated_registration(&m)
    );
}

#[test]
fn https_host_overrides_the_default_and_is_needed_for_an_instance() {
    // Over a region's default, port defaulting to 443.
    let m = ok(&register(
        "[endpoint]\nemulator = true",
        "registration = \"https\"\nhttps_host = \"auth.example.com\"\n\n[endpoint]\nregion = \"cn-shanghai\"",
    ));
    assert_eq!(
        m.auth.registration,
        Some(Registration::Https(HttpsEndpoint {
            host: "auth.example.com".into(),
            port: 443,
            emulator: false,
        }))
    );
    // Over the emulator's, with a port: no longer the emulator.
    let m = ok(&register(
        PRODUCT_SECRET,
        &format!(
            "{PRODUCT_SECRET}\nregistration = \"https\"\nhttps_host = \"127.0.0.1\"\nhttps_port = 8443"
        ),
    ));
    assert_eq!(
        m.auth.registration,
        Some(Registration::Https(HttpsEndpoint {
            host: "127.0.0.1".into(),
            port: 8443,
            emulator: false,
        }))
    );
    // With an instance id, where there is no default.
    let m = ok(&register(
        "[endpoint]\nemulator = true",
        "registration = \"https\"\nhttps_host = \"iot-auth.cn-shanghai.aliyuncs.com\"\n\n[endpoint]\ninstance_id = \"iot-06z00ab\"",
    ));
    assert_eq!(
        generated_registration(&m),
        "registration: K::RegistrationConfig { transport: K::RegistrationTransport::Https, instance_id: Some(\"iot-06z00ab\"), https: K::Endpoint { host: \"iot-auth.cn-shanghai.aliyuncs.com\", port: 443, emulator: false } },"
    );
}

#[test]
fn regnwl_is_accepted_in_cn_shanghai_on_instances_and_on_the_emulator() {
    for endpoint in [
        "region = \"cn-shanghai\"",
        "instance_id = \"iot-06z00ab\"",
        "host = \"mqtt.example.com\"",
        "emulator = true",
    ] {
        let text = register("emulator = true", endpoint);
        let text = replaced(&text, "mode = \"register\"", "mode = \"regnwl\"");
        let m = ok(&text);
        assert_eq!(m.auth.mode, AuthMode::Regnwl, "{endpoint}");
        assert_eq!(m.auth.registration, Some(Registration::Mqtt), "{endpoint}");
        assert!(
            generate_kernel_config(&m)
                .contains("auth: aliot_kernel::config::AuthMode::ProductSecretNoPreRegister,"),
            "{endpoint}"
        );
    }
}

#[test]
fn flash_defaults_are_the_last_four_pages_of_1_mib() {
    for m in [
        ok(&good("minimal.toml")),
        ok(&good("minimal_register.toml")),
    ] {
        assert_eq!((m.flash.size, m.flash.erase_page), (0x10_0000, 4096));
        assert_eq!(
            m.flash.credentials,
            Partition {
                offset: 0xFC000,
                size: 0x4000
            }
        );
        assert!(
            generate_kernel_config(&m).contains(
                "    credentials_partition: aliot_kernel::config::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },\n"
            )
        );
    }
}

#[test]
fn flash_defaults_follow_the_values_given() {
    let cases: [(&str, u32, u32, u32); 5] = [
        // (the [flash] tables, erase page, credentials offset, credentials size)
        ("[flash]\nsize = 0x80000", 4096, 0x7C000, 0x4000),
        ("[flash]\nerase_page = 8192", 8192, 0xF8000, 0x8000),
        ("[flash.credentials]\nsize = 0x2000", 4096, 0xFE000, 0x2000),
        (
            "[flash.credentials]\noffset = 0x10000",
            4096,
            0x10000,
            0x4000,
        ),
        (
            "[flash]\nsize = 0x40000\nerase_page = 2048\n\n[flash.credentials]\noffset = 0x3E800\nsize = 0x1000",
            2048,
            0x3E800,
            0x1000,
        ),
    ];
    for (tables, page, offset, size) in cases {
        let m = ok(&device_secret("[topics]", &format!("{tables}\n\n[topics]")));
        assert_eq!(m.flash.erase_page, page, "{tables}");
        assert_eq!(m.flash.credentials, Partition { offset, size }, "{tables}");
        assert!(
            generate_kernel_config(&m).contains(&format!(
                "credentials_partition: aliot_kernel::config::FlashPartition {{ offset: {offset:#X}, size: {size:#X}, erase_page: {page} }},"
            )),
            "{tables}"
        );
    }
}

#[test]
fn a_layout_may_fill_the_whole_flash() {
    // 8 KiB of 1 KiB pages, every page used: bootloader 1, active 1, update 3 (more than the
    // one extra page the swap needs), boot state 1, credentials 2; the boot state needs
    // (2 + 4 x 1) x 4 = 24 bytes.
    let m = ok(&device_secret(
        "[topics]",
        "[flash]\nsize = 0x2000\nerase_page = 1024\n\n[flash.bootloader]\nsize = 0x400\n\n[flash.active]\nsize = 0x400\n\n[flash.update]\nsize = 0xC00\n\n[flash.boot_state]\nsize = 0x400\n\n[flash.credentials]\nsize = 0x800\n\n[topics]",
    ));
    let part = |offset, size| Partition { offset, size };
    assert_eq!(m.flash.bootloader, part(0, 0x400));
    assert_eq!(m.flash.active, part(0x400, 0x400));
    assert_eq!(m.flash.update, part(0x800, 0xC00));
    assert_eq!(m.flash.boot_state, part(0x1400, 0x400));
    assert_eq!(m.flash.credentials, part(0x1800, 0x800));
}

#[test]
fn huge_flash_numbers_are_refused_not_wrapped() {
    for tables in [
        "[flash.credentials]\noffset = 0xFFFFF000\nsize = 0x2000",
        "[flash.credentials]\noffset = 0x7FFFFFFFFFFFF000\nsize = 0x2000",
        "[flash.credentials]\noffset = -4096\nsize = 0x2000",
        "[flash]\nsize = 0x100000000",
        "[flash]\nerase_page = 0x100000000",
        "[flash.credentials]\nsize = 0x7FFFFFFFFFFFFFFF",
        // The defaults are computed from these: no overflow, a field error.
        "[flash.credentials]\nsize = -9223372036854775808",
        "[flash.boot_state]\nsize = -9223372036854775808",
        "[flash.active]\noffset = -9223372036854775808",
        "[flash.active]\noffset = 0x7FFFFFFFFFFFFFFF",
        "[flash.bootloader]\nsize = 0x7FFFFFFFFFFFF000",
        "[flash.active]\nsize = 0x7FFFFFFFFFFFF000",
        "[flash]\nwrite_size = 0x100000000",
    ] {
        let text = device_secret("[topics]", &format!("{tables}\n\n[topics]"));
        let e = parse(&text, Path::new("/srv/dev")).expect_err(tables);
        assert!(
            e.field_path().is_some_and(|f| f.starts_with("flash")),
            "{tables}: {e}"
        );
    }
}
