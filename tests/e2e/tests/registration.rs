//! 一型一密 end to end (issue 7): the host board built with each registration test manifest
//! (`tests/e2e/manifests/`) against the emulator, for `register` and `regnwl` over MQTT and
//! `register` over HTTPS:
//! - first boot registers, stores, logs in and publishes; a restart logs in with what was
//!   stored without registering again;
//! - a power cut after the answer arrived but before it was stored: the next boot registers
//!   again and succeeds (the device was not activated);
//! - storage wiped after activation: the clear "already activated" error, then recovery by
//!   itself once the registration is reset through the emulator's cloud API;
//! - a wrong ProductSecret: its own error, retried with backoff, never a hot loop;
//! - no secret, token or login password in any log line or uplink.

mod common;

use std::path::Path;
use std::time::Duration;

use aliot_emulator::{Emulator, EmulatorConfig};
use aliot_kernel::auth::{DeviceIdentity, device_login};
use aliot_kernel::config::SignMethod;
use common::*;
use nix::sys::signal::Signal;

/// The ProductSecret the test product gets (the emulator's demo product's).
const PRODUCT_SECRET: &str = "DemoPrdSecret016";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Register,
    Regnwl,
    Https,
}

impl Mode {
    fn exe(self) -> &'static str {
        match self {
            Mode::Register => env!("CARGO_BIN_EXE_aliot-host-register"),
            Mode::Regnwl => env!("CARGO_BIN_EXE_aliot-host-regnwl"),
            Mode::Https => env!("CARGO_BIN_EXE_aliot-host-register-https"),
        }
    }

    /// Whether an emulator login record is one of this mode's registrations (accepted or
    /// refused).
    fn is_registration(self, record: &aliot_emulator::LoginRecord) -> bool {
        match self {
            Mode::Register => record.client_id.contains("authType=register,"),
            Mode::Regnwl => record.client_id.contains("authType=regnwl,"),
            Mode::Https => record.reason.starts_with("HTTPS registration"),
        }
    }
}

/// The demo registry with dynamic registration on for the default manifest's product: the
/// device is pre-registered without a secret (`register`), or absent (`regnwl`).
fn emulator_for(mode: Mode) -> Emulator {
    let mut cfg = EmulatorConfig::demo();
    let product = cfg.registry.product_mut(PK).expect("demo product");
    product.dynamic_registration = true;
    product.allow_unregistered = true;
    product.product_secret = PRODUCT_SECRET.into();
    match mode {
        Mode::Register | Mode::Https => {
            let device = product.device_mut(DN).expect("demo device");
            device.secret = None;
            device.activated = false;
        }
        Mode::Regnwl => product.devices.retain(|d| d.name != DN),
    }
    Emulator::start(cfg).expect("emulator starts")
}

fn options(mode: Mode, state: &Path, product_secret: &str) -> DeviceOptions {
    DeviceOptions {
        exe: Some(mode.exe()),
        state_dir: Some(state.to_path_buf()),
        secret: Some(product_secret.into()),
        https: mode == Mode::Https,
        ..DeviceOptions::default()
    }
}

/// Registrations of the device the emulator recorded (accepted or not).
fn registrations(emu: &Emulator, mode: Mode) -> Vec<aliot_emulator::LoginRecord> {
    emu.logins(PK, DN)
        .into_iter()
        .filter(|l| mode.is_registration(l))
        .collect()
}

/// Accepted logins that were not registrations.
fn logins(emu: &Emulator, mode: Mode) -> usize {
    emu.logins(PK, DN)
        .iter()
        .filter(|l| l.accepted && !mode.is_registration(l))
        .count()
}

/// Waits until the device publishes `update` (so it is logged in and its apps work).
fn wait_publishing(emu: &Emulator) -> bool {
    emu.wait_for_uplink(PK, DN, WAIT, |u| {
        u.topic == topic("update") && u.refused.is_none()
    })
    .is_some()
}

/// Stops the board with SIGTERM and waits for it and its apps.
fn stop(mut device: Device) -> String {
    device.signal(Signal::SIGTERM);
    assert!(device.wait_exit(WAIT).is_some_and(|s| s.success()));
    assert!(device.wait_log_closed(WAIT));
    device.log()
}

