//! Valid manifests other than the default: endpoints, client ids, secrets, settings, layout,
//! budgets.

use std::path::{Path, PathBuf};

use aliot_manifest::{
    APP_QUEUE_MAX, AppBudget, EndpointKind, Manifest, ManifestError, MqttVersion, SecretSource,
    SignMethod, generate_app_constants, generate_kernel_config, generate_memory_layout,
    memory_layout, parse, ram_report, ram_summary,
};

fn minimal() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good/minimal.toml");
    std::fs::read_to_string(path).expect("minimal manifest")
}

/// The minimal manifest with one replacement, which must match exactly once.
fn with(old: &str, new: &str) -> String {
    let text = minimal();
    assert_eq!(text.matches(old).count(), 1, "`{old}` must occur once");
    text.replace(old, new)
}

fn ok(text: &str) -> Manifest {
    parse(text, Path::new("/srv/dev")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn region_gives_the_public_instance_host() {
    let m = ok(&with("emulator = true", "region = \"cn-shanghai\""));
    assert_eq!(m.endpoint.kind, EndpointKind::Region("cn-shanghai".into()));
    assert_eq!(
        m.endpoint.host,
        "a1NrfDemo01.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    );
    assert_eq!(m.endpoint.port, 1883);
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("host: \"a1NrfDemo01.iot-as-mqtt.cn-shanghai.aliyuncs.com\", port: 1883, emulator: false"),
        "{src}"
    );
}

#[test]
fn instance_id_gives_the_instance_host() {
    let m = ok(&with(
        "emulator = true",
        "instance_id = \"iot-06z00ab\"\nport = 443",
    ));
    assert_eq!(m.endpoint.host, "iot-06z00ab.mqtt.iothub.aliyuncs.com");
    assert_eq!(m.endpoint.port, 443);
}

#[test]
fn explicit_host_and_port() {
    let m = ok(&with("emulator = true", "host = \"10.0.0.7\"\nport = 8883"));
    assert_eq!(m.endpoint.kind, EndpointKind::Host);
    assert_eq!(
        (m.endpoint.host.as_str(), m.endpoint.port),
        ("10.0.0.7", 8883)
    );
}

#[test]
fn emulator_false_with_another_choice_is_fine() {
    let m = ok(&with(
        "emulator = true",
        "emulator = false\nhost = \"mqtt.example.com\"",
    ));
    assert_eq!(m.endpoint.host, "mqtt.example.com");
}

#[test]
fn client_id_template_is_expanded() {
    let m = ok(&with(
        "device_name = \"nrf9160-dk-01\"",
        "device_name = \"nrf9160-dk-01\"\nclient_id = \"sn-${deviceName}\"",
    ));
    assert_eq!(m.device.client_id, "sn-nrf9160-dk-01");
}

#[test]
fn secret_file_and_ca_file_are_resolved_against_the_manifest_dir() {
    let text = with(
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
        "secret = { file = \"./secrets/dev.secret\" }",
    ) + "\n[tls]\nca_file = \"../certs/root.pem\"\n";
    let m = ok(&text);
    assert_eq!(
        m.auth.secret,
        SecretSource::File(PathBuf::from("/srv/dev/secrets/dev.secret"))
    );
    assert_eq!(
        m.tls.ca_file,
        Some(PathBuf::from("/srv/dev/../certs/root.pem"))
    );
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("ca_file: Some(\"/srv/dev/../certs/root.pem\")"),
        "{src}"
    );
}

#[test]
fn relative_base_dir_becomes_absolute() {
    let text = with(
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
        "secret = { file = \"s.secret\" }",
    );
    let m = parse(&text, Path::new("some/dir")).expect("valid");
    let SecretSource::File(p) = m.auth.secret else {
        panic!("file source")
    };
    assert!(
        p.is_absolute() && p.ends_with("some/dir/s.secret"),
        "{}",
        p.display()
    );
}

#[test]
fn dot_components_are_dropped_from_paths() {
    let text = with(
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
        "secret = { file = \"./s.secret\" }",
    );
    let m = parse(&text, Path::new(".")).expect("valid");
    let SecretSource::File(p) = &m.auth.secret else {
        panic!("file source")
    };
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(p, &cwd.join("s.secret"));
    assert_eq!(m.base_dir, cwd);
}

#[test]
fn provisioned_secret() {
    let m = ok(&with(
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
        "secret = \"provisioned\"",
    ));
    assert_eq!(m.auth.secret, SecretSource::Provisioned);
    assert!(generate_kernel_config(&m).contains("SecretSource::Provisioned,"));
}

#[test]
fn mqtt5_sign_method_and_keepalive_bounds() {
    let text = minimal() + "\n[mqtt]\nversion = \"5\"\nkeepalive_secs = 1200\n";
    let text = text.replace(
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }",
        "secret = { env = \"ALIOT_DEVICE_SECRET\" }\nsign_method = \"hmacmd5\"",
    );
    let m = ok(&text);
    assert_eq!(m.mqtt.version, MqttVersion::V5);
    assert_eq!(m.mqtt.keepalive_secs, 1200);
    assert_eq!(m.auth.sign_method, SignMethod::HmacMd5);
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("MqttVersion::V5,") && src.contains("SignMethod::HmacMd5,"),
        "{src}"
    );
    let low = ok(&(minimal() + "\n[mqtt]\nkeepalive_secs = 30\n"));
    assert_eq!(low.mqtt.keepalive_secs, 30);
}

