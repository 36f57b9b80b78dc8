//! End-to-end MQTT tests against the emulator with real clients (rumqttc 3.1.1 and 5).

mod common;

use std::time::Duration;

use aliot_emulator::sign::{SignMethod, hmac_hex, login_sign_content};
use aliot_emulator::{Emulator, EmulatorConfig, EmulatorError};
use common::*;

fn start() -> Emulator {
    Emulator::start(EmulatorConfig::demo()).expect("emulator starts")
}

fn connect(emu: &Emulator, v: u8, c: &Creds) -> TestClient {
    TestClient::connect(v, emu.mqtt_addr().port(), c, None)
}

fn online(emu: &Emulator, v: u8, dn: &str, ds: &str) -> TestClient {
    let c = connect(emu, v, &sdk_creds(PK, dn, ds));
    assert_eq!(c.connack(), Ok(()));
    assert!(emu.wait_online(PK, dn, WAIT));
    c
}

/// Online without `_ss=1`: every downlink needs the device's own SUBSCRIBE.
fn online_without_ss(emu: &Emulator, v: u8, dn: &str, ds: &str) -> TestClient {
    let c = connect(emu, v, &without_ss(sdk_creds(PK, dn, ds)));
    assert_eq!(c.connack(), Ok(()));
    assert!(emu.wait_online(PK, dn, WAIT));
    c
}

fn device(emu: &Emulator, dn: &str) -> aliot_emulator::DeviceState {
    emu.devices()
        .into_iter()
        .find(|d| d.product_key == PK && d.device_name == dn)
        .expect("device listed")
}

#[test]
fn sdk_and_luatos_logins_accepted_on_both_versions() {
    let emu = start();
    for v in [4u8, 5] {
        for creds in [sdk_creds(PK, DN, DS), luatos_creds(PK, DN, DS)] {
            let c = connect(&emu, v, &creds);
            assert_eq!(c.connack(), Ok(()), "v{v} {creds:?}");
            assert!(emu.wait_online(PK, DN, WAIT));
            c.disconnect();
            assert!(emu.wait_offline(PK, DN, WAIT), "offline after DISCONNECT");
        }
    }
    let logins = emu.logins(PK, DN);
    assert_eq!(logins.len(), 4);
    assert!(logins.iter().all(|l| l.accepted && !l.tls));
    assert_eq!(logins.iter().filter(|l| l.mqtt_version == 5).count(), 2);
    assert!(
        emu.devices()
            .iter()
            .any(|d| d.device_name == DN && d.activated)
    );
}

#[test]
fn lowercase_hex_and_case_insensitive_signmethod_accepted() {
    let emu = start();
    let mut c = sdk_creds(PK, DN, DS);
    c.password = c.password.to_lowercase();
    c.client_id = c.client_id.replace("hmacsha256", "HmacSHA256");
    let cl = connect(&emu, 4, &c);
    assert_eq!(cl.connack(), Ok(()));
}

#[test]
fn sign_without_timestamp_and_default_hmacmd5() {
    let emu = start();
    // No signmethod -> hmacmd5; no timestamp -> not in the sign content.
    let content = login_sign_content(Some("dev1"), DN, PK, None);
    let c = Creds {
        client_id: "dev1|securemode=3|".into(),
        username: format!("{DN}&{PK}"),
        password: hmac_hex(SignMethod::HmacMd5, DS.as_bytes(), content.as_bytes()),
        keep_alive: 60,
    };
    assert_eq!(connect(&emu, 5, &c).connack(), Ok(()));
}

#[test]
fn bad_password_is_refused_with_code_4_and_0x86() {
    let emu = start();
    let mut c = sdk_creds(PK, DN, DS2); // the other device's secret
    assert_eq!(
        connect(&emu, 4, &c).connack(),
        Err("BadUserNamePassword".into())
    );
    assert_eq!(
        connect(&emu, 5, &c).connack(),
        Err("BadUserNamePassword".into())
    );
    c = sdk_creds(PK, "no-such-device", DS);
    assert_eq!(
        connect(&emu, 4, &c).connack(),
        Err("BadUserNamePassword".into())
    );
    c = sdk_creds(PK, DN, DS);
    c.username = format!("{PK}&{DN}"); // swapped
    assert_eq!(
        connect(&emu, 4, &c).connack(),
        Err("BadUserNamePassword".into())
    );
    c = sdk_creds(PK, DN, DS);
    c.client_id = c.client_id.replace("hmacsha256", "hmacsha512");
    assert_eq!(
        connect(&emu, 4, &c).connack(),
        Err("BadUserNamePassword".into())
    );
    let l = emu.logins(PK, DN);
    assert!(
        l.len() >= 3 && l.iter().all(|r| !r.accepted && !r.reason.is_empty()),
        "{l:?}"
    );
    assert!(!emu.is_online(PK, DN));
    let d = emu
        .devices()
        .into_iter()
        .find(|d| d.device_name == DN)
        .expect("device");
    assert!(!d.activated, "a refused login must not activate");
}

