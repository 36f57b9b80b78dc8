//! Platform time end to end: the kernel's time service asks the emulator's NTP topic after the
//! login, and an app (the default manifest's `sensor`) reads the answer through the
//! `Time` syscall. The emulator's clock runs a day ahead of the host's, so the time the app
//! logs can only have come from the platform's answer, not from the host's clock.

mod common;

use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;

fn host_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// The number the sensor logged after `needle`, up to the next space.
fn logged_ms(log: &str, needle: &str) -> Option<i64> {
    let at = log.find(needle)? + needle.len();
    log[at..].split(' ').next()?.parse().ok()
}

#[test]
fn an_app_reads_the_platform_s_time_from_the_ntp_answer() {
    let emu = emulator();
    emu.set_clock_offset(DAY_MS);
    let before = host_ms();
    let device = Device::start(&emu, DeviceOptions::default());

    let request = format!("/ext/ntp/{PK}/{DN}/request");
    let asked = emu
        .wait_for_uplink(PK, DN, WAIT, |u| u.topic == request)
        .expect("the kernel asked the platform for the time");
    let body: serde_json::Value = serde_json::from_slice(&asked.payload).expect("JSON");
    assert!(
        body["deviceSendTime"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())),
        "the documented request, a string of digits: {body}"
    );
    assert_eq!(
        asked.qos, 0,
        "NTP requests are QoS 0 as the platform documents"
    );
    assert!(
        emu.subscriptions(PK, DN)
            .contains(&format!("/ext/ntp/{PK}/{DN}/response")),
        "{:?}",
        emu.subscriptions(PK, DN)
    );

    let needle = "sensor: wall-clock time ";
    assert!(device.wait_log(needle, WAIT), "{}", device.log());
    let after = host_ms();
    let log = device.log();
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .expect("the line just seen");
    assert!(line.contains("from Platform"), "{line}");
    let app_ms = logged_ms(line, needle).expect("a number of milliseconds");
    // A day ahead of the host, within the exchange (a second of slack for the round trip's
    // half and the monotonic clock's step).
    assert!(
        (before + DAY_MS - 1_000..=after + DAY_MS + 1_000).contains(&app_ms),
        "the app's time {app_ms} is not the platform's (host {before}..{after}, a day ahead)"
    );
    assert!(
        device.log().contains("time: platform time"),
        "the kernel logged what it learnt"
    );
}
