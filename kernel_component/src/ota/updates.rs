//! The meeting point of the OTA agent (in the runner, beside the MQTT session) and the
//! download task (beside the runner, [`super::task::run_updates`]): the agent hands over jobs
//! and a confirm request, the task hands back progress and outcomes, each waking the other.
//!
//! Both run on one single-threaded executor, so this is plain cells and wakers (what
//! `embassy-sync`'s `Signal` does with a no-op mutex); nothing is held across an await, so
//! no borrow can clash.

use core::cell::Cell;
use core::future::poll_fn;
use core::task::{Poll, Waker};

use super::job::Job;
use super::slot::SlotError;

/// How the board's boot stage started the running image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootKind {
    /// The confirmed image, nothing pending.
    Normal,
    /// A new image, on trial: confirmed after its first login, reverted at the next boot
    /// otherwise.
    Trial,
    /// The last trial image never confirmed and the boot stage put the previous one back.
    Reverted,
    /// The downloaded image failed the boot stage's check and was never run.
    RefusedUpdate,
}

/// How one job's download ended, as the task reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The image is in the update slot and marked: the next boot runs `version`.
    Ready {
        /// The image's version (from its header).
        version: heapless::String<32>,
    },
    /// Given up, with the progress step and `desc` to report.
    Failed {
        /// -1..-4 (spec §3).
        step: i8,
        /// Why, for the platform and the log (never a URL).
        desc: &'static str,
    },
}

/// What the task has to say since the agent last looked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct News {
    /// The latest progress of the current job (1..=99).
    pub progress: Option<u8>,
    /// The download is over; the image is being checked.
    pub verifying: bool,
    /// The current job ended.
    pub end: Option<End>,
    /// The answer to [`Updates::request_confirm`].
    pub confirmed: Option<Result<(), SlotError>>,
}

/// Work for the task.
#[derive(Debug)]
pub enum Work {
    /// Confirm the running image.
    Confirm,
    /// Download this job; `generation` names it in [`Updates::superseded`].
    Download {
        /// The job.
        job: Job,
        /// Its number: a later job supersedes it.
        generation: u32,
    },
}

/// See the module doc. Made by the board, lent to the runner (agent) and the task.
pub struct Updates {
    boot: BootKind,
    job: Cell<Option<Job>>,
    generation: Cell<u32>,
    confirm: Cell<bool>,
    progress: Cell<Option<(u32, u8)>>,
    verifying: Cell<Option<u32>>,
    end: Cell<Option<(u32, End)>>,
    confirmed: Cell<Option<Result<(), SlotError>>>,
    reboot: Cell<bool>,
    agent: Cell<Option<Waker>>,
    task: Cell<Option<Waker>>,
}

impl Updates {
    /// Nothing pending; the running image was booted as `boot` says.
    pub fn new(boot: BootKind) -> Self {
        Self {
            boot,
            job: Cell::new(None),
            generation: Cell::new(0),
            confirm: Cell::new(false),
            progress: Cell::new(None),
            verifying: Cell::new(None),
            end: Cell::new(None),
            confirmed: Cell::new(None),
            reboot: Cell::new(false),
            agent: Cell::new(None),
            task: Cell::new(None),
        }
    }

    /// How the running image was booted.
    pub fn boot(&self) -> BootKind {
        self.boot
    }

    /// Agent: download `job`, superseding any job before it. Returns its generation.
    pub fn offer(&self, job: Job) -> u32 {
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        self.job.set(Some(job));
        wake(&self.task);
        generation
    }

    /// Agent: confirm the running image (the task answers in [`News::confirmed`]).
    pub fn request_confirm(&self) {
        self.confirm.set(true);
        wake(&self.task);
    }

    /// Agent: what the task said since the last call, about the current job only.
    pub fn take_news(&self) -> News {
        let current = self.generation.get();
        let mine = |g: u32| g == current;
        News {
            progress: self
                .progress
                .take()
                .filter(|(g, _)| mine(*g))
                .map(|(_, p)| p),
            verifying: self.verifying.take().is_some_and(mine),
            end: self.end.take().filter(|(g, _)| mine(*g)).map(|(_, e)| e),
            confirmed: self.confirmed.take(),
        }
    }

