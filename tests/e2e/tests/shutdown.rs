//! Stopping the board: SIGTERM or SIGINT ends it cleanly (DISCONNECT to the platform, apps
//! stopped without an error, the built-in emulator's temporary CA folder removed, exit 0),
//! and the log names the address the board really dials.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// Bound for the board to stop after the signal (DISCONNECT within 2 s, apps 5 s at most).
const STOP_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn sigterm_stops_the_default_run_cleanly_and_removes_the_emulator_ca() {
    let mut device = Device::start_builtin(&[("ALIOT_SETTING_PUBLISH_TEST_INTERVAL_MS", "200")]);
    let running = device.wait_log("publishTest_2 delivered", WAIT);
    let app_pids: Vec<i32> = ["publish_test", "echo"]
        .iter()
        .filter_map(|a| device.app_pid(a))
        .collect();
    let ca_dir = device
        .log()
        .split_once("(CA ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(path, _)| PathBuf::from(path))
        .and_then(|pem| pem.parent().map(PathBuf::from));
    device.signal(Signal::SIGTERM);
    let status = device.wait_exit(STOP_WITHIN);
    for pid in &app_pids {
        let _ = wait_until(WAIT, || process_gone(*pid));
    }
    let leftover: Vec<i32> = app_pids
        .iter()
        .copied()
        .filter(|pid| !process_gone(*pid))
        .collect();
    // Everything the board and its apps wrote, up to their exit (leftovers die on drop).
    if leftover.is_empty() {
        device.wait_log_closed(WAIT);
    }
    let log = device.log();

    assert!(running, "the demo ran before the signal");
    assert_eq!(app_pids.len(), 2, "both apps were running");
    let status = status.expect("the board stops within the bound");
    assert_eq!(status.code(), Some(0), "exit code 0: {status}");
    assert!(
        log.contains("a1NrfDemo01/nrf9160-dk-01 sent DISCONNECT"),
        "the built-in emulator saw the DISCONNECT"
    );
    assert_eq!(
        error_lines(&log),
        Vec::<&str>::new(),
        "no error on a clean stop"
    );
    assert!(
        leftover.is_empty(),
        "app processes still running: {leftover:?}"
    );
    let ca_dir = ca_dir.expect("the board logs the emulator's CA path");
    assert!(
        ca_dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("aliot-emulator-ca")),
        "{}",
        ca_dir.display()
    );
    assert!(!ca_dir.exists(), "{} is removed", ca_dir.display());
}

fn sigint_says_disconnect_to_the_platform(mqtt_version: &'static str) {
    let emu = emulator();
    let mut device = Device::start(
        &emu,
        DeviceOptions {
            mqtt_version,
            ..DeviceOptions::default()
        },
    );
    assert!(device.wait_log("publishTest_1 delivered", WAIT));
    let pids: Vec<i32> = ["publish_test", "echo"]
        .iter()
        .filter_map(|a| device.app_pid(a))
        .collect();
    assert_eq!(pids.len(), 2);
    device.signal(Signal::SIGINT);
    let status = device.wait_exit(STOP_WITHIN);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert_eq!(emu.client_disconnects(PK, DN).len(), 1, "one DISCONNECT");
    assert!(emu.wait_offline(PK, DN, WAIT));
    assert!(
        pids.iter()
            .all(|pid| wait_until(WAIT, || process_gone(*pid))),
        "the apps stopped"
    );
    let log = device.log();
    assert_eq!(
        error_lines(&log),
        Vec::<&str>::new(),
        "no error on a clean stop"
    );
    assert!(log.contains("SIGINT received: stopping"));
    assert!(log.contains("the kernel closed the syscall pipe: stopping"));
}

#[test]
fn sigint_says_disconnect_to_the_platform_mqtt311() {
    sigint_says_disconnect_to_the_platform("3.1.1");
}

#[test]
fn sigint_says_disconnect_to_the_platform_mqtt5() {
    sigint_says_disconnect_to_the_platform("5");
}

#[test]
fn the_reconnect_log_names_the_address_dialled() {
    let emu = emulator();
    let port = closed_port();
    let device = Device::start(
        &emu,
        DeviceOptions {
            mqtt_addr: Some(([127, 0, 0, 1], port).into()),
            backoff_base_ms: 100,
            ..DeviceOptions::default()
        },
    );
    let expected = format!("cannot reach 127.0.0.1:{port} (Connect)");
    assert!(device.wait_log(&expected, WAIT), "{expected}");
    // Not the manifest's placeholder endpoint (the emulator's is 127.0.0.1:0).
    assert!(!device.log().contains("cannot reach 127.0.0.1:0 "));
}
