//! The seed's demo end to end: the default manifest's device logs in, `publish_test` publishes
//! `LUATOS_CESHI` at QoS 1 to `/user/update`, over TLS with the emulator's CA, in both MQTT
//! versions.

mod common;

use common::*;

fn demo_publishes_arrive(mqtt_version: &'static str, tls: bool) {
    let emu = emulator();
    let device = Device::start(
        &emu,
        DeviceOptions {
            mqtt_version,
            tls,
            ..DeviceOptions::default()
        },
    );
    let update = topic("update");
    assert!(
        wait_until(WAIT, || accepted(&emu, &update)
            .iter()
            .filter(|u| u.payload == b"LUATOS_CESHI")
            .count()
            >= 2),
        "two LUATOS_CESHI publishes should reach the emulator; got {:?}",
        emu.uplinks(PK, DN)
    );
    for u in accepted(&emu, &update) {
        assert_eq!(u.qos, 1, "the demo publishes at QoS 1");
    }
    let logins = emu.logins(PK, DN);
    let ok = logins
        .iter()
        .find(|l| l.accepted)
        .expect("an accepted login");
    assert_eq!(ok.mqtt_version, if mqtt_version == "5" { 5 } else { 4 });
    assert_eq!(ok.tls, tls);
    let mode = if tls { "securemode=2" } else { "securemode=3" };
    assert!(
        ok.client_id.contains(mode),
        "client id {} should say {mode}",
        ok.client_id
    );
    assert!(
        ok.client_id.contains("signmethod=hmacsha256"),
        "{}",
        ok.client_id
    );
    assert!(
        device.wait_log("publishTest_1 delivered", WAIT),
        "the app logs the publish result"
    );
}

#[test]
fn mqtt311_over_tls_publishes_reach_the_platform() {
    demo_publishes_arrive("3.1.1", true);
}

#[test]
fn mqtt5_over_tls_publishes_reach_the_platform() {
    demo_publishes_arrive("5", true);
}

#[test]
fn mqtt311_over_plain_tcp_publishes_reach_the_platform() {
    demo_publishes_arrive("3.1.1", false);
}

#[test]
fn tls_with_an_untrusted_ca_never_logs_in() {
    let emu = emulator();
    let other = emulator(); // its CA did not sign `emu`'s certificate
    let device = Device::start(
        &emu,
        DeviceOptions {
            ca: Some(other.ca_pem_path().to_path_buf()),
            ..DeviceOptions::default()
        },
    );
    assert!(
        device.wait_log("TLS handshake", WAIT),
        "the board says why it cannot connect"
    );
    assert!(
        emu.logins(PK, DN).is_empty(),
        "no MQTT login may happen over an unverified TLS link"
    );
}
