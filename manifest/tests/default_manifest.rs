//! The committed default manifest loads and generates what the kernel and the apps expect.

use aliot_manifest::{
    Direction, EndpointKind, MqttVersion, RestartPolicy, SecretSource, SignMethod,
    default_manifest_path, generate_app_constants, generate_kernel_config, load,
};

const DEMO_SECRET: &str = "DemoDeviceSecretForEmulator00001";

fn default_manifest() -> aliot_manifest::Manifest {
    load(&default_manifest_path()).unwrap_or_else(|e| panic!("default manifest: {e}"))
}

#[test]
fn default_manifest_matches_the_demo_registry() {
    let m = default_manifest();
    assert_eq!(m.device.product_key, "a1NrfDemo01");
    assert_eq!(m.device.device_name, "nrf9160-dk-01");
    assert_eq!(m.device.client_id, "a1NrfDemo01.nrf9160-dk-01");
    assert_eq!(m.endpoint.kind, EndpointKind::Emulator);
    assert_eq!(m.auth.mode, aliot_manifest::AuthMode::DeviceSecret);
    assert_eq!(m.auth.registration, None);
    assert_eq!(m.mqtt.version, MqttVersion::V311);
    assert_eq!(m.mqtt.keepalive_secs, 300);
    assert!(m.tls.enabled);
    assert_eq!(m.auth.sign_method, SignMethod::HmacSha256);
    let expected: [(&str, &str, Direction); 14] = [
        (
            "update",
            "/a1NrfDemo01/nrf9160-dk-01/user/update",
            Direction::Publish,
        ),
        (
            "update_error",
            "/a1NrfDemo01/nrf9160-dk-01/user/update/error",
            Direction::Publish,
        ),
        (
            "get",
            "/a1NrfDemo01/nrf9160-dk-01/user/get",
            Direction::Subscribe,
        ),
        (
            "ceshi",
            "/a1NrfDemo01/nrf9160-dk-01/user/ceshi",
            Direction::Both,
        ),
        // The sensor's thing model (manifest/tsl/sensor.json), after the named topics.
        (
            "thing_post",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/event/property/post",
            Direction::Publish,
        ),
        (
            "thing_post_reply",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/event/+/post_reply",
            Direction::Subscribe,
        ),
        (
            "thing_event_0",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/event/overheat/post",
            Direction::Publish,
        ),
        (
            "thing_set",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/service/property/set",
            Direction::Subscribe,
        ),
        (
            "thing_set_reply",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/service/property/set_reply",
            Direction::Publish,
        ),
        (
            "thing_service",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/service/+",
            Direction::Subscribe,
        ),
        (
            "thing_service_0_reply",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/service/calibrate_reply",
            Direction::Publish,
        ),
        (
            "thing_service_1_reply",
            "/sys/a1NrfDemo01/nrf9160-dk-01/thing/service/read_now_reply",
            Direction::Publish,
        ),
        // read_now is synchronous: it arrives over RRPC.
        (
            "thing_rrpc_request",
            "/sys/a1NrfDemo01/nrf9160-dk-01/rrpc/request/+",
            Direction::Subscribe,
        ),
        (
            "thing_rrpc_response",
            "/sys/a1NrfDemo01/nrf9160-dk-01/rrpc/response/+",
            Direction::Publish,
        ),
    ];
    let got: Vec<(&str, &str, Direction)> = m
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.topic.as_str(), t.direction))
        .collect();
    assert_eq!(got, expected);
    let names: Vec<&str> = m.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["publish_test", "echo", "sensor"]);
    assert_eq!(m.apps[0].restart, RestartPolicy::OnFailure);
    assert!(
        m.apps[0]
            .settings
            .contains(&("interval_secs".into(), "20".into()))
    );
}

#[test]
fn secret_file_is_absolute_and_holds_the_demo_secret() {
    let m = default_manifest();
    let SecretSource::File(path) = &m.auth.secret else {
        panic!(
            "default secret source should be a file, got {:?}",
            m.auth.secret
        );
    };
    assert!(path.is_absolute(), "{}", path.display());
    let content = std::fs::read_to_string(path).expect("the demo secret file exists");
    assert_eq!(content.trim(), DEMO_SECRET);
}

