use alloc::vec::Vec;

use super::*;
use crate::config::TEST_CONFIG;
use crate::kernel::Delivery;
use crate::test_wire::wire;

static CONFIG: DeviceConfig = TEST_CONFIG;

fn agent(updates: &Updates) -> OtaAgent<'_> {
    OtaAgent::new(&CONFIG, 0, updates, OtaOptions::default())
}

fn kernel() -> Kernel {
    let services: &'static [AppDef] = Box::leak(vec![service_def(&CONFIG)].into_boxed_slice());
    Kernel::with_services(&CONFIG, services)
}

#[test]
fn every_login_informs_the_version_and_the_first_also_subscribes_and_asks() {
    let mut k = kernel();
    let updates = Updates::new(BootKind::Normal);
    let mut agent = agent(&updates);
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
    let updates = Updates::new(BootKind::Normal);
    let mut agent = agent(&updates);
    k.on_connected();
    agent.on_login(&mut k);
    wire(&mut k);
    assert_eq!(ota_status(&mut k), aliot_abi::OtaStatus::Idle);
    deliver(
        &mut k,
        "/ota/device/upgrade/pk/dn",
        r#"{"code":"1000","data":{"size":100,"version":"2.0.0","isDiff":0,"url":"https://secret.example/x?Signature=s","md5":"93230c3bde425a9d7984a594ac55ea1e","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"CRC32"},"id":1,"message":"success"}"#,
    );
    agent.poll(&mut k, 0);
    let sent = wire(&mut k);
    let reports = progress(&sent);
    assert_eq!(reports.len(), 1, "{sent:?}");
    assert_eq!(reports[0]["params"]["step"], "-1");
    assert!(
        reports[0]["params"]["desc"]
            .as_str()
            .unwrap()
            .contains("signMethod")
    );
    assert!(!sent.iter().any(|(_, p)| p.contains("secret.example")));
    assert_eq!(
        agent.last_job(),
        &JobOutcome::Refused(job::JobError::UnknownSignMethod)
    );
    // Apps see it in Status.
    assert_eq!(
        ota_status(&mut k),
        aliot_abi::OtaStatus::Failed { step: -1 }
    );
}

const JOB_1_1: &str = r#"{"id":"2","code":200,"data":{"size":1024,"version":"1.1.0","url":"http://h/f?Signature=secret","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"Md5"},"message":"success"}"#;

fn logged_in(k: &mut Kernel, agent: &mut OtaAgent<'_>) {
    k.on_connected();
    agent.on_login(k);
    wire(k);
}

/// The job the task would take now, if any.
fn handed(updates: &Updates) -> Option<updates::Work> {
    let mut f = core::pin::pin!(updates.next_work());
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(w) => Some(w),
        core::task::Poll::Pending => None,
    }
}

/// Logs in, pushes [`JOB_1_1`] and returns the generation the task got it as.
fn pushed_and_handed(k: &mut Kernel, agent: &mut OtaAgent<'_>, updates: &Updates) -> u32 {
    logged_in(k, agent);
    deliver(k, "/ota/device/upgrade/pk/dn", JOB_1_1);
    agent.poll(k, 0);
    match handed(updates) {
        Some(updates::Work::Download { generation, .. }) => generation,
        other => panic!("the job goes to the task: {other:?}"),
    }
}

