//! Stopping the board: SIGTERM or SIGINT ends it cleanly (DISCONNECT to the platform, apps
//! stopped without an error, the built-in emulator's temporary CA folder removed, exit 0),
//! and the log names the address the board really dials.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// Bound for the board to stop after the signal (DISCONNECT within 2 s, apps 5 s at most).
const STOP_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn sigterm_stops_the_default_run_cleanly_and_removes_the_emulator_ca() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aliot-host-under-test"))
        .arg("--state-dir")
        .arg(state.path())
        .env("RUST_LOG", "info")
        .env("ALIOT_SETTING_PUBLISH_TEST_INTERVAL_MS", "200")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let seen = |needle: &str| log.lock().unwrap().contains(needle);
    let running = wait_until(WAIT, || seen("publishTest_2 delivered"));
    let app_pids: Vec<i32> = ["publish_test", "echo"]
        .iter()
        .filter_map(|a| {
            std::fs::read_to_string(state.path().join("apps").join(format!("{a}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let ca_dir = {
        let log = log.lock().unwrap();
        log.split_once("(CA ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(path, _)| PathBuf::from(path))
            .and_then(|pem| pem.parent().map(PathBuf::from))
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let mut status = None;
    wait_until(STOP_WITHIN, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for pid in &app_pids {
        let _ = wait_until(WAIT, || process_gone(*pid));
    }
    let leftover: Vec<i32> = app_pids
        .iter()
        .copied()
        .filter(|pid| !process_gone(*pid))
        .collect();
    for pid in &leftover {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let _ = reader.join();
    let log = log.lock().unwrap().clone();

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
