//! [`download_job`] against a scripted network (answers written by hand as OSS sends them,
//! cut, stalled or refused), a fake clock that jumps to whatever deadline is awaited, and an
//! in-memory update slot.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use futures_executor::block_on;
use md5::{Digest as _, Md5};

use super::*;
use crate::ota::job::Digest;

const URL: &str = "http://oss.example:8080/ota/fw.bin?Expires=1626969897&Signature=c2ln";
const BUF: usize = 512;

fn file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + (i >> 8) * 7 + 3) as u8)
        .collect()
}

fn job(data: &[u8]) -> Job {
    Job {
        version: "2.0.0".into(),
        size: data.len() as u32,
        url: URL.into(),
        digest: Digest::Md5(Md5::digest(data).into()),
        module: "default".into(),
    }
}

fn head(status: &str, fields: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: AliyunOSS\r\nContent-Type: application/octet-stream\r\n\
         {fields}Connection: close\r\nx-oss-request-id: 5C6A5F3A0A1B2C3D4E5F6A7B\r\n\r\n"
    )
}

/// 206 for `data[from..]`; returns the reply and the length of its head.
fn partial(data: &[u8], from: usize) -> (Vec<u8>, usize) {
    let total = data.len();
    let mut reply = head(
        "206 Partial Content",
        &format!(
            "Content-Length: {}\r\nContent-Range: bytes {from}-{}/{total}\r\n",
            total - from,
            total - 1
        ),
    )
    .into_bytes();
    let head_len = reply.len();
    reply.extend_from_slice(&data[from..]);
    (reply, head_len)
}

fn whole(data: &[u8]) -> Vec<u8> {
    let mut reply = head("200 OK", &format!("Content-Length: {}\r\n", data.len())).into_bytes();
    reply.extend_from_slice(data);
    reply
}

fn expired() -> Vec<u8> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                <Message>Request has expired.</Message></Error>";
    let mut reply = head(
        "403 Forbidden",
        &format!(
            "Content-Length: {}\r\nContent-Type: application/xml\r\n",
            body.len()
        ),
    )
    .into_bytes();
    reply.extend_from_slice(body.as_bytes());
    reply
}

/// The fake clock: `sleep_until` jumps the time to its deadline (recording it), so a future
/// that is pending loses every race against it.
#[derive(Clone, Default)]
struct FakeClock {
    now: Rc<Cell<u64>>,
    sleeps: Rc<RefCell<Vec<u64>>>,
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        self.sleeps.borrow_mut().push(deadline_ms);
        if deadline_ms > self.now.get() {
            self.now.set(deadline_ms);
        }
    }
}

/// One scripted answer to a connect.
enum Answer {
    /// The connect fails.
    Refuse,
    /// The connect never completes.
    Hang,
    /// A stream answering 206 for whatever range the request asks of this file.
    Serve(Vec<u8>),
    /// A stream replaying `reply`, `piece` bytes a read, each read taking `ms_per_read`;
    /// after `stall_after` reply bytes it never answers again, otherwise EOF at the end.
    Stream {
        reply: Vec<u8>,
        piece: usize,
        stall_after: Option<usize>,
    },
}

fn answer(reply: Vec<u8>) -> Answer {
    Answer::Stream {
        reply,
        piece: 100,
        stall_after: None,
    }
}

/// `reply` cut (EOF) after `at` bytes.
fn cut(mut reply: Vec<u8>, at: usize) -> Answer {
    reply.truncate(at);
    answer(reply)
}

struct Net {
    answers: VecDeque<Answer>,
    connects: Vec<(String, u16, bool)>,
    /// Each request's text.
    requests: Rc<RefCell<Vec<Vec<u8>>>>,
    /// Reply bytes read by the client, over all streams.
    read: Rc<Cell<usize>>,
    clock: FakeClock,
    ms_per_read: u64,
}

impl Net {
    fn new(clock: &FakeClock, answers: Vec<Answer>) -> Self {
        Self {
            answers: answers.into(),
            connects: Vec::new(),
            requests: Rc::default(),
            read: Rc::default(),
            clock: clock.clone(),
            ms_per_read: 0,
        }
    }

    fn ranges(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| {
                let text = core::str::from_utf8(r).unwrap();
                let line = text.lines().find(|l| l.starts_with("Range: ")).unwrap();
                line["Range: ".len()..].to_string()
            })
            .collect()
    }
}

