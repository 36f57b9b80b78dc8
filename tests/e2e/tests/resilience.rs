//! Failures: the platform kicks the device, the secret is wrong, an app dies.

mod common;

use std::time::Duration;

use common::*;

fn numbered_env() -> Vec<(String, String)> {
    vec![
        (
            "ALIOT_SETTING_PUBLISH_TEST_INTERVAL_MS".into(),
            "100".into(),
        ),
        (
            "ALIOT_SETTING_PUBLISH_TEST_PAYLOAD".into(),
            "msg-{n}".into(),
        ),
    ]
}

/// The `N` of a `msg-N` payload.
fn number(payload: &[u8]) -> Option<u32> {
    std::str::from_utf8(payload)
        .ok()?
        .strip_prefix("msg-")?
        .parse()
        .ok()
}

fn numbers(emu: &aliot_emulator::Emulator) -> std::collections::BTreeSet<u32> {
    accepted(emu, &topic("update"))
        .iter()
        .filter_map(|u| number(&u.payload))
        .collect()
}

/// Numbered messages whose PUBACK the emulator held back, in arrival order.
fn held(emu: &aliot_emulator::Emulator) -> Vec<u32> {
    accepted(emu, &topic("update"))
        .iter()
        .filter(|u| u.ack_held)
        .filter_map(|u| number(&u.payload))
        .collect()
}

/// A kick while QoS 1 messages are in flight (their PUBACKs held back by the emulator): the
/// device logs in again, subscribes again, resends every unacknowledged message and loses none.
fn kicked_device_reconnects_resubscribes_and_loses_nothing(mqtt_version: &'static str) {
    let emu = emulator();
    let device = Device::start(
        &emu,
        DeviceOptions {
            mqtt_version,
            env: numbered_env(),
            ..DeviceOptions::default()
        },
    );
    assert!(wait_subscribed(&emu, &[topic("get"), topic("ceshi")]));
    assert!(wait_until(WAIT, || numbers(&emu).len() >= 5));
    // Hold every PUBACK of this session, so what the device publishes from now on is still in
    // flight when the link drops; the kick ends the hold without acknowledging any of it.
    assert!(emu.hold_pubacks(PK, DN), "the device is online");
    assert!(
        wait_until(WAIT, || held(&emu).len() >= 2),
        "QoS 1 messages in flight before the kick"
    );
    assert!(emu.kick(PK, DN), "the device was online");
    // From here on the old session's PUBLISHes are refused and none is held: these are final.
    let at_kick = emu.uplinks(PK, DN).len();
    let in_flight = held(&emu);
    assert!(
        wait_until(WAIT, || emu
            .logins(PK, DN)
            .iter()
            .filter(|l| l.accepted)
            .count()
            >= 2),
        "it logs in again"
    );
    assert!(
        wait_subscribed(&emu, &[topic("get"), topic("ceshi")]),
        "and subscribes again"
    );
    // Every message in flight at the kick is received again on the new session.
    let resends = |n: u32| -> Vec<aliot_emulator::Uplink> {
        emu.uplinks(PK, DN)
            .into_iter()
            .skip(at_kick)
            .filter(|u| {
                u.topic == topic("update") && u.refused.is_none() && number(&u.payload) == Some(n)
            })
            .collect()
    };
    assert!(
        wait_until(WAIT, || in_flight.iter().all(|&n| !resends(n).is_empty())),
        "messages in flight at the kick were not resent: {:?} of {in_flight:?}",
        in_flight
            .iter()
            .filter(|&&n| resends(n).is_empty())
            .collect::<Vec<_>>()
    );
    if mqtt_version == "3.1.1" {
        // MQTT 3.1.1 §3.3.1.1: a re-delivery carries DUP = 1. (MQTT 5 with Clean Start makes
        // the resend the first attempt of a new session: DUP = 0 is right there; see
        // kernel_component/src/link/v5.rs.)
        for &n in &in_flight {
            let first = &resends(n)[0];
            assert!(first.dup, "msg-{n} was resent without DUP: {first:?}");
        }
    }
    let before = numbers(&emu).iter().max().copied().unwrap_or(0);
    assert!(
        wait_until(WAIT, || numbers(&emu).iter().max().copied().unwrap_or(0)
            >= before + 5),
        "publishing continues"
    );
    // Every number up to the highest one seen must have arrived: nothing lost across the kick.
    let seen = numbers(&emu);
    let highest = *seen.iter().max().unwrap();
    let missing: Vec<u32> = (1..=highest).filter(|n| !seen.contains(n)).collect();
    // The newest ones may still be on their way; wait for the gaps to fill.
    assert!(
        wait_until(WAIT, || {
            let s = numbers(&emu);
            (1..=highest).all(|n| s.contains(&n))
        }),
        "QoS 1 messages lost across the reconnect: {missing:?}"
    );
    emu.publish_to_device(PK, DN, &topic("ceshi"), b"after-kick", 1)
        .unwrap();
    assert!(
        wait_uplink(&emu, &topic("update"), b"echo:after-kick").is_some(),
        "routing works after the reconnect"
    );
    drop(device);
}

