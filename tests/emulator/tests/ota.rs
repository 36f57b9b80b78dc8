//! OTA jobs end to end: push, firmware/get, download with Range / expiry / cut, progress,
//! inform and job success, with real MQTT and HTTP clients.

mod common;

use std::io::Read;
use std::time::Duration;

use aliot_emulator::{DeviceOtaState, Emulator, EmulatorConfig, OtaDigest, OtaJob};
use common::*;
use md5::Digest;

fn firmware(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn online(emu: &Emulator, v: u8) -> TestClient {
    let c = TestClient::connect(v, emu.mqtt_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert_eq!(c.connack(), Ok(()));
    assert!(emu.wait_online(PK, DN, WAIT));
    c
}

fn upgrade_topic() -> String {
    format!("/ota/device/upgrade/{PK}/{DN}")
}

#[test]
fn push_download_progress_inform_success() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = online(&emu, 4);
    assert!(c.subscribe(&upgrade_topic(), 1)[0].starts_with("Success"));
    let fw = firmware(5000);
    let id = emu
        .create_ota_job(OtaJob::new(PK, &[DN], "2.0.0", fw.clone()))
        .expect("job");
    let push = c.wait_publish(&upgrade_topic()).expect("upgrade push");
    let v: serde_json::Value = serde_json::from_slice(&push).expect("json");
    assert_eq!(v["code"], "1000");
    assert_eq!(v["message"], "success");
    let d = &v["data"];
    assert_eq!(d["size"], 5000);
    assert_eq!(d["version"], "2.0.0");
    assert_eq!(d["signMethod"], "Md5");
    let md5 = hex::encode(md5::Md5::digest(&fw));
    assert_eq!(d["md5"], md5);
    assert_eq!(d["sign"], md5);
    assert_eq!(d["isDiff"], 0);
    assert!(d.get("module").is_none(), "default module is omitted");
    assert_eq!(
        emu.ota_job(id).expect("job").devices[DN],
        DeviceOtaState::Pushed
    );

    let url = d["url"].as_str().expect("url").to_string();
    assert!(url.contains("Expires="));
    let agent = http_agent(None);
    let mut r = agent.get(&url).call().expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|h| h.to_str().ok()),
        Some("5000")
    );
    assert_eq!(r.body_mut().read_to_vec().expect("body"), fw);
    let mut r = agent
        .get(&url)
        .header("Range", "bytes=4000-")
        .call()
        .expect("range");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.headers()
            .get("content-range")
            .and_then(|h| h.to_str().ok()),
        Some("bytes 4000-4999/5000")
    );
    assert_eq!(r.body_mut().read_to_vec().expect("body"), fw[4000..]);
    let mut r = agent
        .get(&url)
        .header("Range", "bytes=10-19")
        .call()
        .expect("range");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.body_mut().read_to_vec().expect("body"), fw[10..20]);
    // a start past the end: the object store ignores the Range (see ranges_as_the_object_store)
    let mut r = agent
        .get(&url)
        .header("Range", "bytes=6000-")
        .call()
        .expect("range");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.body_mut().read_to_vec().expect("body"), fw);
    let tampered = url.replace("Expires=", "Expires=9");
    assert_eq!(
        agent.get(&tampered).call().expect("get").status().as_u16(),
        403
    );

    c.publish(
        &format!("/ota/device/progress/{PK}/{DN}"),
        0,
        br#"{"id":"1","params":{"step":"50","desc":"downloading"}}"#,
    );
    assert_eq!(
        emu.wait_ota_state(id, DN, WAIT, |s| matches!(
            s,
            DeviceOtaState::InProgress { .. }
        )),
        Some(DeviceOtaState::InProgress { step: 50 })
    );
    // reporting another version does not complete the job
    c.publish(
        &format!("/ota/device/inform/{PK}/{DN}"),
        1,
        br#"{"id":"2","params":{"version":"1.0.0"}}"#,
    );
    c.publish(
        &format!("/ota/device/inform/{PK}/{DN}"),
        1,
        br#"{"id":"3","params":{"version":"2.0.0"}}"#,
    );
    assert_eq!(
        emu.wait_ota_state(id, DN, WAIT, |s| *s == DeviceOtaState::Succeeded),
        Some(DeviceOtaState::Succeeded)
    );
    let dev = emu
        .devices()
        .into_iter()
        .find(|d| d.device_name == DN)
        .expect("dev");
    assert_eq!(
        dev.versions.get("default").map(String::as_str),
        Some("2.0.0")
    );
}

