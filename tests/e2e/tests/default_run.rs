//! `cargo run -p aliot-host` with no flags: the board starts its built-in emulator and the
//! default manifest's demo runs against it.

mod common;

use common::{Device, WAIT};
use nix::sys::signal::Signal;

#[test]
fn the_default_run_logs_in_and_publishes_to_the_builtin_emulator() {
    let mut device = Device::start_builtin(&[("ALIOT_SETTING_PUBLISH_TEST_INTERVAL_MS", "200")]);
    let ok = device.wait_log("publishTest_2 delivered", WAIT);
    // Stopped as a user would (Ctrl-C), so the built-in emulator removes its temporary CA
    // folder (tests/shutdown.rs checks that); killed on drop if it does not stop.
    device.signal(Signal::SIGINT);
    device.wait_exit(WAIT);
    assert!(
        ok,
        "two demo publishes acknowledged by the built-in emulator"
    );
    let log = device.log();
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
