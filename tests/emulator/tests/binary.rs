//! The `aliot-emulator` binary: one command starts it, it prints its ports and CA path, and
//! its log says who logged in without printing secrets.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Kills the child when the test ends, whatever happens.
struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_prints_ports_and_serves_the_registry_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/demo-registry.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_aliot-emulator"))
        .args([
            "--registry",
            registry,
            "--mqtt-port",
            "0",
            "--tls-port",
            "0",
            "--http-port",
            "0",
            "--https-port",
            "0",
        ])
        .args(["--tls12-only", "--ca-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let mut child = Kill(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = std::collections::HashMap::new();
    for _ in 0..5 {
        let l = lines.next().expect("a line").expect("utf8");
        let (k, v) = l.split_once(char::is_whitespace).expect("KEY value");
        printed.insert(k.to_string(), v.trim().to_string());
    }
    let port = |k: &str| -> u16 {
        printed[k]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{k}: {printed:?}"))
    };
    let ca = std::path::PathBuf::from(&printed["CA"]);
    assert_eq!(ca, dir.path().join("ca.pem"));
    assert!(ca.exists());

    let c = TestClient::connect(4, port("MQTT"), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c.connack(), Ok(()));
    let t = TestClient::connect(
        5,
        port("TLS"),
        &sdk_creds(PK, DN2, DS2),
        Some(client_tls(&ca, true)),
    );
    assert_eq!(t.connack(), Ok(()));
    let bad = TestClient::connect(4, port("MQTT"), &sdk_creds(PK, DN2, DS), None);
    assert!(bad.connack().is_err());
    let (st, devs) = get_json(
        &http_agent(None),
        &format!("http://127.0.0.1:{}/api/devices", port("HTTP")),
    );
    assert_eq!(st, 200);
    assert!(
        devs.as_array()
            .is_some_and(|d| d.iter().filter(|d| d["online"] == true).count() == 2),
        "{devs}"
    );
    c.disconnect();
    t.disconnect();
    std::thread::sleep(Duration::from_millis(200));

    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut log = String::new();
    child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(log.contains("login ok: a1NrfDemo01/nrf9160-dk-01"), "{log}");
    assert!(
        log.contains("login refused: a1NrfDemo01/nrf9160-dk-02"),
        "{log}"
    );
    for secret in [
        DS,
        DS2,
        "DemoPrdSecret016",
        &sdk_creds(PK, DN, DS).password,
        &sdk_creds(PK, DN2, DS2).password,
    ] {
        assert!(!log.contains(secret), "a secret was logged");
    }
}

#[test]
fn binary_rejects_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_aliot-emulator"))
        .args(["--mqtt-port", "notaport"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a port"));
}