#[test]
fn offline_device_gets_the_push_at_login_and_can_pull() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let mut job = OtaJob::new(PK, &[DN], "3.1.0", firmware(300));
    job.module = Some("MCU".into());
    job.digest = OtaDigest::Sha256;
    let id = emu.create_ota_job(job).expect("job");
    assert_eq!(
        emu.ota_job(id).expect("job").devices[DN],
        DeviceOtaState::Pending
    );
    let c = online(&emu, 5);
    // pushed at login, without any SUBSCRIBE
    let push = c.wait_publish(&upgrade_topic()).expect("push at login");
    let v: serde_json::Value = serde_json::from_slice(&push).expect("json");
    assert_eq!(v["data"]["module"], "MCU");
    assert_eq!(v["data"]["signMethod"], "SHA256");
    assert_eq!(
        v["data"]["sign"],
        hex::encode(sha2::Sha256::digest(firmware(300)))
    );
    // and it can ask again
    let reply = format!("/sys/{PK}/{DN}/thing/ota/firmware/get_reply");
    assert!(c.subscribe(&reply, 1)[0].starts_with("Success"));
    c.publish(
        &format!("/sys/{PK}/{DN}/thing/ota/firmware/get"),
        1,
        br#"{"id":"77","version":"1.0","params":{"module":"MCU"},"method":"thing.ota.firmware.get"}"#,
    );
    let r: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&reply).expect("get_reply")).expect("json");
    assert_eq!(r["id"], "77");
    assert_eq!(r["code"], 200);
    assert_eq!(r["data"]["version"], "3.1.0");
    // failure step
    c.publish(
        &format!("/ota/device/progress/{PK}/{DN}"),
        0,
        br#"{"id":"1","params":{"step":"-3","desc":"digest mismatch","module":"MCU"}}"#,
    );
    let st = emu.wait_ota_state(id, DN, WAIT, |s| matches!(s, DeviceOtaState::Failed { .. }));
    assert_eq!(
        st,
        Some(DeviceOtaState::Failed {
            step: -3,
            desc: "digest mismatch".into()
        })
    );
}

#[test]
fn expired_url_answers_400_and_https_download_works() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = online(&emu, 4);
    let mut job = OtaJob::new(PK, &[DN], "4.0.0", firmware(100));
    job.url_ttl = Duration::ZERO;
    emu.create_ota_job(job).expect("job");
    let v: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&upgrade_topic()).expect("push")).expect("json");
    let r = http_agent(None)
        .get(v["data"]["url"].as_str().expect("url"))
        .call()
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);

    let mut job = OtaJob::new(PK, &[DN], "4.0.1", firmware(1000));
    job.https = true;
    emu.create_ota_job(job).expect("job");
    let v: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&upgrade_topic()).expect("push")).expect("json");
    let url = v["data"]["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("https://localhost:"));
    let mut r = http_agent(Some(emu.ca_pem_path()))
        .get(&url)
        .call()
        .expect("https get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.body_mut().read_to_vec().expect("body"), firmware(1000));
}

#[test]
fn cut_download_resumes_with_range() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = online(&emu, 4);
    let fw = firmware(4096);
    emu.create_ota_job(OtaJob::new(PK, &[DN], "5.0.0", fw.clone()))
        .expect("job");
    let v: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&upgrade_topic()).expect("push")).expect("json");
    let url = v["data"]["url"].as_str().expect("url").to_string();
    emu.cut_downloads_after(Some(1000));
    let agent = http_agent(None);
    let mut got = Vec::new();
    let r = agent.get(&url).call().expect("get");
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|h| h.to_str().ok()),
        Some("4096")
    );
    let mut reader = r.into_body().into_reader();
    let mut buf = [0u8; 512];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(
        got.len(),
        1000,
        "cut after 1000 bytes: tail {:?}",
        String::from_utf8_lossy(&got[got.len().min(1000)..])
    );
    emu.cut_downloads_after(None);
    let mut r = agent
        .get(&url)
        .header("Range", format!("bytes={}-", got.len()))
        .call()
        .expect("resume");
    assert_eq!(r.status().as_u16(), 206);
    got.extend(r.body_mut().read_to_vec().expect("rest"));
    assert_eq!(got, fw);
}

