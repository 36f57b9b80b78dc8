//! The OTA download task: runs beside the runner (the board joins both on its executor), so
//! the MQTT session and the apps are served while an image downloads (issue 8 point 4). It
//! takes work from [`Updates`]: a confirm request (done first), or a job, downloaded by
//! [`download_job`] into the board's [`UpdateSlot`], then marked for the boot stage. A later
//! job supersedes the one running (the platform pushes a second job to a device mid-upgrade
//! only when the new job overwrites the old one, `OverwriteMode` of `CreateOTA*UpgradeJob`):
//! the download is dropped where it is and the new one starts from zero.
//!
//! Progress below 100 is passed on as the download makes it; 100 is reported only once the
//! image is marked ([`End::Ready`]), so the platform never sees 100 for an image the boot
//! stage refused.

use embassy_futures::select::{Either, select};

use super::fetcher::{Limits, Outcome, Report, download_job};
use super::slot::UpdateSlot;
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
                let end = {
                    let mut writer = match slot.writer(job.size) {
                        Ok(writer) => writer,
                        Err(e) => {
                            updates.post_end(
                                generation,
                                End::Failed {
                                    step: e.step(),
                                    desc: e.desc(),
                                },
                            );
                            continue;
                        }
                    };
                    let mut report = |Report::Progress(p): Report| {
                        if p < 100 {
                            updates.post_progress(generation, p);
                        }
                    };
                    let downloading =
                        download_job(&job, net, clock, &mut writer, limits, buf, &mut report);
                    match select(downloading, updates.superseded(generation)).await {
                        Either::First(outcome) => outcome,
                        Either::Second(()) => {
                            log::warn!(
                                "OTA download of version {} superseded by a newer job",
                                job.version
                            );
                            continue;
                        }
                    }
                };
                let end = match end {
                    Outcome::Verified => {
                        updates.post_verifying(generation);
                        match slot.mark_updated() {
                            Ok(version) => End::Ready { version },
                            Err(e) => End::Failed {
                                step: e.step(),
                                desc: e.desc(),
                            },
                        }
                    }
                    Outcome::Failed { step, why } => End::Failed {
                        step,
                        desc: why.desc(),
                    },
                };
                updates.post_end(generation, end);
            }
        }
    }
}

#[cfg(test)]
mod tests;