#[test]
fn kick_mqtt311() {
    kicked_device_reconnects_resubscribes_and_loses_nothing("3.1.1");
}

#[test]
fn kick_mqtt5() {
    kicked_device_reconnects_resubscribes_and_loses_nothing("5");
}

#[test]
fn a_wrong_secret_gives_a_clear_error_and_backs_off() {
    let emu = emulator();
    let wrong = "ThisIsNotTheRightSecret000000000";
    let device = Device::start(
        &emu,
        DeviceOptions {
            secret: Some(wrong.into()),
            backoff_base_ms: 200,
            ..DeviceOptions::default()
        },
    );
    assert!(
        wait_until(WAIT, || emu.logins(PK, DN).len() >= 5),
        "it keeps trying: {:?}",
        emu.logins(PK, DN).len()
    );
    let logins = emu.logins(PK, DN);
    assert!(
        logins.iter().all(|l| !l.accepted),
        "a wrong secret never logs in"
    );
    let gap = |i: usize| logins[i + 1].at.duration_since(logins[i].at).unwrap();
    // Delays are drawn from [step/2, step] with steps 200, 400, 800, 1600 ms: the fourth gap
    // is at least 800 ms, the first at most 200 ms plus one connection's time.
    assert!(
        gap(3) > gap(0),
        "backoff grows: {:?} then {:?}",
        gap(0),
        gap(3)
    );
    assert!(gap(3).as_millis() >= 800, "no hot loop: {:?}", gap(3));
    assert!(
        device.wait_log("bad user name or password", WAIT),
        "the log says what is wrong"
    );
    let dialled = format!(
        "login refused for {PK}/{DN} at 127.0.0.1:{}",
        emu.tls_addr().port()
    );
    assert!(
        device.log().contains(&dialled),
        "and where it dialled: {dialled}"
    );
    assert!(
        !device.log().contains(wrong),
        "the secret never appears in logs"
    );
}

#[test]
fn a_killed_app_is_restarted_and_the_other_keeps_running() {
    let emu = emulator();
    let device = Device::start(
        &emu,
        DeviceOptions {
            env: numbered_env(),
            ..DeviceOptions::default()
        },
    );
    assert!(wait_subscribed(&emu, &[topic("get"), topic("ceshi")]));
    assert!(wait_until(WAIT, || device.app_pid("echo").is_some()
        && device.app_pid("publish_test").is_some()));
    let publisher = device.app_pid("publish_test").unwrap();
    let old_echo = device.kill_app("echo");
    assert!(
        wait_until(WAIT, || device
            .app_pid("echo")
            .is_some_and(|p| p != old_echo)),
        "echo comes back"
    );
    let before = numbers(&emu).len();
    assert!(
        wait_until(WAIT, || numbers(&emu).len() >= before + 3),
        "publish_test kept publishing"
    );
    assert_eq!(
        device.app_pid("publish_test"),
        Some(publisher),
        "publish_test was not restarted"
    );
    assert!(wait_subscribed(&emu, &[topic("ceshi")]));
    // The new echo instance subscribes again; give it a moment to be routed to.
    assert!(
        wait_until(WAIT, || {
            emu.publish_to_device(PK, DN, &topic("ceshi"), b"again", 1)
                .is_ok()
                && emu
                    .wait_for_uplink(PK, DN, Duration::from_millis(500), |u| {
                        u.payload == b"echo:again"
                    })
                    .is_some()
        }),
        "the restarted echo works"
    );
}
