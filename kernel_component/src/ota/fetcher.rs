//! The download of one job with its retries (spec §3 "Download"; spec §7 item 4: weak links
//! cut downloads, so resume): [`download_job`] opens a stream to the job's URL, runs
//! [`download::fetch`] against the clock, resumes after a cut, a stall or a failed connect,
//! gives up when attempts stop making progress, and checks the length and the digest at the
//! end.
//!
//! | what happens | what is done |
//! |---|---|
//! | the URL does not parse | [`Outcome::Failed`] step -2 at once |
//! | connect fails or takes over [`Limits::connect_ms`]; the attempt takes over [`Limits::attempt_ms`]; the stream is cut ([`DownloadError::Interrupted`]); a 5xx | after [`Limits::retry_delay_ms`], again from the last byte the sink acknowledged |
//! | [`DownloadError::RangeNotSatisfiable`] | the sink is restarted, again from 0 at once |
//! | a 200 whole-file answer to a resume | taken from 0 by [`download::fetch`] (sink and digest restarted) |
//! | [`Limits::max_attempts_without_progress`] retried attempts in a row that wrote nothing past the furthest byte so far | step -2 ([`Failure::NoProgress`]) |
//! | a 4xx (OSS: 403 for an expired URL) or an answer that is not what was asked | step -2 at once: the URL will not serve the file |
//! | the sink fails to write | step -4 at once |
//! | the end reached, but the length or the digest is wrong | step -3 |
//!
//! "Acknowledged" is what the sink's `write` returned `Ok` for: the digest is updated only
//! then ([`download::Hashed`] hashes after the write), so
//! when a deadline drops an attempt in the middle of a write, the digest and the resume offset
//! still agree with the sink. The sink must then accept that write again at the same offset
//! (it may have written part of it).
//!
//! Progress goes through a [`Throttle`] on the board's clock to the caller's `report`; 100 is
//! reported only once the digest matched.
//!
//! [`super::task::run_updates`] calls it with the board's update slot as the sink.

use embassy_futures::select::{Either, select};

use super::digest::Hasher;
use super::download::{self, DownloadError, Hashed, Sink, SinkError};
use super::job::Job;
use super::progress::Throttle;
use super::url::{Url, UrlError};
use crate::board::{Clock, NetError, Network};

/// Time and retry budget of [`download_job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest wait for a stream to open (DNS, TCP, TLS).
    pub connect_ms: u64,
    /// Longest one attempt (request to last byte) may take; a slow download is cut there and
    /// resumed, which counts as progress when bytes came.
    pub attempt_ms: u64,
    /// Retried attempts in a row that wrote nothing new before giving up (at least 1).
    pub max_attempts_without_progress: u32,
    /// Wait before retrying after a failed attempt.
    pub retry_delay_ms: u64,
    /// Shortest time between two progress reports below 100 ([`Throttle`]).
    pub progress_interval_ms: u64,
}

impl Default for Limits {
    /// 30 s to connect, 5 min an attempt, 3 tries without progress 10 s apart, progress at
    /// most every 3 s (LINKSDK's download retries are of the same order).
    fn default() -> Self {
        Self {
            connect_ms: 30_000,
            attempt_ms: 300_000,
            max_attempts_without_progress: 3,
            retry_delay_ms: 10_000,
            progress_interval_ms: super::progress::DEFAULT_INTERVAL_MS,
        }
    }
}

/// What [`download_job`] tells its caller while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Percent done (1..=100, throttled; 100 only after the digest matched).
    Progress(u8),
}

/// How the download of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sink holds the whole file, of the job's size and digest.
    Verified,
    /// Given up: `step` is the progress code to report (spec §3: -2 download failed, -3
    /// verification failed, -4 flashing failed).
    Failed {
        /// The progress `step`.
        step: i8,
        /// Why.
        why: Failure,
    },
}

/// Why [`download_job`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The job's URL is not one this firmware can fetch.
    Url(UrlError),
    /// `attempts` retried attempts in a row wrote nothing new; `last` is why the last failed.
    NoProgress {
        /// Attempts in a row without progress.
        attempts: u32,
        /// The last attempt's failure.
        last: Retry,
    },
    /// An answer or a sink failure that retrying would not cure.
    Download(DownloadError),
    /// The file ended at another length than the job's size.
    Length {
        /// Bytes received.
        seen: u32,
        /// The job's size.
        size: u32,
    },
    /// The file does not hash to the job's digest.
    Digest,
}

/// Why one attempt failed in a way worth retrying.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The stream could not be opened.
    Connect(NetError),
    /// The stream took over [`Limits::connect_ms`] to open.
    ConnectTimeout,
    /// The attempt took over [`Limits::attempt_ms`].
    AttemptTimeout,
    /// The stream was cut, or the server answered 416 or 5xx.
    Download(DownloadError),
}

impl Failure {
    /// The progress `step` to report (spec §3).
    pub fn step(self) -> i8 {
        match self {
            Failure::Url(_) | Failure::NoProgress { .. } => -2,
            Failure::Download(e) => e.step(),
            Failure::Length { .. } | Failure::Digest => -3,
        }
    }

    /// A short `desc` for the progress report: never the URL.
    pub fn desc(self) -> &'static str {
        match self {
            Failure::Url(_) => "the download URL is not supported",
            Failure::NoProgress { .. } => "the download stopped making progress",
            Failure::Download(DownloadError::Refused(_)) => {
                "the server refused the download (the URL may have expired)"
            }
            Failure::Download(DownloadError::Sink(SinkError::Write)) => {
                "writing the update slot failed"
            }
            Failure::Download(DownloadError::Sink(SinkError::Patch(e))) => e.desc(),
            Failure::Download(_) => "the server's answer could not be used",
            Failure::Length { .. } => "the file's length is not the job's size",
            Failure::Digest => "the file's digest does not match the job's",
        }
    }
}