#[test]
fn keepalive_outside_30_to_1200_is_refused() {
    let emu = start();
    for (ka, ok) in [(29u64, false), (30, true), (1200, true), (1201, false)] {
        let mut c = sdk_creds(PK, DN, DS);
        c.keep_alive = ka;
        let r = connect(&emu, 4, &c).connack();
        assert_eq!(r.is_ok(), ok, "keepalive {ka}: {r:?}");
        let r5 = connect(&emu, 5, &c).connack();
        assert_eq!(r5.is_ok(), ok, "v5 keepalive {ka}: {r5:?}");
    }
}

#[test]
fn malformed_client_id_is_refused() {
    let emu = start();
    let mut c = sdk_creds(PK, DN, DS);
    c.client_id = c.client_id.trim_end_matches('|').to_string();
    assert_eq!(connect(&emu, 4, &c).connack(), Err("BadClientId".into()));
}

#[test]
fn second_login_kicks_the_first() {
    let emu = start();
    for v in [4u8, 5] {
        let a = online(&emu, v, DN, DS);
        let b = connect(&emu, v, &sdk_creds(PK, DN, DS));
        assert_eq!(b.connack(), Ok(()));
        let seen = a.wait_closed().expect("first session closed");
        if v == 5 {
            assert_eq!(seen, Ev::Disconnect("SessionTakenOver".into()));
        }
        assert!(emu.is_online(PK, DN), "second session stays");
        // the second session still works
        b.publish(&format!("/{PK}/{DN}/user/update"), 1, b"after-kick");
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"after-kick")
                .is_some()
        );
        b.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}

#[test]
fn subscribe_rights_give_suback_failures() {
    let emu = start();
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        let ok = c.subscribe(&format!("/{PK}/{DN}/user/get"), 1);
        assert!(ok[0].starts_with("Success"), "{ok:?}");
        let ok2 = c.subscribe(&format!("/ota/device/upgrade/{PK}/{DN}"), 1);
        assert!(ok2[0].starts_with("Success"), "{ok2:?}");
        for bad in [
            format!("/{PK}/{DN}/user/update"), // publish-only category
            format!("/{PK}/{DN2}/user/get"),   // another device
            "#".to_string(),
            format!("/{PK}/{DN}/user/nope"),
        ] {
            let r = c.subscribe(&bad, 1);
            assert!(!r[0].starts_with("Success"), "{bad}: {r:?}");
        }
        // QoS 2 is granted as QoS 1
        let q = c.subscribe(&format!("/{PK}/{DN}/user/ceshi"), 2);
        assert!(q[0].contains("AtLeastOnce"), "{q:?}");
        let subs = emu.subscriptions(PK, DN);
        assert_eq!(subs.len(), 3, "{subs:?}");
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}

#[test]
fn uplinks_are_logged_in_order_and_refused_ones_marked() {
    let emu = start();
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        let good = format!("/{PK}/{DN}/user/update");
        let bad = format!("/{PK}/{DN}/user/get"); // subscribe-only
        for i in 0..5 {
            c.publish(&good, i % 2, format!("v{v}-{i}").as_bytes());
        }
        c.publish(&bad, 1, format!("v{v}-bad").as_bytes());
        c.publish(
            &format!("/sys/{PK}/{DN}/thing/event/property/post"),
            1,
            b"{}",
        );
        let last = format!("v{v}-last");
        c.publish(&good, 1, last.as_bytes());
        let u = emu
            .wait_for_uplink(PK, DN, WAIT, |u| u.payload == last.as_bytes())
            .expect("last arrives");
        assert!(u.refused.is_none());
        let ups: Vec<_> = emu
            .uplinks(PK, DN)
            .into_iter()
            .filter(|u| u.payload.starts_with(format!("v{v}-").as_bytes()))
            .collect();
        let order: Vec<String> = ups
            .iter()
            .map(|u| String::from_utf8_lossy(&u.payload).to_string())
            .collect();
        let want: Vec<String> = (0..5)
            .map(|i| format!("v{v}-{i}"))
            .chain([format!("v{v}-bad"), last.clone()])
            .collect();
        assert_eq!(order, want);
        let badup = ups.iter().find(|u| u.topic == bad).expect("bad recorded");
        assert!(badup.refused.is_some());
        if v == 5 {
            // MQTT 5 says why in the PUBACK.
            assert!(
                c.wait(|e| *e == Ev::PubAck("NotAuthorized".into()))
                    .is_some()
            );
        }
        assert_eq!(ups[1].qos, 1);
        assert_eq!(ups[0].qos, 0);
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}

