//! Packet identifiers: the wire's versus the kernel's, for the requests outstanding on one
//! connection.

use alloc::collections::BTreeMap;

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

/// Wire pid -> kernel pid for the requests outstanding on one connection.
///
/// Shared by both links so they report acknowledgements identically: only for requests sent
/// on this connection, once each, with the kernel's pid. Bounded by the MQTT pid space, and in
/// practice by the kernel's own outbox and subscription caps.
#[derive(Debug, Default)]
pub(crate) struct PidMap {
    map: BTreeMap<u16, (PidKind, u16)>,
}

impl PidMap {
    /// Remembers that `wire` was sent for the kernel's `kernel` pid.
    pub(crate) fn insert(&mut self, wire: u16, kind: PidKind, kernel: u16) {
        self.map.insert(wire, (kind, kernel));
    }

    /// The kernel pid for an acknowledgement of `kind` carrying `wire`, forgetting it; `None`
    /// for an identifier not outstanding (or outstanding for a different kind of request).
    pub(crate) fn take(&mut self, wire: u16, kind: PidKind) -> Option<u16> {
        match self.map.get(&wire) {
            Some((k, _)) if *k == kind => self.map.remove(&wire).map(|(_, kernel)| kernel),
            _ => None,
        }
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
}