#[test]
fn an_acceptable_job_goes_to_the_task_once_and_its_news_become_reports() {
    let updates = Updates::new(BootKind::Normal);
    let mut k = kernel();
    let mut agent = agent(&updates);
    logged_in(&mut k, &mut agent);
    // An empty answer to firmware/get: nothing to do, nothing reported.
    deliver(
        &mut k,
        "/sys/pk/dn/thing/ota/firmware/get_reply",
        r#"{"id":"2","code":200,"data":{},"message":"success"}"#,
    );
    agent.poll(&mut k, 0);
    assert!(progress(&wire(&mut k)).is_empty());
    assert_eq!(agent.last_job(), &JobOutcome::None);
    assert!(handed(&updates).is_none());

    deliver(&mut k, "/sys/pk/dn/thing/ota/firmware/get_reply", JOB_1_1);
    agent.poll(&mut k, 0);
    let Some(updates::Work::Download { job, generation }) = handed(&updates) else {
        panic!("the job goes to the task");
    };
    assert_eq!((job.version.as_str(), job.size), ("1.1.0", 1024));
    assert_eq!(ota_status(&mut k), OtaStatus::Downloading { percent: 0 });
    // The same job pushed again (push and firmware/get both deliver it): not restarted.
    let push = JOB_1_1.replace(r#""id":"2","code":200"#, r#""id":3,"code":"1000""#);
    deliver(&mut k, "/ota/device/upgrade/pk/dn", &push);
    agent.poll(&mut k, 0);
    assert!(handed(&updates).is_none(), "a duplicate is not handed over");
    assert!(progress(&wire(&mut k)).is_empty());

    updates.post_progress(generation, 40);
    agent.poll(&mut k, 1);
    let sent = wire(&mut k);
    let reports = progress(&sent);
    assert_eq!(reports.len(), 1, "{sent:?}");
    assert_eq!(reports[0]["params"]["step"], "40");
    assert_eq!(reports[0]["params"]["module"], "default");
    assert!(!sent.iter().any(|(_, p)| p.contains("secret")));
    assert_eq!(ota_status(&mut k), OtaStatus::Downloading { percent: 40 });

    updates.post_end(
        generation,
        End::Ready {
            version: "1.1.0".try_into().unwrap(),
        },
    );
    agent.poll(&mut k, 2);
    assert_eq!(ota_status(&mut k), OtaStatus::PendingReboot);
    // Not before the 100 report is out.
    assert!(k.pending_publishes() > 0);
    assert!(!agent.reboot_due(&k, 2));
    let reports = progress(&wire(&mut k));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["params"]["step"], "100");
    assert!(agent.reboot_due(&k, 3));
    assert!(updates.reboot_requested());
    assert!(!agent.reboot_due(&k, 4), "once");
}

#[test]
fn a_marked_image_reboots_after_the_grace_even_if_its_report_is_stuck() {
    let updates = Updates::new(BootKind::Normal);
    let mut k = kernel();
    let mut agent = agent(&updates);
    let generation = pushed_and_handed(&mut k, &mut agent, &updates);
    updates.post_end(
        generation,
        End::Ready {
            version: "1.1.0".try_into().unwrap(),
        },
    );
    agent.poll(&mut k, 1_000);
    let grace = OtaOptions::default().reboot_grace_ms;
    assert_eq!(agent.next_deadline(), Some(1_000 + grace));
    assert!(!agent.reboot_due(&k, 1_000 + grace - 1));
    assert!(agent.reboot_due(&k, 1_000 + grace));
}

#[test]
fn a_failed_download_is_reported_with_its_step_and_desc() {
    let updates = Updates::new(BootKind::Normal);
    let mut k = kernel();
    let mut agent = agent(&updates);
    let generation = pushed_and_handed(&mut k, &mut agent, &updates);
    updates.post_end(
        generation,
        End::Failed {
            step: -3,
            desc: "the file's digest does not match the job's",
        },
    );
    agent.poll(&mut k, 1);
    let reports = progress(&wire(&mut k));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["params"]["step"], "-3");
    assert_eq!(
        reports[0]["params"]["desc"],
        "the file's digest does not match the job's"
    );
    assert_eq!(ota_status(&mut k), OtaStatus::Failed { step: -3 });
    assert!(!agent.reboot_due(&k, 1_000_000));
    // The answer to this login's firmware/get, sent before the failure, names the same job:
    // not fetched a second time, nor reported twice.
    deliver(&mut k, "/sys/pk/dn/thing/ota/firmware/get_reply", JOB_1_1);
    agent.poll(&mut k, 2);
    assert!(handed(&updates).is_none(), "the answer is the pushed job");
    assert!(progress(&wire(&mut k)).is_empty());
    // The same job pushed again is taken again (a retry from the console).
    deliver(&mut k, "/ota/device/upgrade/pk/dn", JOB_1_1);
    agent.poll(&mut k, 3);
    assert!(handed(&updates).is_some());
}

#[test]
fn a_job_for_the_running_version_is_not_downloaded() {
    let updates = Updates::new(BootKind::Normal);
    let mut k = kernel();
    let mut agent = agent(&updates);
    logged_in(&mut k, &mut agent);
    let running = JOB_1_1.replace("1.1.0", CONFIG.ota.version);
    deliver(&mut k, "/ota/device/upgrade/pk/dn", &running);
    agent.poll(&mut k, 0);
    assert!(handed(&updates).is_none());
    assert!(progress(&wire(&mut k)).is_empty());
}

