//! OTA (spec §3), as a kernel service: the kernel, not an app, owns the OTA topics, so no app
//! sees a download URL or a digest.
//!
//! Who does what:
//! * [`OtaAgent`] (driven by the runner, beside the MQTT session): the announcement after
//!   every login (inform the running version and module, subscribe to upgrade pushes, once
//!   per boot ask `firmware/get` so a job created while the device was offline is found); the
//!   check of every job ([`job`]) with refusals reported on `/ota/device/progress`; handing a
//!   good job to the task; turning the task's news into progress reports, the OTA status apps
//!   read, and log lines; confirming a trial image after its first login, reporting a
//!   rollback, and stopping the runner for the reboot an update needs.
//! * [`task::run_updates`] (run by the board beside the runner, so the session and the apps
//!   are served during a download): the download of a job into the board's update slot
//!   ([`slot::UpdateSlot`]) through [`fetcher`] ([`url`], [`download`], [`digest`],
//!   [`progress`]) — a differential package through the patcher of [`delta`] — then the boot
//!   stage's mark.
//! * [`updates::Updates`]: where the two meet.
//!
//! A second job while one downloads supersedes it; the same job again (the push and the
//! `firmware/get` answer both deliver it) is ignored; a job for the running version is not
//! downloaded.
//!
//! The runner drives the agent ([`crate::runner::Runner::with_ota`]); its budget is part of
//! the kernel's worst case ([`crate::budget::KERNEL_SERVICES`], [`DEF_BYTES`], [`JOB_BYTES`]).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
#[cfg(feature = "ota")]
use core::fmt::Write;

#[cfg(feature = "ota")]
use aliot_abi::{Event, OtaStatus, Qos, Request};

use crate::budget::{AppBudget, min_event_queue_bytes, outbox_record_bytes};
use crate::config::{AppDef, DeviceConfig, RestartPolicy};
#[cfg(feature = "ota")]
use crate::kernel::Kernel;
use crate::kernel::ServiceId;

#[cfg(feature = "ota")]
pub mod delta;
#[cfg(feature = "ota")]
pub mod digest;
#[cfg(feature = "ota")]
pub mod download;
#[cfg(feature = "ota")]
pub mod fetcher;
#[cfg(feature = "ota")]
pub mod job;
#[cfg(feature = "ota")]
mod md5;
#[cfg(feature = "ota")]
pub mod progress;
#[cfg(feature = "ota")]
pub mod slot;
#[cfg(feature = "ota")]
pub mod task;
#[cfg(all(test, feature = "ota"))]
pub(crate) mod testkit;
#[cfg(feature = "ota")]
pub mod updates;
#[cfg(feature = "ota")]
pub mod url;

#[cfg(feature = "ota")]
use updates::{BootKind, End, Updates};

/// Largest upgrade push or `firmware/get` answer taken: the URL (a few hundred bytes) and
/// `extData` (up to 4096 characters per the console's `Udi` field; 1.5 KiB here). A longer
/// message is dropped by the kernel as for any client, and logged.
pub const MAX_MESSAGE: u32 = 2048;

/// The service's share of kernel memory: one largest message queued, two reports (inform and
/// firmware/get after a login, or a progress report) of up to 256 bytes waiting to be sent,
/// two subscriptions. A report that finds the outbox full is logged and dropped.
pub const SERVICE_BUDGET: AppBudget = AppBudget {
    event_queue_bytes: min_event_queue_bytes(MAX_MESSAGE),
    outbox_bytes: 2 * outbox_record_bytes(aliot_abi::MAX_TOPIC_LEN as u32, 256),
    max_payload: MAX_MESSAGE,
    subscriptions: 2,
};

/// The OTA topics of one device (spec §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `/ota/device/inform/${pk}/${dn}`: the running version.
    pub inform: String,
    /// `/ota/device/upgrade/${pk}/${dn}`: jobs pushed by the platform.
    pub upgrade: String,
    /// `/ota/device/progress/${pk}/${dn}`: progress and errors.
    pub progress: String,
    /// `/sys/${pk}/${dn}/thing/ota/firmware/get`: ask for a pending job.
    pub get: String,
    /// `/sys/${pk}/${dn}/thing/ota/firmware/get_reply`: its answer.
    pub get_reply: String,
}