/// Every string that must never appear in a log line or an uplink: the ProductSecret, what
/// registration issued, and the login password derived from it.
fn secrets(emu: &Emulator, mode: Mode) -> Vec<String> {
    let mut all = vec![PRODUCT_SECRET.to_owned()];
    match mode {
        Mode::Register | Mode::Https => {
            let secret = emu.device_secret(PK, DN).expect("a secret was issued");
            let login = device_login(
                &DeviceIdentity {
                    product_key: PK,
                    device_name: DN,
                    client_id: &format!("{PK}.{DN}"),
                    device_secret: secret.as_bytes(),
                },
                SignMethod::HmacSha256,
                true,
            );
            all.push(secret);
            all.push(login.password.clone());
            all.push(login.password.to_lowercase());
        }
        Mode::Regnwl => {
            let (_client_id, token) = emu.device_token(PK, DN).expect("a token was issued");
            all.push(token);
        }
    }
    all
}

fn assert_nothing_leaked(emu: &Emulator, mode: Mode, logs: &[&str]) {
    let uplinks = emu.uplinks(PK, DN);
    assert!(!uplinks.is_empty(), "the apps published something to scan");
    for secret in secrets(emu, mode) {
        assert!(secret.len() >= 8, "a real secret to look for");
        for log in logs {
            assert!(
                !log.contains(&secret),
                "a secret reached the log ({mode:?})"
            );
        }
        for u in &uplinks {
            assert!(
                !String::from_utf8_lossy(&u.payload).contains(&secret)
                    && !u.topic.contains(&secret),
                "a secret reached an uplink ({mode:?})"
            );
        }
    }
}

/// Register, log in, publish; restart and log in with what was stored.
fn registers_once_then_logs_in_with_stored_credentials(mode: Mode) {
    let emu = emulator_for(mode);
    let state = tempfile::tempdir().unwrap();
    let device = Device::start(&emu, options(mode, state.path(), PRODUCT_SECRET));
    assert!(wait_publishing(&emu), "registered, logged in and published");
    assert!(device.wait_log("registered", WAIT));
    let first = stop(device);
    let regs = registrations(&emu, mode);
    assert_eq!(regs.len(), 1, "one registration: {regs:?}");
    assert!(regs[0].accepted);
    // Every registration carries a fresh nonce (MQTT: in the client id).
    if mode != Mode::Https {
        assert!(
            regs[0].client_id.contains("random="),
            "{}",
            regs[0].client_id
        );
        assert!(!regs[0].client_id.contains("random=123,"));
    }
    assert!(logins(&emu, mode) >= 1);
    if mode == Mode::Regnwl {
        let connwl = emu.logins(PK, DN);
        assert!(
            connwl
                .iter()
                .any(|l| l.accepted && l.client_id.contains("authType=connwl")),
            "logged in with the token: {connwl:?}"
        );
    }

    let logins_before = logins(&emu, mode);
    let uplinks_before = emu.uplinks(PK, DN).len();
    let device = Device::start(&emu, options(mode, state.path(), PRODUCT_SECRET));
    assert!(
        wait_until(WAIT, || emu.uplinks(PK, DN).len() > uplinks_before),
        "published again after the restart"
    );
    assert!(device.wait_log("stored credentials found", WAIT));
    let second = stop(device);
    assert_eq!(registrations(&emu, mode).len(), 1, "no second registration");
    assert!(logins(&emu, mode) > logins_before);
    assert_nothing_leaked(&emu, mode, &[&first, &second]);
}

#[test]
fn register_over_mqtt() {
    registers_once_then_logs_in_with_stored_credentials(Mode::Register);
}

#[test]
fn regnwl_over_mqtt_logs_in_with_the_token() {
    registers_once_then_logs_in_with_stored_credentials(Mode::Regnwl);
}

#[test]
fn register_over_https() {
    registers_once_then_logs_in_with_stored_credentials(Mode::Https);
}

