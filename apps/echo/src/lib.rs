//! `echo`: an example app that makes isolation observable from the cloud side.
//!
//! At start it tries to publish to the manifest's `get` topic, which its grant does not
//! include, and reports the kernel's answer by publishing `acl:<ErrorCode>` (for example
//! `acl:NotPermitted`) to `update_error`. Then it subscribes to `ceshi` and, for every message
//! that arrives, publishes `echo:<payload>` at QoS 1 to `update`.
//!
//! Settings: `count` — stop after this many echoes (default 0 = forever; for tests).
#![no_std]

mod probe;

use aliot_app::abi::MAX_PAYLOAD_LEN;
use aliot_app::manifest::topics;
use aliot_app::settings::get_or;
use aliot_app::{Aliot, AppError, Event, Qos, Syscalls};
use log::{info, warn};

/// Prefix of every echoed payload.
pub const ECHO_PREFIX: &[u8] = b"echo:";

/// Longest single wait for an event; the loop simply waits again after a timeout.
const WAIT_MS: u32 = 60_000;

/// The app's entry point; the board calls it in the app's own process.
///
/// Returns `Ok(())` only when a `count` is set and reached; transport and protocol failures
/// end it with the error. An echo the kernel refuses is logged and skipped.
pub fn run<S: Syscalls>(
    app: &mut Aliot<S>,
    settings: &[(&str, &str)],
) -> Result<(), AppError<S::Error>> {
    let count: u32 = get_or(settings, "count", 0);
    probe::report_acl(app)?;
    app.subscribe(topics::CESHI, Qos::AtLeastOnce)?;
    info!("echo: echoing {} to {}", topics::CESHI, topics::UPDATE);

    let mut echoed: u32 = 0;
    // The reply is built here because the message borrows the app's frame buffer,
    // which the publish needs.
    let mut reply: heapless::Vec<u8, MAX_PAYLOAD_LEN> = heapless::Vec::new();
    while count == 0 || echoed < count {
        let Some(event) = app.next_event(WAIT_MS)? else {
            continue;
        };
        match event {
            Event::Message { topic, payload, .. } => {
                info!("echo: {} byte(s) on {topic}", payload.len());
                build_reply(&mut reply, payload);
            }
            Event::PublishResult {
                token,
                delivered: false,
            } => {
                warn!("echo: publish {token} was not delivered");
                continue;
            }
            Event::Disconnected { reason } => {
                warn!("echo: disconnected: {reason:?}");
                continue;
            }
            Event::Overflow { dropped } => {
                warn!("echo: {dropped} event(s) lost, queue full");
                continue;
            }
            Event::SubscribeResult { granted: false, .. } => {
                warn!(
                    "echo: the platform refused the subscription to {}",
                    topics::CESHI
                );
                continue;
            }
            _ => continue,
        }
        echoed = echoed.wrapping_add(1);
        match app.publish(topics::UPDATE, &reply, Qos::AtLeastOnce) {
            Ok(_) => {}
            Err(AppError::Kernel(code)) => warn!("echo: the kernel refused the echo: {code:?}"),
            Err(other) => return Err(other),
        }
    }
    info!("echo: done after {echoed} echo(es)");
    Ok(())
}

/// `echo:` + payload, cut to [`MAX_PAYLOAD_LEN`] (logged) so the kernel accepts it.
fn build_reply(reply: &mut heapless::Vec<u8, MAX_PAYLOAD_LEN>, payload: &[u8]) {
    reply.clear();
    let room = MAX_PAYLOAD_LEN - ECHO_PREFIX.len();
    let kept = &payload[..payload.len().min(room)];
    if kept.len() < payload.len() {
        warn!(
            "echo: payload of {} bytes cut to {} to fit {MAX_PAYLOAD_LEN}",
            payload.len(),
            kept.len()
        );
    }
    // Cannot fail: prefix + kept <= MAX_PAYLOAD_LEN by construction.
    let _ = reply.extend_from_slice(ECHO_PREFIX);
    let _ = reply.extend_from_slice(kept);
}

#[cfg(test)]
mod tests {
    use super::{ECHO_PREFIX, MAX_PAYLOAD_LEN, build_reply};

    #[test]
    fn reply_is_prefix_and_payload() {
        let mut reply = heapless::Vec::new();
        build_reply(&mut reply, b"\x00hi");
        assert_eq!(&reply[..], b"echo:\x00hi");
        build_reply(&mut reply, b"");
        assert_eq!(&reply[..], b"echo:");
    }

    #[test]
    fn oversized_payloads_are_cut_to_fit() {
        let mut reply = heapless::Vec::new();
        let payload = [7u8; MAX_PAYLOAD_LEN];
        build_reply(&mut reply, &payload);
        assert_eq!(reply.len(), MAX_PAYLOAD_LEN);
        assert_eq!(&reply[..ECHO_PREFIX.len()], ECHO_PREFIX);
        assert!(reply[ECHO_PREFIX.len()..].iter().all(|&b| b == 7));
    }
}
