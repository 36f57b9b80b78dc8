//! A client's outbox: its publishes, in order, inside one [`Ring`], from the syscall that
//! accepted them until they are written (QoS 0) or acknowledged (QoS 1).
//!
//! The outbox belongs to the app slot, not to one run of the app: a restarted app shares the
//! bytes its predecessor's unacknowledged QoS 1 messages still hold, so restarts while the link
//! is down cannot multiply the memory (they get `Busy` instead). Each record carries the
//! generation of the run that published it, so results are never handed to a successor.

use aliot_abi::Qos;

use super::ring::{Ring, Slot};

/// Bytes of the header in front of each record's topic and payload.
pub(crate) const HEADER: usize = 11;

/// The record was written on the current connection (a QoS 1 record then awaits its PUBACK).
const SENT: u8 = 1;
/// The record was written on some connection before (a resend carries DUP on MQTT 3.1.1).
const EVER_SENT: u8 = 2;

/// The fixed fields of one outbox record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    flags: u8,
    /// Delivery guarantee.
    pub(crate) qos: Qos,
    /// App's tag for the result.
    pub(crate) token: u32,
    /// Run of the app that published it.
    pub(crate) generation: u32,
}

impl Header {
    /// Written on the current connection.
    pub(crate) fn sent(&self) -> bool {
        self.flags & SENT != 0
    }

    /// Written on some connection before.
    pub(crate) fn ever_sent(&self) -> bool {
        self.flags & EVER_SENT != 0
    }
}

/// One client's outbox.
#[derive(Debug)]
pub(crate) struct Outbox {
    ring: Ring,
}

fn parse(body: &[u8]) -> Option<(Header, &str, &[u8])> {
    let (head, rest) = body.split_at_checked(HEADER)?;
    let &[flags, qos, t0, t1, t2, t3, g0, g1, g2, g3, topic_len] = head else {
        return None;
    };
    let header = Header {
        flags,
        qos: if qos == 1 {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        },
        token: u32::from_le_bytes([t0, t1, t2, t3]),
        generation: u32::from_le_bytes([g0, g1, g2, g3]),
    };
    let (topic, payload) = rest.split_at_checked(usize::from(topic_len))?;
    Some((header, core::str::from_utf8(topic).ok()?, payload))
}

impl Outbox {
    /// See [`Ring::snapshot`].
    #[cfg(feature = "fuzzing")]
    pub(crate) fn snapshot(&self, out: &mut alloc::vec::Vec<u8>) {
        self.ring.snapshot(out);
    }

    /// An outbox of `bytes`, allocated now.
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            ring: Ring::new(bytes),
        }
    }

    /// Queues a publish; `None` when the outbox has no room for it now.
    pub(crate) fn push(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: Qos,
        token: u32,
        generation: u32,
    ) -> Option<Slot> {
        let topic_len = u8::try_from(topic.len()).ok()?;
        let len = HEADER + topic.len() + payload.len();
        let [t0, t1, t2, t3] = token.to_le_bytes();
        let [g0, g1, g2, g3] = generation.to_le_bytes();
        let header: [u8; HEADER] = [
            0,
            u8::from(qos == Qos::AtLeastOnce),
            t0,
            t1,
            t2,
            t3,
            g0,
            g1,
            g2,
            g3,
            topic_len,
        ];
        self.ring.push_with(len, |dst| {
            let parts = [header.as_slice(), topic.as_bytes(), payload];
            let mut rest = dst;
            for part in parts {
                let Some((now, later)) =
                    core::mem::take(&mut rest).split_at_mut_checked(part.len())
                else {
                    return;
                };
                now.copy_from_slice(part);
                rest = later;
            }
        })
    }

    /// The record at `slot`: header, topic, payload.
    pub(crate) fn get(&self, slot: Slot) -> Option<(Header, &str, &[u8])> {
        parse(self.ring.get(slot)?)
    }

    /// The header of the record at `slot`.
    pub(crate) fn header(&self, slot: Slot) -> Option<Header> {
        self.get(slot).map(|(h, _, _)| h)
    }

    fn set_flags(&mut self, slot: Slot, flags: u8) {
        if let Some(first) = self.ring.get_mut(slot).and_then(|b| b.first_mut()) {
            *first = flags;
        }
    }

    /// Marks the record written on this connection (and so on some connection).
    pub(crate) fn mark_sent(&mut self, slot: Slot) {
        self.set_flags(slot, SENT | EVER_SENT);
    }

    /// Puts back the flags a record had before [`Outbox::mark_sent`] (the link was busy).
    pub(crate) fn restore(&mut self, slot: Slot, header: Header) {
        self.set_flags(slot, header.flags);
    }

    /// A new connection: nothing is written on it yet.
    pub(crate) fn mark_all_unsent(&mut self) {
        self.ring.retain_mut(|body| {
            if let Some(flags) = body.first_mut() {
                *flags &= !SENT;
            }
            true
        });
    }

    /// The oldest record not written on this connection.
    pub(crate) fn first_unsent(&self) -> Option<Slot> {
        self.ring
            .slots()
            .find(|&s| self.header(s).is_some_and(|h| !h.sent()))
    }

    /// Retires the record at `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        self.ring.kill(slot);
    }

    /// Retires every record `drop` selects, handing each one's header to `each`.
    pub(crate) fn remove_where(
        &mut self,
        mut drop: impl FnMut(&Header) -> bool,
        mut each: impl FnMut(Header),
    ) {
        self.ring.retain_mut(|body| match parse(body) {
            Some((h, _, _)) if drop(&h) => {
                each(h);
                false
            }
            _ => true,
        });
    }

    /// Records matching `pred`.
    pub(crate) fn count(&self, pred: impl Fn(&Header) -> bool) -> usize {
        self.ring
            .slots()
            .filter(|&s| self.header(s).is_some_and(|h| pred(&h)))
            .count()
    }
}
