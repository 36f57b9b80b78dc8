//! The host board as a device with an A/B bootloader: the supervisor boots the flash file's
//! active image, swaps in a staged update (surviving a power cut at every flash operation of
//! the swap), reboots the firmware when it exits with the reboot code, and reverts an update
//! that was never confirmed.
//!
//! These tests run `aliot-host-ota-small` (manifests/ota_small.toml: 8-page slots), so that
//! cutting the power at every operation of a swap stays quick.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use nix::sys::signal::Signal;

const BOARD: &str = env!("CARGO_BIN_EXE_aliot-host-ota-small");
/// `[firmware] version` of manifests/ota_small.toml: the factory image's version.
const FACTORY: &str = "1.0.0";

/// Runs the board binary with `args` on `state` to the end (the boot-only and staging
/// modes return at once: no network, no firmware).
fn board(state: &Path, args: &[&str]) -> Output {
    Command::new(BOARD)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run the board")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `booted VERSION KIND` of a `--boot-only` run that must have succeeded.
fn booted(out: &Output) -> (String, String) {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout(out);
    let mut words = line.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("booted"), Some(v), Some(k), None) => (v.to_owned(), k.to_owned()),
        _ => panic!("not a boot line: {line:?}"),
    }
}

/// Stages `image` in the update slot of `state`'s flash (installing the factory image on a
/// fresh flash first).
fn stage(state: &Path, image: &[u8]) {
    let file = state.join("update.img");
    std::fs::write(&file, image).expect("write the image");
    let out = board(
        state,
        &["--stage-update", file.to_str().expect("utf-8 path")],
    );
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).starts_with("staged "), "{}", stdout(&out));
}

#[test]
fn a_power_cut_at_every_step_of_the_swap_still_boots_a_valid_image() {
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    // A fresh flash gets the factory image.
    let first = board(dir, &["--boot-only"]);
    assert_eq!(booted(&first), (FACTORY.into(), "normal".into()));
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("factory image 1.0.0 installed"),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    stage(dir, &launcher_image("9.9.9", Path::new(BOARD), &[]));
    let flash = dir.join("flash.bin");
    let staged = std::fs::read(&flash).expect("read the flash");

    let mut cuts = 0u32;
    let mut recovered = Vec::new();
    let last = loop {
        assert!(cuts < 5000, "the swap never completed");
        std::fs::write(&flash, &staged).expect("restore the staged flash");
        let cut = board(
            dir,
            &["--boot-only", "--cut-power-at-boot-op", &cuts.to_string()],
        );
        if cut.status.success() {
            break booted(&cut);
        }
        assert_eq!(
            cut.status.signal(),
            Some(Signal::SIGABRT as i32),
            "the cut run dies of the power cut: {:?}: {}",
            cut.status,
            String::from_utf8_lossy(&cut.stderr)
        );
        assert!(String::from_utf8_lossy(&cut.stderr).contains("simulated power cut"));
        // Power back on: the next boot resumes and boots a valid image.
        let (version, kind) = booted(&board(dir, &["--boot-only"]));
        assert!(
            version == FACTORY || version == "9.9.9",
            "after a cut at op {cuts}: booted {version} {kind}"
        );
        recovered.push((cuts, version, kind));
        cuts += 1;
    };
    eprintln!("the swap survived a power cut at each of its {cuts} flash operations");
    assert_eq!(last, ("9.9.9".into(), "trial".into()));
    assert!(cuts >= 36, "only {cuts} cut points in the swap");
    // The swap always resumes forward: each recovery is the update, on trial.
    let odd: Vec<_> = recovered
        .iter()
        .filter(|(_, v, k)| v != "9.9.9" || k != "trial")
        .collect();
    assert!(odd.is_empty(), "recoveries other than 9.9.9 trial: {odd:?}");
    // Never confirmed: the next boot puts the factory image back.
    let reverted = board(dir, &["--boot-only"]);
    assert_eq!(booted(&reverted), (FACTORY.into(), "reverted".into()));
}

#[test]
fn a_power_cut_while_the_factory_image_is_written_installs_it_again() {
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    let flash = dir.join("flash.bin");
    let mut cuts = 0u32;
    loop {
        assert!(cuts < 100, "the factory install never completed");
        let _ = std::fs::remove_file(&flash);
        let cut = board(
            dir,
            &["--boot-only", "--cut-power-at-boot-op", &cuts.to_string()],
        );
        if cut.status.success() {
            break;
        }
        assert_eq!(cut.status.signal(), Some(Signal::SIGABRT as i32));
        let again = board(dir, &["--boot-only"]);
        assert_eq!(booted(&again), (FACTORY.into(), "normal".into()));
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("factory image 1.0.0 installed"),
            "after a cut at op {cuts}"
        );
        cuts += 1;
    }
    // Erase, payload, header, magic.
    assert_eq!(cuts, 4);
}

/// The secret of the emulator's demo device (manifest/secrets/demo-device.secret).
fn demo_secret() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifest/secrets/demo-device.secret");
    std::fs::read_to_string(path)
        .expect("the demo secret")
        .trim()
        .to_owned()
}

