//! Row 1.5: an OTA update on the host board (this executable run as the board with aliot-e2e's
//! `ota_big.toml` manifest, the default device on a 4 MiB flash, a real process with its apps) against a plain HTTP GET of the
//! same file from the same emulator; the bytes the board fetched when every download is cut
//! after 256 KiB (a resume fetches nothing twice); a differential package's bytes against the
//! full image.
//!
//! The device's time runs from the job's creation to its `100` progress report: the push,
//! the `Range` download into the update slot of the flash file, the digest, the boot stage's
//! check and mark. Loopback figures: they show the device's overhead over the transfer, not
//! a cellular link.
//!
//! The images are launchers of the board binary (`aliot_boot::write_host_launcher`, as the
//! e2e tests make them) whose filler, which the shell never reads, is pseudo-random text: a
//! differential package of two such images is as large as what really changed. The new image
//! of the differential update is the old one with 4 KiB inserted in the middle and 64 bytes
//! changed here and there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aliot_emulator::{DeviceOtaState, Emulator, EmulatorConfig, JobId, OtaJob};

use crate::table::{Outcome, Row, Value};

const PK: &str = "a1NrfDemo01";
/// The default manifest's device, which the board binary is.
const DN: &str = "nrf9160-dk-01";
const LONG: Duration = Duration::from_secs(120);
/// The cut of the resume figure.
const CUT: u64 = 256 * 1024;

/// A launcher image of `exe`, `size` bytes with its header, version `version`, filler from
/// `seed`.
pub fn image(version: &str, exe: &Path, size: usize, seed: u64) -> Result<Vec<u8>, String> {
    let mut payload = Vec::with_capacity(size);
    aliot_boot::write_host_launcher(exe.as_os_str().as_encoded_bytes(), &[], 0, &mut |b| {
        payload.extend_from_slice(b)
    });
    payload.extend_from_slice(b"exit 127\n");
    let mut x = seed | 1;
    while payload.len() < size.saturating_sub(aliot_boot::HEADER_LEN) {
        // xorshift64: cheap, deterministic, incompressible enough for a diff to be honest.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload.push(if payload.len() % 64 == 63 {
            b'\n'
        } else {
            b'a' + (x % 26) as u8
        });
    }
    let header = aliot_boot::ImageHeader::new(version, &payload)
        .map_err(|e| format!("image header: {e:?}"))?;
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    Ok(out)
}

