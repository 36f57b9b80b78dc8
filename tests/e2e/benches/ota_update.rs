//! Benchmark: a 1 MiB OTA update against a plain HTTP GET of the same file from the same
//! server, in the same run (issue 8).
//!
//! - baseline: one `GET` of the job's URL over a plain `TcpStream`, reading to the end;
//! - device: the host board (`aliot-host-ota-big`: the default device on a 4 MiB flash, so a
//!   1 MiB image fits its slots) from the job's creation to its `100` progress report: the
//!   push, the `Range` download into the update slot on the flash file, the digest, the boot
//!   stage's image check and mark (the reboot after it is not counted);
//! - the same with the server cutting every download after 256 KiB (resumes).
//!
//! Loopback numbers: they show the device's overhead over the transfer itself, not a
//! cellular link. Run: `cargo bench -p aliot-e2e --bench ota_update`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use aliot_emulator::{DeviceOtaState, Emulator, JobId, OtaJob};
use common::*;

const BOARD: &str = env!("CARGO_BIN_EXE_aliot-host-ota-big");
const SIZE: usize = 1 << 20;
const LONG: Duration = Duration::from_secs(120);

/// A 1 MiB image (header included) of `version`.
fn image_of(version: &str) -> Vec<u8> {
    let file = padded_launcher_image(version, Path::new(BOARD), &[], SIZE - 512);
    assert_eq!(file.len(), SIZE);
    file
}

/// Creates the job and waits for the device's 100; the time it took.
fn update(emu: &Emulator, version: &str) -> (JobId, Duration) {
    let file = image_of(version);
    let start = Instant::now();
    let job = emu
        .create_ota_job(OtaJob::new(PK, &[DN], version, file))
        .expect("job");
    let state = emu.wait_ota_state(job, DN, LONG, |s| {
        matches!(
            s,
            DeviceOtaState::InProgress { step: 100 }
                | DeviceOtaState::Succeeded
                | DeviceOtaState::Failed { .. }
        )
    });
    let took = start.elapsed();
    assert!(
        matches!(
            state,
            Some(DeviceOtaState::InProgress { step: 100 } | DeviceOtaState::Succeeded)
        ),
        "{state:?}"
    );
    (job, took)
}

/// Body bytes and requests the file server answered for `job`'s file.
fn served(emu: &Emulator, job: JobId, version: &str) -> (u64, usize) {
    let file = format!("job-{}-{version}.bin", job.0);
    let records: Vec<_> = emu
        .downloads()
        .into_iter()
        .filter(|d| d.file == file)
        .collect();
    (records.iter().map(|d| d.bytes).sum(), records.len())
}

/// The URL the platform pushed for `version`.
fn pushed_url(emu: &Emulator, version: &str) -> String {
    emu.downlinks(PK, DN)
        .iter()
        .filter_map(|d| serde_json::from_slice::<serde_json::Value>(&d.payload).ok())
        .filter(|v| v["data"]["version"] == version)
        .find_map(|v| v["data"]["url"].as_str().map(str::to_owned))
        .expect("the job was pushed")
}

/// A plain `GET` of `url` (http://host:port/path?query); the time and the body length.
fn plain_get(url: &str) -> (Duration, usize) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let start = Instant::now();
    let mut stream = TcpStream::connect(authority).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reply = Vec::with_capacity(SIZE + 1024);
    stream.read_to_end(&mut reply).expect("answer");
    let took = start.elapsed();
    let head = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    (took, reply.len() - head)
}

fn main() {
    let emu = emulator();
    let device = Device::start(
        &emu,
        DeviceOptions {
            exe: Some(BOARD),
            args: vec!["--ota-retry-ms".into(), "100".into()],
            ..DeviceOptions::default()
        },
    );
    assert!(emu.wait_online(PK, DN, WAIT), "{}", device.log());

    let (job, device_time) = update(&emu, "2.0.0");
    let (device_bytes, device_requests) = served(&emu, job, "2.0.0");
    // The reboot into the new image, its login and its confirm: then the next job is taken.
    assert!(
        wait_until(LONG, || device.log().contains("confirmed")),
        "{}",
        device.log()
    );

    emu.cut_downloads_after(Some(256 * 1024));
    let (cut_job, cut_time) = update(&emu, "2.0.1");
    let (cut_bytes, cut_requests) = served(&emu, cut_job, "2.0.1");
    emu.cut_downloads_after(None);

    let (get_time, get_bytes) = plain_get(&pushed_url(&emu, "2.0.0"));

    println!("1 MiB OTA update vs a plain HTTP GET of the same file, same emulator, loopback:");
    println!(
        "{:<44} {:>10} {:>12} {:>9}",
        "", "ms", "body bytes", "requests"
    );
    let row = |name: &str, t: Duration, bytes: u64, requests: usize| {
        println!(
            "{name:<44} {:>10.1} {bytes:>12} {requests:>9}",
            t.as_secs_f64() * 1000.0
        )
    };
    row("plain GET (baseline)", get_time, get_bytes as u64, 1);
    row(
        "device: push, download, digest, check, mark",
        device_time,
        device_bytes,
        device_requests,
    );
    row(
        "device, download cut every 256 KiB",
        cut_time,
        cut_bytes,
        cut_requests,
    );
    println!(
        "device / baseline: {:.1}x the time, {:.4}x the bytes",
        device_time.as_secs_f64() / get_time.as_secs_f64(),
        device_bytes as f64 / get_bytes as f64
    );
}