#[test]
fn qos2_and_retain_are_refused() {
    let emu = start();
    let c = online(&emu, 4, DN, DS);
    let t = format!("/{PK}/{DN}/user/update");
    c.publish_retained(&t, b"retained");
    let u = emu
        .wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"retained")
        .expect("recorded");
    assert!(u.refused.is_some(), "{u:?}");
    assert!(u.refused.as_deref().is_some_and(|r| r.contains("retain")));
    c.publish(&t, 2, b"qos2");
    let u = emu
        .wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"qos2")
        .expect("recorded");
    assert!(u.refused.as_deref().is_some_and(|r| r.contains("QoS 2")));
    assert!(
        c.wait_closed().is_some(),
        "QoS 2 publish closes the connection"
    );
}

#[test]
fn publish_to_device_delivers_only_to_subscribed_allowed_topics() {
    let emu = start();
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        let get = format!("/{PK}/{DN}/user/get");
        assert!(matches!(
            emu.publish_to_device(PK, DN, &get, b"x", 1),
            Err(EmulatorError::NotSubscribed(_))
        ));
        assert!(c.subscribe(&get, 1)[0].starts_with("Success"));
        emu.publish_to_device(PK, DN, &get, b"hello-1", 1)
            .expect("delivered");
        emu.publish_to_device(PK, DN, &get, b"hello-0", 0)
            .expect("delivered");
        assert_eq!(c.wait_publish(&get), Some(b"hello-1".to_vec()));
        assert_eq!(c.wait_publish(&get), Some(b"hello-0".to_vec()));
        let upd = format!("/{PK}/{DN}/user/update");
        assert!(matches!(
            emu.publish_to_device(PK, DN, &upd, b"x", 0),
            Err(EmulatorError::TopicNotAllowed(_))
        ));
        let get2 = format!("/{PK}/{DN2}/user/get");
        assert!(matches!(
            emu.publish_to_device(PK, DN2, &get2, b"x", 0),
            Err(EmulatorError::NotOnline(_))
        ));
        assert!(matches!(
            emu.publish_to_device(PK, "ghost", &get, b"x", 0),
            Err(EmulatorError::UnknownDevice(_))
        ));
        assert_eq!(
            emu.downlinks(PK, DN)
                .iter()
                .filter(|d| d.topic == get)
                .count(),
            2 * (v as usize - 3)
        );
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}

#[test]
fn ntp_request_is_answered() {
    let emu = start();
    let c = online(&emu, 4, DN, DS);
    let resp = format!("/ext/ntp/{PK}/{DN}/response");
    assert!(c.subscribe(&resp, 0)[0].starts_with("Success"));
    c.publish(
        &format!("/ext/ntp/{PK}/{DN}/request"),
        0,
        br#"{"deviceSendTime":"1234"}"#,
    );
    let p = c.wait_publish(&resp).expect("NTP reply");
    let v: serde_json::Value = serde_json::from_slice(&p).expect("json");
    assert_eq!(v["deviceSendTime"], "1234");
    assert!(
        v["serverRecvTime"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok())
    );

    // The platform's clock set a day ahead: the next answer says so.
    const DAY_MS: i64 = 86_400_000;
    emu.set_clock_offset(DAY_MS);
    let host_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = host_ms();
    c.publish(
        &format!("/ext/ntp/{PK}/{DN}/request"),
        0,
        br#"{"deviceSendTime":"5678"}"#,
    );
    let p = c.wait_publish(&resp).expect("second NTP reply");
    let after = host_ms();
    let v: serde_json::Value = serde_json::from_slice(&p).expect("json");
    assert_eq!(v["deviceSendTime"], "5678");
    let server: i64 = v["serverSendTime"].as_str().unwrap().parse().unwrap();
    assert!(
        (before + DAY_MS..=after + DAY_MS).contains(&server),
        "{server} not a day ahead of [{before}, {after}]"
    );
}