#[test]
fn settings_of_any_scalar_become_strings_in_order() {
    let m = ok(&with(
        "name = \"second\"",
        "name = \"second\"\nsettings = { b = 20, a = true, c = \"x \\\"q\\\"\", d = 1.5 }",
    ));
    let s: Vec<(&str, &str)> = m.apps[1]
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        s,
        [("b", "20"), ("a", "true"), ("c", "x \"q\""), ("d", "1.5")]
    );
    let src = generate_kernel_config(&m);
    assert!(
        src.contains(r#"("c", "x \"q\"")"#),
        "quotes must be escaped: {src}"
    );
}

#[test]
fn subscribe_filters_may_use_wildcards() {
    let text = minimal().replace(
        "[[apps]]\nname = \"first\"",
        "all = { template = \"/${productKey}/${deviceName}/user/#\", direction = \"subscribe\" }\n\n[[apps]]\nname = \"first\"",
    );
    let text = text.replace("subscribe = [\"get\"]", "subscribe = [\"get\", \"all\"]");
    let m = ok(&text);
    assert_eq!(
        m.topic("all").map(|t| t.topic.as_str()),
        Some("/a1NrfDemo01/nrf9160-dk-01/user/#")
    );
    assert!(generate_kernel_config(&m).contains("\"/a1NrfDemo01/nrf9160-dk-01/user/#\"]"));
}

#[test]
fn memory_layout_is_aligned_and_back_to_back() {
    let m = ok(&minimal()); // two apps of 4096 bytes
    let l = memory_layout(&m, 0x2000_0004, 0x4000).expect("fits");
    assert_eq!(l.regions.len(), 2);
    assert_eq!((l.regions[0].start, l.regions[0].size), (0x2000_0020, 4096));
    assert_eq!(l.regions[0].limit(), 0x2000_101f);
    assert_eq!((l.regions[1].start, l.regions[1].size), (0x2000_1020, 4096));
    assert_eq!(l.end, 0x2000_2020);
    for r in &l.regions {
        assert_eq!(r.start % aliot_manifest::MPU_ALIGN, 0);
        assert_eq!(r.size % aliot_manifest::MPU_ALIGN, 0);
    }
    let src = generate_memory_layout(&l);
    assert!(src.contains("(\"second\", 0x20001020, 4096),"), "{src}");
}

#[test]
fn memory_layout_exact_fit_and_overflow() {
    let m = ok(&minimal());
    assert!(memory_layout(&m, 0x2000_0000, 8192).is_ok());
    let e = memory_layout(&m, 0x2000_0000, 8191).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("apps[1].memory"));
    assert!(
        e.to_string()
            .contains("app `second` (4096 bytes) does not fit"),
        "{e}"
    );
    // Alignment eats into the space: 8192 bytes starting 4 bytes past a boundary do not fit.
    assert!(memory_layout(&m, 0x2000_0004, 8192).is_err());
    // The top of the address space: no wrap-around.
    let e = memory_layout(&m, 0xFFFF_F000, u32::MAX);
    assert!(matches!(e, Err(ManifestError::Field { .. })), "{e:?}");
    assert_eq!(
        memory_layout(&m, 0xFFFF_E000, 0x2000).map(|l| l.regions[1].limit()),
        Ok(0xFFFF_FFFF)
    );
}

/// The kernel's own minimums, computed by the kernel (never copied here).
fn mins(max_payload: u32) -> (u32, u32) {
    (
        aliot_kernel::budget::min_event_queue_bytes(max_payload),
        aliot_kernel::budget::min_outbox_bytes(max_payload),
    )
}

#[test]
fn budgets_default_from_max_payload_and_grants() {
    let m = ok(&minimal());
    assert_eq!(m.kernel.ram_budget, 57_344);
    let (event, outbox) = mins(1024);
    assert_eq!(
        m.apps[0].budget,
        AppBudget {
            event_queue_bytes: 2 * event,
            outbox_bytes: 2 * outbox,
            max_payload: 1024,
            subscriptions: 1,
        }
    );
    // A larger payload raises the default queues; no subscribe grant means no slot.
    let m = ok(&with(
        "publish = [\"update\"]\nsubscribe = [\"get\"]\n",
        "publish = [\"update\"]\nmax_payload = 4096\n",
    ));
    let (event, outbox) = mins(4096);
    assert_eq!(
        m.apps[0].budget,
        AppBudget {
            event_queue_bytes: 2 * event,
            outbox_bytes: 2 * outbox,
            max_payload: 4096,
            subscriptions: 0,
        }
    );
}