#[test]
fn kernel_config_has_expanded_grants_and_no_secret() {
    let m = default_manifest();
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("pub const DEVICE: aliot_kernel::config::DeviceConfig"),
        "{src}"
    );
    assert!(src.contains("product_key: \"a1NrfDemo01\","), "{src}");
    assert!(
        src.contains("client_id: \"a1NrfDemo01.nrf9160-dk-01\","),
        "{src}"
    );
    assert!(
        src.contains("auth: aliot_kernel::config::AuthMode::DeviceSecret,"),
        "{src}"
    );
    assert!(src.contains("emulator: true"), "{src}");
    // 一机一密: nothing registers; the credentials partition is the default one.
    assert!(
        src.contains("    registration: aliot_kernel::config::RegistrationConfig { transport: aliot_kernel::config::RegistrationTransport::Mqtt, instance_id: None, https: aliot_kernel::config::Endpoint { host: \"\", port: 0, emulator: false } },\n"),
        "{src}"
    );
    assert!(
        src.contains("    credentials_partition: aliot_kernel::config::FlashPartition { offset: 0xFC000, size: 0x4000, erase_page: 4096 },\n"),
        "{src}"
    );
    assert!(
        src.contains("mqtt_version: aliot_kernel::config::MqttVersion::V311,"),
        "{src}"
    );
    assert!(src.contains("keepalive_secs: 300,"), "{src}");
    assert!(
        src.contains("sign_method: aliot_kernel::config::SignMethod::HmacSha256,"),
        "{src}"
    );
    assert!(
        src.contains("tls: aliot_kernel::config::TlsConfig { enabled: true, ca_file: None },"),
        "{src}"
    );
    assert!(
        src.contains("publish: &[\"/a1NrfDemo01/nrf9160-dk-01/user/update\", \"/a1NrfDemo01/nrf9160-dk-01/user/update/error\"],"),
        "{src}"
    );
    assert!(
        src.contains("subscribe: &[\"/a1NrfDemo01/nrf9160-dk-01/user/ceshi\"],"),
        "{src}"
    );
    assert!(src.contains("(\"interval_secs\", \"20\")"), "{src}");
    let secret_path = match &m.auth.secret {
        SecretSource::File(p) => p.to_string_lossy().into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(
        src.contains(&format!("SecretSource::File({secret_path:?})")),
        "{src}"
    );
    assert!(
        !src.contains(DEMO_SECRET),
        "the generated kernel config leaks the secret"
    );
}

#[test]
fn app_constants_and_no_secret() {
    let m = default_manifest();
    let src = generate_app_constants(&m);
    assert!(
        src.contains("pub const PRODUCT_KEY: &str = \"a1NrfDemo01\";"),
        "{src}"
    );
    assert!(
        src.contains("pub const DEVICE_NAME: &str = \"nrf9160-dk-01\";"),
        "{src}"
    );
    assert!(
        src.contains("pub const UPDATE: &str = \"/a1NrfDemo01/nrf9160-dk-01/user/update\";"),
        "{src}"
    );
    assert!(
        src.contains(
            "pub const UPDATE_ERROR: &str = \"/a1NrfDemo01/nrf9160-dk-01/user/update/error\";"
        ),
        "{src}"
    );
    assert!(src.contains("pub mod publish_test {"), "{src}");
    assert!(
        src.contains("pub const NAME: &str = \"publish_test\";"),
        "{src}"
    );
    assert!(
        src.contains("pub const SETTINGS: &[(&str, &str)] = &[(\"interval_secs\", \"20\")"),
        "{src}"
    );
    assert!(
        !src.contains(DEMO_SECRET),
        "the generated app constants leak the secret"
    );
    assert!(
        !src.contains("demo-device.secret"),
        "apps need not know where the secret is"
    );
}

#[test]
fn secret_from_env_is_named_not_read() {
    let text = std::fs::read_to_string(default_manifest_path()).expect("read default manifest");
    let text = text.replace(
        "secret = { file = \"secrets/demo-device.secret\" }",
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
    );
    let m = aliot_manifest::parse(&text, default_manifest_path().parent().expect("manifest/"))
        .expect("env variant parses");
    assert_eq!(
        m.auth.secret,
        SecretSource::Env("ALIOT_DEVICE_SECRET".into())
    );
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("secret: aliot_kernel::config::SecretSource::Env(\"ALIOT_DEVICE_SECRET\"),"),
        "{src}"
    );
}

#[test]
fn default_budgets_fit_59_kib() {
    let m = default_manifest();
    // 59 KiB: the three demo apps and the kernel's OTA and time services.
    assert_eq!(m.kernel.ram_budget, 59 * 1024);
    let budgets: Vec<(&str, u32, u32, u32, u16)> = m
        .apps
        .iter()
        .map(|a| {
            let b = a.budget;
            (
                a.name.as_str(),
                b.max_payload,
                b.event_queue_bytes,
                b.outbox_bytes,
                b.subscriptions,
            )
        })
        .collect();
    assert_eq!(
        budgets,
        [
            ("publish_test", 1024, 4096, 4096, 1),
            ("echo", 4096, 8704, 8704, 1),
            // One subscription per thing-model filter: replies, property set, services, RRPC.
            ("sensor", 512, 2048, 2048, 4)
        ]
    );
    // echo echoes up to 4 KiB: its queues hold at least one such message.
    let echo = m.app("echo").expect("echo").budget;
    assert!(echo.event_queue_bytes >= aliot_kernel::budget::min_event_queue_bytes(4096));
    assert!(echo.outbox_bytes >= aliot_kernel::budget::min_outbox_bytes(4096));
    let total = aliot_manifest::ram_report(&m).total();
    assert!(total <= 59 * 1024, "{}", aliot_manifest::ram_summary(&m));
    let src = generate_kernel_config(&m);
    assert!(src.contains("    kernel_ram_budget: 60416,\n"), "{src}");
    let apps = generate_app_constants(&m);
    assert!(
        apps.contains("pub const MAX_PAYLOAD: usize = 4096;"),
        "{apps}"
    );
}
