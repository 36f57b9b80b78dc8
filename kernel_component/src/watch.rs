//! A board's read-only view of the link, kept current by the kernel: whether the MQTT session
//! is up and where an update stands. A board shows it (the nRF9160 DK's LEDs) while the runner
//! holds the kernel for the whole session, so it is a `'static` of atomics the kernel writes
//! ([`crate::kernel::Kernel::set_watch`]) and any task or interrupt reads, never a borrow.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use aliot_abi::OtaStatus;

/// Where an update stands, as a board shows it (the kernel's [`OtaStatus`] without its numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtaPhase {
    /// No update in progress (or the last one failed: the running image is unchanged).
    Idle,
    /// Downloading into the update slot, or checking what was downloaded.
    Downloading,
    /// A verified image waits for the reboot that swaps it in.
    PendingReboot,
}

impl OtaPhase {
    fn of(status: OtaStatus) -> OtaPhase {
        match status {
            OtaStatus::Idle | OtaStatus::Failed { .. } => OtaPhase::Idle,
            OtaStatus::Downloading { .. } | OtaStatus::Verifying => OtaPhase::Downloading,
            OtaStatus::PendingReboot => OtaPhase::PendingReboot,
        }
    }

    fn code(self) -> u8 {
        match self {
            OtaPhase::Idle => 0,
            OtaPhase::Downloading => 1,
            OtaPhase::PendingReboot => 2,
        }
    }

    fn from_code(code: u8) -> OtaPhase {
        match code {
            1 => OtaPhase::Downloading,
            2 => OtaPhase::PendingReboot,
            _ => OtaPhase::Idle,
        }
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct LinkWatch {
    connected: AtomicBool,
    ota: AtomicU8,
}

impl LinkWatch {
    /// Link down, no update.
    pub const fn new() -> Self {
        Self {
            connected: AtomicBool::new(false),
            ota: AtomicU8::new(0),
        }
    }

    /// The MQTT session is up (CONNACK accepted, not gone down since).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Where an update stands.
    pub fn ota(&self) -> OtaPhase {
        OtaPhase::from_code(self.ota.load(Ordering::Relaxed))
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    pub(crate) fn set_ota(&self, status: OtaStatus) {
        self.ota
            .store(OtaPhase::of(status).code(), Ordering::Relaxed);
    }
}

impl Default for LinkWatch {
    fn default() -> Self {
        Self::new()
    }
}