/// With the product's TSL loaded, property and event posts are checked as the platform does:
/// a value out of range, of the wrong type or for an unknown identifier is answered 460 and
/// not stored; a good one is answered 200 and kept.
#[test]
fn thing_model_posts_are_checked_against_the_tsl() {
    let emu = start();
    let tsl = r#"{"properties":[
        {"identifier":"temperature","accessMode":"r","dataType":{"type":"float","specs":{"min":"-40","max":"120"}}},
        {"identifier":"interval","accessMode":"rw","dataType":{"type":"int","specs":{"min":"5","max":"3600"}}}],
      "events":[{"identifier":"overheat","outputData":[
        {"identifier":"temperature","dataType":{"type":"float","specs":{"min":"-40","max":"120"}}}]}]}"#;
    emu.load_thing_model(PK, tsl).expect("TSL loads");
    let c = online(&emu, 4, DN, DS);
    let sys = format!("/sys/{PK}/{DN}/thing/event");
    assert!(c.subscribe(&format!("{sys}/+/post_reply"), 0)[0].starts_with("Success"));
    let post = |id: &str, params: &str| {
        let body = format!(
            r#"{{"id":"{id}","version":"1.0","params":{params},"method":"thing.event.property.post"}}"#
        );
        c.publish(&format!("{sys}/property/post"), 0, body.as_bytes());
        let reply = c
            .wait_publish(&format!("{sys}/property/post_reply"))
            .expect("reply");
        let v: serde_json::Value = serde_json::from_slice(&reply).expect("json");
        assert_eq!(v["id"], id, "{v}");
        v
    };
    assert_eq!(post("1", r#"{"temperature":121.0}"#)["code"], 460);
    assert_eq!(post("2", r#"{"interval":"60"}"#)["code"], 460);
    let v = post("3", r#"{"pressure":1}"#);
    assert_eq!(v["code"], 460);
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("pressure")),
        "{v}"
    );
    assert!(
        emu.thing_properties(PK, DN).is_empty(),
        "nothing refused is stored"
    );
    assert_eq!(
        post("4", r#"{"temperature":21.5,"interval":60}"#)["code"],
        200
    );
    let props = emu.thing_properties(PK, DN);
    assert_eq!(props["temperature"], 21.5);
    assert_eq!(props["interval"], 60);
    // Events: checked against their outputData.
    c.publish(
        &format!("{sys}/overheat/post"),
        0,
        br#"{"id":"5","params":{"temperature":130}}"#,
    );
    let r = c
        .wait_publish(&format!("{sys}/overheat/post_reply"))
        .expect("reply");
    assert!(
        String::from_utf8_lossy(&r).contains("460"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    c.publish(
        &format!("{sys}/overheat/post"),
        0,
        br#"{"id":"6","params":{"temperature":99}}"#,
    );
    assert!(
        c.wait_publish(&format!("{sys}/overheat/post_reply"))
            .is_some()
    );
    let events = emu.thing_events(PK, DN);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].identifier, "overheat");
    assert_eq!(events[0].params["temperature"], 99);
    // The cloud may not set a read-only property, nor one out of range.
    let r = emu.set_properties(PK, DN, serde_json::json!({"temperature": 20}), WAIT);
    assert!(matches!(r, Err(EmulatorError::InvalidRequest(_))), "{r:?}");
    let r = emu.set_properties(PK, DN, serde_json::json!({"interval": 1}), WAIT);
    assert!(matches!(r, Err(EmulatorError::InvalidRequest(_))), "{r:?}");
}

#[test]
fn kick_and_drop_end_the_session() {
    let emu = start();
    let c = online(&emu, 5, DN, DS);
    assert!(emu.kick(PK, DN));
    assert_eq!(
        c.wait_closed(),
        Some(Ev::Disconnect("SessionTakenOver".into()))
    );
    assert!(!emu.is_online(PK, DN));
    assert!(!emu.kick(PK, DN), "kicking an offline device reports false");
    let c = online(&emu, 4, DN, DS);
    assert!(emu.drop_connection(PK, DN));
    assert!(matches!(c.wait_closed(), Some(Ev::Closed(_))));
    assert!(!emu.is_online(PK, DN));
    assert!(!emu.drop_connection(PK, DN));
}

#[test]
fn a_client_disconnect_is_recorded_and_a_dropped_connection_is_not() {
    for v in [4, 5] {
        let emu = start();
        let c = online(&emu, v, DN, DS);
        assert!(emu.drop_connection(PK, DN));
        assert!(matches!(c.wait_closed(), Some(Ev::Closed(_))));
        assert!(
            emu.client_disconnects(PK, DN).is_empty(),
            "v{v}: no DISCONNECT"
        );
        let c = online(&emu, v, DN, DS);
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT), "v{v}");
        assert_eq!(emu.client_disconnects(PK, DN).len(), 1, "v{v}");
    }
}

#[test]
fn refuse_connections_fault() {
    let emu = start();
    emu.refuse_connections_for(Duration::from_millis(500));
    assert_eq!(
        connect(&emu, 4, &sdk_creds(PK, DN, DS)).connack(),
        Err("ServiceUnavailable".into())
    );
    assert_eq!(
        connect(&emu, 5, &sdk_creds(PK, DN, DS)).connack(),
        Err("ServerUnavailable".into())
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(connect(&emu, 4, &sdk_creds(PK, DN, DS)).connack(), Ok(()));
    assert!(
        emu.logins(PK, DN)
            .iter()
            .any(|l| !l.accepted && l.reason.contains("fault"))
    );
}

#[test]
fn latency_fault_still_delivers() {
    let emu = start();
    emu.set_packet_latency(Duration::from_millis(100));
    let c = online(&emu, 4, DN, DS);
    c.publish(&format!("/{PK}/{DN}/user/update"), 1, b"slow");
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"slow")
            .is_some()
    );
    emu.set_packet_latency(Duration::ZERO);
}

