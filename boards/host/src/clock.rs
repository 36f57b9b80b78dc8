//! Time and randomness for the capsule on Linux.

use aliot_kernel::board::{Clock, Entropy};
use tokio::time::Instant;

/// Monotonic milliseconds since the board started.
pub struct HostClock {
    start: Instant,
}

impl HostClock {
    /// A clock starting at zero now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.start + std::time::Duration::from_millis(deadline_ms)).await;
    }
}

/// The OS random source.
pub struct HostEntropy;

impl Entropy for HostEntropy {
    fn random_u32(&mut self) -> u32 {
        // The OS source does not fail on Linux; fall back to the clock's low bits if it ever does.
        getrandom::u32().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        })
    }
}