impl Topics {
    /// The topics of the device `config` describes.
    pub fn new(config: &DeviceConfig) -> Self {
        let (pk, dn) = (config.product_key, config.device_name);
        Self {
            inform: format!("/ota/device/inform/{pk}/{dn}"),
            upgrade: format!("/ota/device/upgrade/{pk}/{dn}"),
            progress: format!("/ota/device/progress/{pk}/{dn}"),
            get: format!("/sys/{pk}/{dn}/thing/ota/firmware/get"),
            get_reply: format!("/sys/{pk}/{dn}/thing/ota/firmware/get_reply"),
        }
    }
}

/// Most heap [`crate::services::all`] takes for the service's definition: its five topics
/// (each at most [`aliot_abi::MAX_TOPIC_LEN`] bytes), the two slices that list them, and its
/// entry in the slice of definitions. Counted in the kernel's worst case ([`crate::budget::worst_case_ram`]).
pub const DEF_BYTES: u32 = (5 * aliot_abi::MAX_TOPIC_LEN
    + 5 * core::mem::size_of::<&str>()
    + core::mem::size_of::<AppDef>()) as u32;

/// Most heap a job takes while it downloads: its strings (URL, version, module), which all
/// come from one message of at most [`MAX_MESSAGE`] bytes. Counted in the kernel's worst case.
pub const JOB_BYTES: u32 = MAX_MESSAGE;

/// The OTA service's index among [`crate::services::all`].
pub const OTA_SERVICE: ServiceId = 0;

/// The OTA service's grants and budget, for [`Kernel::with_services`].
pub fn service_def(config: &DeviceConfig) -> AppDef {
    let t = Topics::new(config);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let publish: &'static [&'static str] =
        Box::leak(vec![leak(t.inform), leak(t.progress), leak(t.get)].into_boxed_slice());
    let subscribe: &'static [&'static str] =
        Box::leak(vec![leak(t.upgrade), leak(t.get_reply)].into_boxed_slice());
    AppDef {
        name: "ota",
        memory: 0,
        publish,
        subscribe,
        restart: RestartPolicy::Never,
        settings: &[],
        budget: SERVICE_BUDGET,
    }
}

#[cfg(feature = "ota")]
/// What the agent did with the last job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// No job seen since boot.
    None,
    /// Refused before download, for this reason (reported to the platform).
    Refused(job::JobError),
    /// Passed the checks and handed to the download task.
    Accepted {
        /// The version the job offered.
        version: String,
    },
}

/// The agent's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtaOptions {
    /// A trial image (just swapped in) that has not logged in this long after boot asks
    /// for a reboot, so the boot stage puts the previous image back (the role a watchdog
    /// plays on the chip). Long enough for a slow network attach and the login backoff.
    pub trial_login_ms: u64,
    /// Longest wait, once an image is marked, for the last progress report to be sent before
    /// the reboot.
    pub reboot_grace_ms: u64,
}

impl Default for OtaOptions {
    /// Ten minutes to log in on trial, five seconds for the last report.
    fn default() -> Self {
        Self {
            trial_login_ms: 600_000,
            reboot_grace_ms: 5_000,
        }
    }
}

#[cfg(feature = "ota")]
/// The job being worked on (its size and digest are [`OtaAgent`]'s `taken`).
struct Current {
    /// For log lines (cut at 64 bytes).
    version: heapless::String<64>,
}

