//! OTA end to end against the emulator (issue 8 point 8): the device reports its version
//! after every login, finds jobs pushed while it is online and created while it was offline,
//! refuses what it cannot take, downloads what it can into the update slot (resuming after
//! cuts), reports -2/-3/-4 with a reason, and the MQTT session and the apps carry on through
//! every failure.

mod common;

use aliot_emulator::{DeviceOtaState, Emulator, JobId, OtaJob};
use common::*;
use nix::sys::signal::Signal;

/// A payload of `len` bytes that differ (so a misplaced byte changes the digest).
fn filler(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn reported_version(emu: &Emulator) -> Option<String> {
    emu.devices()
        .into_iter()
        .find(|d| d.product_key == PK && d.device_name == DN)
        .and_then(|d| d.versions.get("default").cloned())
}

/// The progress steps the device reported, in order.
fn steps(emu: &Emulator) -> Vec<(i32, String)> {
    accepted(emu, &format!("/ota/device/progress/{PK}/{DN}"))
        .iter()
        .filter_map(|u| {
            let v: serde_json::Value = serde_json::from_slice(&u.payload).ok()?;
            let step = v["params"]["step"].as_str()?.parse().ok()?;
            Some((step, v["params"]["desc"].as_str()?.to_owned()))
        })
        .collect()
}

fn failed_with(emu: &Emulator, job: JobId, step: i32, needle: &str) {
    let state = emu.wait_ota_state(job, DN, WAIT, |s| {
        matches!(s, DeviceOtaState::Failed { .. })
    });
    match state {
        Some(DeviceOtaState::Failed { step: s, desc }) => {
            assert_eq!(s, step, "{desc}");
            assert!(desc.contains(needle), "{desc}");
        }
        other => panic!(
            "the job did not fail with {step}: {other:?}; steps: {:?}",
            steps(emu)
        ),
    }
}

/// The active slot of the flash file in `state` (default layout).
fn active_slot(device: &Device) -> Vec<u8> {
    let flash = std::fs::read(device.state_dir().join("flash.bin")).unwrap_or_default();
    let a = aliot_kernel::config::NRF9160_OTA.active;
    let (start, end) = (a.offset as usize, (a.offset + a.size) as usize);
    flash
        .get(start..end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The session never dropped (one login) and the apps still publish.
fn session_and_apps_carried_on(emu: &Emulator, device: &Device) {
    assert!(emu.is_online(PK, DN));
    assert_eq!(
        emu.logins(PK, DN).len(),
        1,
        "no reconnect: {}",
        device.log()
    );
    let before = accepted(emu, &topic("update")).len();
    assert!(wait_until(WAIT, || accepted(emu, &topic("update")).len() > before));
    let log = device.log();
    assert!(!log.contains("Signature="), "no download URL in the log");
}

fn options(args: &[&str]) -> DeviceOptions {
    DeviceOptions {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..DeviceOptions::default()
    }
}

#[test]
fn version_is_reported_and_jobs_are_checked_while_the_session_carries_on() {
    let emu = emulator();
    // Created while the device is offline: found at login. Not an image (no header): the
    // download completes and the digest matches, but the boot stage's check refuses it.
    let offline = emu
        .create_ota_job(OtaJob::new(PK, &[DN], "2.0.0", vec![7u8; 1024]))
        .expect("job");
    let device = Device::start(&emu, DeviceOptions::default());
    assert!(
        wait_until(WAIT, || reported_version(&emu).as_deref() == Some("1.0.0")),
        "the running version is reported: {}",
        device.log()
    );
    failed_with(&emu, offline, -3, "not a valid firmware image");

    // Pushed while online: a job for another module, and one larger than the active slot.
    let mut other = OtaJob::new(PK, &[DN], "2.0.1", vec![1u8; 64]);
    other.module = Some("MCU".into());
    let other = emu.create_ota_job(other).expect("job");
    failed_with(&emu, other, -1, "another module");
    let big = emu
        .create_ota_job(OtaJob::new(PK, &[DN], "2.0.2", vec![0u8; 0x79000 + 1]))
        .expect("job");
    failed_with(&emu, big, -1, "larger than the update slot");
    session_and_apps_carried_on(&emu, &device);
    assert!(error_lines(&device.log()).is_empty(), "{}", device.log());
}

#[test]
fn a_wrong_digest_is_minus_3_and_the_active_slot_is_untouched() {
    let emu = emulator();
    let device = Device::start(&emu, DeviceOptions::default());
    assert!(emu.wait_online(PK, DN, WAIT));
    assert!(wait_until(WAIT, || reported_version(&emu).is_some()));
    let active = active_slot(&device);
    let mut job = OtaJob::new(PK, &[DN], "2.0.0", image("2.0.0", &filler(50_000)));
    job.corrupt_digest = true;
    let job = emu.create_ota_job(job).expect("job");
    failed_with(&emu, job, -3, "digest does not match");
    assert!(
        emu.downloads().iter().any(|d| d.bytes > 0),
        "the file really was downloaded"
    );
    assert_eq!(active_slot(&device), active, "the active slot is untouched");
    session_and_apps_carried_on(&emu, &device);
}

#[test]
fn an_expired_url_is_minus_2() {
    let emu = emulator();
    let device = Device::start(&emu, options(&["--ota-retry-ms", "100"]));
    assert!(emu.wait_online(PK, DN, WAIT));
    let mut job = OtaJob::new(PK, &[DN], "2.0.0", image("2.0.0", &filler(10_000)));
    job.url_ttl = std::time::Duration::ZERO;
    let job = emu.create_ota_job(job).expect("job");
    failed_with(&emu, job, -2, "expired");
    let downloads = emu.downloads();
    assert_eq!(downloads.len(), 1, "not retried: {downloads:?}");
    assert_eq!(downloads[0].status, 400);
    session_and_apps_carried_on(&emu, &device);
}

#[test]
fn a_flash_write_failure_is_minus_4() {
    let emu = emulator();
    let device = Device::start(&emu, options(&["--flash-fails-from-op", "3"]));
    assert!(emu.wait_online(PK, DN, WAIT));
    let job = OtaJob::new(PK, &[DN], "2.0.0", image("2.0.0", &filler(30_000)));
    let job = emu.create_ota_job(job).expect("job");
    failed_with(&emu, job, -4, "writing the update slot failed");
    session_and_apps_carried_on(&emu, &device);
}

#[test]
fn cut_https_downloads_resume_where_they_stopped_and_complete() {
    let emu = emulator();
    let device = Device::start(&emu, options(&["--ota-retry-ms", "100"]));
    assert!(emu.wait_online(PK, DN, WAIT));
    let file = image("2.0.0", &filler(200_000));
    let cut = 45_000;
    emu.cut_downloads_after(Some(cut));
    // Over HTTPS (the object store's usual scheme): each resume is a new TLS connection.
    let mut job = OtaJob::new(PK, &[DN], "2.0.0", file.clone());
    job.https = true;
    let job = emu.create_ota_job(job).expect("job");
    assert!(
        wait_until(WAIT, || steps(&emu).iter().any(|(s, _)| *s == 100)),
        "the download completed: {:?}\n{}",
        steps(&emu),
        device.log()
    );
    let downloads = emu.downloads();
    // Every attempt asked for the byte after the last one it had.
    let mut next = 0;
    for d in &downloads {
        assert_eq!(d.status, 206, "{downloads:?}");
        assert_eq!(d.start, next, "resumed where it stopped: {downloads:?}");
        next += d.bytes;
    }
    assert_eq!(
        next,
        file.len() as u64,
        "nothing fetched twice: {downloads:?}"
    );
    assert!(downloads.len() >= 4, "really cut: {downloads:?}");
    assert!(
        device.log().contains("OTA download from https://"),
        "over HTTPS: {}",
        device.log()
    );
    // Progress rose, and no error was reported.
    let reported: Vec<i32> = steps(&emu).iter().map(|s| s.0).collect();
    assert!(reported.windows(2).all(|w| w[0] <= w[1]), "{reported:?}");
    assert!(reported.iter().all(|s| *s > 0), "{reported:?}");
    assert!(matches!(
        emu.ota_job(job).and_then(|j| j.devices.get(DN).cloned()),
        Some(DeviceOtaState::InProgress { step: 100 } | DeviceOtaState::Succeeded)
    ));
}

/// The job ends succeeded: the device reported `version`.
fn succeeded_with(emu: &Emulator, job: JobId, device: &Device, version: &str) {
    let state = emu.wait_ota_state(job, DN, 2 * WAIT, |s| {
        matches!(s, DeviceOtaState::Succeeded | DeviceOtaState::Failed { .. })
    });
    assert_eq!(
        state,
        Some(DeviceOtaState::Succeeded),
        "steps {:?}\n{}",
        steps(emu),
        device.log()
    );
    assert_eq!(reported_version(emu).as_deref(), Some(version));
}

/// The new image of the update tests: the default device as version 2.0.0.
const V2: &str = env!("CARGO_BIN_EXE_aliot-host-v2");

fn job_state(emu: &Emulator, job: JobId) -> Option<DeviceOtaState> {
    emu.ota_job(job).and_then(|j| j.devices.get(DN).cloned())
}

#[test]
fn an_update_is_downloaded_swapped_in_confirmed_and_succeeds() {
    let emu = emulator();
    let mut device = Device::start(&emu, options(&["--ota-retry-ms", "100"]));
    assert!(wait_until(WAIT, || reported_version(&emu).as_deref() == Some("1.0.0")));
    let job = emu
        .create_ota_job(OtaJob::new(
            PK,
            &[DN],
            "2.0.0",
            launcher_image("2.0.0", std::path::Path::new(V2), &[]),
        ))
        .expect("job");
    succeeded_with(&emu, job, &device, "2.0.0");
    assert_eq!(steps(&emu).last().map(|s| s.0), Some(100));
    // The new image confirmed itself after its login: the next boot keeps it.
    assert!(
        wait_until(WAIT, || device.log().contains("image 2.0.0 confirmed")),
        "{}",
        device.log()
    );
    assert!(device.log().contains("trial"), "{}", device.log());
    device.signal(Signal::SIGTERM);
    assert!(device.wait_exit(WAIT).is_some_and(|s| s.success()));
    let state_dir = device.state_dir().to_path_buf();
    let again = Device::start(
        &emu,
        DeviceOptions {
            state_dir: Some(state_dir),
            ..options(&[])
        },
    );
    assert!(
        wait_until(WAIT, || again.log().contains("logged in")),
        "{}",
        again.log()
    );
    assert!(
        !again.log().contains("revert"),
        "a confirmed image stays: {}",
        again.log()
    );
    assert_eq!(job_state(&emu, job), Some(DeviceOtaState::Succeeded));
    assert!(error_lines(&again.log()).is_empty(), "{}", again.log());
}

#[test]
fn a_new_image_that_cannot_log_in_is_rolled_back_and_reported() {
    let emu = emulator();
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "not-the-device-secret").expect("write");
    let wrong = wrong.to_str().expect("utf-8 path");
    let device = Device::start(
        &emu,
        options(&["--ota-retry-ms", "100", "--trial-login-ms", "3000"]),
    );
    assert!(wait_until(WAIT, || reported_version(&emu).as_deref() == Some("1.0.0")));
    let image = launcher_image("2.0.0", std::path::Path::new(V2), &["--secret-file", wrong]);
    let job = emu
        .create_ota_job(OtaJob::new(PK, &[DN], "2.0.0", image))
        .expect("job");
    failed_with(&emu, job, -1, "rolled back");
    // The old image runs again, logged in, and says so.
    assert!(wait_until(WAIT, || emu.is_online(PK, DN)));
    assert_eq!(reported_version(&emu).as_deref(), Some("1.0.0"));
    let log = device.log();
    assert!(log.contains("did not log in within 3 s"), "{log}");
    assert!(log.contains("reverted"), "{log}");
    // The job is not taken again.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(matches!(
        job_state(&emu, job),
        Some(DeviceOtaState::Failed { step: -1, .. })
    ));
}

