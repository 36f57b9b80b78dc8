//! [`download_job`] against a scripted network (answers written by hand as OSS sends them,
//! cut, stalled or refused), a fake clock that jumps to whatever deadline is awaited, and an
//! in-memory update slot ([`crate::ota::testkit`]).

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use futures_executor::block_on;

use super::*;
use crate::ota::job::Digest;
use crate::ota::testkit::*;

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