    /// Agent: completes when the task has news. Cancel-safe.
    pub async fn news(&self) {
        poll_fn(|cx| {
            if self.has_news() {
                Poll::Ready(())
            } else {
                self.agent.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    fn has_news(&self) -> bool {
        let (p, v, e, c) = (
            self.progress.take(),
            self.verifying.take(),
            self.end.take(),
            self.confirmed.take(),
        );
        let any = p.is_some() || v.is_some() || e.is_some() || c.is_some();
        self.progress.set(p);
        self.verifying.set(v);
        self.end.set(e);
        self.confirmed.set(c);
        any
    }

    /// Agent: the image is marked and its report sent: the board should reboot now.
    pub fn request_reboot(&self) {
        self.reboot.set(true);
    }

    /// Board: whether the runner stopped to reboot into a new image (or back to the old one).
    pub fn reboot_requested(&self) -> bool {
        self.reboot.get()
    }

    /// Task: the next thing to do (a confirm first).
    pub async fn next_work(&self) -> Work {
        poll_fn(|cx| {
            if self.confirm.replace(false) {
                return Poll::Ready(Work::Confirm);
            }
            match self.job.take() {
                Some(job) => Poll::Ready(Work::Download {
                    job,
                    generation: self.generation.get(),
                }),
                None => {
                    self.task.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Task: completes when a job after `generation` was offered (it is taken by the next
    /// [`Updates::next_work`]). Cancel-safe.
    pub async fn superseded(&self, generation: u32) {
        poll_fn(|cx| {
            if self.generation.get() != generation {
                Poll::Ready(())
            } else {
                self.task.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// Task: job `generation` is `percent` done.
    pub fn post_progress(&self, generation: u32, percent: u8) {
        self.progress.set(Some((generation, percent)));
        wake(&self.agent);
    }

    /// Task: job `generation` is downloaded and being checked.
    pub fn post_verifying(&self, generation: u32) {
        self.verifying.set(Some(generation));
        wake(&self.agent);
    }

    /// Task: job `generation` ended.
    pub fn post_end(&self, generation: u32, end: End) {
        self.end.set(Some((generation, end)));
        wake(&self.agent);
    }

    /// Task: the confirm request was carried out (or failed).
    pub fn post_confirmed(&self, result: Result<(), SlotError>) {
        self.confirmed.set(Some(result));
        wake(&self.agent);
    }
}

fn wake(slot: &Cell<Option<Waker>>) {
    if let Some(waker) = slot.take() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(version: &str) -> Job {
        Job {
            version: version.into(),
            size: 10,
            url: "http://h/f".into(),
            digest: super::super::job::Digest::Md5([0; 16]),
            module: "default".into(),
            diff: false,
        }
    }

    fn now<F: core::future::Future>(f: F) -> Option<F::Output> {
        let mut f = core::pin::pin!(f);
        let mut cx = core::task::Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_later_job_supersedes_and_news_of_the_old_one_is_dropped() {
        let u = Updates::new(BootKind::Normal);
        assert!(now(u.next_work()).is_none(), "no work yet");
        let first = u.offer(job("2.0"));
        let Some(Work::Download { job: j, generation }) = now(u.next_work()) else {
            panic!("the job is handed over");
        };
        assert_eq!((j.version.as_str(), generation), ("2.0", first));
        assert!(now(u.superseded(first)).is_none());
        u.post_progress(first, 40);
        assert!(now(u.news()).is_some(), "progress is news");
        let second = u.offer(job("3.0"));
        assert!(
            now(u.superseded(first)).is_some(),
            "the first is superseded"
        );
        // The old job's progress and end arrive after the new job was offered: not news.
        u.post_end(
            first,
            End::Failed {
                step: -2,
                desc: "x",
            },
        );
        assert_eq!(u.take_news(), News::default());
        u.post_progress(second, 5);
        assert_eq!(u.take_news().progress, Some(5));
    }

    #[test]
    fn a_confirm_request_goes_before_a_job() {
        let u = Updates::new(BootKind::Trial);
        u.offer(job("2.0"));
        u.request_confirm();
        assert!(matches!(now(u.next_work()), Some(Work::Confirm)));
        assert!(matches!(now(u.next_work()), Some(Work::Download { .. })));
        u.post_confirmed(Ok(()));
        assert_eq!(u.take_news().confirmed, Some(Ok(())));
        assert_eq!(u.take_news(), News::default(), "news is taken once");
    }
}
