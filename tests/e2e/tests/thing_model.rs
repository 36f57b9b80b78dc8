//! The thing model end to end: the default manifest's `sensor` app, using only the API the
//! build generated from `manifest/tsl/sensor.json`, against the emulator holding the same TSL
//! and checking every post against it as the platform does.

mod common;

use common::*;
use serde_json::{Value, json};

const SYS: &str = "/sys/a1NrfDemo01/nrf9160-dk-01/thing";

fn tsl() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifest/tsl/sensor.json"
    );
    std::fs::read_to_string(path).expect("the default manifest's TSL")
}

/// The reply the device sent on `topic` for the request `id`, parsed.
fn wait_reply(emu: &aliot_emulator::Emulator, topic: &str, id: &str) -> Option<Value> {
    emu.wait_for_uplink(PK, DN, WAIT, |u| {
        u.topic == topic
            && serde_json::from_slice::<Value>(&u.payload)
                .ok()
                .is_some_and(|v| v["id"] == id)
    })
    .and_then(|u| serde_json::from_slice(&u.payload).ok())
}

#[test]
fn the_sensor_posts_accepts_a_set_answers_a_call_and_survives_bad_requests() {
    let emu = emulator();
    emu.load_thing_model(PK, &tsl()).expect("TSL loads");
    let device = Device::start(&emu, DeviceOptions::default());
    let filters = [
        format!("{SYS}/event/+/post_reply"),
        format!("{SYS}/service/property/set"),
        format!("{SYS}/service/+"),
    ];
    assert!(
        wait_subscribed(&emu, &filters),
        "the sensor subscribed to its thing-model filters: {:?}",
        emu.subscriptions(PK, DN)
    );

    // Post + reply: the first post is checked by the emulator against the TSL, stored, and
    // its 200 reaches the app.
    assert!(
        wait_until(WAIT, || emu
            .thing_properties(PK, DN)
            .contains_key("temperature")),
        "a property post was accepted: {:?}",
        emu.uplinks(PK, DN)
    );
    let props = emu.thing_properties(PK, DN);
    assert_eq!(props["report_interval"], 30, "{props:?}");
    assert!(
        props["humidity"]
            .as_i64()
            .is_some_and(|h| (40..=60).contains(&h))
    );
    assert!(
        device.wait_log("sensor: post 1 accepted", WAIT),
        "the app saw the platform's code: {}",
        device.log()
    );

    // Property set: applied, answered 200, and the new value posted at once.
    let reply = emu
        .set_properties(PK, DN, json!({"report_interval": 10}), WAIT)
        .expect("sent")
        .expect("answered");
    assert_eq!(reply["code"], 200, "{reply}");
    assert!(
        wait_until(WAIT, || emu.thing_properties(PK, DN)["report_interval"]
            == 10),
        "the set value was posted: {:?}",
        emu.thing_properties(PK, DN)
    );

    // Service call (async): typed input in, typed output back.
    let reply = emu
        .invoke_service(PK, DN, "calibrate", json!({"offset": -1.5}), WAIT)
        .expect("sent")
        .expect("answered");
    assert_eq!(reply["code"], 200, "{reply}");
    assert_eq!(reply["data"], json!({"applied": 1}), "{reply}");

    // Malformed downlinks: each gets an error reply (or, without a readable id or too long
    // for the app, none), and the app keeps running: same process, still answering.
    let pid = device.app_pid("sensor").expect("sensor runs");
    let set = format!("{SYS}/service/property/set");
    let call = format!("{SYS}/service/calibrate");
    emu.publish_to_device(
        PK,
        DN,
        &set,
        br#"{"id":"901","params":{"report_interval":"x"}}"#,
        1,
    )
    .unwrap();
    let r = wait_reply(&emu, &format!("{set}_reply"), "901").expect("wrong type answered");
    assert_eq!(r["code"], 460, "{r}");
    emu.publish_to_device(
        PK,
        DN,
        &set,
        br#"{"id":"902","params":{"report_interval":2}}"#,
        1,
    )
    .unwrap();
    let r = wait_reply(&emu, &format!("{set}_reply"), "902").expect("out of range answered");
    assert_eq!(r["code"], 460, "{r}");
    assert_eq!(r["message"], "report_interval", "{r}");
    emu.publish_to_device(PK, DN, &call, b"{not json", 1)
        .unwrap();
    let oversize = format!(
        r#"{{"id":"903","params":{{"offset":0.5}},"pad":"{}"}}"#,
        "x".repeat(600)
    );
    emu.publish_to_device(PK, DN, &call, oversize.as_bytes(), 1)
        .unwrap();
    // Still alive and well: a good call after the bad ones is answered.
    let reply = emu
        .invoke_service(PK, DN, "calibrate", json!({"offset": 0.5}), WAIT)
        .expect("sent")
        .expect("answered after the malformed ones");
    assert_eq!(reply["code"], 200, "{reply}");
    assert_eq!(
        device.app_pid("sensor"),
        Some(pid),
        "the sensor was not restarted"
    );
    assert!(
        !emu.uplinks(PK, DN)
            .iter()
            .any(|u| u.payload.windows(5).any(|w| w == b"\"903\"")),
        "the oversize call never reached the app (max_payload 512)"
    );
    // The range 2 was refused: the interval stayed 10.
    assert_eq!(emu.thing_properties(PK, DN)["report_interval"], 10);
}
