//! Platform time (spec §4, NTP; doc-detail/102509) as a kernel service: after a login the
//! kernel asks the platform for the time on `/ext/ntp/${pk}/${dn}/request` and keeps the answer
//! on its monotonic clock ([`Kernel::set_wall_time`]), where every app reads it with
//! [`aliot_abi::Request::Time`]. The service, not an app, owns the NTP topics: one exchange
//! serves every app, and no app can feed the others a wrong time.
//!
//! The exchange: the device publishes `{"deviceSendTime":"<ms>"}` at QoS 0 (its own clock; the
//! monotonic one here, since only the round trip is taken from it) and the platform answers
//! `{"deviceSendTime":..,"serverRecvTime":..,"serverSendTime":..}`; the time when the answer
//! arrives is `(serverRecvTime + serverSendTime + deviceRecvTime − deviceSendTime) / 2`
//! (things-go `ext_ntp.go`), known to within half the round trip. Numbers are taken as JSON
//! strings (the documented form) or numbers. An answer whose `deviceSendTime` is not the
//! request waiting (late, repeated, or not ours) is ignored.
//!
//! When: after every login (a reconnect may follow a long outage), then every
//! [`TimeOptions::resync_ms`]; an unanswered request is retried after
//! [`TimeOptions::retry_ms`]. Only while the session is up: NTP over MQTT cannot help the
//! TLS certificate check before the first login (the platform's doc says so); a board with a
//! modem clock gives the kernel that time instead.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
#[cfg(feature = "platform-time")]
use core::fmt::Write;

#[cfg(feature = "platform-time")]
use aliot_abi::{Event, Qos, Request, TimeSource};

use crate::budget::{AppBudget, event_record_bytes, outbox_record_bytes};
use crate::config::{AppDef, DeviceConfig, RestartPolicy};
#[cfg(feature = "platform-time")]
use crate::kernel::Kernel;
use crate::kernel::ServiceId;

/// Largest NTP answer taken: the documented answer, three 13-digit times with their names, is
/// 100 bytes (121 with 20-digit times). A longer message is dropped by the kernel as for any
/// client (and logged).
pub const MAX_MESSAGE: u32 = 144;

/// Room in the event queue beside one largest answer for the small events a login leaves
/// there until the agent's next turn: the subscription's and the request's results (10 bytes
/// each with the ring's header), a link change (5).
const SMALL_EVENTS: u32 = 32;

/// Largest request: `{"deviceSendTime":"18446744073709551615"}`.
const MAX_REQUEST: u32 = 48;

/// Longest NTP topic: `/ext/ntp/`, the ProductKey (at most 32 characters), `/`, the
/// DeviceName (at most 32, both as the manifest validates them), `/response`. The service's
/// queues are sized for its own two topics, not for any topic: on a configuration with
/// longer names an answer would not fit and would be dropped (and logged), never overrun.
pub const MAX_NTP_TOPIC: u32 = 9 + 32 + 1 + 32 + 9;

/// The service's share of kernel memory: one largest answer queued beside a login's small
/// events, one request waiting to be written, one subscription.
pub const SERVICE_BUDGET: AppBudget = AppBudget {
    event_queue_bytes: event_record_bytes(MAX_NTP_TOPIC, MAX_MESSAGE) + SMALL_EVENTS,
    outbox_bytes: outbox_record_bytes(MAX_NTP_TOPIC, MAX_REQUEST),
    max_payload: MAX_MESSAGE,
    subscriptions: 1,
};

/// Most heap [`service_def`] takes: its two topics, the two slices that list them, and its
/// entry in the slice of definitions ([`crate::services::all`]). Counted in the kernel's worst
/// case ([`crate::budget::worst_case_ram`]).
pub const DEF_BYTES: u32 =
    2 * MAX_NTP_TOPIC + (2 * core::mem::size_of::<&str>() + core::mem::size_of::<AppDef>()) as u32;

/// The NTP topics of the device `config` describes: `(request, response)`.
pub fn topics(config: &DeviceConfig) -> (String, String) {
    let (pk, dn) = (config.product_key, config.device_name);
    (
        format!("/ext/ntp/{pk}/{dn}/request"),
        format!("/ext/ntp/{pk}/{dn}/response"),
    )
}

