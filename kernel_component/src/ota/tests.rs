use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::config::TEST_CONFIG;
use crate::kernel::{Delivery, Outgoing};

static CONFIG: DeviceConfig = TEST_CONFIG;

fn kernel() -> Kernel {
    let services: &'static [AppDef] = Box::leak(vec![service_def(&CONFIG)].into_boxed_slice());
    Kernel::with_services(&CONFIG, services)
}

/// Everything the kernel puts on the wire now, `(topic or filter, payload)`, each packet
/// written and acknowledged.
fn wire(k: &mut Kernel) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(packet) = k.poll_outgoing(0) {
        let (pid, entry, sub) = match packet {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                ..
            } => (
                pid,
                (
                    topic.to_string(),
                    String::from_utf8_lossy(payload).into_owned(),
                ),
                false,
            ),
            Outgoing::Subscribe { pid, filter, .. } => {
                (pid, (filter.to_string(), String::new()), true)
            }
            Outgoing::Unsubscribe { pid, filter } => {
                (pid, (filter.to_string(), String::new()), true)
            }
        };
        k.on_written();
        if sub {
            k.on_suback(pid, true);
        } else {
            k.on_puback(pid);
        }
        out.push(entry);
    }
    out
}

#[test]
fn every_login_informs_the_version_and_the_first_also_subscribes_and_asks() {
    let mut k = kernel();
    let mut agent = OtaAgent::new(&CONFIG, 0);
    k.on_connected();
    agent.on_login(&mut k);
    let first = wire(&mut k);
    let topics: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "/ota/device/upgrade/pk/dn",
            "/sys/pk/dn/thing/ota/firmware/get_reply",
            "/ota/device/inform/pk/dn",
            "/sys/pk/dn/thing/ota/firmware/get",
        ]
    );
    assert_eq!(
        first[2].1,
        r#"{"id":"1","params":{"version":"1.0.0","module":"default"}}"#
    );
    let get: serde_json::Value = serde_json::from_str(&first[3].1).unwrap();
    assert_eq!(get["method"], "thing.ota.firmware.get");
    assert_eq!(get["params"]["module"], "default");

    // A reconnect: the kernel restores the subscriptions; the agent informs again, and does
    // not ask again.
    k.on_link_down(aliot_abi::DisconnectReason::Network);
    k.on_connected();
    agent.on_login(&mut k);
    let second = wire(&mut k);
    let topics: Vec<&str> = second.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "/ota/device/upgrade/pk/dn",
            "/sys/pk/dn/thing/ota/firmware/get_reply",
            "/ota/device/inform/pk/dn",
        ]
    );
}

/// `LinkStatus::ota`, as any client's Status shows it.
fn ota_status(k: &mut Kernel) -> aliot_abi::OtaStatus {
    match k.service_call(0, Request::Status) {
        Ok(aliot_abi::Response::Status(status)) => status.ota,
        other => panic!("{other:?}"),
    }
}

fn deliver(k: &mut Kernel, topic: &str, payload: &str) {
    assert_eq!(
        k.on_publish(topic, payload.as_bytes(), Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 },
        "the OTA service takes {topic}"
    );
}

fn progress(sent: &[(String, String)]) -> Vec<serde_json::Value> {
    sent.iter()
        .filter(|(t, _)| t == "/ota/device/progress/pk/dn")
        .map(|(_, p)| serde_json::from_str(p).unwrap())
        .collect()
}

#[test]
fn a_refused_job_is_reported_with_its_reason_and_never_the_url() {
    let mut k = kernel();
    let mut agent = OtaAgent::new(&CONFIG, 0);
    k.on_connected();
    agent.on_login(&mut k);
    wire(&mut k);
    assert_eq!(ota_status(&mut k), aliot_abi::OtaStatus::Idle);
    deliver(
        &mut k,
        "/ota/device/upgrade/pk/dn",
        r#"{"code":"1000","data":{"size":100,"version":"2.0.0","isDiff":1,"url":"https://secret.example/x?Signature=s","md5":"93230c3bde425a9d7984a594ac55ea1e","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"MD5"},"id":1,"message":"success"}"#,
    );
    agent.poll(&mut k);
    let sent = wire(&mut k);
    let reports = progress(&sent);
    assert_eq!(reports.len(), 1, "{sent:?}");
    assert_eq!(reports[0]["params"]["step"], "-1");
    assert!(
        reports[0]["params"]["desc"]
            .as_str()
            .unwrap()
            .contains("differential")
    );
    assert!(!sent.iter().any(|(_, p)| p.contains("secret.example")));
    assert_eq!(
        agent.last_job(),
        &JobOutcome::Refused(job::JobError::Differential)
    );
    // Apps see it in Status.
    assert_eq!(
        ota_status(&mut k),
        aliot_abi::OtaStatus::Failed { step: -1 }
    );
}

#[test]
fn an_acceptable_job_is_refused_until_download_exists() {
    let mut k = kernel();
    let mut agent = OtaAgent::new(&CONFIG, 0);
    k.on_connected();
    agent.on_login(&mut k);
    wire(&mut k);
    // An empty answer to firmware/get: nothing to do, nothing reported.
    deliver(
        &mut k,
        "/sys/pk/dn/thing/ota/firmware/get_reply",
        r#"{"id":"2","code":200,"data":{},"message":"success"}"#,
    );
    agent.poll(&mut k);
    assert!(progress(&wire(&mut k)).is_empty());
    assert_eq!(agent.last_job(), &JobOutcome::None);
    deliver(
        &mut k,
        "/sys/pk/dn/thing/ota/firmware/get_reply",
        r#"{"id":"2","code":200,"data":{"size":1024,"version":"1.1.0","url":"http://h/f","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"Md5"},"message":"success"}"#,
    );
    agent.poll(&mut k);
    let reports = progress(&wire(&mut k));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["params"]["step"], "-1");
    assert!(
        reports[0]["params"]["desc"]
            .as_str()
            .unwrap()
            .contains("not implemented")
    );
    assert_eq!(
        agent.last_job(),
        &JobOutcome::NotImplemented {
            version: "1.1.0".into()
        }
    );
}

#[test]
fn desc_is_escaped_json() {
    let mut k = kernel();
    let mut agent = OtaAgent::new(&CONFIG, 0);
    k.on_connected();
    wire(&mut k);
    agent.report(&mut k, -3, "a\"b\\c\n", None);
    let sent = wire(&mut k);
    let reports = progress(&sent);
    assert_eq!(reports[0]["params"]["desc"], "a\"b\\c\n", "{sent:?}");
    assert_eq!(reports[0]["params"]["step"], "-3");
}

#[test]
fn a_job_for_another_module_is_refused_under_that_module() {
    let mut k = kernel();
    let mut agent = OtaAgent::new(&CONFIG, 0);
    k.on_connected();
    agent.on_login(&mut k);
    wire(&mut k);
    deliver(
        &mut k,
        "/ota/device/upgrade/pk/dn",
        r#"{"code":"1000","data":{"size":10,"version":"3","url":"http://h/f","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"MD5","module":"MCU"},"id":1,"message":"success"}"#,
    );
    agent.poll(&mut k);
    let reports = progress(&wire(&mut k));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["params"]["module"], "MCU");
    assert!(
        reports[0]["params"]["desc"]
            .as_str()
            .unwrap()
            .contains("another module")
    );
}
