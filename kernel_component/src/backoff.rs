//! Reconnect delays: exponential backoff with jitter, so a fleet that lost the network
//! together does not come back in lock step, and a device never spins in a hot loop.

/// Backoff state. `next_delay_ms` grows from `base_ms` by doubling up to `max_ms`; each
/// delay is drawn uniformly from the upper half of the current step ("equal jitter"), so it
/// is never below `base_ms / 2` and never zero.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u32,
    max_ms: u32,
    attempt: u32,
}

impl Backoff {
    /// Start at `base_ms` (at least 100 ms), never exceed `max_ms`.
    pub fn new(base_ms: u32, max_ms: u32) -> Self {
        let base_ms = base_ms.max(100);
        Self {
            base_ms,
            max_ms: max_ms.max(base_ms),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `random` is any uniformly random u32.
    pub fn next_delay_ms(&mut self, random: u32) -> u32 {
        let step = self
            .base_ms
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + random % (step - half + 1)
    }

    /// A login succeeded: the next failure starts from `base_ms` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter_inside_bounds() {
        let mut b = Backoff::new(1000, 8000);
        let steps = [1000u32, 2000, 4000, 8000, 8000, 8000];
        for (i, step) in steps.into_iter().enumerate() {
            let lo = Backoff {
                attempt: i as u32,
                ..b.clone()
            }
            .next_delay_ms(0);
            let hi = Backoff {
                attempt: i as u32,
                ..b.clone()
            }
            .next_delay_ms(u32::MAX - 7);
            assert_eq!(lo, step / 2, "lowest delay of step {i}");
            assert!(
                hi <= step && hi >= step / 2,
                "highest delay of step {i}: {hi}"
            );
            b.next_delay_ms(12345);
        }
        assert_eq!(b.attempts(), 6);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..50u32 {
            let mut b = Backoff::new(1000, 60_000);
            seen.insert(b.next_delay_ms(r.wrapping_mul(2654435761)));
        }
        assert!(
            seen.len() > 10,
            "delays should differ with different randomness"
        );
    }

    #[test]
    fn never_zero_and_reset_restarts() {
        let mut b = Backoff::new(0, 0);
        assert!(b.next_delay_ms(0) >= 50);
        for _ in 0..100 {
            b.next_delay_ms(7);
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay_ms(0) <= 100);
    }
}