#[cfg(feature = "ota")]
/// The OTA service's logic, driven by the runner: [`OtaAgent::on_login`] after every login,
/// [`OtaAgent::poll`] at every turn of its loop, [`OtaAgent::reboot_due`] to stop for a
/// reboot. Jobs go to the download task through [`Updates`]; its news comes back the same way
/// and becomes progress reports, the kernel's OTA status for apps, and log lines.
pub struct OtaAgent<'u> {
    service: ServiceId,
    topics: Topics,
    version: &'static str,
    module: &'static str,
    slot: u32,
    updates: &'u Updates,
    options: OtaOptions,
    subscribed: bool,
    asked: bool,
    next_id: u32,
    last: JobOutcome,
    current: Option<Current>,
    /// The size and digest of the last job taken (the same file offered again is the same
    /// job), kept after it ended: the answer to this login's `firmware/get` may name the job
    /// the push already delivered, and arrive after its download failed (the device then
    /// fetched it twice and reported it twice).
    taken: Option<(u32, job::Digest)>,
    /// When an image was marked (the reboot is due once its report is out).
    ready_at: Option<u64>,
    /// First poll: the trial clock starts here.
    started_at: Option<u64>,
    confirm_requested: bool,
    confirmed: bool,
    rollback_reported: bool,
    reboot_requested: bool,
    /// One message at a time is taken from the kernel into this buffer (allocated once).
    buf: alloc::vec::Vec<u8>,
}

#[cfg(feature = "ota")]
impl<'u> OtaAgent<'u> {
    /// The agent of kernel service `service` for the device `config` describes, handing jobs
    /// to the task behind `updates`.
    pub fn new(
        config: &'static DeviceConfig,
        service: ServiceId,
        updates: &'u Updates,
        options: OtaOptions,
    ) -> Self {
        Self {
            service,
            topics: Topics::new(config),
            version: config.ota.version,
            module: config.ota.module,
            // The image runs from the active slot: it must fit there.
            slot: config.ota.active.size,
            updates,
            options,
            subscribed: false,
            asked: false,
            next_id: 1,
            last: JobOutcome::None,
            current: None,
            taken: None,
            ready_at: None,
            started_at: None,
            confirm_requested: false,
            confirmed: false,
            rollback_reported: false,
            reboot_requested: false,
            buf: vec![0u8; MAX_MESSAGE as usize + 512],
        }
    }

    /// What became of the last job.
    pub fn last_job(&self) -> &JobOutcome {
        &self.last
    }