struct Stream {
    reply: VecDeque<u8>,
    piece: usize,
    stall_after: Option<usize>,
    /// [`Answer::Serve`]: the file, until the request is answered.
    serve: Option<Vec<u8>>,
    consumed: usize,
    request: usize,
    requests: Rc<RefCell<Vec<Vec<u8>>>>,
    read: Rc<Cell<usize>>,
    clock: FakeClock,
    ms_per_read: u64,
}

impl ErrorType for Stream {
    type Error = ErrorKind;
}

impl Read for Stream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if let Some(data) = self.serve.take() {
            let request = String::from_utf8(self.requests.borrow()[self.request].clone()).unwrap();
            let from = request.split("Range: bytes=").nth(1).unwrap();
            let from: usize = from[..from.find('-').unwrap()].parse().unwrap();
            self.reply = partial(&data, from).0.into();
        }
        let left = match self.stall_after {
            Some(at) => at.saturating_sub(self.consumed).min(self.reply.len()),
            None => self.reply.len(),
        };
        if left == 0 && self.stall_after.is_some() {
            core::future::pending::<()>().await;
        }
        let n = self.piece.min(buf.len()).min(left);
        for (dst, src) in buf.iter_mut().zip(self.reply.drain(..n)) {
            *dst = src;
        }
        self.consumed += n;
        self.read.set(self.read.get() + n);
        self.clock.now.set(self.clock.now.get() + self.ms_per_read);
        Ok(n)
    }
}

impl Write for Stream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.requests.borrow_mut()[self.request].extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl Network for Net {
    type Stream = Stream;

    async fn connect(&mut self, host: &str, port: u16, tls: bool) -> Result<Stream, NetError> {
        self.connects.push((host.into(), port, tls));
        match self.answers.pop_front().expect("a connect nobody scripted") {
            Answer::Refuse => Err(NetError::Connect),
            Answer::Hang => core::future::pending().await,
            Answer::Serve(data) => {
                let mut stream = self.stream(Vec::new(), 100, None);
                stream.serve = Some(data);
                Ok(stream)
            }
            Answer::Stream {
                reply,
                piece,
                stall_after,
            } => Ok(self.stream(reply, piece, stall_after)),
        }
    }
}

impl Net {
    fn stream(&mut self, reply: Vec<u8>, piece: usize, stall_after: Option<usize>) -> Stream {
        let mut requests = self.requests.borrow_mut();
        requests.push(Vec::new());
        Stream {
            reply: reply.into(),
            piece,
            stall_after,
            serve: None,
            consumed: 0,
            request: requests.len() - 1,
            requests: self.requests.clone(),
            read: self.read.clone(),
            clock: self.clock.clone(),
            ms_per_read: self.ms_per_read,
        }
    }
}

/// The update slot in memory. A write at an offset below the end (one cancelled before it
/// was acknowledged) overwrites from there.
#[derive(Default)]
struct Slot {
    data: Vec<u8>,
    restarts: usize,
    /// Bytes handed over, rewrites included.
    received: usize,
    writes: usize,
    fail_at: Option<usize>,
    /// This write (counted from 1) writes half its bytes, then never completes.
    stall_write: Option<usize>,
}

impl Sink for Slot {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.data.clear();
        self.restarts += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        let offset = offset as usize;
        assert!(offset <= self.data.len(), "a gap at {offset}");
        self.writes += 1;
        if self.fail_at.is_some_and(|at| offset + data.len() > at) {
            return Err(SinkError::Write);
        }
        self.data.truncate(offset);
        if self.stall_write == Some(self.writes) {
            // Half written, then never acknowledged.
            self.stall_write = None;
            self.data.extend_from_slice(&data[..data.len() / 2]);
            core::future::pending::<()>().await;
        }
        self.data.extend_from_slice(data);
        self.received += data.len();
        Ok(())
    }
}

const LIMITS: Limits = Limits {
    connect_ms: 1_000,
    attempt_ms: 60_000,
    max_attempts_without_progress: 3,
    retry_delay_ms: 5_000,
    progress_interval_ms: 3_000,
};

struct Run {
    outcome: Outcome,
    reports: Vec<(u8, u64)>,
}

fn run(job: &Job, net: &mut Net, clock: &FakeClock, slot: &mut Slot) -> Run {
    let mut reports = Vec::new();
    let mut buf = [0u8; BUF];
    let outcome = block_on(download_job(
        job,
        net,
        clock,
        slot,
        &LIMITS,
        &mut buf,
        &mut |r: Report| {
            let Report::Progress(p) = r;
            reports.push((p, clock.now_ms()));
        },
    ));
    Run { outcome, reports }
}

