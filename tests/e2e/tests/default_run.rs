//! `cargo run -p aliot-host` with no flags: the board starts its built-in emulator and the
//! default manifest's demo runs against it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{WAIT, wait_until};

#[test]
fn the_default_run_logs_in_and_publishes_to_the_builtin_emulator() {
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
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let seen = |needle: &str| log.lock().unwrap().contains(needle);
    let ok = wait_until(WAIT, || seen("publishTest_2 delivered"));
    let pids: Vec<i32> = ["publish_test", "echo"]
        .iter()
        .filter_map(|a| {
            std::fs::read_to_string(state.path().join("apps").join(format!("{a}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    // Stopped as a user would (Ctrl-C), so the built-in emulator removes its temporary CA
    // folder (tests/shutdown.rs checks that); killed if it does not stop.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    if !wait_until(WAIT, || child.try_wait().is_ok_and(|s| s.is_some())) {
        let _ = child.kill();
    }
    let _ = child.wait();
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        ok,
        "two demo publishes acknowledged by the built-in emulator"
    );
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("built-in Alibaba IoT emulator"),
        "the board says it started the emulator"
    );
    assert!(
        log.contains("logged in as a1NrfDemo01/nrf9160-dk-01 (MQTT V311, TLS true)"),
        "default: MQTT 3.1.1 over TLS"
    );
    assert!(
        !log.contains("DemoDeviceSecretForEmulator00001"),
        "the secret never reaches the log"
    );
}
