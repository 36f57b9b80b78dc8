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
    // sdk_creds send `_ss=1`: the platform holds the /sys subscription itself
    assert_eq!(
        d["auto_subscriptions"],
        json!([format!("/sys/{PK}/{DN}/#")])
    );
    assert_eq!(d["subscriptions"], json!([]));

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

/// A raw PUT/POST of the image bytes (what `curl --data-binary @image.bin` sends).
fn upload(
    agent: &ureq::Agent,
    url: &str,
    put: bool,
    ctype: &str,
    data: &[u8],
) -> (u16, serde_json::Value) {
    let req = if put { agent.put(url) } else { agent.post(url) };
    let mut r = req
        .header("content-type", ctype)
        .send(data)
        .expect("upload");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A 4 MiB image (far over the 32 KiB JSON limit) uploaded raw, used by a job created over
/// HTTP, pushed, and downloaded whole: digests and bytes match.
#[test]
fn large_firmware_raw_upload_job_and_download() {
    use md5::Digest;
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let agent = http_agent(None);
    let fw: Vec<u8> = (0..4usize << 20).map(|i| (i * 31 % 253) as u8).collect();
    let md5 = hex::encode(md5::Md5::digest(&fw));
    let sha256 = hex::encode(sha2::Sha256::digest(&fw));

    let (st, info) = upload(
        &agent,
        &format!("{base}/api/firmware/app-9.0.0.bin"),
        true,
        "application/octet-stream",
        &fw,
    );
    assert_eq!(st, 200, "{info}");
    assert_eq!(
        info,
        json!({"name": "app-9.0.0.bin", "size": fw.len(), "md5": md5, "sha256": sha256})
    );
    // curl --data-binary: POST with curl's default form content type; replaces the image
    let (st, info) = upload(
        &agent,
        &format!("{base}/api/firmware/app-9.0.0.bin"),
        false,
        "application/x-www-form-urlencoded",
        &fw,
    );
    assert_eq!((st, &info["sha256"]), (200, &json!(sha256)));

    let c = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c.connack(), Ok(()));
    assert!(emu.wait_online(PK, DN, WAIT));
    let (st, job) = post_json(
        &agent,
        &format!("{base}/api/ota/jobs"),
        json!({"product_key": PK, "device_names": [DN], "version": "9.0.0",
               "firmware": "app-9.0.0.bin", "digest": "sha256"}),
    );
    assert_eq!(st, 200, "{job}");
    let push = c
        .wait_publish(&format!("/ota/device/upgrade/{PK}/{DN}"))
        .expect("push");
    let v: serde_json::Value = serde_json::from_slice(&push).expect("json");
    assert_eq!(v["data"]["size"], fw.len());
    assert_eq!(v["data"]["sign"], sha256);
    assert_eq!(v["data"]["md5"], md5);
    let mut r = agent
        .get(v["data"]["url"].as_str().expect("url"))
        .call()
        .expect("download");
    assert_eq!(r.status().as_u16(), 200);
    let got = r
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .expect("body");
    assert_eq!(got.len(), fw.len());
    assert_eq!(hex::encode(sha2::Sha256::digest(&got)), sha256);
    assert!(got == fw);
    let (_, j) = get_json(&agent, &format!("{base}/api/ota/jobs/{}", job["id"]));
    assert_eq!(j["size"], fw.len());
}

/// The JSON upload keeps working, now past the old 32 KiB body limit.
#[test]
fn json_base64_job_over_32_kib() {
    use base64::Engine;
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let fw: Vec<u8> = (0..300_000usize).map(|i| (i % 256) as u8).collect();
    let (st, job) = post_json(
        &http_agent(None),
        &format!("{base}/api/ota/jobs"),
        json!({"product_key": PK, "device_names": [DN], "version": "9.1.0",
               "firmware_base64": base64::engine::general_purpose::STANDARD.encode(&fw)}),
    );
    assert_eq!(st, 200, "{job}");
    let id = aliot_emulator::JobId(job["id"].as_u64().expect("id"));
    assert_eq!(emu.ota_job(id).expect("job").size, fw.len());
}

