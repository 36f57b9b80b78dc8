//! What the kernel puts on the wire, for unit tests of the kernel's services: each packet taken,
//! written and acknowledged as a platform would.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::kernel::{Kernel, Outgoing};

/// Everything the kernel puts on the wire now, `(topic or filter, payload)`, each packet
/// written and acknowledged.
pub(crate) fn wire(k: &mut Kernel) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(packet) = k.poll_outgoing(0) {
        let (pid, entry, sub) = match packet {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                ..
            } => (
                pid,
                (
                    topic.to_string(),
                    String::from_utf8_lossy(payload).into_owned(),
                ),
                false,
            ),
            Outgoing::Subscribe { pid, filter, .. } => {
                (pid, (filter.to_string(), String::new()), true)
            }
            Outgoing::Unsubscribe { pid, filter } => {
                (pid, (filter.to_string(), String::new()), true)
            }
        };
        k.on_written();
        if sub {
            k.on_suback(pid, true);
        } else {
            k.on_puback(pid);
        }
        out.push(entry);
    }
    out
}
