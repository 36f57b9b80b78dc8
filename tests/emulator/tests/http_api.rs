//! The cloud HTTP JSON API, driven with a real HTTP client while real MQTT clients are online.

mod common;

use aliot_emulator::{Emulator, EmulatorConfig};
use common::*;
use serde_json::json;

#[test]
fn devices_uplinks_publish_kick_over_http() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let agent = http_agent(None);

    let (st, devs) = get_json(&agent, &format!("{base}/api/devices"));
    assert_eq!(st, 200);
    assert_eq!(devs.as_array().map(Vec::len), Some(4));
    assert!(
        !devs.to_string().contains(DS),
        "secrets never in the device list"
    );

    let c = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c.connack(), Ok(()));
    assert!(emu.wait_online(PK, DN, WAIT));
    let (_, d) = get_json(&agent, &format!("{base}/api/devices/{PK}/{DN}"));
    assert_eq!(d["online"], true);
    assert_eq!(d["mqtt_version"], 4);

    c.publish(&format!("/{PK}/{DN}/user/update"), 1, b"via-http");
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"via-http")
            .is_some()
    );
    let (_, ups) = get_json(&agent, &format!("{base}/api/devices/{PK}/{DN}/uplinks"));
    assert_eq!(ups[0]["payload"], "via-http");
    assert_eq!(ups[0]["qos"], 1);
    let (_, logins) = get_json(&agent, &format!("{base}/api/devices/{PK}/{DN}/logins"));
    assert_eq!(logins[0]["accepted"], true);

    let get = format!("/{PK}/{DN}/user/get");
    let (st, e) = post_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/publish"),
        json!({"topic": get, "payload": "x"}),
    );
    assert_eq!(st, 409, "not subscribed yet: {e}");
    assert!(c.subscribe(&get, 1)[0].starts_with("Success"));
    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/publish"),
        json!({"topic": get, "payload": "from-http", "qos": 1}),
    );
    assert_eq!(st, 200);
    assert_eq!(c.wait_publish(&get), Some(b"from-http".to_vec()));
    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/publish"),
        json!({"topic": format!("/{PK}/{DN}/user/update"), "payload": "x"}),
    );
    assert_eq!(st, 403);
    let (_, downs) = get_json(&agent, &format!("{base}/api/devices/{PK}/{DN}/downlinks"));
    assert_eq!(downs[0]["payload"], "from-http");

    let (st, k) = post_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/kick"),
        json!({}),
    );
    assert_eq!((st, k["was_online"].clone()), (200, json!(true)));
    assert!(c.wait_closed().is_some());
    assert!(!emu.is_online(PK, DN));

    let (st, _) = get_json(&agent, &format!("{base}/api/devices/{PK}/nope"));
    assert_eq!(st, 404);
}

#[test]
fn add_device_then_login_and_faults_over_http() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let agent = http_agent(None);
    let (st, r) = post_json(
        &agent,
        &format!("{base}/api/products/{PK}/devices"),
        json!({"name": "new-dev-9"}),
    );
    assert_eq!(st, 200, "{r}");
    let secret = r["device_secret"].as_str().expect("secret").to_string();
    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/products/{PK}/devices"),
        json!({"name": "new-dev-9"}),
    );
    assert_eq!(st, 400, "duplicate name");
    let c = TestClient::connect(
        5,
        emu.mqtt_addr().port(),
        &sdk_creds(PK, "new-dev-9", &secret),
        None,
    );
    assert_eq!(c.connack(), Ok(()));

    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/faults"),
        json!({"refuse_connections_ms": 60000}),
    );
    assert_eq!(st, 200);
    let c2 = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c2.connack(), Err("ServiceUnavailable".into()));
    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/faults"),
        json!({"refuse_connections_ms": 0}),
    );
    assert_eq!(st, 200);
    let c3 = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c3.connack(), Ok(()));
    assert!(emu.wait_online(PK, DN, WAIT));
    let (st, r) = post_json(
        &agent,
        &format!("{base}/api/faults"),
        json!({"hold_pubacks": [PK, DN]}),
    );
    assert_eq!(st, 200, "{r}");
    c3.publish(&format!("/{PK}/{DN}/user/update"), 1, b"held");
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"held")
            .is_some()
    );
    let (_, ups) = get_json(&agent, &format!("{base}/api/devices/{PK}/{DN}/uplinks"));
    let held = ups
        .as_array()
        .and_then(|a| a.iter().find(|u| u["payload"] == "held"))
        .cloned();
    assert_eq!(held.map(|u| u["ack_held"].clone()), Some(json!(true)));
    let (st, r) = post_json(
        &agent,
        &format!("{base}/api/faults"),
        json!({"release_pubacks": [PK, DN]}),
    );
    assert_eq!(st, 200, "{r}");
    assert!(
        c3.wait(|e| matches!(e, Ev::PubAck(_))).is_some(),
        "the PUBACK goes out on release"
    );
    let (st, _) = post_json(
        &agent,
        &format!("{base}/api/faults"),
        json!({"hold_pubacks": [PK, DN2]}),
    );
    assert_eq!(st, 409, "an offline device has no PUBACKs to hold");
    let (st, _) = post_json(&agent, &format!("{base}/api/faults"), json!({"bogus": 1}));
    assert!(st >= 400, "unknown fields are rejected");
}

#[test]
fn readme_mosquitto_password_is_right() {
    // The README shows a mosquitto_pub line for the demo device; its password must be the
    // hmacsha256 the platform expects for those exact parameters.
    let readme = include_str!("../README.md");
    let line = readme
        .lines()
        .find(|l| l.contains("mosquitto_pub") && l.contains(" -P "))
        .expect("mosquitto_pub line");
    let arg = |flag: &str| -> String {
        let rest = line.split(flag).nth(1).expect("flag present").trim_start();
        let v = if let Some(q) = rest.strip_prefix('\'') {
            q.split('\'').next()
        } else {
            rest.split_whitespace().next()
        };
        v.expect("value").to_string()
    };
    let (cid, user, pw) = (arg(" -i "), arg(" -u "), arg(" -P "));
    assert_eq!(user, format!("{DN}&{PK}"));
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = TestClient::connect(
        4,
        emu.mqtt_addr().port(),
        &Creds {
            client_id: cid,
            username: user,
            password: pw,
            keep_alive: 60,
        },
        None,
    );
    assert_eq!(c.connack(), Ok(()), "README credentials must log in");
}
