//! The `aliot-imgtool` binary, run as a process.

use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_aliot-imgtool");

#[test]
fn create_then_show() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload.bin");
    let output = dir.path().join("image.bin");
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&input, &payload).unwrap();

    let out = Command::new(EXE)
        .args(["create", "--version", "1.2.3", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let image = std::fs::read(&output).unwrap();
    assert_eq!(image.len(), 512 + 3000);
    assert_eq!(&image[..4], b"ALIM");
    assert_eq!(&image[12..18], b"1.2.3\0");
    assert_eq!(&image[512..], &payload[..]);
    let h = aliot_boot::verify_image(&image, u32::MAX).unwrap();
    assert_eq!(h.version.as_str(), "1.2.3");

    let out = Command::new(EXE).arg("show").arg(&output).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("firmware version: 1.2.3"), "{stdout}");
    assert!(stdout.contains("payload length: 3000"), "{stdout}");
    assert!(stdout.contains("digest: OK"), "{stdout}");

    // A flipped payload bit: show says so and exits 1.
    let mut bad = image.clone();
    bad[600] ^= 0x10;
    std::fs::write(&output, &bad).unwrap();
    let out = Command::new(EXE).arg("show").arg(&output).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("digest: MISMATCH"), "{stdout}");
}

#[test]
fn create_refuses_a_bad_version() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload.bin");
    std::fs::write(&input, b"abc").unwrap();
    let out = Command::new(EXE)
        .args(["create", "--version", "a b", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("image.bin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad firmware version string"));
    assert!(!dir.path().join("image.bin").exists());
}

#[test]
fn host_launcher_writes_an_executable_padded_script() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("payload.sh");
    let out = Command::new(EXE)
        .current_dir(dir.path())
        .args(["host-launcher", "--exec", "board", "--pad-to", "1048576"])
        .arg("--output")
        .arg(&output)
        .args(["--", "--state-dir", "it's here"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let script = std::fs::read(&output).unwrap();
    assert_eq!(script.len(), 1 << 20);
    // --exec is made absolute (the launcher runs from the board's state directory).
    let board = dir.path().join("board");
    let line = format!(
        "#!/bin/sh\nexec '{}' \"$@\" '--state-dir' 'it'\\''s here'\nexit 127\n",
        board.display()
    );
    assert!(
        script.starts_with(line.as_bytes()),
        "{}",
        String::from_utf8_lossy(&script[..200])
    );
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn diff_then_patch() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (old, new) = (
        fixtures.join("board-1.0.0.bin"),
        fixtures.join("board-1.0.1.bin"),
    );
    let patch = dir.path().join("patch.bin");
    let out = Command::new(EXE)
        .args(["diff", "--old"])
        .arg(&old)
        .arg("--new")
        .arg(&new)
        .arg("--output")
        .arg(&patch)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let patch_len = std::fs::metadata(&patch).unwrap().len();
    assert!(
        line.contains(&format!("patch {patch_len} bytes, new image 19136 bytes")),
        "{line}"
    );
    assert!(line.contains("new image compressed alone"), "{line}");
    assert_eq!(
        &std::fs::read(&patch).unwrap()[..8],
        b"ALDP\x01\x00\x0a\x08"
    );

    let rebuilt = dir.path().join("new.bin");
    let out = Command::new(EXE)
        .args(["patch", "--old"])
        .arg(&old)
        .arg("--patch")
        .arg(&patch)
        .arg("--output")
        .arg(&rebuilt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&rebuilt).unwrap(),
        std::fs::read(&new).unwrap()
    );

    // Applied to another image: refused, with the reason, and nothing written.
    let wrong = dir.path().join("wrong.bin");
    let out = Command::new(EXE)
        .args(["patch", "--old"])
        .arg(fixtures.join("board-1.1.0.bin"))
        .arg("--patch")
        .arg(&patch)
        .arg("--output")
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("another base image"), "{err}");
    assert!(!wrong.exists());

    // Parameters the device cannot decode.
    let out = Command::new(EXE)
        .args(["diff", "--window", "12", "--old"])
        .arg(&old)
        .arg("--new")
        .arg(&new)
        .arg("--output")
        .arg(dir.path().join("p2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("window bits 12")
    );
}
