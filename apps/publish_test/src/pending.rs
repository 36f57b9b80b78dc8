//! Which publish each result belongs to, in fixed RAM however many results are outstanding.
//!
//! An outage can leave any number of publishes waiting for their results (the kernel queues
//! them and resends after the reconnect), and the app's RAM is a fixed budget: no table can
//! hold them all. So a result's publish number is computed, not looked up. The app library
//! hands out tokens in order, one per publish or subscribe call (refused calls included), and
//! `run` makes exactly one publish call per publish number after its one subscribe: `token -
//! number` is the same for every publish. That offset is learnt at the first publish and
//! checked at each later one; if it ever changes (the library numbering otherwise), results
//! are no longer computed, so none is logged under a wrong number.
//!
//! Only the send times of the last [`CAPACITY`] publishes are kept, for a latency figure;
//! a result older than that is still logged by its number, without one. Those slots also
//! remember their tokens, so recent results are found even without the offset.

/// Publishes whose send time (and token) is remembered.
pub const CAPACITY: usize = 8;

/// One remembered publish.
#[derive(Clone, Copy)]
struct Sent {
    token: u32,
    n: u32,
    /// Backend clock at the publish, if it has one.
    at_ms: Option<u64>,
}

/// The publish a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// Its publish number (`publishTest_N`).
    pub n: u32,
    /// Milliseconds from the publish to its result, when the send time was still remembered
    /// and the backend has a clock.
    pub latency_ms: Option<u64>,
}

/// Outstanding publishes: a token offset, a count and a small ring of recent send times.
pub struct Pending {
    /// `token - n` of every publish so far; `None` before the first one, or once it was seen
    /// to change.
    offset: Option<u32>,
    /// An offset changed: never compute numbers again.
    offset_broken: bool,
    /// Lowest and highest publish numbers accepted so far (a computed number outside them is
    /// not ours).
    first: u32,
    latest: u32,
    /// Publishes accepted and not yet resolved.
    outstanding: u32,
    /// Recent publishes, slot `n % CAPACITY`.
    recent: [Option<Sent>; CAPACITY],
}

impl Pending {
    /// Nothing outstanding.
    pub fn new() -> Self {
        Pending {
            offset: None,
            offset_broken: false,
            first: 0,
            latest: 0,
            outstanding: 0,
            recent: [None; CAPACITY],
        }
    }

    /// Publish number `n` was accepted as `token` at `at_ms` (the backend's clock, if any).
    pub fn insert(&mut self, token: u32, n: u32, at_ms: Option<u64>) {
        let offset = token.wrapping_sub(n);
        match self.offset {
            None if !self.offset_broken => {
                self.offset = Some(offset);
                self.first = n;
            }
            Some(known) if known != offset => {
                log::warn!(
                    "publish_test: tokens no longer follow publish numbers; older results may be unknown"
                );
                self.offset = None;
                self.offset_broken = true;
            }
            _ => {}
        }
        self.latest = n;
        self.outstanding = self.outstanding.saturating_add(1);
        if let Some(slot) = self.recent.get_mut(slot_of(n)) {
            *slot = Some(Sent { token, n, at_ms });
        }
    }

    /// The publish `token` belongs to, with its latency at `now_ms` when known; `None` for a
    /// token that is not one of ours.
    pub fn resolve(&mut self, token: u32, now_ms: Option<u64>) -> Option<Resolved> {
        let recent = self
            .recent
            .iter_mut()
            .find(|slot| slot.is_some_and(|s| s.token == token))
            .and_then(Option::take);
        let resolved = match recent {
            Some(sent) => Resolved {
                n: sent.n,
                latency_ms: match (sent.at_ms, now_ms) {
                    (Some(at), Some(now)) => Some(now.saturating_sub(at)),
                    _ => None,
                },
            },
            None => {
                let n = token.wrapping_sub(self.offset?);
                // Ours only if accepted: first..=latest, allowing for wrap-around.
                if self.latest.wrapping_sub(n) > self.latest.wrapping_sub(self.first) {
                    return None;
                }
                Resolved {
                    n,
                    latency_ms: None,
                }
            }
        };
        self.outstanding = self.outstanding.saturating_sub(1);
        Some(resolved)
    }