#[test]
fn another_job_supersedes_the_running_one() {
    let updates = Updates::new(BootKind::Normal);
    let mut k = kernel();
    let mut agent = agent(&updates);
    let generation = pushed_and_handed(&mut k, &mut agent, &updates);
    deliver(
        &mut k,
        "/ota/device/upgrade/pk/dn",
        &JOB_1_1.replace("1.1.0", "1.2.0").replace(
            "93230c3bde425a9d7984a594ac55ea1e",
            "0123456789abcdef0123456789abcdef",
        ),
    );
    agent.poll(&mut k, 1);
    let Some(updates::Work::Download {
        job,
        generation: g2,
    }) = handed(&updates)
    else {
        panic!("the new job is handed over");
    };
    assert_eq!(job.version, "1.2.0");
    assert_ne!(g2, generation);
    assert_eq!(
        agent.last_job(),
        &JobOutcome::Accepted {
            version: "1.2.0".into()
        }
    );
}

#[test]
fn a_trial_image_asks_for_confirmation_after_login() {
    let updates = Updates::new(BootKind::Trial);
    let mut k = kernel();
    let mut agent = agent(&updates);
    agent.poll(&mut k, 0);
    assert!(handed(&updates).is_none(), "not before the login");
    logged_in(&mut k, &mut agent);
    assert!(matches!(handed(&updates), Some(updates::Work::Confirm)));
    updates.post_confirmed(Ok(()));
    agent.poll(&mut k, 1);
    let trial = OtaOptions::default().trial_login_ms;
    assert!(!agent.reboot_due(&k, trial + 1), "confirmed: no watchdog");
    assert_eq!(agent.next_deadline(), None);
}

#[test]
fn a_trial_image_that_cannot_log_in_asks_for_the_reboot_that_reverts_it() {
    let updates = Updates::new(BootKind::Trial);
    let k = kernel();
    let mut k = k;
    let mut agent = agent(&updates);
    agent.poll(&mut k, 500);
    let trial = OtaOptions::default().trial_login_ms;
    assert_eq!(agent.next_deadline(), Some(500 + trial));
    assert!(!agent.reboot_due(&k, 500 + trial - 1));
    assert!(!updates.reboot_requested());
    assert!(agent.reboot_due(&k, 500 + trial));
    assert!(updates.reboot_requested());
}

#[test]
fn a_rollback_is_reported_after_the_login() {
    for (boot, says) in [
        (BootKind::Reverted, "rolled back"),
        (BootKind::RefusedUpdate, "not run"),
    ] {
        let updates = Updates::new(boot);
        let mut k = kernel();
        let mut agent = agent(&updates);
        k.on_connected();
        agent.on_login(&mut k);
        let sent = wire(&mut k);
        let order: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        let report_at = order
            .iter()
            .position(|t| t.starts_with("/ota/device/progress"));
        let get_at = order.iter().position(|t| t.ends_with("firmware/get"));
        assert!(
            report_at < get_at,
            "reported before the job is asked for: {order:?}"
        );
        let reports = progress(&sent);
        assert_eq!(reports.len(), 1, "{boot:?}");
        assert_eq!(reports[0]["params"]["step"], "-1");
        assert!(
            reports[0]["params"]["desc"]
                .as_str()
                .unwrap()
                .contains(says),
            "{boot:?}: {}",
            reports[0]
        );
        // Once per boot.
        agent.on_login(&mut k);
        assert!(progress(&wire(&mut k)).is_empty());
    }
}

#[test]
fn desc_is_escaped_json() {
    let mut k = kernel();
    let updates = Updates::new(BootKind::Normal);
    let mut agent = agent(&updates);
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
    let updates = Updates::new(BootKind::Normal);
    let mut agent = agent(&updates);
    k.on_connected();
    agent.on_login(&mut k);
    wire(&mut k);
    deliver(
        &mut k,
        "/ota/device/upgrade/pk/dn",
        r#"{"code":"1000","data":{"size":10,"version":"3","url":"http://h/f","sign":"93230c3bde425a9d7984a594ac55ea1e","signMethod":"MD5","module":"MCU"},"id":1,"message":"success"}"#,
    );
    agent.poll(&mut k, 0);
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