/// The time service's grants and budget, for [`Kernel::with_services`].
pub fn service_def(config: &DeviceConfig) -> AppDef {
    let (request, response) = topics(config);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    AppDef {
        name: "time",
        memory: 0,
        publish: Box::leak(Box::new([leak(request)])),
        subscribe: Box::leak(Box::new([leak(response)])),
        restart: RestartPolicy::Never,
        settings: &[],
        budget: SERVICE_BUDGET,
    }
}

/// The time service's index among [`crate::services::all`].
pub const TIME_SERVICE: ServiceId = 1;

#[cfg(feature = "platform-time")]
/// The agent's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOptions {
    /// How long a request waits for its answer before it counts as lost.
    pub answer_ms: u64,
    /// After a lost request or a refused answer, the wait before the next request.
    pub retry_ms: u64,
    /// After a good answer, the wait before asking again (the monotonic clock drifts: an
    /// nRF9160's 32 kHz crystal about 70 ms an hour).
    pub resync_ms: u64,
}

#[cfg(feature = "platform-time")]
impl Default for TimeOptions {
    /// Ten seconds for an answer, a retry after a minute, a new exchange every hour.
    fn default() -> Self {
        Self {
            answer_ms: 10_000,
            retry_ms: 60_000,
            resync_ms: 3_600_000,
        }
    }
}

#[cfg(feature = "platform-time")]
/// Where the exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not logged in yet, or the platform refused the subscription: nothing to do.
    Off,
    /// Ask at or after this instant.
    AskAt(u64),
    /// A request sent with `deviceSendTime` `sent_ms`, answered by `deadline` or lost.
    Waiting { sent_ms: u64, deadline: u64 },
}

#[cfg(feature = "platform-time")]
/// The time service's logic, driven by the runner ([`crate::runner::Runner::with_platform_time`]):
/// [`TimeAgent::on_login`] after every login, [`TimeAgent::poll`] at every turn,
/// [`TimeAgent::next_deadline`] for the runner's waits.
#[derive(Debug)]
pub struct TimeAgent {
    service: ServiceId,
    request: &'static str,
    response: &'static str,
    options: TimeOptions,
    phase: Phase,
    subscribed: bool,
}

#[cfg(feature = "platform-time")]
impl TimeAgent {
    /// The agent of kernel service `service`, whose definition is `def` ([`service_def`]).
    /// `None` when `def` does not grant the two NTP topics.
    pub fn new(def: &AppDef, service: ServiceId, options: TimeOptions) -> Option<Self> {
        Some(Self {
            service,
            request: def.publish.first()?,
            response: def.subscribe.first()?,
            options,
            phase: Phase::Off,
            subscribed: false,
        })
    }

    /// After every login: subscribe (once: the kernel restores subscriptions after a
    /// reconnect, and sends them before any publish) and ask at once.
    pub fn on_login(&mut self, kernel: &mut Kernel, now: u64) {
        if !self.subscribed {
            let request = Request::Subscribe {
                filter: self.response,
                qos: Qos::AtMostOnce,
                token: 0,
            };
            if let Err(e) = kernel.service_call(self.service, request) {
                log_error!("time: cannot subscribe to {}: {:?}", self.response, e);
                return;
            }
            self.subscribed = true;
        }
        self.phase = Phase::AskAt(now);
    }

    /// Takes the service's events (an answer sets the kernel's time) and sends a request
    /// when one is due.
    pub fn poll(&mut self, kernel: &mut Kernel, now: u64) {
        let mut buf = [0u8; event_record_bytes(MAX_NTP_TOPIC, MAX_MESSAGE) as usize];
        while let Some(event) = kernel.service_event(self.service, &mut buf) {
            match event {
                Event::Message { topic, payload, .. } if topic == self.response => {
                    self.on_answer(kernel, payload, now);
                }
                Event::SubscribeResult { granted: false, .. } => {
                    log_warn!(
                        "time: the platform refused {}; no platform time",
                        self.response
                    );
                    self.subscribed = false;
                    self.phase = Phase::Off;
                }
                _ => {}
            }
        }
        match self.phase {
            Phase::AskAt(at) if now >= at => self.ask(kernel, now),
            Phase::Waiting { deadline, .. } if now >= deadline => {
                log_warn!("time: no NTP answer in {} ms", self.options.answer_ms);
                self.phase = Phase::AskAt(now.saturating_add(self.options.retry_ms));
            }
            _ => {}
        }
    }