/// The power fails in the first flash write after the answer arrived: the next boot
/// registers again (the device was never activated) and works.
fn power_cut_before_the_answer_is_stored(mode: Mode) {
    let emu = emulator_for(mode);
    let state = tempfile::tempdir().unwrap();
    let mut cut = options(mode, state.path(), PRODUCT_SECRET);
    cut.args = vec!["--cut-power-at-flash-op".into(), "0".into()];
    let mut device = Device::start(&emu, cut);
    let status = device.wait_exit(WAIT).expect("the board died");
    assert!(!status.success());
    assert!(device.wait_log_closed(WAIT));
    let log = device.log();
    assert!(log.contains("simulated power cut"), "{log}");
    drop(device);
    let regs = registrations(&emu, mode);
    assert_eq!(regs.len(), 1, "the answer had arrived: {regs:?}");
    assert_eq!(logins(&emu, mode), 0, "nothing logged in with it");

    let device = Device::start(&emu, options(mode, state.path(), PRODUCT_SECRET));
    assert!(wait_publishing(&emu), "registered again and works");
    let log2 = stop(device);
    assert_eq!(registrations(&emu, mode).len(), 2);
    assert!(
        !log2.contains("stored credentials found"),
        "the cut record was not used"
    );
}

#[test]
fn power_cut_before_store_register() {
    power_cut_before_the_answer_is_stored(Mode::Register);
}

#[test]
fn power_cut_before_store_regnwl() {
    power_cut_before_the_answer_is_stored(Mode::Regnwl);
}

#[test]
fn power_cut_before_store_https() {
    power_cut_before_the_answer_is_stored(Mode::Https);
}

/// After activation the flash is wiped: "already activated", until the registration is
/// reset in the cloud; then the device registers and logs in by itself.
fn wiped_after_activation(mode: Mode) {
    let emu = emulator_for(mode);
    let state = tempfile::tempdir().unwrap();
    let device = Device::start(&emu, options(mode, state.path(), PRODUCT_SECRET));
    assert!(wait_publishing(&emu));
    stop(device);
    std::fs::remove_file(state.path().join("flash.bin")).expect("wipe the flash");

    let device = Device::start(&emu, options(mode, state.path(), PRODUCT_SECRET));
    assert!(
        device.wait_log("already activated", WAIT),
        "{}",
        device.log()
    );
    assert!(
        device
            .log()
            .contains("Reset the device's registration in the console")
    );
    let uplinks_before = emu.uplinks(PK, DN).len();
    emu.reset_registration(PK, DN).expect("reset");
    assert!(
        wait_until(Duration::from_secs(30), || emu.uplinks(PK, DN).len()
            > uplinks_before),
        "recovered by itself: {}",
        device.log()
    );
    let log = stop(device);
    assert!(log.contains("registered"));
}

#[test]
fn wiped_after_activation_register() {
    wiped_after_activation(Mode::Register);
}

#[test]
fn wiped_after_activation_regnwl() {
    wiped_after_activation(Mode::Regnwl);
}

#[test]
fn wiped_after_activation_https() {
    wiped_after_activation(Mode::Https);
}

/// A wrong ProductSecret: its own error, attempts spaced by a growing backoff.
fn wrong_product_secret(mode: Mode) {
    let emu = emulator_for(mode);
    let state = tempfile::tempdir().unwrap();
    let device = Device::start(&emu, options(mode, state.path(), "NotTheProductSecret"));
    assert!(
        wait_until(WAIT, || registrations(&emu, mode).len() >= 4),
        "{}",
        device.log()
    );
    assert!(
        device.log().contains("check the ProductSecret"),
        "{}",
        device.log()
    );
    let regs = registrations(&emu, mode);
    assert!(regs.iter().all(|r| !r.accepted));
    // Backoff from 300 ms doubling (each delay at least half its step): the gaps before the
    // third and fourth attempts are at least 300 and 600 ms.
    let gap = |i: usize| regs[i].at.duration_since(regs[i - 1].at).unwrap();
    assert!(gap(2) >= Duration::from_millis(290), "{:?}", gap(2));
    assert!(gap(3) >= Duration::from_millis(590), "{:?}", gap(3));
    let log = stop(device);
    assert_eq!(logins(&emu, mode), 0);
    assert!(!log.contains(PRODUCT_SECRET));
}

#[test]
fn wrong_product_secret_register() {
    wrong_product_secret(Mode::Register);
}

#[test]
fn wrong_product_secret_https() {
    wrong_product_secret(Mode::Https);
}