#[test]
fn explicit_budgets_are_kept_and_generated() {
    let text = with(
        "name = \"second\"",
        "name = \"second\"\nmax_payload = 300\nevent_queue_bytes = 2000\noutbox_bytes = 3000\nsubscriptions = 7",
    ) + "\n[kernel]\nram_budget = 65536\n";
    let m = ok(&text);
    assert_eq!(
        m.apps[1].budget,
        AppBudget {
            event_queue_bytes: 2000,
            outbox_bytes: 3000,
            max_payload: 300,
            subscriptions: 7,
        }
    );
    assert_eq!(m.kernel.ram_budget, 65_536);
    let src = generate_kernel_config(&m);
    assert!(
        src.contains("budget: aliot_kernel::config::AppBudget { event_queue_bytes: 2000, outbox_bytes: 3000, max_payload: 300, subscriptions: 7 },"),
        "{src}"
    );
    assert!(src.contains("    kernel_ram_budget: 65536,\n"), "{src}");
    let apps = generate_app_constants(&m);
    let second = &apps[apps.find("pub mod second").expect("second's module")..];
    assert!(
        second.contains("pub const MAX_PAYLOAD: usize = 300;"),
        "{apps}"
    );
    let first = &apps[apps.find("pub mod first").expect("first's module")..];
    assert!(
        first.contains("pub const MAX_PAYLOAD: usize = 1024;"),
        "{apps}"
    );
}

#[test]
fn queues_holding_exactly_one_largest_message_are_the_minimum() {
    let (event, outbox) = mins(4096);
    let at_min = |e: u32, o: u32| {
        with(
            "name = \"second\"",
            &format!(
                "name = \"second\"\nmax_payload = 4096\nevent_queue_bytes = {e}\noutbox_bytes = {o}"
            ),
        )
    };
    ok(&at_min(event, outbox));
    let e = parse(&at_min(event - 1, outbox), Path::new("/")).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("apps[1].event_queue_bytes"));
    let e = parse(&at_min(event, outbox - 1), Path::new("/")).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("apps[1].outbox_bytes"));
    ok(&at_min(APP_QUEUE_MAX, APP_QUEUE_MAX)
        .replace("[topics]", "[kernel]\nram_budget = 262144\n\n[topics]"));
}

#[test]
fn ram_report_is_the_kernels_formula_over_the_apps_in_order() {
    let text = with(
        "name = \"second\"",
        "name = \"second\"\nmax_payload = 4096\nevent_queue_bytes = 9000\noutbox_bytes = 10000\nsubscriptions = 3",
    );
    let (event, outbox) = mins(1024);
    let first = AppBudget {
        event_queue_bytes: 2 * event,
        outbox_bytes: 2 * outbox,
        max_payload: 1024,
        subscriptions: 1,
    };
    let second = AppBudget {
        event_queue_bytes: 9000,
        outbox_bytes: 10_000,
        max_payload: 4096,
        subscriptions: 3,
    };
    use aliot_kernel::budget::worst_case_ram;
    use aliot_kernel::config::MqttVersion as KernelVersion;
    let m = ok(&text);
    assert_eq!(
        ram_report(&m),
        worst_case_ram(&[first, second], KernelVersion::V311)
    );
    // The MQTT 5 link holds a third packet buffer: this pair needs a larger budget there.
    let m5 = ok(&(text + "\n[mqtt]\nversion = \"5\"\n[kernel]\nram_budget = 65536\n"));
    assert_eq!(
        ram_report(&m5),
        worst_case_ram(&[first, second], KernelVersion::V5)
    );
}

#[test]
fn a_budget_of_exactly_the_worst_case_is_enough() {
    let total = ram_report(&ok(&minimal())).total();
    let text = |budget: u32| minimal() + &format!("\n[kernel]\nram_budget = {budget}\n");
    assert_eq!(ok(&text(total)).kernel.ram_budget, total);
    let e = parse(&text(total - 1), Path::new("/")).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("kernel.ram_budget"));
    let shown = e.to_string();
    assert!(
        shown.contains("raise kernel.ram_budget or lower apps[]."),
        "{shown}"
    );
}

#[test]
fn the_summary_names_the_total_the_budget_and_the_parts() {
    let m = ok(&minimal());
    let r = ram_report(&m);
    let line = ram_summary(&m);
    assert!(line.starts_with("kernel RAM worst case: "), "{line}");
    assert!(line.contains(" of 57 344 bytes (event queues "), "{line}");
    for part in ["outboxes ", "subscriptions ", "tables ", "link "] {
        assert!(line.contains(part), "{line}");
    }
    // The total, grouped by three: e.g. 31558 -> "31 558".
    let digits = r.total().to_string();
    let (high, low) = digits.split_at(digits.len() - 3);
    assert!(line.contains(&format!(": {high} {low} of")), "{line}");
}

#[test]
fn more_apps_than_the_kernel_can_number_are_rejected() {
    let mut text = minimal();
    for i in 0..255 {
        text.push_str(&format!(
            "\n[[apps]]\nname = \"extra{i}\"\nmemory = 1024\nmax_payload = 1\n"
        ));
    }
    let e = parse(&text, Path::new("/")).expect_err("257 apps");
    assert_eq!(e.field_path(), Some("apps"));
    assert!(e.to_string().contains("at most 256"), "{e}");
}
