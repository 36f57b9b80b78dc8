//! Packet identifiers: the wire's versus the kernel's, for the requests outstanding on one
//! connection.

use crate::budget::MAX_IN_FLIGHT;

/// Which request a packet identifier belongs to (pids are shared by all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidKind {
    /// A QoS 1 PUBLISH awaiting PUBACK.
    Publish,
    /// A SUBSCRIBE awaiting SUBACK.
    Subscribe,
    /// An UNSUBSCRIBE awaiting UNSUBACK.
    Unsubscribe,
}

/// One outstanding request: wire pid, kind, kernel pid.
#[derive(Debug, Clone, Copy)]
struct Entry {
    wire: u16,
    kind: PidKind,
    kernel: u16,
}

/// Wire pid -> kernel pid for the requests outstanding on one connection.
///
/// Shared by both links so they report acknowledgements identically: only for requests sent
/// on this connection, once each, with the kernel's pid. A fixed table searched linearly, in
/// the link's own struct (so in [`crate::link::LINK_STATE_BYTES`]), not a `BTreeMap`: its code
/// cost about 3 KB of flash for at most [`MAX_IN_FLIGHT`] entries. That bound holds because
/// every entry is a kernel pid of `kernel/inflight.rs`, which never has more on the wire, and
/// leaves on its acknowledgement (or with the link, at the end of the connection). Were it
/// exceeded, the new entry would be forgotten, not panic: its acknowledgement reads as
/// unknown, so the kernel's in-flight timeout ends the session and the request is resent.
#[derive(Debug, Default)]
pub(crate) struct PidMap {
    entries: heapless::Vec<Entry, MAX_IN_FLIGHT>,
}

impl PidMap {
    /// Remembers that `wire` was sent for the kernel's `kernel` pid (replacing what `wire`
    /// was remembered for before).
    pub(crate) fn insert(&mut self, wire: u16, kind: PidKind, kernel: u16) {
        let entry = Entry { wire, kind, kernel };
        match self.entries.iter_mut().find(|e| e.wire == wire) {
            Some(old) => *old = entry,
            // Full only past the bound above: forgotten (see the type's docs).
            None => {
                let _ = self.entries.push(entry);
            }
        }
    }

    /// The kernel pid for an acknowledgement of `kind` carrying `wire`, forgetting it; `None`
    /// for an identifier not outstanding (or outstanding for a different kind of request).
    pub(crate) fn take(&mut self, wire: u16, kind: PidKind) -> Option<u16> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.wire == wire && e.kind == kind)?;
        Some(self.entries.swap_remove(pos).kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_map_only_answers_the_matching_kind() {
        let mut map = PidMap::default();
        map.insert(1, PidKind::Publish, 10);
        map.insert(2, PidKind::Subscribe, 20);
        assert_eq!(map.take(1, PidKind::Subscribe), None);
        assert_eq!(map.take(1, PidKind::Publish), Some(10));
        assert_eq!(map.take(1, PidKind::Publish), None);
        assert_eq!(map.take(2, PidKind::Subscribe), Some(20));
        assert_eq!(map.take(3, PidKind::Unsubscribe), None);
    }

    #[test]
    fn a_wire_pid_sent_again_is_remembered_for_its_latest_request() {
        let mut map = PidMap::default();
        map.insert(7, PidKind::Publish, 1);
        map.insert(7, PidKind::Subscribe, 2);
        assert_eq!(map.take(7, PidKind::Publish), None);
        assert_eq!(map.take(7, PidKind::Subscribe), Some(2));
        assert_eq!(map.take(7, PidKind::Subscribe), None);
    }

    #[test]
    fn holds_the_in_flight_limit_and_forgets_past_it_without_panicking() {
        let mut map = PidMap::default();
        let limit = u16::try_from(MAX_IN_FLIGHT).unwrap();
        for pid in 1..=limit {
            map.insert(pid, PidKind::Publish, pid + 100);
        }
        // One past the bound: forgotten, the ones before are kept.
        map.insert(limit + 1, PidKind::Publish, 999);
        assert_eq!(map.take(limit + 1, PidKind::Publish), None);
        for pid in (1..=limit).rev() {
            assert_eq!(
                map.take(pid, PidKind::Publish),
                Some(pid + 100),
                "pid {pid}"
            );
        }
        // Every slot is free again.
        for pid in 1..=limit {
            map.insert(pid, PidKind::Unsubscribe, pid);
        }
        assert_eq!(map.take(limit, PidKind::Unsubscribe), Some(limit));
    }
}
