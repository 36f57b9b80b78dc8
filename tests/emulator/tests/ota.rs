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
    let r = agent
        .get(&url)
        .header("Range", "bytes=6000-")
        .call()
        .expect("range");
    assert_eq!(r.status().as_u16(), 416);
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