#[test]
fn ota_job_for_unknown_device_is_refused() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    assert!(
        emu.create_ota_job(OtaJob::new(PK, &["ghost"], "1", vec![1]))
            .is_err()
    );
    assert!(
        emu.create_ota_job(OtaJob::new(PK, &[DN], "1", vec![]))
            .is_err()
    );
}

/// What linkkit does: log in with `_ss=1`, never SUBSCRIBE `thing/ota/firmware/get_reply`,
/// and still get the answer to `thing/ota/firmware/get`. Without `_ss=1` it is not delivered.
#[test]
fn firmware_get_reply_reaches_an_ss1_device_without_subscribe() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    emu.create_ota_job(OtaJob::new(PK, &[DN], "6.0.0", firmware(64)))
        .expect("job");
    let get = format!("/sys/{PK}/{DN}/thing/ota/firmware/get");
    let reply = format!("{get}_reply");
    let body = br#"{"id":"5","version":"1.0","params":{},"method":"thing.ota.firmware.get"}"#;

    let plain = TestClient::connect(
        4,
        emu.mqtt_addr().port(),
        &without_ss(sdk_creds(PK, DN, DS)),
        None,
    );
    assert_eq!(plain.connack(), Ok(()));
    assert!(
        plain.wait_publish(&upgrade_topic()).is_some(),
        "push at login"
    );
    plain.publish(&get, 1, body);
    assert!(
        emu.wait_for_uplink(PK, DN, WAIT, |u| u.topic == get)
            .is_some()
    );
    assert!(
        !emu.downlinks(PK, DN).iter().any(|d| d.topic == reply),
        "no get_reply without SUBSCRIBE or _ss=1"
    );
    plain.disconnect();
    assert!(emu.wait_offline(PK, DN, WAIT));

    let c = online(&emu, 4); // sdk_creds: `_ss=1`
    c.publish(&get, 1, body);
    let r: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&reply).expect("get_reply")).expect("json");
    assert_eq!(r["id"], "5");
    assert_eq!(r["data"]["version"], "6.0.0");
}

/// One download: status, `Content-Range`, `Content-Length` and body.
fn get_range(
    agent: &ureq::Agent,
    url: &str,
    range: Option<&str>,
    standard: bool,
) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let mut req = agent.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    if standard {
        req = req.header("x-oss-range-behavior", "standard");
    }
    let mut r = req.call().expect("download");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (cr, cl) = (h("content-range"), h("content-length"));
    (
        r.status().as_u16(),
        cr,
        cl,
        r.body_mut().read_to_vec().expect("body"),
    )
}

/// (Range, with `x-oss-range-behavior: standard`, status, `Content-Range`, body `a..b`; `None`
/// = an OSS error body).
type RangeCase = (
    &'static str,
    bool,
    u16,
    Option<&'static str>,
    Option<(usize, usize)>,
);