    /// The meeting point with the download task.
    pub fn updates(&self) -> &'u Updates {
        self.updates
    }

    /// After every login: subscribe (once: the kernel restores subscriptions after a
    /// reconnect), report the running version (QoS 1: a job succeeds only when the platform
    /// hears the new version), and once per boot ask for a pending job. A trial image asks
    /// to be confirmed; after a rollback, the platform is told (before anything else). Allocates nothing: reports are
    /// formatted into a fixed buffer.
    pub fn on_login(&mut self, kernel: &mut Kernel) {
        let service = self.service;
        // A rollback is reported first, so the platform fails the job before this login's
        // `firmware/get` could hand the same job out again.
        match self.updates.boot() {
            BootKind::Trial if !self.confirm_requested => {
                log_info!("image {} logged in: confirming it", self.version);
                self.updates.request_confirm();
                self.confirm_requested = true;
            }
            BootKind::Reverted | BootKind::RefusedUpdate if !self.rollback_reported => {
                let desc = if self.updates.boot() == BootKind::Reverted {
                    "the new image did not log in before the next reset and was rolled back"
                } else {
                    "the new image failed the boot stage's check and was not run"
                };
                log_error!("OTA: {}; running version {}", desc, self.version);
                self.rollback_reported = self.report(kernel, -1, desc, None);
            }
            _ => {}
        }
        if !self.subscribed {
            let upgrade = subscribe(kernel, service, &self.topics.upgrade, 0);
            let reply = subscribe(kernel, service, &self.topics.get_reply, 1);
            self.subscribed = upgrade && reply;
        }
        let id = self.id();
        let mut body = Report::new();
        let _ = write!(
            body,
            r#"{{"id":"{id}","params":{{"version":"{}","module":"{}"}}}}"#,
            self.version, self.module
        );
        publish(kernel, service, &self.topics.inform, &body, id);
        if !self.asked {
            let id = self.id();
            let mut body = Report::new();
            let _ = write!(
                body,
                r#"{{"id":"{id}","version":"1.0","params":{{"module":"{}"}},"method":"thing.ota.firmware.get"}}"#,
                self.module
            );
            self.asked = publish(kernel, service, &self.topics.get, &body, id);
        }
    }

    /// Takes the service's queued events (checking every job that arrived, handing a good one
    /// to the task, reporting a refusal) and the task's news. Reading a job allocates (its
    /// strings, and any unescaped by [`job`]), bounded by [`MAX_MESSAGE`]; what the job does
    /// not keep is freed before this returns.
    pub fn poll(&mut self, kernel: &mut Kernel, now: u64) {
        self.started_at.get_or_insert(now);
        let mut buf = core::mem::take(&mut self.buf);
        while let Some(event) = kernel.service_event(self.service, &mut buf) {
            let Event::Message { topic, payload, .. } = event else {
                continue;
            };
            if topic != self.topics.upgrade && topic != self.topics.get_reply {
                continue;
            }
            match job::parse(payload, self.module, self.slot) {
                Ok(None) => {}
                Ok(Some(job)) => {
                    let answer = topic == self.topics.get_reply;
                    self.take(kernel, job, answer)
                }
                Err(e) => {
                    log_warn!("OTA job refused: {}", e.desc().as_str());
                    // A job for another module is answered under that module, so the
                    // platform files the refusal with that job.
                    let module = match e {
                        job::JobError::OtherModule => job::announced_module(payload),
                        _ => None,
                    };
                    self.report(kernel, e.step(), &e.desc(), module.as_deref());
                    if self.current.is_none() {
                        kernel.set_ota_status(OtaStatus::Failed { step: e.step() });
                    }
                    self.last = JobOutcome::Refused(e);
                }
            }
        }
        self.buf = buf;
        self.take_news(kernel, now);
    }

    /// A job that passed the checks; `answer`: it came as the answer to `firmware/get`, not
    /// as a push (a push is always taken: the console's retry of a failed job is one).
    fn take(&mut self, kernel: &mut Kernel, job: job::Job, answer: bool) {
        if job.version == self.version {
            log_info!(
                "OTA job for version {}: already running it",
                job.version.as_str()
            );
            return;
        }
        if self.taken == Some((job.size, job.digest)) && (self.current.is_some() || answer) {
            // The push and the firmware/get answer name the same job: still in progress, or
            // (an answer) already ended.
            return;
        }
        if self.ready_at.is_some() {
            log_info!(
                "OTA job for version {} arrives while an image waits for its reboot: asked for again after the reboot",
                job.version.as_str()
            );
            return;
        }
        match &self.current {
            Some(c) => log_warn!(
                "OTA job for version {} supersedes the download of {}",
                job.version.as_str(),
                c.version.as_str()
            ),
            None => log_info!(
                "OTA job for version {} ({}{} bytes): downloading",
                job.version.as_str(),
                if job.diff {
                    "differential package, "
                } else {
                    ""
                },
                job.size
            ),
        }
        self.taken = Some((job.size, job.digest));
        self.current = Some(Current {
            version: job.version.chars().take(64).collect(),
        });
        self.last = JobOutcome::Accepted {
            version: job.version.clone(),
        };
        kernel.set_ota_status(OtaStatus::Downloading { percent: 0 });
        self.updates.offer(job);
    }

    fn take_news(&mut self, kernel: &mut Kernel, now: u64) {
        let news = self.updates.take_news();
        if let Some(p) = news.progress {
            self.report(kernel, p as i8, "", None);
            kernel.set_ota_status(OtaStatus::Downloading { percent: p });
        }
        if news.verifying {
            kernel.set_ota_status(OtaStatus::Verifying);
        }
        match news.end {
            Some(End::Ready { version }) => {
                log_info!(
                    "OTA: image {} downloaded, verified and marked: rebooting to run it",
                    version.as_str()
                );
                self.report(kernel, 100, "", None);
                kernel.set_ota_status(OtaStatus::PendingReboot);
                self.ready_at = Some(now);
            }
            Some(End::Failed { step, desc }) => {
                let version = self.current.take().map(|c| c.version).unwrap_or_default();
                log_warn!(
                    "OTA update to {} failed ({}): {}",
                    version.as_str(),
                    step,
                    desc
                );
                self.report(kernel, step, desc, None);
                kernel.set_ota_status(OtaStatus::Failed { step });
            }
            None => {}
        }
        match news.confirmed {
            Some(Ok(())) => {
                self.confirmed = true;
                log_info!(
                    "image {} confirmed: it stays after the next reset",
                    self.version
                );
            }
            Some(Err(e)) => log_error!("image {} could not be confirmed: {:?}", self.version, e),
            None => {}
        }
    }

    /// Whether the runner must stop now so the board reboots ([`Updates::reboot_requested`]
    /// is then set): a marked image's last report has gone out (or its grace is over), or a
    /// trial image did not log in within [`OtaOptions::trial_login_ms`]. True once.
    pub fn reboot_due(&mut self, kernel: &Kernel, now: u64) -> bool {
        if self.reboot_requested {
            return false;
        }
        let due = if let Some(at) = self.ready_at {
            kernel.pending_publishes() == 0
                || now >= at.saturating_add(self.options.reboot_grace_ms)
        } else if self.trial_unconfirmed() && now >= self.trial_deadline().unwrap_or(u64::MAX) {
            log_error!(
                "image {} did not log in within {} s of boot: rebooting, so the boot stage restores the previous image",
                self.version,
                self.options.trial_login_ms / 1000
            );
            true
        } else {
            false
        };
        if due {
            self.reboot_requested = true;
            self.updates.request_reboot();
        }
        due
    }

    /// The next time [`OtaAgent::reboot_due`] may turn true without any event.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.reboot_requested {
            return None;
        }
        match self.ready_at {
            Some(at) => Some(at.saturating_add(self.options.reboot_grace_ms)),
            None if self.trial_unconfirmed() => self.trial_deadline(),
            None => None,
        }
    }

    fn trial_unconfirmed(&self) -> bool {
        self.updates.boot() == BootKind::Trial && !self.confirmed && !self.confirm_requested
    }

    fn trial_deadline(&self) -> Option<u64> {
        self.started_at
            .map(|t| t.saturating_add(self.options.trial_login_ms))
    }

    /// Reports `step` with `desc` on the progress topic (spec §3: `step` is a string).
    fn report(&mut self, kernel: &mut Kernel, step: i8, desc: &str, module: Option<&str>) -> bool {
        let id = self.id();
        let mut body = Report::new();
        let _ = write!(body, r#"{{"id":"{id}","params":{{"step":"{step}","desc":""#);
        for c in desc.chars() {
            let _ = match c {
                '"' => body.write_str("\\\""),
                '\\' => body.write_str("\\\\"),
                c if (c as u32) < 0x20 => write!(body, "\\u{:04x}", c as u32),
                c => write!(body, "{c}"),
            };
        }
        let _ = write!(
            body,
            r#"","module":"{}"}}}}"#,
            module.unwrap_or(self.module)
        );
        publish(kernel, self.service, &self.topics.progress, &body, id)
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

/// A report's JSON, formatted in place; one that does not fit is cut short (and then not
/// valid JSON: the platform ignores it), never reallocated.
type Report = heapless::String<256>;

#[cfg(feature = "ota")]
fn subscribe(kernel: &mut Kernel, service: ServiceId, filter: &str, token: u32) -> bool {
    let request = Request::Subscribe {
        filter,
        qos: Qos::AtLeastOnce,
        token,
    };
    match kernel.service_call(service, request) {
        Ok(_) => true,
        Err(e) => {
            log_error!("OTA: cannot subscribe to {}: {:?}", filter, e);
            false
        }
    }
}

#[cfg(feature = "ota")]
fn publish(kernel: &mut Kernel, service: ServiceId, topic: &str, body: &str, token: u32) -> bool {
    let request = Request::Publish {
        topic,
        payload: body.as_bytes(),
        qos: Qos::AtLeastOnce,
        token,
    };
    match kernel.service_call(service, request) {
        Ok(_) => true,
        Err(e) => {
            log_warn!("OTA: cannot queue a report on {}: {:?}", topic, e);
            false
        }
    }
}

#[cfg(all(test, feature = "ota"))]
mod tests;
