//! [`run_updates`] against the scripted network of [`crate::ota::testkit`] and an update slot
//! in memory that records what the boot stage was asked to do.

use alloc::vec;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::select;
use futures_executor::block_on;

use super::*;
use crate::ota::download::{Sink, SinkError};
use crate::ota::fetcher::Limits;
use crate::ota::job::Job;
use crate::ota::slot::SlotError;
use crate::ota::testkit::{self, Answer, FakeClock, Net, Slot, answer, cut, file, partial};
use crate::ota::updates::{BootKind, News};

const LIMITS: Limits = Limits {
    connect_ms: 1_000,
    attempt_ms: 60_000,
    max_attempts_without_progress: 3,
    retry_delay_ms: 5_000,
    progress_interval_ms: 0,
};

/// The update slot and the boot stage, in memory.
#[derive(Default)]
struct Board {
    slot: Slot,
    /// Lengths asked of [`UpdateSlot::writer`].
    opened: Vec<u32>,
    refuse_writer: Option<SlotError>,
    refuse_mark: Option<SlotError>,
    marked: usize,
    confirmed: usize,
    /// Downloads that went to [`UpdateSlot::patcher`].
    patched: usize,
}

impl UpdateSlot for Board {
    type Writer<'a> = &'a mut Slot;
    type Patcher<'a> = &'a mut Slot;

    fn patcher(&mut self) -> Result<&mut Slot, SlotError> {
        if let Some(e) = self.refuse_writer {
            return Err(e);
        }
        self.patched += 1;
        self.slot.data.clear();
        Ok(&mut self.slot)
    }

    fn writer(&mut self, len: u32) -> Result<&mut Slot, SlotError> {
        if let Some(e) = self.refuse_writer {
            return Err(e);
        }
        self.opened.push(len);
        self.slot.data.clear();
        Ok(&mut self.slot)
    }

    fn mark_updated(&mut self) -> Result<heapless::String<32>, SlotError> {
        if let Some(e) = self.refuse_mark {
            return Err(e);
        }
        self.marked += 1;
        Ok("2.0.0".try_into().unwrap())
    }

    fn confirm(&mut self) -> Result<(), SlotError> {
        self.confirmed += 1;
        Ok(())
    }
}

impl Sink for &mut Slot {
    async fn restart(&mut self) -> Result<(), SinkError> {
        (**self).restart().await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        (**self).write(offset, data).await
    }

    async fn finish(&mut self) -> Result<(), SinkError> {
        (**self).finish().await
    }
}

/// Runs the task until the agent would see an end (or a confirm answer), collecting the
/// progress it saw on the way.
fn run_until_news(
    updates: &Updates,
    mut net: Net,
    clock: &FakeClock,
    board: &mut Board,
) -> (Vec<u8>, News) {
    let mut progress = Vec::new();
    let mut buf = [0u8; testkit::BUF];
    let task = run_updates(updates, &mut net, clock, board, &LIMITS, &mut buf);
    let agent = poll_fn(|cx| {
        let news = updates.take_news();
        progress.extend(news.progress);
        if news.end.is_some() || news.confirmed.is_some() {
            return Poll::Ready(news);
        }
        // Registers the waker.
        let mut waiting = core::pin::pin!(updates.news());
        let _ = waiting.as_mut().poll(cx);
        Poll::Pending
    });
    let news = match block_on(select(task, agent)) {
        embassy_futures::select::Either::Second(news) => news,
        embassy_futures::select::Either::First(never) => match never {},
    };
    (progress, news)
}

fn offered(data: &[u8]) -> (Updates, Job) {
    let updates = Updates::new(BootKind::Normal);
    let job = testkit::job(data);
    updates.offer(job.clone());
    (updates, job)
}

#[test]
fn a_job_is_downloaded_marked_and_reported_ready_with_100_left_to_the_agent() {
    let data = file(5_000);
    let (updates, _) = offered(&data);
    let clock = FakeClock::default();
    let net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut board = Board::default();
    let (progress, news) = run_until_news(&updates, net, &clock, &mut board);
    assert_eq!(
        news.end,
        Some(End::Ready {
            version: "2.0.0".try_into().unwrap()
        })
    );
    assert_eq!(board.slot.data, data);
    assert_eq!(board.opened, [5_000]);
    assert_eq!(board.marked, 1);
    assert!(!progress.is_empty(), "progress was reported");
    assert!(progress.iter().all(|p| *p < 100), "{progress:?}");
}

