//! The kernel's [`Clock`] and [`Entropy`] on the nRF9160. (The kernel's log lines reach defmt
//! over RTT directly: its `defmt` feature.)
//!
//! Time: embassy-time over RTC1 (32.768 kHz LFCLK), monotonic from boot, for the kernel; and
//! wall-clock time from the network (`AT+CCLK?` after attach, [`crate::modem::network_time`]),
//! anchored on it here: every defmt line is stamped with it (ISO 8601, UTC; counted from
//! 1970-01-01T00:00:00 at boot until the network's time is known), and the kernel reads it
//! through [`EmbassyClock`]'s `network_time_ms` for apps (`Request::Time`, source `Network`). Entropy: the CryptoCell CC310's true random
//! number generator through embassy-nrf (`cryptocell_rng`, secure images only), never a
//! constant or a seed; it only feeds backoff jitter and registration nonces.

use core::sync::atomic::{AtomicU32, Ordering};

use aliot_kernel::board::{Clock, Entropy};
use embassy_nrf::cryptocell_rng::CcRng;
use embassy_nrf::mode::Blocking;
use embassy_time::{Instant, Timer};

/// Milliseconds since boot from embassy-time.
#[derive(Clone, Copy)]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        Timer::at(Instant::from_millis(deadline_ms)).await
    }

    /// The network's time once the modem has it: the kernel answers apps' `Time` with it.
    /// UNTESTED ON HARDWARE.
    fn network_time_ms(&self) -> Option<u64> {
        unix_time_ms()
    }
}

/// Unix seconds (UTC) at embassy-time's zero, once the network's time is known; 0 before.
/// 32 bits last until 2106.
static BOOT_UNIX_SECS: AtomicU32 = AtomicU32::new(0);

/// Takes the network's time (Unix seconds, UTC) as of now. UNTESTED ON HARDWARE.
pub fn set_network_time(unix_secs: u64) {
    let at_boot = unix_secs.saturating_sub(Instant::now().as_secs());
    BOOT_UNIX_SECS.store(u32::try_from(at_boot).unwrap_or(0), Ordering::Relaxed);
}

/// Milliseconds since 1970-01-01T00:00:00Z now, once the network's time is known (to the
/// second it was read at, plus RTC1's drift since).
pub fn unix_time_ms() -> Option<u64> {
    match BOOT_UNIX_SECS.load(Ordering::Relaxed) {
        0 => None,
        at_boot => Some(u64::from(at_boot) * 1000 + Instant::now().as_millis()),
    }
}

defmt::timestamp!(
    "{=u64:iso8601ms}",
    unix_time_ms().unwrap_or_else(|| Instant::now().as_millis())
);

/// The CryptoCell's TRNG. UNTESTED ON HARDWARE.
pub struct CryptoCellEntropy {
    rng: CcRng<'static, Blocking>,
}

impl CryptoCellEntropy {
    /// Takes the CryptoCell's RNG.
    pub fn new(rng: CcRng<'static, Blocking>) -> Self {
        Self { rng }
    }
}

impl Entropy for CryptoCellEntropy {
    fn random_u32(&mut self) -> u32 {
        self.rng.blocking_next_u32()
    }
}