#[test]
fn a_power_cut_during_the_download_leaves_a_device_that_boots_and_finishes_the_job() {
    let emu = emulator();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = || DeviceOptions {
        state_dir: Some(dir.path().to_path_buf()),
        ..options(&["--ota-retry-ms", "100"])
    };
    // 100 KB: 25 page erases and about 50 writes in the update slot.
    let file = padded_launcher_image("2.0.0", std::path::Path::new(V2), &[], 100_000);
    let job = emu
        .create_ota_job(OtaJob::new(PK, &[DN], "2.0.0", file))
        .expect("job");
    // The firmware's flash operations are the download's (device_secret stores nothing
    // else): the first erase, a write, and erases and writes further in.
    for op in [0u32, 1, 30, 61] {
        let mut opts = state();
        opts.args
            .extend(["--cut-power-at-flash-op".to_string(), op.to_string()]);
        let mut cut = Device::start(&emu, opts);
        let status = cut.wait_exit(2 * WAIT).expect("the power cut ends the run");
        assert!(!status.success(), "op {op}: {}", cut.log());
        assert!(
            cut.log().contains("simulated power cut"),
            "op {op}: {}",
            cut.log()
        );
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
    // Power back: the old image boots, finds the job again and finishes it.
    let device = Device::start(&emu, state());
    let done = emu.wait_ota_state(job, DN, 2 * WAIT, |s| {
        matches!(s, DeviceOtaState::Succeeded | DeviceOtaState::Failed { .. })
    });
    assert_eq!(done, Some(DeviceOtaState::Succeeded), "{}", device.log());
    assert_eq!(reported_version(&emu).as_deref(), Some("2.0.0"));
}

/// The image in the active slot (header and payload), as the device runs it.
fn active_image(device: &Device) -> Vec<u8> {
    let slot = active_slot(device);
    let header = aliot_boot::parse_header(&slot[..aliot_boot::HEADER_LEN]).expect("an image");
    slot[..aliot_boot::HEADER_LEN + header.payload_len as usize].to_vec()
}

/// The update slot of the flash file (default layout).
fn update_slot(device: &Device) -> Vec<u8> {
    let flash = std::fs::read(device.state_dir().join("flash.bin")).unwrap_or_default();
    let u = aliot_kernel::config::NRF9160_OTA.update;
    let (start, end) = (u.offset as usize, (u.offset + u.size) as usize);
    flash
        .get(start..end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn diff_job(version: &str, patch: Vec<u8>) -> OtaJob {
    let mut job = OtaJob::new(PK, &[DN], version, patch);
    job.diff = true;
    job
}

#[test]
fn a_differential_update_cut_in_the_middle_resumes_and_succeeds() {
    let emu = emulator();
    let device = Device::start(&emu, options(&["--ota-retry-ms", "100"]));
    assert!(wait_until(WAIT, || reported_version(&emu).as_deref() == Some("1.0.0")));
    // The running (factory) image and a new one that launches version 2.0.0.
    let old = active_image(&device);
    let new = padded_launcher_image("2.0.0", std::path::Path::new(V2), &[], 40_000);
    let patch = aliot_boot::delta_maker::make_patch(
        &old,
        &new,
        aliot_boot::delta_maker::DEFAULT_WINDOW_BITS,
        aliot_boot::delta_maker::DEFAULT_LOOKAHEAD_BITS,
    )
    .expect("a patch");
    assert!(
        patch.len() < new.len() / 4,
        "{} of {}",
        patch.len(),
        new.len()
    );
    // Cut twice: the patcher resumes mid-stream from the last byte it took.
    let cut = patch.len() as u64 / 3;
    emu.cut_downloads_after(Some(cut));
    let job = emu
        .create_ota_job(diff_job("2.0.0", patch.clone()))
        .expect("job");
    succeeded_with(&emu, job, &device, "2.0.0");
    let downloads = emu.downloads();
    assert!(downloads.len() >= 3, "really cut: {downloads:?}");
    let mut next = 0;
    for d in &downloads {
        assert_eq!(d.start, next, "resumed where it stopped: {downloads:?}");
        next += d.bytes;
    }
    assert_eq!(next, patch.len() as u64, "nothing fetched twice");
    // The rebuilt image is what now runs.
    assert_eq!(active_image(&device), new);
}

#[test]
fn a_differential_package_for_another_base_is_minus_3_and_writes_nothing() {
    let emu = emulator();
    let device = Device::start(&emu, DeviceOptions::default());
    assert!(wait_until(WAIT, || reported_version(&emu).is_some()));
    let (active, update) = (active_slot(&device), update_slot(&device));
    let other_base = launcher_image("1.0.0", std::path::Path::new("/usr/bin/true"), &[]);
    let new = launcher_image("2.0.0", std::path::Path::new(V2), &[]);
    let patch = aliot_boot::delta_maker::make_patch(&other_base, &new, 10, 8).expect("patch");
    let job = emu.create_ota_job(diff_job("2.0.0", patch)).expect("job");
    failed_with(&emu, job, -3, "another base image");
    assert_eq!(active_slot(&device), active, "the active slot is untouched");
    assert_eq!(
        update_slot(&device),
        update,
        "nothing was written to the update slot"
    );
    session_and_apps_carried_on(&emu, &device);
}
