//! `sensor`: the thing-model (物模型) example. It uses only the API the build generated from
//! the manifest's TSL (`aliot_app::thing_model`): no topic, no JSON written by hand.
//!
//! Every `report_interval` seconds it posts `temperature`, `humidity` and `report_interval`
//! (simulated readings; a real board reads its sensor here). The cloud may set
//! `report_interval` (5..=3600 s: the generated `PropertySet` refuses anything else with code
//! 460 before the app sees it); the app applies it, replies 200 and posts the new value at
//! once. The `calibrate` service shifts the temperature by its `offset` and answers
//! `applied = 1`; the synchronous `read_now` (over RRPC) answers the current temperature; a raw
//! RRPC call is answered with the number of readings so far. A request that cannot be read
//! gets its error reply and the app goes on. Once the kernel knows the wall-clock time (the
//! platform's NTP answer after the first login), the app logs it with its source and accuracy.
//!
//! Settings: `report_interval` (seconds, default 30, clamped to the TSL's range), `count` (stop
//! after this many post replies; default 0 = forever; for tests).
#![no_std]

use aliot_app::settings::get_or;
use aliot_app::thing::{CODE_OK, ThingSendError};
use aliot_app::thing_model::{self, CalibrateOutput, Downlink, Properties, ReadNowOutput, Thing};
use aliot_app::{Aliot, AppError, Event, Qos, Syscalls};
use log::{info, warn};

/// The TSL's range of `report_interval`, in seconds.
const INTERVAL_RANGE: (i32, i32) = (5, 3600);

/// Encoded Alink messages: the app's payload ceiling.
const BUF_LEN: usize = aliot_app::manifest::apps::sensor::MAX_PAYLOAD;

/// The app's entry point; the board calls it in the app's own process.
pub fn run<S: Syscalls>(
    app: &mut Aliot<S>,
    settings: &[(&str, &str)],
) -> Result<(), AppError<S::Error>> {
    let count: u32 = get_or(settings, "count", 0);
    let mut interval: i32 = get_or(settings, "report_interval", 30);
    interval = interval.clamp(INTERVAL_RANGE.0, INTERVAL_RANGE.1);
    for filter in thing_model::SUBSCRIBE {
        app.subscribe(filter, Qos::AtLeastOnce)?;
    }
    let mut thing = Thing::new();
    let mut buf = [0u8; BUF_LEN];
    let mut offset: f32 = 0.0;
    let mut readings: u32 = 0;
    let mut replies: u32 = 0;
    let mut next_post = app.now_ms();
    let mut time_known = false;
    info!("sensor: posting every {interval} s");
    loop {
        if !time_known {
            time_known = log_time(app)?;
        }
        let now = app.now_ms();
        if now >= next_post {
            let p = reading(readings, offset, interval);
            readings = readings.wrapping_add(1);
            sent(thing.post_properties(app, &mut buf, &p), "post")?;
            next_post = now.saturating_add(u64::from(interval.unsigned_abs()) * 1000);
        }
        let wait = u32::try_from(next_post.saturating_sub(now)).unwrap_or(u32::MAX);
        // The downlink is decoded into owned values before anything is published: the event
        // borrows the app's frame buffer.
        let downlink = match app.next_event(wait.max(1))? {
            Some(Event::Message { topic, payload, .. }) => thing_model::decode(topic, payload),
            Some(Event::PublishResult {
                token,
                delivered: false,
            }) => {
                warn!("sensor: message {token} was not delivered");
                None
            }
            _ => None,
        };
        match downlink {
            None => {}
            Some(Downlink::PostReply(r)) => {
                if r.code == CODE_OK {
                    info!("sensor: post {} accepted", r.id);
                } else {
                    warn!("sensor: post {} refused with code {}", r.id, r.code);
                }
                replies = replies.wrapping_add(1);
                if count != 0 && replies >= count {
                    return Ok(());
                }
            }
            Some(Downlink::Set(req)) => {
                if let Some(i) = req.params.report_interval {
                    info!("sensor: report interval set to {i} s");
                    interval = i;
                }
                sent(
                    thing.reply_set(app, &mut buf, &req.reply_to(), CODE_OK),
                    "set reply",
                )?;
                // The platform shows the device's value: post the new one now.
                next_post = app.now_ms();
            }
            Some(Downlink::Calibrate(req)) => {
                info!("sensor: calibrate by {}", req.params.offset);
                offset = req.params.offset;
                let out = CalibrateOutput { applied: true };
                sent(
                    thing.reply_calibrate(app, &mut buf, &req.reply_to(), &out),
                    "calibrate reply",
                )?;
            }
            Some(Downlink::ReadNow(req)) => {
                // A synchronous service: it came over RRPC and its answer goes back that way,
                // within the platform's timeout (1 to 8 s).
                let p = reading(readings, offset, interval);
                let out = ReadNowOutput {
                    temperature: p.temperature.unwrap_or_default(),
                };
                sent(
                    thing.reply_read_now(app, &mut buf, &req.reply_to(), &out),
                    "read_now reply",
                )?;
            }
            Some(Downlink::Rrpc(r)) => {
                // A raw RRPC call (not a service): answered with the number of readings so far.
                let mut answer = [0u8; 10];
                let text = decimal(readings, &mut answer);
                sent(thing.reply_rrpc(app, &r.message_id, text), "RRPC answer")?;
            }
            Some(Downlink::Invalid(bad)) => {
                warn!("sensor: refused a request: {:?}", bad.error);
                sent(thing.reply_invalid(app, &mut buf, &bad), "error reply")?;
            }
        }
    }
}

/// Logs the kernel's wall-clock time; `true` once there is nothing more to wait for (the time
/// was logged, or the kernel predates ABI minor 3).
fn log_time<S: Syscalls>(app: &mut Aliot<S>) -> Result<bool, AppError<S::Error>> {
    match app.time() {
        Ok(Some(t)) => {
            info!(
                "sensor: wall-clock time {} ms since 1970 (±{} ms, from {:?})",
                t.unix_ms, t.accuracy_ms, t.source
            );
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(AppError::Kernel(code)) => {
            warn!("sensor: the kernel has no time service: {code:?}");
            Ok(true)
        }
        Err(other) => Err(other),
    }
}

/// A simulated reading: temperature drifts through 20.0..25.0 °C plus the calibration offset
/// (kept in the TSL's range), humidity through 40..60 %.
fn reading(n: u32, offset: f32, interval: i32) -> Properties {
    let drift = (n % 50) as f32 / 10.0;
    Properties {
        temperature: Some((20.0 + drift + offset).clamp(-40.0, 120.0)),
        humidity: Some(40 + (n % 21) as i32),
        report_interval: Some(interval),
    }
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A send the kernel or the thing model refused is logged and skipped; a broken syscall
/// backend ends the app.
fn sent<E>(r: Result<impl Sized, ThingSendError<E>>, what: &str) -> Result<(), AppError<E>> {
    match r {
        Ok(_) => Ok(()),
        Err(ThingSendError::Thing(e)) => {
            warn!("sensor: {what} not sent: {e:?}");
            Ok(())
        }
        Err(ThingSendError::App(AppError::Kernel(code))) => {
            warn!("sensor: the kernel refused the {what}: {code:?}");
            Ok(())
        }
        Err(ThingSendError::App(other)) => Err(other),
    }
}