fn percents(run: &Run) -> Vec<u8> {
    run.reports.iter().map(|r| r.0).collect()
}

#[test]
fn success_in_one_go() {
    let data = file(10_000);
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(net.connects, [("oss.example".to_string(), 8080, false)]);
    assert_eq!(net.ranges(), ["bytes=0-"]);
    assert_eq!(percents(&run).last(), Some(&100));
    assert_eq!(clock.now_ms(), 0, "no retry delay");
}

#[test]
fn https_urls_are_fetched_over_tls() {
    let data = file(300);
    let mut job = job(&data);
    job.url = "https://oss.example/fw.bin?Signature=x".into();
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut slot = Slot::default();
    let run = run(&job, &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(net.connects, [("oss.example".to_string(), 443, true)]);
}

#[test]
fn cut_at_three_offsets_resumes_and_completes() {
    let data = file(10_000);
    let mut answers = Vec::new();
    let mut from = 0;
    for take in [1_234, 10, 5_000] {
        let (reply, head_len) = partial(&data, from);
        answers.push(cut(reply, head_len + take));
        from += take;
    }
    answers.push(answer(partial(&data, from).0));
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, answers);
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(
        net.ranges(),
        ["bytes=0-", "bytes=1234-", "bytes=1244-", "bytes=6244-"]
    );
    assert!(slot.received <= data.len() + BUF, "{}", slot.received);
    assert_eq!(slot.restarts, 0);
    // Each connect and fetch won its race at once (the deadlines were never awaited).
    assert_eq!(*clock.sleeps.borrow(), [5_000, 10_000, 15_000]);
    assert_eq!(clock.now_ms(), 3 * LIMITS.retry_delay_ms, "a delay per cut");
}

#[test]
fn a_server_that_stalls_times_the_attempt_out_and_it_resumes() {
    let data = file(4_000);
    let (reply, head_len) = partial(&data, 0);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![
            Answer::Stream {
                reply,
                piece: 100,
                stall_after: Some(head_len + 1_000),
            },
            answer(partial(&data, 1_000).0),
        ],
    );
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(net.ranges(), ["bytes=0-", "bytes=1000-"]);
    assert_eq!(clock.now_ms(), LIMITS.attempt_ms + LIMITS.retry_delay_ms);
}

/// The sink wrote a piece but the attempt timed out before it acknowledged it: the resume
/// starts at the last acknowledged byte, and the digest is still right.
#[test]
fn a_timeout_inside_a_sink_write_resumes_from_what_the_sink_acknowledged() {
    let data = file(4_000);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![answer(partial(&data, 0).0), Answer::Serve(data.clone())],
    );
    // Pieces of 100 bytes: the head's read carries no body (the head is over 100 bytes), so
    // the first writes are 100 bytes each; the 5th never returns.
    let mut slot = Slot {
        stall_write: Some(5),
        ..Slot::default()
    };
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    let ranges = net.ranges();
    assert_eq!(ranges.len(), 2);
    let resumed: usize = ranges[1]["bytes=".len()..ranges[1].len() - 1]
        .parse()
        .unwrap();
    assert!(resumed < 400 + 100 && resumed > 0, "{ranges:?}");
}

#[test]
fn connect_refused_three_times_gives_up_after_exactly_three_attempts() {
    let data = file(1_000);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![
            Answer::Refuse,
            Answer::Refuse,
            Answer::Refuse,
            answer(partial(&data, 0).0),
        ],
    );
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(
        run.outcome,
        Outcome::Failed {
            step: -2,
            why: Failure::NoProgress {
                attempts: 3,
                last: Retry::Connect(NetError::Connect)
            }
        }
    );
    assert_eq!(net.connects.len(), 3);
    // A retry delay between tries, none after the last.
    assert_eq!(*clock.sleeps.borrow(), [5_000, 10_000]);
    assert_eq!(clock.now_ms(), 2 * LIMITS.retry_delay_ms);
    assert!(run.reports.is_empty());
}

#[test]
fn a_connect_that_hangs_times_out() {
    let data = file(1_000);
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![Answer::Hang, answer(partial(&data, 0).0)]);
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(clock.now_ms(), LIMITS.connect_ms + LIMITS.retry_delay_ms);
}

#[test]
fn an_expired_url_fails_at_once() {
    let data = file(1_000);
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![answer(expired()), answer(partial(&data, 0).0)]);
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(
        run.outcome,
        Outcome::Failed {
            step: -2,
            why: Failure::Download(DownloadError::Refused(403))
        }
    );
    assert_eq!(net.connects.len(), 1);
    assert_eq!(clock.now_ms(), 0);
}