/// OSS's Range behaviour (help.aliyun.com document 39571), over plain HTTP and HTTPS: a range
/// it cannot serve as written is ignored (200, whole object) unless the request carries
/// `x-oss-range-behavior: standard`; satisfiable ranges answer 206 with `Content-Range`.
#[test]
fn ranges_as_the_object_store() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = online(&emu, 4);
    let fw = firmware(5000);
    for https in [false, true] {
        let mut job = OtaJob::new(PK, &[DN], "7.0.0", fw.clone());
        job.https = https;
        emu.create_ota_job(job).expect("job");
        let v: serde_json::Value =
            serde_json::from_slice(&c.wait_publish(&upgrade_topic()).expect("push")).expect("json");
        let url = v["data"]["url"].as_str().expect("url").to_string();
        let agent = http_agent(https.then(|| emu.ca_pem_path()));
        let cases: &[RangeCase] = &[
            (
                "bytes=10-19",
                false,
                206,
                Some("bytes 10-19/5000"),
                Some((10, 20)),
            ),
            (
                "bytes=10-19",
                true,
                206,
                Some("bytes 10-19/5000"),
                Some((10, 20)),
            ),
            (
                "bytes=4000-",
                false,
                206,
                Some("bytes 4000-4999/5000"),
                Some((4000, 5000)),
            ),
            (
                "bytes=4000-",
                true,
                206,
                Some("bytes 4000-4999/5000"),
                Some((4000, 5000)),
            ),
            (
                "bytes=-100",
                false,
                206,
                Some("bytes 4900-4999/5000"),
                Some((4900, 5000)),
            ),
            (
                "bytes=-100",
                true,
                206,
                Some("bytes 4900-4999/5000"),
                Some((4900, 5000)),
            ),
            (
                "bytes=4999-",
                false,
                206,
                Some("bytes 4999-4999/5000"),
                Some((4999, 5000)),
            ),
            // start == len
            ("bytes=5000-", false, 200, None, Some((0, 5000))),
            ("bytes=5000-", true, 416, Some("bytes */5000"), None),
            // start > len
            ("bytes=7000-8000", false, 200, None, Some((0, 5000))),
            ("bytes=7000-8000", true, 416, Some("bytes */5000"), None),
            // end past the end
            ("bytes=4000-9999", false, 200, None, Some((0, 5000))),
            (
                "bytes=4000-9999",
                true,
                206,
                Some("bytes 4000-4999/5000"),
                Some((4000, 5000)),
            ),
            // suffix longer than the object
            ("bytes=-9000", false, 200, None, Some((0, 5000))),
            (
                "bytes=-9000",
                true,
                206,
                Some("bytes 0-4999/5000"),
                Some((0, 5000)),
            ),
            // malformed: ignored either way
            ("byte=0-10", false, 200, None, Some((0, 5000))),
            ("byte=0-10", true, 200, None, Some((0, 5000))),
            ("bytes=20-10", false, 200, None, Some((0, 5000))),
            ("bytes=20-10", true, 200, None, Some((0, 5000))),
            ("bytes=abc", true, 200, None, Some((0, 5000))),
        ];
        for &(range, standard, status, content_range, body) in cases {
            let what = format!("{range} standard={standard} https={https}");
            let (st, cr, cl, got) = get_range(&agent, &url, Some(range), standard);
            assert_eq!(st, status, "{what}");
            assert_eq!(cr.as_deref(), content_range, "{what}");
            match body {
                Some((a, b)) => {
                    assert_eq!(got, fw[a..b], "{what}");
                    assert_eq!(cl, Some((b - a).to_string()), "{what}");
                }
                None => assert!(
                    String::from_utf8_lossy(&got).contains("InvalidRange"),
                    "{what}: OSS error body"
                ),
            }
        }
        // no Range at all: 200, whole object, with or without the header
        for standard in [false, true] {
            let (st, cr, _, got) = get_range(&agent, &url, None, standard);
            assert_eq!((st, cr, got.len()), (200, None, 5000));
        }
    }
}

/// The strict switch (config, Rust API and `POST /api/faults`) answers as if every request
/// carried the header; the cut fault still applies to a whole-object answer.
#[test]
fn strict_range_switch_and_cut_fault() {
    let mut cfg = EmulatorConfig::demo();
    cfg.strict_ranges = true;
    let emu = Emulator::start(cfg).expect("start");
    let c = online(&emu, 4);
    let fw = firmware(3000);
    emu.create_ota_job(OtaJob::new(PK, &[DN], "8.0.0", fw.clone()))
        .expect("job");
    let v: serde_json::Value =
        serde_json::from_slice(&c.wait_publish(&upgrade_topic()).expect("push")).expect("json");
    let url = v["data"]["url"].as_str().expect("url").to_string();
    let agent = http_agent(None);
    assert_eq!(
        get_range(&agent, &url, Some("bytes=3000-"), false).0,
        416,
        "config"
    );
    emu.set_strict_ranges(false);
    assert_eq!(get_range(&agent, &url, Some("bytes=3000-"), false).0, 200);
    emu.set_strict_ranges(true);
    assert_eq!(
        get_range(&agent, &url, Some("bytes=3000-"), false).0,
        416,
        "Rust API"
    );
    let (st, _) = post_json(
        &agent,
        &format!("http://{}/api/faults", emu.http_addr()),
        serde_json::json!({"strict_ranges": false}),
    );
    assert_eq!(st, 200);
    assert_eq!(
        get_range(&agent, &url, Some("bytes=3000-"), false).0,
        200,
        "HTTP API"
    );

    // an ignored Range answers the whole object, and the cut fault still cuts it
    emu.cut_downloads_after(Some(700));
    let r = agent
        .get(&url)
        .header("Range", "bytes=3000-")
        .call()
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|h| h.to_str().ok()),
        Some("3000")
    );
    let mut got = Vec::new();
    let mut reader = r.into_body().into_reader();
    let mut buf = [0u8; 512];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(got, fw[..700]);
}
