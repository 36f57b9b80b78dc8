//! MQTT packet identifiers as a bounded resource: the requests on the wire awaiting their
//! acknowledgement, each with the time it was written.
//!
//! At most [`MAX_IN_FLIGHT`] at once: a further packet waits in its queue until an
//! acknowledgement frees a slot, so allocation always finds a free identifier within
//! `MAX_IN_FLIGHT + 1` tries (the spine's allocator spun forever once 65,535 UNSUBSCRIBEs went
//! unanswered). An acknowledgement that never comes is noticed through [`InFlight::oldest`]:
//! the session ends and everything is resent on the next connection.

use alloc::vec::Vec;

use super::ring::Slot;
use crate::budget::MAX_IN_FLIGHT;

/// What a packet identifier was used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// A QoS 1 PUBLISH from `client`'s outbox record at `slot`.
    Publish {
        /// Index of the client.
        client: usize,
        /// Its outbox record.
        slot: Slot,
    },
    /// A SUBSCRIBE.
    Subscribe,
    /// An UNSUBSCRIBE.
    Unsubscribe,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pid: u16,
    what: Waiting,
    sent_at: u64,
}

/// The identifiers in use on this connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    entries: Vec<Entry>,
    next_pid: u16,
}

impl InFlight {
    /// An empty table, its room allocated now.
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::with_capacity(MAX_IN_FLIGHT),
            next_pid: 1,
        }
    }

    /// True when no identifier is free for another packet.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= MAX_IN_FLIGHT
    }

    /// Takes a free identifier for `what`, written at `now_ms`; `None` when all are in use.
    pub(crate) fn allocate(&mut self, what: Waiting, now_ms: u64) -> Option<u16> {
        if self.is_full() {
            return None;
        }
        // At most MAX_IN_FLIGHT identifiers are taken, so this finds one within that many
        // steps past the taken ones.
        for _ in 0..=MAX_IN_FLIGHT {
            let pid = self.next_pid;
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            if self.entries.iter().all(|e| e.pid != pid) {
                self.entries.push(Entry {
                    pid,
                    what,
                    sent_at: now_ms,
                });
                return Some(pid);
            }
        }
        None
    }

    /// The acknowledgement for `pid` arrived: what it was for, if it was of `kind`'s sort
    /// (an identifier acknowledged with the wrong packet type is ignored).
    pub(crate) fn take(&mut self, pid: u16, kind: fn(&Waiting) -> bool) -> Option<Waiting> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.pid == pid && kind(&e.what))?;
        Some(self.entries.swap_remove(pos).what)
    }

    /// Gives `pid` back without an acknowledgement (the packet was never written).
    pub(crate) fn release(&mut self, pid: u16) {
        self.entries.retain(|e| e.pid != pid);
    }

    /// When the oldest unacknowledged packet was written.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.sent_at).min()
    }

    /// The connection ended: every identifier is free again.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Bytes this table holds (for the budget).
    pub(crate) const fn bytes() -> usize {
        MAX_IN_FLIGHT * core::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_bounded_and_skips_taken_identifiers() {
        let mut t = InFlight::new();
        let pids: Vec<u16> = (0..MAX_IN_FLIGHT)
            .map(|_| t.allocate(Waiting::Unsubscribe, 0).unwrap())
            .collect();
        assert!(t.is_full());
        assert_eq!(t.allocate(Waiting::Subscribe, 0), None);
        assert_eq!(
            t.take(pids[3], |w| matches!(w, Waiting::Subscribe)),
            None,
            "wrong kind"
        );
        assert_eq!(
            t.take(pids[3], |w| matches!(w, Waiting::Unsubscribe)),
            Some(Waiting::Unsubscribe)
        );
        // Wrap around the identifier space: the freed one is found, taken ones are skipped.
        t.next_pid = u16::MAX;
        let pid = t.allocate(Waiting::Subscribe, 5).unwrap();
        assert_eq!(pid, u16::MAX);
        t.release(pid);
        let again = t.allocate(Waiting::Subscribe, 5).unwrap();
        assert_eq!(again, pids[3], "1.. are taken except the freed one");
        assert_eq!(t.oldest(), Some(0));
    }
}