#[test]
fn a_bad_url_fails_without_connecting() {
    let data = file(10);
    let mut job = job(&data);
    job.url = "ftp://oss.example/fw.bin".into();
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![]);
    let mut slot = Slot::default();
    let run = run(&job, &mut net, &clock, &mut slot);
    assert_eq!(
        run.outcome,
        Outcome::Failed {
            step: -2,
            why: Failure::Url(UrlError::Scheme)
        }
    );
    assert!(net.connects.is_empty());
}

#[test]
fn a_wrong_digest_fails_with_minus_3_and_no_100() {
    let data = file(5_000);
    let mut job = job(&data);
    job.digest = Digest::Md5([0x5a; 16]);
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut slot = Slot::default();
    let run = run(&job, &mut net, &clock, &mut slot);
    assert_eq!(
        run.outcome,
        Outcome::Failed {
            step: -3,
            why: Failure::Digest
        }
    );
    assert!(!run.reports.is_empty(), "progress below 100 was reported");
    assert!(!percents(&run).contains(&100), "{:?}", run.reports);
}

#[test]
fn a_sink_failure_fails_with_minus_4_at_once() {
    let data = file(5_000);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![answer(partial(&data, 0).0), answer(partial(&data, 0).0)],
    );
    let mut slot = Slot {
        fail_at: Some(2_000),
        ..Slot::default()
    };
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(
        run.outcome,
        Outcome::Failed {
            step: -4,
            why: Failure::Download(DownloadError::Sink(SinkError::Write))
        }
    );
    assert_eq!(net.connects.len(), 1);
}

#[test]
fn a_whole_file_answer_to_a_resume_restarts_and_the_digest_is_still_right() {
    let data = file(6_000);
    let (reply, head_len) = partial(&data, 0);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![cut(reply, head_len + 2_500), answer(whole(&data))],
    );
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(slot.restarts, 1);
    assert_eq!(net.ranges(), ["bytes=0-", "bytes=2500-"]);
}

#[test]
fn range_not_satisfiable_restarts_from_zero() {
    let data = file(3_000);
    let (reply, head_len) = partial(&data, 0);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![
            cut(reply, head_len + 700),
            answer(head("416 Range Not Satisfiable", "Content-Length: 0\r\n").into_bytes()),
            answer(partial(&data, 0).0),
        ],
    );
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(slot.restarts, 1);
    assert_eq!(net.ranges(), ["bytes=0-", "bytes=700-", "bytes=0-"]);
}

/// 64 KB in 100-byte reads of 100 ms each (about 65 s): a report about every 3 s, rising,
/// ending with 100.
#[test]
fn progress_reports_are_throttled() {
    let data = file(65_536);
    let clock = FakeClock::default();
    let mut net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    net.ms_per_read = 100;
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert!((20..=24).contains(&run.reports.len()), "{:?}", run.reports);
    assert_eq!(percents(&run).last(), Some(&100));
    for pair in run.reports.windows(2) {
        let ((p0, t0), (p1, t1)) = (pair[0], pair[1]);
        assert!(p1 > p0, "{:?}", run.reports);
        assert!(
            p1 == 100 || t1 - t0 >= LIMITS.progress_interval_ms,
            "{:?}",
            run.reports
        );
    }
    assert!(net.read.get() > 65_536);
}

/// Only failures in a row count: two failed connects, then an attempt that brings bytes,
/// then two more, and so on, never reach the limit of 3.
#[test]
fn failures_between_attempts_that_make_progress_do_not_add_up() {
    let data = file(3_000);
    let (first, head_len) = partial(&data, 0);
    let (second, head_len2) = partial(&data, 200);
    let clock = FakeClock::default();
    let mut net = Net::new(
        &clock,
        vec![
            Answer::Refuse,
            Answer::Refuse,
            cut(first, head_len + 200),
            Answer::Refuse,
            Answer::Hang,
            cut(second, head_len2 + 300),
            Answer::Refuse,
            Answer::Refuse,
            Answer::Serve(data.clone()),
        ],
    );
    let mut slot = Slot::default();
    let run = run(&job(&data), &mut net, &clock, &mut slot);
    assert_eq!(run.outcome, Outcome::Verified);
    assert_eq!(slot.data, data);
    assert_eq!(net.connects.len(), 9);
    assert_eq!(net.ranges(), ["bytes=0-", "bytes=200-", "bytes=500-"]);
}