/// Sends the client a message after its last PUBLISH was handled (an unheld PUBACK would be
/// ahead of it) and checks that no PUBACK came before it. The client must be subscribed to
/// `user/get`.
fn assert_no_puback_yet(emu: &Emulator, c: &TestClient) {
    let get = format!("/{PK}/{DN}/user/get");
    emu.publish_to_device(PK, DN, &get, b"barrier", 0)
        .expect("deliverable");
    let mut seen = Vec::new();
    while let Some(e) = c.wait(|_| true) {
        let last = matches!(&e, Ev::Publish { payload, .. } if payload == b"barrier");
        seen.push(e);
        if last {
            break;
        }
    }
    assert!(
        matches!(seen.last(), Some(Ev::Publish { .. })),
        "the barrier arrives: {seen:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, Ev::PubAck(_))),
        "PUBACK while held: {seen:?}"
    );
}

/// `hold_pubacks`: a QoS 1 PUBLISH stays unacknowledged until the hold is released.
#[test]
fn held_pubacks_go_out_when_released() {
    let emu = start();
    let update = format!("/{PK}/{DN}/user/update");
    let get = format!("/{PK}/{DN}/user/get");
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        assert!(c.subscribe(&get, 1)[0].starts_with("Success"));
        c.publish(&update, 1, b"before");
        assert!(c.wait(|e| matches!(e, Ev::PubAck(_))).is_some());
        assert!(emu.hold_pubacks(PK, DN));
        let payload = format!("held-v{v}");
        c.publish(&update, 1, payload.as_bytes());
        let up = emu
            .wait_for_uplink(PK, DN, WAIT, |u| u.payload == payload.as_bytes())
            .expect("received");
        assert!(up.ack_held, "v{v}: recorded as held: {up:?}");
        assert_no_puback_yet(&emu, &c);
        assert!(emu.release_pubacks(PK, DN));
        assert!(
            c.wait(|e| matches!(e, Ev::PubAck(_))).is_some(),
            "v{v}: PUBACK after the release"
        );
        let before = emu
            .uplinks(PK, DN)
            .into_iter()
            .filter(|u| u.payload == b"before")
            .collect::<Vec<_>>();
        assert!(before.iter().all(|u| !u.ack_held), "{before:?}");
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
    assert!(!emu.hold_pubacks(PK, DN), "offline: nothing to hold");
    assert!(!emu.release_pubacks(PK, DN));
}