    /// When [`TimeAgent::poll`] must run next even if nothing arrives.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Off => None,
            Phase::AskAt(at) => Some(at),
            Phase::Waiting { deadline, .. } => Some(deadline),
        }
    }

    fn ask(&mut self, kernel: &mut Kernel, now: u64) {
        let mut body = heapless::String::<{ MAX_REQUEST as usize }>::new();
        let _ = write!(body, r#"{{"deviceSendTime":"{now}"}}"#);
        let request = Request::Publish {
            topic: self.request,
            payload: body.as_bytes(),
            qos: Qos::AtMostOnce,
            token: 0,
        };
        self.phase = match kernel.service_call(self.service, request) {
            Ok(_) => Phase::Waiting {
                sent_ms: now,
                deadline: now.saturating_add(self.options.answer_ms),
            },
            // Link down between the login and now: the next login asks again.
            Err(aliot_abi::ErrorCode::NotConnected) => Phase::Off,
            Err(e) => {
                log_warn!("time: cannot queue the NTP request: {:?}", e);
                Phase::AskAt(now.saturating_add(self.options.retry_ms))
            }
        };
    }

    fn on_answer(&mut self, kernel: &mut Kernel, payload: &[u8], now: u64) {
        let Phase::Waiting { sent_ms, .. } = self.phase else {
            return;
        };
        match read_answer(payload) {
            Some(answer) if answer.device_send == sent_ms => {
                let round_trip = now.saturating_sub(sent_ms);
                // The documented formula, in 128 bits so no sum overflows.
                let sum = u128::from(answer.server_recv)
                    + u128::from(answer.server_send)
                    + u128::from(round_trip);
                let unix_ms = u64::try_from(sum / 2).unwrap_or(u64::MAX);
                let accuracy = u32::try_from(round_trip / 2 + 1).unwrap_or(u32::MAX);
                kernel.set_wall_time(unix_ms, now, TimeSource::Platform, accuracy);
                log_info!("time: platform time {} ms (±{} ms)", unix_ms, accuracy);
                self.phase = Phase::AskAt(now.saturating_add(self.options.resync_ms));
            }
            // Another request's answer (one that was counted lost): keep waiting.
            Some(_) => {}
            None => {
                log_warn!("time: an NTP answer that cannot be read was ignored");
            }
        }
    }
}

#[cfg(feature = "platform-time")]
/// The three times of an NTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    device_send: u64,
    server_recv: u64,
    server_send: u64,
}

#[cfg(feature = "platform-time")]
/// The answer's times, each a JSON string of digits (documented) or a JSON integer; `None`
/// when one is missing or is anything else. Server times before 2000-01-01 are refused: a
/// platform does not answer with them, a garbled answer might. Read with
/// [`crate::flat_json`], not `serde_json` (issue 11: a few hundred bytes instead of kilobytes
/// on a board that runs this service).
#[cfg(feature = "platform-time")]
fn read_answer(payload: &[u8]) -> Option<Answer> {
    const YEAR_2000_MS: u64 = 946_684_800_000;
    let text = core::str::from_utf8(payload).ok()?;
    let (mut device_send, mut server_recv, mut server_send) = (None, None, None);
    crate::flat_json::members(text, |key, value| {
        let slot = match key {
            "deviceSendTime" => &mut device_send,
            "serverRecvTime" => &mut server_recv,
            "serverSendTime" => &mut server_send,
            _ => return Ok(()),
        };
        *slot = match value {
            crate::flat_json::Member::Str(t) | crate::flat_json::Member::Literal(t) => {
                milliseconds(t)
            }
            _ => None,
        };
        Ok(())
    })
    .ok()?;
    let answer = Answer {
        device_send: device_send?,
        server_recv: server_recv?,
        server_send: server_send?,
    };
    let plausible = |t: u64| t >= YEAR_2000_MS;
    (plausible(answer.server_recv) && plausible(answer.server_send)).then_some(answer)
}

/// A time in milliseconds: ASCII digits only (no sign, fraction or exponent), within `u64`.
#[cfg(feature = "platform-time")]
fn milliseconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(all(test, feature = "platform-time"))]
mod tests;