#[test]
fn a_cut_download_resumes_and_is_marked_once() {
    let data = file(5_000);
    let (updates, _) = offered(&data);
    let clock = FakeClock::default();
    let (reply, head) = partial(&data, 0);
    let net = Net::new(
        &clock,
        vec![cut(reply, head + 2_000), answer(partial(&data, 2_000).0)],
    );
    let ranges = net.requests.clone();
    let mut board = Board::default();
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert!(matches!(news.end, Some(End::Ready { .. })), "{news:?}");
    assert_eq!(board.slot.data, data);
    assert_eq!(ranges.borrow().len(), 2, "one resume");
    assert_eq!(board.marked, 1);
}

#[test]
fn a_wrong_digest_is_minus_3_and_nothing_is_marked() {
    let data = file(3_000);
    let updates = Updates::new(BootKind::Normal);
    let mut job = testkit::job(&data);
    job.digest = crate::ota::job::Digest::Md5([7; 16]);
    updates.offer(job);
    let clock = FakeClock::default();
    let net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut board = Board::default();
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert_eq!(
        news.end,
        Some(End::Failed {
            step: -3,
            desc: "the file's digest does not match the job's"
        })
    );
    assert_eq!(board.marked, 0);
}

#[test]
fn an_image_the_boot_stage_refuses_is_minus_3() {
    let data = file(3_000);
    let (updates, _) = offered(&data);
    let clock = FakeClock::default();
    let net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut board = Board {
        refuse_mark: Some(SlotError::InvalidImage),
        ..Board::default()
    };
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert_eq!(
        news.end,
        Some(End::Failed {
            step: -3,
            desc: SlotError::InvalidImage.desc()
        })
    );
}

#[test]
fn an_unconfirmed_running_image_refuses_the_download_before_any_connect() {
    let data = file(3_000);
    let (updates, _) = offered(&data);
    let clock = FakeClock::default();
    let net = Net::new(&clock, Vec::<Answer>::new());
    let connects = net.requests.clone();
    let mut board = Board {
        refuse_writer: Some(SlotError::NotConfirmed),
        ..Board::default()
    };
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert_eq!(
        news.end,
        Some(End::Failed {
            step: -1,
            desc: SlotError::NotConfirmed.desc()
        })
    );
    assert!(connects.borrow().is_empty());
}

#[test]
fn a_flash_failure_is_minus_4() {
    let data = file(3_000);
    let (updates, _) = offered(&data);
    let clock = FakeClock::default();
    let net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
    let mut board = Board::default();
    board.slot.fail_at = Some(1_000);
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert!(
        matches!(news.end, Some(End::Failed { step: -4, .. })),
        "{news:?}"
    );
    assert_eq!(board.marked, 0);
}

#[test]
fn a_confirm_request_is_carried_out() {
    let updates = Updates::new(BootKind::Trial);
    updates.request_confirm();
    let clock = FakeClock::default();
    let net = Net::new(&clock, Vec::<Answer>::new());
    let mut board = Board::default();
    let (_, news) = run_until_news(&updates, net, &clock, &mut board);
    assert_eq!(news.confirmed, Some(Ok(())));
    assert_eq!(board.confirmed, 1);
}

#[test]
fn a_differential_job_goes_through_the_patcher_whose_last_check_can_refuse_it() {
    let data = file(3_000);
    for (refusal, expected) in [
        (None, None),
        (Some(crate::ota::delta::PatchError::WrongBase), Some(-3)),
        (Some(crate::ota::delta::PatchError::Write), Some(-4)),
    ] {
        let updates = Updates::new(BootKind::Normal);
        let mut job = testkit::job(&data);
        job.diff = true;
        updates.offer(job);
        let clock = FakeClock::default();
        let net = Net::new(&clock, vec![answer(partial(&data, 0).0)]);
        let mut board = Board::default();
        board.slot.finish_error = refusal.map(SinkError::Patch);
        let (_, news) = run_until_news(&updates, net, &clock, &mut board);
        assert_eq!(
            (board.patched, board.opened.len()),
            (1, 0),
            "the patcher, not the writer"
        );
        assert_eq!(board.slot.finished, 1);
        match (expected, news.end) {
            (None, Some(End::Ready { .. })) => assert_eq!(board.marked, 1),
            (Some(step), Some(End::Failed { step: s, desc })) => {
                assert_eq!(s, step);
                assert_eq!(Some(desc), refusal.map(|e| e.desc()));
                assert_eq!(board.marked, 0);
            }
            (e, other) => panic!("{e:?}: {other:?}"),
        }
    }
}