/// A hold ends with its session, which never acknowledges the held messages; the next session
/// of the device is not held, and a client leaving while held does not wedge the emulator.
#[test]
fn a_hold_ends_with_its_session_unacknowledged() {
    let emu = start();
    let update = format!("/{PK}/{DN}/user/update");
    let get = format!("/{PK}/{DN}/user/get");
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        assert!(c.subscribe(&get, 1)[0].starts_with("Success"));
        assert!(emu.hold_pubacks(PK, DN));
        c.publish(&update, 1, b"in-flight");
        let up = emu
            .wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"in-flight" && u.ack_held)
            .expect("received, PUBACK held");
        assert!(up.refused.is_none());
        assert_no_puback_yet(&emu, &c);
        assert!(emu.kick(PK, DN));
        let mut events = Vec::new();
        let end = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < end {
            match c.events.recv_timeout(Duration::from_millis(100)) {
                Ok(e @ (Ev::Disconnect(_) | Ev::Closed(_))) => {
                    events.push(e);
                    break;
                }
                Ok(e) => events.push(e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        assert!(
            matches!(events.last(), Some(Ev::Disconnect(_) | Ev::Closed(_))),
            "v{v}: kicked: {events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, Ev::PubAck(_))),
            "v{v}: a held PUBACK went out at the session's end: {events:?}"
        );
        assert!(emu.wait_offline(PK, DN, WAIT));

        let c2 = online(&emu, v, DN, DS);
        c2.publish(&update, 1, b"next-session");
        assert!(
            c2.wait(|e| matches!(e, Ev::PubAck(_))).is_some(),
            "v{v}: the next session is acknowledged"
        );
        // Held again, then the client leaves on its own: the session still ends.
        assert!(emu.hold_pubacks(PK, DN));
        c2.publish(&update, 1, b"left-behind");
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"left-behind" && u.ack_held)
                .is_some()
        );
        c2.disconnect();
        assert!(
            emu.wait_offline(PK, DN, WAIT),
            "v{v}: a held PUBACK keeps the session alive"
        );
    }
    let next = emu
        .uplinks(PK, DN)
        .into_iter()
        .filter(|u| u.payload == b"next-session")
        .collect::<Vec<_>>();
    assert!(next.iter().all(|u| !u.ack_held), "{next:?}");
}

#[test]
fn will_on_311_is_refused() {
    let emu = start();
    let creds = sdk_creds(PK, DN, DS);
    let mut o =
        rumqttc::MqttOptions::new(creds.client_id.clone(), "127.0.0.1", emu.mqtt_addr().port());
    o.set_credentials(creds.username, creds.password);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_last_will(rumqttc::LastWill::new(
        format!("/{PK}/{DN}/user/update"),
        "bye",
        rumqttc::QoS::AtMostOnce,
        false,
    ));
    let (_c, mut conn) = rumqttc::Client::new(o, 8);
    let first = conn.recv_timeout(WAIT).expect("an event");
    assert!(
        matches!(
            first,
            Err(rumqttc::ConnectionError::ConnectionRefused(
                rumqttc::ConnectReturnCode::NotAuthorized
            ))
        ),
        "{first:?}"
    );
}

#[test]
fn drop_frees_the_ports() {
    let emu = start();
    let port = emu.mqtt_addr().port();
    drop(emu);
    let l = std::net::TcpListener::bind(("127.0.0.1", port));
    assert!(l.is_ok(), "port {port} still busy after drop");
}

#[test]
fn usable_from_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let emu = Emulator::start(EmulatorConfig::demo()).expect("start inside tokio");
        assert_eq!(emu.devices().len(), 4);
        assert!(!emu.kick(PK, DN));
        assert!(
            emu.publish_to_device(PK, DN, &format!("/{PK}/{DN}/user/get"), b"x", 0)
                .is_err()
        );
        emu.set_packet_latency(Duration::ZERO);
        drop(emu);
    });
}

#[test]
fn property_post_is_answered_only_when_subscribed_and_acked() {
    let emu = start();
    let c = online_without_ss(&emu, 5, DN, DS);
    let post = format!("/sys/{PK}/{DN}/thing/event/property/post");
    let reply = format!("{post}_reply");
    c.publish(
        &post,
        1,
        br#"{"id":"1","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#,
    );
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.topic == post)
            .is_some()
    );
    assert!(
        emu.downlinks(PK, DN).is_empty(),
        "no reply without a subscription"
    );
    assert!(c.subscribe(&format!("/sys/{PK}/{DN}/thing/#"), 1)[0].starts_with("Success"));
    c.publish(
        &post,
        1,
        br#"{"id":"2","version":"1.0","sys":{"ack":0},"params":{}}"#,
    );
    c.publish(&post, 1, br#"{"id":"3","version":"1.0","params":{"t":2}}"#);
    let r: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&reply).expect("reply")).expect("json");
    assert_eq!(r["id"], "3", "ack:0 gets no reply");
    assert_eq!(r["code"], 200);
    assert_eq!(r["method"], "thing.event.property.post");
}

