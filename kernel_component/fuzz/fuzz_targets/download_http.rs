//! HTTP responses to the OTA download: `ota::download::fetch` (one range request: status,
//! `Content-Range`, `Content-Length`, chunked or to-the-close body) and, in the second mode,
//! `ota::fetcher::download_job` (the retries, resumes and final checks around it), over
//! streams that replay the input and a clock that jumps to every deadline.
//!
//! Input: one mode byte (bit 0: `download_job`; bit 1: the sink fails its third write; bits
//! 2-4: bytes per read; bits 5-7: the buffer size), two bytes of `from` and two of `total`
//! (`fetch`) or of the job's size (`download_job`), then for `fetch` the server's bytes, for
//! `download_job` one answer per connect, each prefixed by its 16-bit length (a connect past
//! the last answer fails).
//!
//! Checked: no panic, no hang; the request is a GET with a Range; the sink sees every byte
//! once, in order, from `from` (or from 0 after a restart, which only a 200 to a resume may
//! cause), never at or past `total`; `Ok` means the sink reached `total`, `Interrupted {
//! reached }` that it holds exactly `0..reached`, `TooLong` that it reached `total`; the
//! answers that refuse the response (`BadRange`, `BadLength`, `Refused`, `Status`,
//! `RangeNotSatisfiable`) wrote nothing. `download_job` ends, with `Verified` only when the
//! sink holds exactly the job's size; progress is 1..=100, and 100 is reported exactly when
//! the download is `Verified`.

#![no_main]

use std::cell::Cell;

use aliot_kernel::board::{Clock, NetError, Network};
use aliot_kernel::ota::download::{DownloadError, Sink, SinkError, fetch};
use aliot_kernel::ota::fetcher::{Limits, Outcome, Report, download_job};
use aliot_kernel::ota::job::{Digest, Job};
use aliot_kernel::ota::url::Url;
use aliot_kernel_fuzz::{Input, Replay, chunk, once};
use libfuzzer_sys::fuzz_target;

const URL: &str = "http://oss.example.com:8080/fw/app.bin?Expires=1&Signature=abc%2Bdef";

/// MD5 of the 512-byte file the seeds serve (`bytes(range(256)) * 2`), so that seeds reach
/// `Verified`.
const SEED_FILE_MD5: [u8; 16] = [
    0xf5, 0xc8, 0xe3, 0xc3, 0x1c, 0x04, 0x4b, 0xae, 0x0e, 0x65, 0x56, 0x95, 0x60, 0xb5, 0x43, 0x32,
];

/// The update slot as the checks see it: where the next byte must go, and how many writes.
struct Slot {
    pos: u32,
    total: u32,
    writes: u32,
    restarts: u32,
    fail_at: Option<u32>,
}

impl Sink for Slot {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.pos = 0;
        self.restarts += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        assert!(!data.is_empty(), "empty write");
        assert_eq!(offset, self.pos, "write out of order");
        let end = u64::from(offset) + data.len() as u64;
        assert!(
            end <= u64::from(self.total),
            "write past total: {end} > {}",
            self.total
        );
        self.writes += 1;
        if self.fail_at == Some(self.writes) {
            return Err(SinkError::Write);
        }
        self.pos = end as u32;
        Ok(())
    }
}

struct Net<'a> {
    input: Input<'a>,
    chunk: usize,
    connects: u32,
}

impl<'a> Network for Net<'a> {
    type Stream = Replay<'a>;
    async fn connect(&mut self, host: &str, port: u16, tls: bool) -> Result<Replay<'a>, NetError> {
        assert_eq!((host, port, tls), ("oss.example.com", 8080, false));
        self.connects += 1;
        assert!(self.connects < 10_000, "connect loop");
        if self.input.is_empty() {
            return Err(NetError::Connect);
        }
        let len = usize::from(u16::from_be_bytes([self.input.byte(), self.input.byte()]));
        Ok(Replay::new(self.input.bytes(len), self.chunk))
    }
}

/// Time jumps to every deadline it is asked to wait for.
struct Jump(Cell<u64>);

impl Clock for Jump {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
    async fn sleep_until(&self, deadline_ms: u64) {
        self.0.set(self.0.get().max(deadline_ms));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.byte();
    let piece = chunk(mode >> 2 & 7);
    let buf_len = [2048, 512, 300, 128, 4096, 1024, 700, 64][usize::from(mode >> 5)];
    let a = u32::from(u16::from_be_bytes([input.byte(), input.byte()]));
    let b = u32::from(u16::from_be_bytes([input.byte(), input.byte()]));
    let fail_at = (mode & 2 != 0).then_some(3);
    let mut buf = vec![0u8; buf_len];
    let url = Url::parse(URL).expect("the URL parses");
    if mode & 1 == 0 {
        let (from, total) = (a, b);
        let mut slot = Slot {
            pos: from,
            total,
            writes: 0,
            restarts: 0,
            fail_at,
        };
        let mut stream = Replay::new(input.0, piece);
        let result = once(fetch(&mut stream, &url, from, total, &mut buf, &mut slot));
        if from < total && buf_len >= 256 {
            assert!(
                stream
                    .written
                    .starts_with(b"GET /fw/app.bin?Expires=1&Signature=abc%2Bdef HTTP/1.1\r\n")
            );
            let range = format!("\r\nRange: bytes={from}-\r\n");
            assert!(
                stream
                    .written
                    .windows(range.len())
                    .any(|w| w == range.as_bytes())
            );
        }
        match result {
            Ok(fetched) => {
                assert_eq!(slot.pos, total);
                assert_eq!(fetched.restarted_from_zero, slot.restarts > 0);
            }
            Err(DownloadError::Interrupted { reached }) => assert_eq!(slot.pos, reached),
            Err(DownloadError::TooLong) => assert_eq!(slot.pos, total),
            Err(
                DownloadError::BadRange
                | DownloadError::BadLength
                | DownloadError::Refused(_)
                | DownloadError::Status(_)
                | DownloadError::RangeNotSatisfiable
                | DownloadError::BadOffset,
            ) => assert_eq!((slot.writes, slot.restarts), (0, 0)),
            Err(DownloadError::Http(_) | DownloadError::Sink(_)) => {}
        }
        if slot.restarts > 0 {
            assert!(from > 0, "restarted a download from 0");
        }
    } else {
        let job = Job {
            version: "1.0.1".into(),
            size: a,
            url: URL.into(),
            digest: Digest::Md5(SEED_FILE_MD5),
            module: "default".into(),
            diff: false,
        };
        let mut slot = Slot {
            pos: 0,
            total: a,
            writes: 0,
            restarts: 0,
            fail_at,
        };
        let mut net = Net {
            input,
            chunk: piece,
            connects: 0,
        };
        let clock = Jump(Cell::new(0));
        let mut hundred = false;
        let outcome = once(download_job(
            &job,
            &mut net,
            &clock,
            &mut slot,
            &Limits::default(),
            &mut buf,
            &mut |Report::Progress(p)| {
                assert!((1..=100).contains(&p), "progress {p}");
                hundred |= p == 100;
            },
        ));
        if outcome == Outcome::Verified {
            assert_eq!(slot.pos, a);
        }
        assert_eq!(
            hundred,
            outcome == Outcome::Verified,
            "100 reported for {outcome:?}"
        );
    }
});
