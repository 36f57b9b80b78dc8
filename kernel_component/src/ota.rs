//! OTA (spec §3), as a kernel service: the kernel, not an app, owns the OTA topics, so no app
//! sees a download URL or a digest.
//!
//! What is here: the service's grants and byte budget ([`service_def`], [`SERVICE_BUDGET`]),
//! the announcement after every login ([`OtaAgent::on_login`]: inform the running version and
//! module, subscribe to upgrade pushes and, once per boot, ask `firmware/get` so a job created
//! while the device was offline is found), and the check of every job before anything is
//! downloaded ([`job`]), with the refusal reported on `/ota/device/progress`.
//!
//! The runner drives it ([`crate::runner::Runner::with_ota`]); its budget is part of the
//! kernel's worst case ([`crate::budget::KERNEL_SERVICES`]).
//!
//! The download's parts are here and tested on their own: [`url`] (the job's URL), [`download`]
//! (one `Range` request streamed into a sink, resumable after a cut, coping with OSS's 200
//! whole-file answer), [`digest`] (MD5 or SHA-256 across resumes), [`progress`] (the throttle
//! of progress reports) and [`fetcher`] (one job's download with deadlines, resumes and
//! retries, ending verified or with the step -2/-3/-4 to report).
//!
//! UNFINISHED (issue 8): wiring them — a download task beside the session, the update slot as
//! the sink (`aliot-boot`), the reports through this service — and the A/B swap with confirm
//! after login and rollback, and the OTA state for apps beyond a refusal. Until then a job
//! that passes the checks is refused with step -1 and a `desc` that says so.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::fmt::Write;

use aliot_abi::{Event, Qos, Request};

use crate::budget::{AppBudget, min_event_queue_bytes, outbox_record_bytes};
use crate::config::{AppDef, DeviceConfig, RestartPolicy};
use crate::kernel::{Kernel, ServiceId};

pub mod digest;
pub mod download;
pub mod fetcher;
pub mod job;
pub mod progress;
pub mod url;

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

/// Most heap [`services`] takes for the service's definition: its five topics (each at most
/// [`aliot_abi::MAX_TOPIC_LEN`] bytes), the two slices that list them, and the slice of
/// definitions itself. Counted in the kernel's worst case ([`crate::budget::worst_case_ram`]).
pub const DEF_BYTES: u32 = (5 * aliot_abi::MAX_TOPIC_LEN
    + 5 * core::mem::size_of::<&str>()
    + core::mem::size_of::<AppDef>()) as u32;

/// The kernel services a board starts: the OTA service only, as [`OTA_SERVICE`]. Made once
/// at boot (the strings live as long as the kernel).
pub fn services(config: &DeviceConfig) -> &'static [AppDef] {
    Box::leak(vec![service_def(config)].into_boxed_slice())
}

/// The OTA service's index among [`services`].
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

/// What the agent did with the last job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// No job seen since boot.
    None,
    /// Refused before download, for this reason (reported to the platform).
    Refused(job::JobError),
    /// Passed the checks; the download is not implemented yet (reported as -1).
    NotImplemented {
        /// The version the job offered.
        version: String,
    },
}

/// The OTA service's logic, driven by the runner: [`OtaAgent::on_login`] after every login,
/// [`OtaAgent::poll`] whenever the kernel may have queued a message for it.
pub struct OtaAgent {
    service: ServiceId,
    topics: Topics,
    version: &'static str,
    module: &'static str,
    slot: u32,
    subscribed: bool,
    asked: bool,
    next_id: u32,
    last: JobOutcome,
    /// One message at a time is taken from the kernel into this buffer (allocated once).
    buf: alloc::vec::Vec<u8>,
}

impl OtaAgent {
    /// The agent of kernel service `service` for the device `config` describes.
    pub fn new(config: &'static DeviceConfig, service: ServiceId) -> Self {
        Self {
            service,
            topics: Topics::new(config),
            version: config.ota.version,
            module: config.ota.module,
            slot: config.ota.update.size,
            subscribed: false,
            asked: false,
            next_id: 1,
            last: JobOutcome::None,
            buf: vec![0u8; MAX_MESSAGE as usize + 512],
        }
    }

    /// What became of the last job.
    pub fn last_job(&self) -> &JobOutcome {
        &self.last
    }

    /// After every login: subscribe (once: the kernel restores subscriptions after a
    /// reconnect), report the running version (QoS 1: a job succeeds only when the platform
    /// hears the new version), and once per boot ask for a pending job. Allocates nothing:
    /// reports are formatted into a fixed buffer.
    pub fn on_login(&mut self, kernel: &mut Kernel) {
        let service = self.service;
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

    /// Takes the service's queued events: checks every job that arrived and reports a
    /// refusal. Reading a job allocates (`serde_json`), bounded by [`MAX_MESSAGE`] and freed
    /// before this returns.
    pub fn poll(&mut self, kernel: &mut Kernel) {
        let mut buf = core::mem::take(&mut self.buf);
        while let Some(event) = kernel.service_event(self.service, &mut buf) {
            let Event::Message { topic, payload, .. } = event else {
                continue;
            };
            if topic != self.topics.upgrade && topic != self.topics.get_reply {
                continue;
            }
            let outcome = match job::parse(payload, self.module, self.slot) {
                Ok(None) => continue,
                Ok(Some(job)) => {
                    log::warn!(
                        "OTA job for version {} ({} bytes) passed its checks, but this firmware cannot download it yet",
                        job.version,
                        job.size
                    );
                    JobOutcome::NotImplemented {
                        version: job.version,
                    }
                }
                Err(e) => {
                    log::warn!("OTA job refused: {}", e.desc());
                    JobOutcome::Refused(e)
                }
            };
            let (step, desc) = match &outcome {
                JobOutcome::Refused(e) => (e.step(), e.desc()),
                _ => (
                    -1,
                    String::from("OTA download is not implemented in this firmware yet"),
                ),
            };
            // A job for another module is answered under that module, so the platform files
            // the refusal with that job.
            let module = match outcome {
                JobOutcome::Refused(job::JobError::OtherModule) => job::announced_module(payload),
                _ => None,
            };
            self.report(kernel, step, &desc, module.as_deref());
            kernel.set_ota_status(aliot_abi::OtaStatus::Failed { step });
            self.last = outcome;
        }
        self.buf = buf;
    }

    /// Reports `step` with `desc` on the progress topic (spec §3: `step` is a string).
    fn report(&mut self, kernel: &mut Kernel, step: i8, desc: &str, module: Option<&str>) {
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
        publish(kernel, self.service, &self.topics.progress, &body, id);
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

fn subscribe(kernel: &mut Kernel, service: ServiceId, filter: &str, token: u32) -> bool {
    let request = Request::Subscribe {
        filter,
        qos: Qos::AtLeastOnce,
        token,
    };
    match kernel.service_call(service, request) {
        Ok(_) => true,
        Err(e) => {
            log::error!("OTA: cannot subscribe to {filter}: {e:?}");
            false
        }
    }
}

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
            log::warn!("OTA: cannot queue a report on {topic}: {e:?}");
            false
        }
    }
}

#[cfg(test)]
mod tests;
