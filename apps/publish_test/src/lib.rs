//! `publish_test`: the seed's demo app (LuatOS `demo/aliyun`), on the Aliot app library.
//!
//! It subscribes to the manifest's `get` topic at QoS 1, publishes `LUATOS_CESHI` (or the
//! `payload` setting) at QoS 1 to
//! the `update` topic right away and then every `interval_secs` (default 20), logs each
//! publish result as `publishTest_N delivered` / `publishTest_N failed` (with `after T ms` when
//! the publish is recent enough for its send time to be kept), and logs every message that
//! arrives. Between publishes it waits for events, so it reacts to messages at once. However
//! long an outage, every result is logged by its publish number in fixed RAM (see `pending`).
//!
//! Settings (from the manifest's `[[apps]] settings`):
//! - `payload` — what every publish carries (default `LUATOS_CESHI`); a `{n}` in it is
//!   replaced by the publish's sequence number (1, 2, ...), so a receiver can spot a gap;
//! - `interval_secs` — seconds between publishes (default 20);
//! - `interval_ms` — the same in milliseconds, wins over `interval_secs` (for tests);
//! - `count` — stop after this many publishes, once their results are in (default 0 = forever).
#![no_std]

mod config;
mod numbered;
mod pending;

use aliot_app::manifest::topics;
use aliot_app::{Aliot, AppError, Event, Lossy, Qos, Syscalls};
pub use config::{Config, DEFAULT_INTERVAL_SECS, DEFAULT_PAYLOAD};
use log::{info, warn};
use pending::{Pending, Resolved};

/// The app's entry point; the board calls it in the app's own process.
///
/// Returns `Ok(())` only when a `count` is set and reached; transport and protocol failures
/// end it with the error (the board restarts it per the manifest). A publish the kernel
/// refuses is logged and retried at the next interval.
pub fn run<S: Syscalls>(
    app: &mut Aliot<S>,
    settings: &[(&str, &str)],
) -> Result<(), AppError<S::Error>> {
    let config = Config::from_settings(settings);
    info!(
        "publish_test: every {} ms to {}, listening on {}",
        config.interval_ms,
        topics::UPDATE,
        topics::GET
    );
    app.subscribe(topics::GET, Qos::AtLeastOnce)?;

    let mut pending = Pending::new();
    let mut published: u32 = 0;
    let mut due = app.now_ms();
    loop {
        let now = app.now_ms();
        if now < due {
            wait_and_handle(app, &mut pending, due - now)?;
            continue;
        }
        published = published.wrapping_add(1);
        let mut rendered = numbered::Buffer::new();
        let payload = numbered::render(config.payload, published, &mut rendered);
        match app.publish(topics::UPDATE, payload, Qos::AtLeastOnce) {
            Ok(token) => pending.insert(token, published, clock(app)),
            Err(AppError::Kernel(code)) => warn!("publishTest_{published} refused: {code:?}"),
            Err(other) => return Err(other),
        }
        if config.count != 0 && published >= config.count {
            break;
        }
        // Keep the rhythm; after a stall, restart it instead of bursting to catch up.
        due = due.saturating_add(config.interval_ms);
        if due <= now {
            due = now.saturating_add(config.interval_ms);
        }
    }

    // `count` reached: give the outstanding results one interval to arrive, so each is logged.
    let deadline = app.now_ms().saturating_add(config.interval_ms);
    while !pending.is_empty() {
        let now = app.now_ms();
        if now >= deadline {
            warn!(
                "publish_test: stopping with {} result(s) outstanding",
                pending.len()
            );
            break;
        }
        wait_and_handle(app, &mut pending, deadline - now)?;
    }
    info!("publish_test: done after {published} publish(es)");
    Ok(())
}

/// The backend's clock, for latencies only: unlike [`Aliot::now_ms`] it has no fallback, since
/// a sum of timed-out waits would make up a latency rather than measure it.
fn clock<S: Syscalls>(app: &mut Aliot<S>) -> Option<u64> {
    app.syscalls().now_ms()
}

/// Waits up to `wait_ms` for one event and logs it.
fn wait_and_handle<S: Syscalls>(
    app: &mut Aliot<S>,
    pending: &mut Pending,
    wait_ms: u64,
) -> Result<(), AppError<S::Error>> {
    let timeout = u32::try_from(wait_ms).unwrap_or(u32::MAX);
    // A result is handled once the event (which borrows `app`) is gone, to read the clock.
    let result = match app.next_event(timeout)? {
        Some(Event::PublishResult { token, delivered }) => Some((token, delivered)),
        Some(event) => {
            handle_event(&event);
            None
        }
        None => None,
    };
    if let Some((token, delivered)) = result {
        let now = clock(app);
        log_result(pending.resolve(token, now), token, delivered);
    }
    Ok(())
}

/// Logs a publish result as `publishTest_N delivered|failed [after T ms]`.
fn log_result(resolved: Option<Resolved>, token: u32, delivered: bool) {
    let Some(Resolved { n, latency_ms }) = resolved else {
        warn!("publish result for unknown token {token}");
        return;
    };
    match (delivered, latency_ms) {
        (true, Some(ms)) => info!("publishTest_{n} delivered after {ms} ms"),
        (true, None) => info!("publishTest_{n} delivered"),
        (false, Some(ms)) => warn!("publishTest_{n} failed after {ms} ms"),
        (false, None) => warn!("publishTest_{n} failed"),
    }
}

/// Logs one event (other than a publish result) the way the LuatOS demo prints its callbacks.
fn handle_event(event: &Event<'_>) {
    match *event {
        Event::Message { topic, payload, .. } => {
            info!("message on {topic}: {}", Lossy(payload));
        }
        Event::PublishResult { token, .. } => {
            // `wait_and_handle` resolves results itself; reaching here is a bug, not a crash.
            warn!("publish result for token {token} not resolved");
        }
        Event::SubscribeResult { granted: true, .. } => info!("subscribed to {}", topics::GET),
        Event::SubscribeResult { granted: false, .. } => {
            warn!("the platform refused the subscription to {}", topics::GET)
        }
        Event::Connected => info!("connected"),
        Event::Disconnected { reason } => warn!("disconnected: {reason:?}"),
        Event::Overflow { dropped } => warn!("{dropped} event(s) lost: the event queue was full"),
    }
}