#[test]
fn the_firmware_reboots_with_exit_75_and_an_unconfirmed_update_is_reverted() {
    let emu = emulator();
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    // A "firmware" that records how it was started and asks for a reboot.
    let runs = dir.join("runs");
    let fake = dir.join("fake-firmware");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$ALIOT_HOST_FIRMWARE $ALIOT_HOST_BOOT $*\" >> '{}'\nexit 75\n",
            runs.display()
        ),
    )
    .expect("write the fake firmware");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    stage(dir, &launcher_image("2.0.0", &fake, &[]));

    let mut device = Device::start(&emu, small_board(dir));
    // Boot 1: the update, on trial; it exits 75. Boot 2: it was not confirmed, so the
    // factory image (the real firmware) is put back, and it logs in.
    wait_online(&emu, &device);
    let log = device.log();
    assert!(
        log.contains("booted image 2.0.0 (trial: confirms after the first login)"),
        "{log}"
    );
    assert!(
        log.contains("the firmware asked for a reboot: rebooting"),
        "{log}"
    );
    assert!(log.contains("reverted to image 1.0.0"), "{log}");
    let runs = std::fs::read_to_string(&runs).expect("the fake firmware ran");
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 1, "{runs}");
    assert!(lines[0].starts_with("1 trial --mqtt-addr"), "{runs}");
    assert!(
        lines[0].contains(&format!("--state-dir {}", dir.display())),
        "{runs}"
    );

    // The signal reaches the supervisor, which stops the firmware cleanly.
    device.signal(Signal::SIGTERM);
    let status = device.wait_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert_eq!(emu.client_disconnects(PK, DN).len(), 1, "one DISCONNECT");
    // The only error: the firmware, told it was reverted (ALIOT_HOST_BOOT), reports the
    // rollback.
    let log = device.log();
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("rolled back; running version 1.0.0"),
        "{errors:?}"
    );
}

/// The small-slot board on the state directory `dir`.
fn small_board(dir: &Path) -> DeviceOptions {
    DeviceOptions {
        exe: Some(BOARD),
        state_dir: Some(dir.to_path_buf()),
        secret: Some(demo_secret()),
        ..DeviceOptions::default()
    }
}

fn wait_online(emu: &aliot_emulator::Emulator, device: &Device) {
    assert!(
        wait_until(WAIT, || emu.is_online(PK, DN)),
        "{}",
        device.log()
    );
}

#[test]
fn an_update_that_cannot_run_is_reverted_at_the_reset() {
    let emu = emulator();
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    // A valid image whose payload is no program (as an OTA test's filler image).
    stage(dir, &image("2.0.0", &[0xA5u8; 3000]));
    let device = Device::start(&emu, small_board(dir));
    wait_online(&emu, &device);
    let log = device.log();
    assert!(log.contains("booted image 2.0.0 (trial"), "{log}");
    assert!(
        log.contains("image 2.0.0 is no program for this board"),
        "{log}"
    );
    assert!(log.contains("reverted to image 1.0.0"), "{log}");
}

/// Parent process id of `pid`, from `/proc/PID/stat` (`pid (comm) state ppid ...`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_firmware_and_its_apps_die_with_the_supervisor() {
    let emu = emulator();
    let state = tempfile::tempdir().expect("temp dir");
    let mut device = Device::start(&emu, small_board(state.path()));
    assert!(wait_until(WAIT, || device
        .app_pid("publish_test")
        .is_some()));
    let app = device.app_pid("publish_test").expect("app pid");
    let firmware = parent_of(app).expect("the app's parent");
    assert!(!process_gone(firmware));
    // The supervisor dies at once, with no chance to stop anything.
    device.signal(Signal::SIGKILL);
    assert!(device.wait_exit(WAIT).is_some());
    assert!(
        wait_until(WAIT, || process_gone(firmware)),
        "the firmware outlived the supervisor"
    );
    assert!(
        wait_until(WAIT, || process_gone(app)),
        "the app outlived the firmware"
    );
}

#[test]
fn a_firmware_that_dies_ends_the_supervisor_with_a_failure() {
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    let fake = dir.join("fake-firmware");
    std::fs::write(&fake, "#!/bin/sh\nkill -KILL $$\n").expect("write the fake firmware");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    stage(dir, &launcher_image("2.0.0", &fake, &[]));
    // No emulator: nothing is dialled before the firmware dies.
    let out = board(dir, &["--mqtt-addr", "127.0.0.1:9"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {log}", out.status);
    assert!(log.contains("the device died (SIGKILL)"), "{log}");
}

#[test]
fn garbage_in_the_active_slot_is_never_run() {
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path();
    assert_eq!(booted(&board(dir, &["--boot-only"])).0, FACTORY);
    // Flip one payload byte of the active image (manifests/ota_small.toml: active at 0x8000).
    let flash = dir.join("flash.bin");
    let mut bytes = std::fs::read(&flash).expect("read the flash");
    bytes[0x8000 + 512 + 3] ^= 0x01;
    std::fs::write(&flash, &bytes).expect("write the flash");
    for args in [&["--boot-only"][..], &["--mqtt-addr", "127.0.0.1:9"][..]] {
        let out = board(dir, args);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{:?}: {log}", out.status);
        assert!(
            log.contains(
                "no valid image in the active slot (0x8000, 32768 bytes): payload SHA-256 mismatch"
            ),
            "{log}"
        );
        assert!(!log.contains("factory image"), "{log}");
        assert!(!dir.join("active-image").exists(), "nothing was run");
    }
}