    /// No result outstanding.
    pub fn is_empty(&self) -> bool {
        self.outstanding == 0
    }

    /// Number of results outstanding.
    pub fn len(&self) -> u32 {
        self.outstanding
    }
}

/// The ring slot of publish number `n`.
fn slot_of(n: u32) -> usize {
    // CAPACITY is small: it fits a u32, and the remainder fits any usize.
    (n % CAPACITY as u32) as usize
}

#[cfg(test)]
mod tests {
    use super::{CAPACITY, Pending, Resolved};

    fn resolved(n: u32, latency_ms: Option<u64>) -> Option<Resolved> {
        Some(Resolved { n, latency_ms })
    }

    #[test]
    fn recent_results_carry_their_latency() {
        let mut p = Pending::new();
        p.insert(10, 1, Some(1_000));
        p.insert(11, 2, Some(2_000));
        assert_eq!(p.len(), 2);
        assert_eq!(p.resolve(11, Some(2_250)), resolved(2, Some(250)));
        assert_eq!(p.resolve(10, None), resolved(1, None), "no clock now");
        assert!(p.is_empty());
    }

    #[test]
    fn any_number_of_outstanding_results_resolve_by_number() {
        let mut p = Pending::new();
        let count = 10 * CAPACITY as u32;
        for n in 1..=count {
            p.insert(n + 1, n, Some(u64::from(n) * 100));
        }
        assert_eq!(p.len(), count);
        for n in 1..=count {
            let r = p.resolve(n + 1, Some(100_000)).expect("ours");
            assert_eq!(r.n, n);
            // Only the newest CAPACITY still have a send time.
            let recent = n > count - CAPACITY as u32;
            assert_eq!(r.latency_ms.is_some(), recent, "publish {n}");
        }
        assert!(p.is_empty());
    }

    #[test]
    fn tokens_that_are_not_ours_are_unknown() {
        let mut p = Pending::new();
        assert_eq!(p.resolve(5, None), None, "nothing published yet");
        for n in 1..=3 {
            p.insert(n + 1, n, None);
        }
        assert_eq!(p.resolve(1, None), None, "the subscribe's token");
        assert_eq!(p.resolve(5, None), None, "not issued yet");
        assert_eq!(p.len(), 3, "unknown results resolve nothing");
    }

    #[test]
    fn a_refused_publish_keeps_the_numbering() {
        // Publish 2 was refused: its token (3) was used, no result will come.
        let mut p = Pending::new();
        p.insert(2, 1, None);
        p.insert(4, 3, None);
        assert_eq!(p.resolve(4, None), resolved(3, None));
        assert_eq!(p.resolve(2, None), resolved(1, None));
    }

    #[test]
    fn numbering_survives_wrap_around() {
        let mut p = Pending::new();
        for n in (u32::MAX - 2)..=u32::MAX {
            p.insert(n.wrapping_add(1), n, None);
        }
        p.insert(1, 0, None);
        for n in (u32::MAX - 2)..=u32::MAX {
            assert_eq!(p.resolve(n.wrapping_add(1), None).map(|r| r.n), Some(n));
        }
        assert_eq!(p.resolve(1, None).map(|r| r.n), Some(0));
        assert_eq!(p.resolve(7, None), None);
    }

    #[test]
    fn a_changed_offset_stops_computing_but_recent_ones_still_resolve() {
        let mut p = Pending::new();
        for n in 1..=CAPACITY as u32 {
            p.insert(n + 1, n, None);
        }
        // The library skipped a token: the offset changes.
        p.insert(100, CAPACITY as u32 + 1, None);
        // Publish 1's slot was reused by publish 9: neither remembered nor computable.
        assert_eq!(p.resolve(2, None), None);
        assert_eq!(p.resolve(3, None), resolved(2, None), "still remembered");
        assert_eq!(p.resolve(100, None), resolved(CAPACITY as u32 + 1, None));
    }
}