#[test]
fn rrpc_round_trip() {
    let emu = start();
    let c = online_without_ss(&emu, 4, DN, DS);
    assert!(
        emu.rrpc(PK, DN, b"ping", Duration::from_millis(200))
            .is_err(),
        "not subscribed"
    );
    assert!(c.subscribe(&format!("/sys/{PK}/{DN}/rrpc/request/+"), 0)[0].starts_with("Success"));
    let t = std::thread::spawn({
        let prefix = format!("/sys/{PK}/{DN}/rrpc/request/");
        move || {
            let ev =
                c.wait(|e| matches!(e, Ev::Publish { topic, .. } if topic.starts_with(&prefix)));
            if let Some(Ev::Publish { topic, payload, .. }) = ev {
                let id = topic.rsplit('/').next().unwrap_or("").to_string();
                let mut answer = b"pong:".to_vec();
                answer.extend(payload);
                c.publish(&format!("/sys/{PK}/{DN}/rrpc/response/{id}"), 0, &answer);
            }
            c
        }
    });
    let answer = emu.rrpc(PK, DN, b"ping", WAIT).expect("sent");
    assert_eq!(answer, Some(b"pong:ping".to_vec()));
    let _c = t.join().expect("device thread");
}

/// MQTT remaining-length encoding (for the hand-built packets below).
fn remaining_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

#[test]
fn dup_resends_are_logged_as_separate_entries() {
    use std::io::{Read, Write};
    let emu = start();
    let c = sdk_creds(PK, DN, DS);
    let mut s = std::net::TcpStream::connect(emu.mqtt_addr()).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    // CONNECT, MQTT 3.1.1, clean session, username + password, keep-alive 60
    let mut body = Vec::new();
    mqtt_str(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0xC2, 0, 60]);
    mqtt_str(c.client_id.as_bytes(), &mut body);
    mqtt_str(c.username.as_bytes(), &mut body);
    mqtt_str(c.password.as_bytes(), &mut body);
    let mut pkt = vec![0x10];
    remaining_len(body.len(), &mut pkt);
    pkt.extend(body);
    s.write_all(&pkt).expect("write");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("connack");
    assert_eq!(connack, [0x20, 2, 0, 0]);
    // The same QoS 1 PUBLISH (packet id 7) first without, then with DUP.
    let topic = format!("/{PK}/{DN}/user/update");
    for header in [0x32u8, 0x3A] {
        let mut body = Vec::new();
        mqtt_str(topic.as_bytes(), &mut body);
        body.extend_from_slice(&[0, 7]);
        body.extend_from_slice(b"same-message");
        let mut pkt = vec![header];
        remaining_len(body.len(), &mut pkt);
        pkt.extend(body);
        s.write_all(&pkt).expect("write publish");
        let mut puback = [0u8; 4];
        s.read_exact(&mut puback).expect("puback");
        assert_eq!(puback, [0x40, 2, 0, 7]);
    }
    let ups: Vec<_> = emu
        .uplinks(PK, DN)
        .into_iter()
        .filter(|u| u.payload == b"same-message")
        .collect();
    assert_eq!(ups.len(), 2, "{ups:?}");
    assert!(!ups[0].dup && ups[1].dup);
}

#[test]
fn add_device_through_the_rust_api() {
    let emu = start();
    let secret = emu
        .add_device(PK, "added-dev", None)
        .expect("added")
        .expect("secret generated");
    assert_eq!(
        emu.device_secret(PK, "added-dev").as_deref(),
        Some(secret.as_str())
    );
    assert!(
        emu.add_device(PK, "added-dev", None).is_err(),
        "names are unique"
    );
    assert!(emu.add_device("nope", "x-dev", None).is_err());
    let c = connect(&emu, 4, &sdk_creds(PK, "added-dev", &secret));
    assert_eq!(c.connack(), Ok(()));
}

#[test]
fn mqtt5_sticky_product_refuses_a_later_311_login() {
    let mut cfg = EmulatorConfig::demo();
    cfg.registry.products[0].mqtt5_sticky = true;
    let emu = Emulator::start(cfg).expect("start");
    // 3.1.1 first is fine, then 5, then 3.1.1 is refused
    let c = online(&emu, 4, DN, DS);
    c.disconnect();
    assert!(emu.wait_offline(PK, DN, WAIT));
    let c = online(&emu, 5, DN, DS);
    c.disconnect();
    assert!(emu.wait_offline(PK, DN, WAIT));
    assert_eq!(
        connect(&emu, 4, &sdk_creds(PK, DN, DS)).connack(),
        Err("NotAuthorized".into())
    );
    assert_eq!(connect(&emu, 5, &sdk_creds(PK, DN, DS)).connack(), Ok(()));
    // the other device is not affected
    assert_eq!(connect(&emu, 4, &sdk_creds(PK, DN2, DS2)).connack(), Ok(()));
}