/// Upload refusals: too large (413), bad name, empty, unknown or ambiguous firmware in a job.
#[test]
fn firmware_upload_refusals() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let agent = http_agent(None);
    let ct = "application/octet-stream";
    // Over the limit: refused on the announced Content-Length, before the body (a client
    // still writing it would see the connection reset), so the request is written by hand.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(emu.http_addr()).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        write!(
            s,
            "PUT /api/firmware/big.bin HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            aliot_emulator::MAX_FIRMWARE_UPLOAD + 1
        )
        .expect("write");
        let mut head = [0u8; 300];
        let n = s.read(&mut head).expect("answer");
        assert!(
            head.starts_with(b"HTTP/1.1 413"),
            "{}",
            String::from_utf8_lossy(&head[..n])
        );
    }
    let max = vec![1u8; aliot_emulator::MAX_FIRMWARE_UPLOAD];
    assert_eq!(
        upload(
            &agent,
            &format!("{base}/api/firmware/max.bin"),
            true,
            ct,
            &max
        )
        .0,
        200
    );
    assert_eq!(
        upload(
            &agent,
            &format!("{base}/api/firmware/a%20b"),
            true,
            ct,
            b"x"
        )
        .0,
        400
    );
    assert_eq!(
        upload(
            &agent,
            &format!("{base}/api/firmware/{}", "n".repeat(65)),
            true,
            ct,
            b"x"
        )
        .0,
        400
    );
    assert_eq!(
        upload(
            &agent,
            &format!("{base}/api/firmware/empty.bin"),
            true,
            ct,
            b""
        )
        .0,
        400
    );
    let job = |extra: serde_json::Value| {
        let mut b = json!({"product_key": PK, "device_names": [DN], "version": "1"});
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        post_json(&agent, &format!("{base}/api/ota/jobs"), b).0
    };
    assert_eq!(job(json!({"firmware": "nope.bin"})), 404);
    assert_eq!(
        job(json!({"firmware": "max.bin", "firmware_base64": "AA=="})),
        400
    );
    assert_eq!(job(json!({})), 400);
    assert_eq!(job(json!({"firmware": "max.bin"})), 200);
}

/// The thing model over HTTP: load a TSL, read what the device posted, set a property and
/// call a service (answered at once with the request sent; the device's reply is an uplink).
#[test]
fn thing_model_over_http() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let base = format!("http://{}", emu.http_addr());
    let agent = http_agent(None);
    let tsl = json!({"properties": [
        {"identifier": "interval", "accessMode": "rw", "dataType": {"type": "int", "specs": {"min": "5", "max": "60"}}}],
      "events": [{"identifier": "alarm", "outputData": []}],
      "services": [{"identifier": "reboot", "callType": "async", "inputData": [], "outputData": []}]});
    let mut r = agent
        .put(&format!("{base}/api/products/{PK}/thing_model"))
        .header("content-type", "application/json")
        .send(tsl.to_string())
        .expect("request");
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let c = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c.connack(), Ok(()));
    let sys = format!("/sys/{PK}/{DN}/thing");
    c.publish(
        &format!("{sys}/event/property/post"),
        1,
        br#"{"id":"1","version":"1.0","params":{"interval":30}}"#,
    );
    c.publish(
        &format!("{sys}/event/alarm/post"),
        1,
        br#"{"id":"2","params":{}}"#,
    );
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.topic.ends_with("alarm/post"))
            .is_some()
    );
    let (st, props) = get_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/thing/properties"),
    );
    assert_eq!((st, props), (200, json!({"interval": 30})));
    let (_, events) = get_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/thing/events"),
    );
    assert_eq!(events[0]["identifier"], "alarm", "{events}");
    // A set out of range is refused before it is sent; a good one reaches the device.
    let url = format!("{base}/api/devices/{PK}/{DN}/thing/properties");
    let (st, e) = post_json(&agent, &url, json!({"interval": 61}));
    assert_eq!(st, 400, "{e}");
    let (st, sent) = post_json(&agent, &url, json!({"interval": 10}));
    assert_eq!(st, 200, "{sent}");
    assert_eq!(
        sent["reply_topic"],
        format!("{sys}/service/property/set_reply")
    );
    let got = c
        .wait_publish(&format!("{sys}/service/property/set"))
        .expect("the set arrives");
    let got: serde_json::Value = serde_json::from_slice(&got).expect("json");
    assert_eq!(got["id"], sent["id"]);
    assert_eq!(got["params"], json!({"interval": 10}));
    let (st, sent) = post_json(
        &agent,
        &format!("{base}/api/devices/{PK}/{DN}/thing/services/reboot"),
        json!({}),
    );
    assert_eq!(st, 200, "{sent}");
    assert!(c.wait_publish(&format!("{sys}/service/reboot")).is_some());
}
