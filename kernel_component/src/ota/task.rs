//! The OTA download task: runs beside the runner (the board joins both on its executor), so
//! the MQTT session and the apps are served while an image downloads (issue 8 point 4). It
//! takes work from [`Updates`]: a confirm request (done first), or a job, downloaded by
//! [`download_job`] into the board's [`UpdateSlot`] — an image through its writer, a
//! differential package (`isDiff` 1) through its patcher, which rebuilds the image from the
//! running one as the package arrives ([`super::delta`]) — then marked for the boot stage. A later
//! job supersedes the one running (the platform pushes a second job to a device mid-upgrade
//! only when the new job overwrites the old one, `OverwriteMode` of `CreateOTA*UpgradeJob`):
//! the download is dropped where it is and the new one starts from zero.
//!
//! Progress below 100 is passed on as the download makes it; 100 is reported only once the
//! image is marked ([`End::Ready`]), so the platform never sees 100 for an image the boot
//! stage refused.

use embassy_futures::select::{Either, select};

use super::download::{DownloadError, Sink, SinkError};
use super::fetcher::{Failure, Limits, Outcome, Report, download_job};
use super::job::Job;
use super::slot::{SlotError, UpdateSlot};
use super::updates::{End, Updates, Work};
use crate::board::{Clock, Network};

/// Runs forever: the board drops it (with the runner) when it stops. `buf` is the download's
/// buffer ([`super::download::RECOMMENDED_BUF_LEN`]).
pub async fn run_updates<N: Network, C: Clock, U: UpdateSlot>(
    updates: &Updates,
    net: &mut N,
    clock: &C,
    slot: &mut U,
    limits: &Limits,
    buf: &mut [u8],
) -> core::convert::Infallible {
    loop {
        match updates.next_work().await {
            Work::Confirm => {
                let confirmed = slot.confirm();
                updates.post_confirmed(confirmed);
            }
            Work::Download { job, generation } => {
                let mut download = Download {
                    updates,
                    generation,
                    job: &job,
                    net: &mut *net,
                    clock,
                    limits,
                    buf: &mut *buf,
                };
                // The sink (a borrow of the slot) is gone before the slot is marked.
                let downloaded = {
                    let sink = if job.diff {
                        slot.patcher().map(SlotSink::Patcher)
                    } else {
                        slot.writer(job.size).map(SlotSink::Writer)
                    };
                    match sink {
                        Ok(mut sink) => download.run_into(&mut sink).await,
                        Err(e) => refused(e),
                    }
                };
                let end = match downloaded {
                    Downloaded::Superseded => {
                        log_warn!(
                            "OTA download of version {} superseded by a newer job",
                            job.version.as_str()
                        );
                        continue;
                    }
                    Downloaded::Failed(end) => end,
                    Downloaded::Verified => {
                        updates.post_verifying(generation);
                        match slot.mark_updated() {
                            Ok(version) => End::Ready { version },
                            Err(e) => End::Failed {
                                step: e.step(),
                                desc: e.desc(),
                            },
                        }
                    }
                };
                updates.post_end(generation, end);
            }
        }
    }
}

/// How one job's download into its sink ended.
enum Downloaded {
    /// The file is whole, its digest matched, and the sink finished (a differential
    /// package's rebuilt image matched its own digest).
    Verified,
    /// Given up: the end to report.
    Failed(End),
    /// A newer job was offered meanwhile.
    Superseded,
}

/// The slot refused to take a download.
fn refused(e: SlotError) -> Downloaded {
    Downloaded::Failed(End::Failed {
        step: e.step(),
        desc: e.desc(),
    })
}

/// The slot's writer (an image) or patcher (a differential package) as one [`Sink`] type, so
/// that the download ([`download_job`]: HTTP, retries, digest) is compiled once, not once per
/// sink (issue 11: about 4 KB of flash on the nRF9160 DK; measured in
/// boards/image/src/nrf9160.rs).
enum SlotSink<W, P> {
    Writer(W),
    Patcher(P),
}

impl<W: Sink, P: Sink> Sink for SlotSink<W, P> {
    async fn restart(&mut self) -> Result<(), SinkError> {
        match self {
            SlotSink::Writer(w) => w.restart().await,
            SlotSink::Patcher(p) => p.restart().await,
        }
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        match self {
            SlotSink::Writer(w) => w.write(offset, data).await,
            SlotSink::Patcher(p) => p.write(offset, data).await,
        }
    }

    async fn finish(&mut self) -> Result<(), SinkError> {
        match self {
            SlotSink::Writer(w) => w.finish().await,
            SlotSink::Patcher(p) => p.finish().await,
        }
    }
}

/// One job's download, whatever sink it goes into.
struct Download<'a, N, C> {
    updates: &'a Updates,
    generation: u32,
    job: &'a Job,
    net: &'a mut N,
    clock: &'a C,
    limits: &'a Limits,
    buf: &'a mut [u8],
}

impl<N: Network, C: Clock> Download<'_, N, C> {
    /// [`download_job`] into `sink`, raced against a newer job, then the sink's own last
    /// check.
    async fn run_into<K: Sink>(&mut self, sink: &mut K) -> Downloaded {
        let (updates, generation) = (self.updates, self.generation);
        let mut report = |Report::Progress(p): Report| {
            if p < 100 {
                updates.post_progress(generation, p);
            }
        };
        let downloading = download_job(
            self.job,
            self.net,
            self.clock,
            sink,
            self.limits,
            self.buf,
            &mut report,
        );
        match select(downloading, updates.superseded(generation)).await {
            Either::Second(()) => Downloaded::Superseded,
            Either::First(Outcome::Failed { step, why }) => Downloaded::Failed(End::Failed {
                step,
                desc: why.desc(),
            }),
            Either::First(Outcome::Verified) => match sink.finish().await {
                Ok(()) => Downloaded::Verified,
                Err(e) => {
                    let why = Failure::Download(DownloadError::Sink(e));
                    Downloaded::Failed(End::Failed {
                        step: why.step(),
                        desc: why.desc(),
                    })
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