#[test]
fn many_qos1_messages_arrive_complete_and_in_order() {
    let emu = start();
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        let t = format!("/{PK}/{DN}/user/update");
        for i in 0..300 {
            c.publish(&t, 1, format!("m{v}-{i}").as_bytes());
        }
        let last = format!("m{v}-299");
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == last.as_bytes())
                .is_some()
        );
        let got: Vec<String> = emu
            .uplinks(PK, DN)
            .into_iter()
            .filter(|u| u.payload.starts_with(format!("m{v}-").as_bytes()))
            .map(|u| String::from_utf8_lossy(&u.payload).to_string())
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("m{v}-{i}")).collect();
        assert_eq!(got, want);
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}

/// `_ss=1` in the clientId: the platform subscribes the session to its `/sys/pk/dn/...`
/// topics itself (Link SDK and linkkit never SUBSCRIBE e.g. `..._reply`); nothing else.
#[test]
fn ss1_login_gets_sys_downlinks_without_subscribe() {
    let emu = start();
    for v in [4u8, 5] {
        let c = online(&emu, v, DN, DS);
        let d = device(&emu, DN);
        assert_eq!(d.auto_subscriptions, vec![format!("/sys/{PK}/{DN}/#")]);
        assert!(d.subscriptions.is_empty(), "no SUBSCRIBE was sent");
        assert!(
            emu.logins(PK, DN)
                .last()
                .is_some_and(|l| l.reason.contains("_ss=1")),
            "the login record says so"
        );
        // automatic reply, no SUBSCRIBE
        let post = format!("/sys/{PK}/{DN}/thing/event/property/post");
        c.publish(
            &post,
            1,
            format!(r#"{{"id":"{v}","params":{{}}}}"#).as_bytes(),
        );
        let r: serde_json::Value =
            serde_json::from_slice(&c.wait_publish(&format!("{post}_reply")).expect("reply"))
                .expect("json");
        assert_eq!(r["id"], v.to_string());
        // cloud-initiated /sys downlink (property set), no SUBSCRIBE
        let set = format!("/sys/{PK}/{DN}/thing/service/property/set");
        emu.publish_to_device(PK, DN, &set, b"{}", 0)
            .expect("delivered through the platform's subscription");
        assert_eq!(c.wait_publish(&set), Some(b"{}".to_vec()));
        // outside /sys/pk/dn/: still only through the device's own SUBSCRIBE
        assert!(matches!(
            emu.publish_to_device(PK, DN, &format!("/{PK}/{DN}/user/get"), b"x", 0),
            Err(EmulatorError::NotSubscribed(_))
        ));
        let ntp = format!("/ext/ntp/{PK}/{DN}/request");
        c.publish(&ntp, 0, br#"{"deviceSendTime":"1"}"#);
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.topic == ntp)
                .is_some()
        );
        assert!(
            !emu.downlinks(PK, DN)
                .iter()
                .any(|d| d.topic.starts_with("/ext/ntp/")),
            "no NTP answer without a SUBSCRIBE"
        );
        // another device's /sys topics are not included
        assert!(matches!(
            emu.publish_to_device(
                PK,
                DN2,
                &format!("/sys/{PK}/{DN2}/thing/service/property/set"),
                b"x",
                0
            ),
            Err(EmulatorError::NotOnline(_))
        ));
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
        assert!(device(&emu, DN).auto_subscriptions.is_empty(), "offline");
    }
}

/// Without `_ss=1` (or with `_ss=0`) nothing is subscribed for the device.
#[test]
fn without_ss1_sys_downlinks_need_a_subscribe() {
    let emu = start();
    for ss in ["", "_ss=0,"] {
        let mut creds = without_ss(sdk_creds(PK, DN, DS));
        creds.client_id = creds
            .client_id
            .replace("|timestamp", &format!("|{ss}timestamp"));
        let c = connect(&emu, 4, &creds);
        assert_eq!(c.connack(), Ok(()), "{}", creds.client_id);
        assert!(emu.wait_online(PK, DN, WAIT));
        assert!(device(&emu, DN).auto_subscriptions.is_empty());
        let set = format!("/sys/{PK}/{DN}/thing/service/property/set");
        assert!(matches!(
            emu.publish_to_device(PK, DN, &set, b"{}", 0),
            Err(EmulatorError::NotSubscribed(_))
        ));
        let post = format!("/sys/{PK}/{DN}/thing/event/property/post");
        c.publish(&post, 1, br#"{"id":"1","params":{}}"#);
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.topic == post)
                .is_some()
        );
        assert!(
            emu.downlinks(PK, DN).is_empty(),
            "no reply without a subscription"
        );
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
}