fn failed(why: Failure) -> Outcome {
    Outcome::Failed {
        step: why.step(),
        why,
    }
}

/// Downloads `job` into `sink`, as the module doc says. `buf` is [`download::fetch`]'s
/// buffer ([`download::RECOMMENDED_BUF_LEN`]); nothing is allocated.
pub async fn download_job<N: Network, C: Clock, K: Sink, R: FnMut(Report)>(
    job: &Job,
    net: &mut N,
    clock: &C,
    sink: &mut K,
    limits: &Limits,
    buf: &mut [u8],
    report: &mut R,
) -> Outcome {
    let url = match Url::parse(&job.url) {
        Ok(url) => url,
        Err(e) => {
            log_warn!("OTA download: {}", crate::logging::Disp(&e));
            return failed(Failure::Url(e));
        }
    };
    let size = job.size;
    let mut hasher = Hasher::new(job.digest);
    let mut throttle = Throttle::new(limits.progress_interval_ms);
    let max_without_progress = limits.max_attempts_without_progress.max(1);
    let mut without_progress: u32 = 0;
    // The furthest byte the sink ever acknowledged: progress is passing it.
    let mut furthest: u32 = 0;
    loop {
        let from = hasher.seen();
        let retry = match attempt(
            &url,
            net,
            clock,
            limits,
            from,
            size,
            buf,
            &mut Progress {
                hashed: Hashed {
                    hasher: &mut hasher,
                    inner: sink,
                },
                throttle: &mut throttle,
                clock,
                report: &mut *report,
                total: size,
            },
        )
        .await
        {
            Ok(()) => break,
            Err(Attempt::GiveUp(e)) => return failed(Failure::Download(e)),
            Err(Attempt::Retry(retry)) => retry,
        };
        let reached = hasher.seen();
        if reached > furthest {
            furthest = reached;
            without_progress = 0;
        } else {
            without_progress = without_progress.saturating_add(1);
        }
        log_warn!(
            "OTA download from {} stopped at {} of {} bytes: {:?}",
            crate::logging::Disp(&url.redacted()),
            reached,
            size,
            retry
        );
        if without_progress >= max_without_progress {
            return failed(Failure::NoProgress {
                attempts: without_progress,
                last: retry,
            });
        }
        if let Retry::Download(DownloadError::RangeNotSatisfiable) = retry {
            // The server will not serve from `reached`: start over, at once.
            hasher.reset();
            if let Err(e) = sink.restart().await {
                return failed(Failure::Download(DownloadError::Sink(e)));
            }
        } else {
            clock
                .sleep_until(clock.now_ms().saturating_add(limits.retry_delay_ms))
                .await;
        }
    }
    let seen = hasher.seen();
    if seen != size {
        return failed(Failure::Length { seen, size });
    }
    if !hasher.finish() {
        return failed(Failure::Digest);
    }
    if let Some(p) = throttle.poll(size, size, clock.now_ms()) {
        report(Report::Progress(p));
    }
    Outcome::Verified
}

/// How one attempt ended short of the end.
enum Attempt {
    Retry(Retry),
    GiveUp(DownloadError),
}

/// One connect and one [`download::fetch`] from `from`, each against its deadline.
#[allow(clippy::too_many_arguments)]
async fn attempt<N: Network, C: Clock, K: Sink>(
    url: &Url<'_>,
    net: &mut N,
    clock: &C,
    limits: &Limits,
    from: u32,
    total: u32,
    buf: &mut [u8],
    sink: &mut K,
) -> Result<(), Attempt> {
    let connect_deadline = clock.now_ms().saturating_add(limits.connect_ms);
    let connected = select(
        net.connect(url.host, url.port, url.tls()),
        clock.sleep_until(connect_deadline),
    )
    .await;
    let mut stream = match connected {
        Either::First(Ok(stream)) => stream,
        Either::First(Err(e)) => return Err(Attempt::Retry(Retry::Connect(e))),
        Either::Second(()) => return Err(Attempt::Retry(Retry::ConnectTimeout)),
    };
    let deadline = clock.now_ms().saturating_add(limits.attempt_ms);
    let fetched = select(
        download::fetch(&mut stream, url, from, total, buf, sink),
        clock.sleep_until(deadline),
    )
    .await;
    match fetched {
        Either::First(Ok(_)) => Ok(()),
        Either::First(Err(e)) => Err(match e {
            DownloadError::Interrupted { .. }
            | DownloadError::RangeNotSatisfiable
            | DownloadError::Status(500..=599) => Attempt::Retry(Retry::Download(e)),
            other => Attempt::GiveUp(other),
        }),
        Either::Second(()) => Err(Attempt::Retry(Retry::AttemptTimeout)),
    }
}

/// The sink layer of [`download_job`]: [`Hashed`] (which hashes only what the sink
/// acknowledged, so the hasher's count is the resume offset), then a throttled progress report.
struct Progress<'a, K, C, R> {
    hashed: Hashed<'a, K>,
    throttle: &'a mut Throttle,
    clock: &'a C,
    report: &'a mut R,
    total: u32,
}

impl<K: Sink, C: Clock, R: FnMut(Report)> Sink for Progress<'_, K, C, R> {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.hashed.restart().await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        self.hashed.write(offset, data).await?;
        let done = self.hashed.hasher.seen();
        // 100 waits for the digest.
        if done < self.total
            && let Some(p) = self.throttle.poll(done, self.total, self.clock.now_ms())
        {
            (self.report)(Report::Progress(p));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
