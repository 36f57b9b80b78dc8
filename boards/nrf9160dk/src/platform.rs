//! The kernel's [`Clock`] and [`Entropy`] on the nRF9160, and the `log` facade the kernel
//! writes to, carried to defmt over RTT.
//!
//! Time: embassy-time over RTC1 (32.768 kHz LFCLK), monotonic from boot; wall-clock time
//! (the modem's network time) is a later slice. Entropy: the CryptoCell CC310's true random
//! number generator through embassy-nrf (`cryptocell_rng`, secure images only), never a
//! constant or a seed; it only feeds backoff jitter and registration nonces.

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
}

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

/// The kernel's `log` records as defmt lines. The kernel names no secret in its logs (its
/// credentials never implement `Debug` or `Display`), so nothing here filters.
pub struct DefmtLogger;

/// Longest log line kept; longer ones are cut (and end with `...`).
const LINE: usize = 192;

impl log::Log for DefmtLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = heapless::String::<LINE>::new();
        if core::fmt::write(&mut line, *record.args()).is_err() {
            // Full: mark the cut where it fits.
            while line.len() > LINE - 3 {
                line.pop();
            }
            let _ = line.push_str("...");
        }
        match record.level() {
            log::Level::Error => defmt::error!("{=str}", line.as_str()),
            log::Level::Warn => defmt::warn!("{=str}", line.as_str()),
            _ => defmt::info!("{=str}", line.as_str()),
        }
    }

    fn flush(&self) {}
}

/// The logger the kernel's `log` calls reach.
pub static LOGGER: DefmtLogger = DefmtLogger;
