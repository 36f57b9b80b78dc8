//! What the commands do, on bytes (the binary only reads and writes the files).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aliot_boot::image::{HEADER_LEN, ImageError, ImageHeader, parse_header, verify_image};

/// The image for `payload`: header, then payload; refused when larger than `slot_size`.
pub fn create(
    version: &str,
    payload: &[u8],
    slot_size: Option<u32>,
) -> Result<Vec<u8>, ImageError> {
    let header = ImageHeader::new(version, payload)?;
    if let Some(slot) = slot_size {
        header.fits(slot)?;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Most bytes `host-launcher --pad-to` makes (the largest slot of a 4 GiB flash is far more
/// than any test needs; this only bounds the allocation).
pub const MAX_PAD: usize = 64 << 20;

/// The launcher script that execs `exec` with the board's arguments, then `args`, padded to
/// `pad_to` bytes. NUL bytes cannot be passed through a shell and are refused.
pub fn host_launcher(exec: &Path, args: &[OsString], pad_to: usize) -> Result<Vec<u8>, String> {
    if pad_to > MAX_PAD {
        return Err(format!("--pad-to {pad_to}: at most {MAX_PAD} bytes"));
    }
    let extra: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    if exec.as_os_str().as_bytes().contains(&0) || extra.iter().any(|a| a.contains(&0)) {
        return Err("a path or argument holds a NUL byte".into());
    }
    let mut out = Vec::new();
    aliot_boot::write_host_launcher(exec.as_os_str().as_bytes(), &extra, pad_to, &mut |b| {
        out.extend_from_slice(b)
    });
    Ok(out)
}

/// Writes `bytes` to `path` with mode 0755.
pub fn write_executable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(path)?;
    file.write_all(bytes)?;
    // `mode` applies to a new file only.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
}

/// What `show` prints, and whether the image verifies.
pub struct Report {
    /// Text for stdout.
    pub text: String,
    /// Header and payload digest both good, and the file is exactly header + payload.
    pub valid: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Header fields and the digest check of an image file.
pub fn show(image: &[u8]) -> Report {
    let mut text = String::new();
    let header = match parse_header(image) {
        Ok(h) => h,
        Err(e) => {
            let _ = writeln!(text, "header: INVALID ({e})");
            return Report { text, valid: false };
        }
    };
    let _ = writeln!(text, "header version: {}", header.header_version);
    let _ = writeln!(text, "flags: {:#06x}", header.flags);
    let _ = writeln!(text, "firmware version: {}", header.version);
    let _ = writeln!(text, "payload length: {}", header.payload_len);
    let _ = writeln!(text, "payload sha256: {}", hex(&header.payload_sha256));
    let valid = match verify_image(image, u32::MAX) {
        Ok(_) => {
            let _ = writeln!(text, "digest: OK");
            true
        }
        Err(e) => {
            let _ = writeln!(text, "digest: MISMATCH ({e})");
            false
        }
    };
    Report { text, valid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_launcher_runs_under_sh_with_every_argument_intact() {
        let dir = tempfile::tempdir().unwrap();
        // A "board" that prints its arguments one per line.
        let board = dir.path().join("it's a board");
        write_executable(&board, b"#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
        let extra: Vec<OsString> = ["--x", "a 'b' $c", "`d`"].map(OsString::from).to_vec();
        let script = host_launcher(&board, &extra, 3000).unwrap();
        assert_eq!(script.len(), 3000);
        let launcher = dir.path().join("launcher");
        write_executable(&launcher, &script).unwrap();
        let out = std::process::Command::new(&launcher)
            .args(["first", "\"q\""])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "first\n\"q\"\n--x\na 'b' $c\n`d`\n"
        );
        assert!(host_launcher(Path::new("/a\0b"), &[], 0).is_err());
        assert!(host_launcher(&board, &[], MAX_PAD + 1).is_err());
    }

    #[test]
    fn round_trip() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let image = create("1.2.3", &payload, None).unwrap();
        assert_eq!(image.len(), HEADER_LEN + 1000);
        assert_eq!(&image[HEADER_LEN..], &payload[..]);
        let h = verify_image(&image, u32::MAX).unwrap();
        assert_eq!(h.version.as_str(), "1.2.3");
        assert_eq!(h.payload_len, 1000);
        let r = show(&image);
        assert!(r.valid, "{}", r.text);
        assert!(r.text.contains("firmware version: 1.2.3\n"), "{}", r.text);
        assert!(r.text.contains("payload length: 1000\n"), "{}", r.text);
        assert!(r.text.contains("digest: OK\n"), "{}", r.text);
    }

    #[test]
    fn show_reports_a_bad_digest_and_a_bad_header() {
        let mut image = create("2.0.0", b"payload bytes", None).unwrap();
        let last = image.len() - 1;
        image[last] ^= 1;
        let r = show(&image);
        assert!(!r.valid);
        assert!(r.text.contains("firmware version: 2.0.0\n"), "{}", r.text);
        assert!(
            r.text
                .contains("digest: MISMATCH (payload SHA-256 mismatch)"),
            "{}",
            r.text
        );
        image[0] = b'X';
        let r = show(&image);
        assert!(!r.valid);
        assert!(r.text.contains("header: INVALID (bad magic"), "{}", r.text);
        // Truncated file: header fine, payload short.
        let image = create("2.0.0", b"payload bytes", None).unwrap();
        let r = show(&image[..image.len() - 3]);
        assert!(!r.valid);
        assert!(r.text.contains("incomplete"), "{}", r.text);
    }

    #[test]
    fn create_refuses_bad_versions_and_oversize() {
        assert_eq!(create("", b"x", None), Err(ImageError::BadVersionString));
        assert_eq!(create("1 2", b"x", None), Err(ImageError::BadVersionString));
        assert_eq!(create("1\"", b"x", None), Err(ImageError::BadVersionString));
        assert_eq!(
            create(&"1".repeat(33), b"x", None),
            Err(ImageError::VersionTooLong)
        );
        assert!(create(&"1".repeat(32), b"x", None).is_ok());
        assert_eq!(
            create("1", &[0; 100], Some(600)),
            Err(ImageError::TooLarge {
                image_len: 612,
                slot_len: 600
            })
        );
        assert!(create("1", &[0; 88], Some(600)).is_ok());
    }
}