/// `old`'s payload with 4 KiB inserted in the middle and 64 bytes changed, as `version`.
fn changed(old: &[u8], version: &str) -> Result<Vec<u8>, String> {
    let mut payload = old
        .get(aliot_boot::HEADER_LEN..)
        .unwrap_or_default()
        .to_vec();
    let mid = payload.len() / 2;
    payload.splice(mid..mid, (0..4096).map(|i| b'A' + (i % 26) as u8));
    let step = payload.len() / 65;
    for i in 1..=64 {
        if let Some(b) = payload.get_mut(i * step) {
            *b = b'#';
        }
    }
    let header = aliot_boot::ImageHeader::new(version, &payload)
        .map_err(|e| format!("image header: {e:?}"))?;
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The board as a child process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Board {
    child: Child,
    state: tempfile::TempDir,
}

impl Board {
    fn start(exe: &Path, emu: &Emulator) -> Result<Board, String> {
        let state = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let log = std::fs::File::create(state.path().join("board.log"))
            .map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(exe)
            .arg("--mqtt-addr")
            .arg(format!("127.0.0.1:{}", emu.tls_addr().port()))
            .arg("--ca")
            .arg(emu.ca_pem_path())
            .args([
                "--mqtt-version",
                "3.1.1",
                "--tls",
                "true",
                "--backoff-base-ms",
                "300",
            ])
            .args(["--ota-retry-ms", "100"])
            .arg("--state-dir")
            .arg(state.path())
            .env("RUST_LOG", "info")
            .env(BOARD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        Ok(Board { child, state })
    }

    /// The last lines the board logged (warnings and errors), for a failure's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.state.path().join("board.log")).unwrap_or_default();
        // The echo app's ACL probes repeat all run long: left out.
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("app echo")).collect();
        lines[lines.len().saturating_sub(12)..].join("\n    ")
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SIGTERM first: the board stops its apps and exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the job and waits for `until`; the time it took.
fn update(
    emu: &Emulator,
    job: OtaJob,
    until: fn(&DeviceOtaState) -> bool,
) -> Result<(JobId, Duration), String> {
    let start = Instant::now();
    let id = emu.create_ota_job(job).map_err(|e| format!("job: {e:?}"))?;
    let state = emu.wait_ota_state(id, DN, LONG, |s| {
        until(s) || matches!(s, DeviceOtaState::Failed { .. })
    });
    let took = start.elapsed();
    match state {
        Some(s) if until(&s) => Ok((id, took)),
        other => Err(format!("job {}: {other:?}", id.0)),
    }
}

fn downloaded(s: &DeviceOtaState) -> bool {
    matches!(
        s,
        DeviceOtaState::InProgress { step: 100 } | DeviceOtaState::Succeeded
    )
}

/// Body bytes the file server sent for `job`'s file.
fn served(emu: &Emulator, job: JobId, version: &str) -> u64 {
    let file = format!("job-{}-{version}.bin", job.0);
    emu.downloads()
        .into_iter()
        .filter(|d| d.file == file)
        .map(|d| d.bytes)
        .sum()
}

/// The URL the platform pushed for `version`.
fn pushed_url(emu: &Emulator, version: &str) -> Result<String, String> {
    emu.downlinks(PK, DN)
        .iter()
        .filter_map(|d| serde_json::from_slice::<serde_json::Value>(&d.payload).ok())
        .filter(|v| v["data"]["version"] == version)
        .find_map(|v| v["data"]["url"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("no push of {version}"))
}

/// A plain `GET` of `url` (http://host:port/path); the time and the body's length.
fn plain_get(url: &str) -> Result<(Duration, usize), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (authority, path) = rest.split_at(rest.find('/').ok_or("no path")?);
    let start = Instant::now();
    let mut stream = TcpStream::connect(authority).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("request: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("answer: {e}"))?;
    let took = start.elapsed();
    let head = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no head")?
        + 4;
    Ok((took, reply.len() - head))
}

/// What the OTA rows measured.
struct Figures {
    device: Duration,
    get: Duration,
    full_bytes: u64,
    get_bytes: usize,
    cut_bytes: u64,
    diff_bytes: u64,
    size: usize,
}

fn measure(board: &Path, size: usize) -> Result<Figures, String> {
    let emu = Emulator::start(EmulatorConfig::demo()).map_err(|e| format!("emulator: {e:?}"))?;
    let full = image("2.0.0", board, size, 1)?;
    // Each update on a board of its own, fresh from its factory image: the host board's boot
    // stage swaps slots page by page with a sync each, which takes minutes on a slow disk.
    let (device, full_bytes) = on_board(&emu, board, |emu| {
        let (job, took) = update(
            emu,
            OtaJob::new(PK, &[DN], "2.0.0", full.clone()),
            downloaded,
        )?;
        Ok((took, served(emu, job, "2.0.0")))
    })?;
    let (get, get_bytes) = plain_get(&pushed_url(&emu, "2.0.0")?)?;
    emu.cut_downloads_after(Some(CUT.min(size as u64 / 4)));
    let cut = on_board(&emu, board, |emu| {
        let cut_image = image("2.0.1", board, size, 2)?;
        let (job, _) = update(emu, OtaJob::new(PK, &[DN], "2.0.1", cut_image), downloaded)?;
        Ok(served(emu, job, "2.0.1"))
    });
    emu.cut_downloads_after(None);
    let cut_bytes = cut?;
    // The package a differential update of the same size fetches: aliot-e2e's
    // a_differential_update_cut_in_the_middle_resumes_and_succeeds checks that the device
    // fetches exactly its bytes, resumes included.
    let new = changed(&full, "2.0.2")?;
    let patch = aliot_boot::delta_maker::make_patch(
        &full,
        &new,
        aliot_boot::delta_maker::DEFAULT_WINDOW_BITS,
        aliot_boot::delta_maker::DEFAULT_LOOKAHEAD_BITS,
    )?;
    Ok(Figures {
        device,
        get,
        full_bytes,
        get_bytes,
        cut_bytes,
        diff_bytes: patch.len() as u64,
        size,
    })
}

/// Starts a board on `emu`, waits for its login, runs `f`; the board's log tail joins an
/// error.
fn on_board<T>(
    emu: &Emulator,
    board: &Path,
    f: impl FnOnce(&Emulator) -> Result<T, String>,
) -> Result<T, String> {
    let process = Board::start(board, emu)?;
    let run = || {
        if !emu.wait_online(PK, DN, Duration::from_secs(30)) {
            return Err("the board did not log in".to_owned());
        }
        f(emu)
    };
    run().map_err(|e| format!("{e}; the board's log ends:\n    {}", process.log_tail()))
}

/// Set in the environment of this executable to make it the OTA row's board.
pub const BOARD_ENV: &str = "ALIOT_XTASK_OTA_BOARD";

/// The board binary: this executable (see `main.rs`).
pub fn board_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("my own executable: {e}"))
}

/// The three rows, with an image of `size` bytes.
pub fn rows(board: &Path, size: usize) -> Vec<Row> {
    let kib = size / 1024;
    let what_time = format!("OTA {kib} KiB: download, hash, write on the host board");
    match measure(board, size) {
        Ok(f) => vec![
            Row::measured(
                "1.5",
                what_time,
                Value::new(f.device.as_secs_f64() * 1e3, "ms"),
                Value::new(f.get.as_secs_f64() * 1e3, "ms"),
                "plain HTTP GET",
            )
            .with_note(format!(
                "device fetched {} B, the GET {} B; from the job's creation to progress 100 (push included), loopback",
                f.full_bytes, f.get_bytes
            )),
            Row::measured(
                "1.5",
                format!("OTA {kib} KiB, downloads cut after {} KiB: bytes fetched", (CUT as usize).min(size / 4) / 1024),
                Value::new(f.cut_bytes as f64, "B"),
                Value::new(f.size as f64, "B"),
                "the image",
            )
            .with_note(format!(
                "bytes fetched twice after the cuts: {}",
                f.cut_bytes.saturating_sub(f.size as u64)
            )),
            Row::measured(
                "1.5",
                format!("OTA {kib} KiB differential package: bytes"),
                Value::new(f.diff_bytes as f64, "B"),
                Value::new(f.size as f64, "B"),
                "full image",
            )
            .with_note("the package for 4 KiB inserted and 64 bytes changed (aliot-boot's delta maker); the e2e test of differential updates checks the device fetches exactly its bytes"),
        ],
        Err(e) => vec![Row::other("1.5", what_time, Outcome::Failed(e))],
    }
}
