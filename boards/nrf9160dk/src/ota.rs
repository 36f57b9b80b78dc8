//! OTA on the NVMC (feature `ota`, run when the manifest says `[firmware] ota = true`): the
//! kernel's OTA service ([`aliot_kernel::ota`]) with this board's update slot.
//!
//! The slot is `aliot-boot`'s [`BootStage`] over slices of the shared NVMC ([`crate::flash`]):
//! a download streams into `[flash.update]` (each page erased once, ahead of its first word),
//! `mark_updated` re-reads and checks the image's header and SHA-256 before it sets
//! embassy-boot's swap magic in `[flash.boot_state]`, and `confirm` (after the first login of a
//! trial image) is embassy-boot's `mark_booted`. The boot stage at `[flash.bootloader]`
//! (`boot/`) does the swap or the revert at the next reset, with the same crate and layout.
//!
//! The download runs beside the runner on the same executor, over its own modem sockets (the
//! job's HTTPS URL is verified against the same security tag as the platform: its CA must be
//! provisioned there too).
//!
//! Known gap: the trial image's deadline to log in (`OtaOptions::trial_login_ms`) starts
//! with the runner, after the LTE attach, which retries without end; an image that never
//! attaches is not reverted. A hardware watchdog (the nRF9160's WDT, fed by the runner) would
//! close it.
//!
//! UNTESTED ON HARDWARE: the slot logic is `aliot-boot`'s (host-tested with power cuts), the
//! service the kernel's (host- and end-to-end-tested); what is new here is the NVMC under them
//! and the reset.

use aliot_boot::{BootStage, BootStageError, LayoutError, partitions_from_config};
use aliot_kernel::board::{AppPort, Entropy, Network};
use aliot_kernel::config::DeviceConfig;
use aliot_kernel::credentials::{Credentials, CredentialsError};
use aliot_kernel::kernel::Kernel;
use aliot_kernel::ota::OtaOptions;
use aliot_kernel::ota::download::RECOMMENDED_BUF_LEN;
use aliot_kernel::ota::fetcher::Limits;
use aliot_kernel::ota::slot::{SlotError, UpdateSlot};
use aliot_kernel::ota::task::run_updates;
use aliot_kernel::ota::updates::{BootKind, Updates};
use aliot_kernel::runner::{Runner, RunnerOptions};
use embassy_boot::State;
use embassy_futures::select::{Either, select};
use embedded_storage::nor_flash::ReadNorFlash;

use crate::flash::{NvmcPart, SharedNvmc};
use crate::platform::EmbassyClock;

/// The work buffer for reading the slots and the state word: a divisor of the 4 KiB page and a
/// multiple of the NVMC's 4-byte word (the swap itself, which copies whole pages, is the boot
/// stage's).
const BUF: usize = 512;

/// The update slot and the boot state.
pub type Stage<'a> = BootStage<NvmcPart<'a>, NvmcPart<'a>, NvmcPart<'a>, BUF>;

/// The manifest's `[flash.active]`, `[flash.update]` and `[flash.boot_state]` on the NVMC;
/// `None` (logged) when embassy-boot cannot use them, which aliot-manifest's checks rule out.
pub fn stage<'a>(config: &DeviceConfig, flash: &'a SharedNvmc) -> Option<Stage<'a>> {
    let capacity = flash.lock(|f| f.borrow().capacity()) as u32;
    let slots = partitions_from_config(flash, capacity, &config.ota)
        .map_err(|e| defmt::error!("ota: flash layout refused: {}", Layout(e)))
        .ok()?;
    let (active, update, state) = slots;
    BootStage::new(active, update, state)
        .map_err(|e| defmt::error!("ota: flash layout refused: {}", Layout(e)))
        .ok()
}

/// A [`LayoutError`] as defmt fields: its partitions' names as `{=str}` rather than through
/// `Debug2Format`, whose `str` `Debug` (with Unicode tables to escape) costs about 3 KB of
/// flash for this one line (issue 11; measured in boards/image/src/nrf9160.rs).
struct Layout(LayoutError);

impl defmt::Format for Layout {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            LayoutError::Misaligned { partition } => {
                defmt::write!(f, "Misaligned {{ partition: {=str} }}", partition)
            }
            LayoutError::OutOfFlash { partition } => {
                defmt::write!(f, "OutOfFlash {{ partition: {=str} }}", partition)
            }
            LayoutError::Overlap { a, b } => {
                defmt::write!(f, "Overlap {{ a: {=str}, b: {=str} }}", a, b)
            }
            LayoutError::NotPageMultiple {
                partition,
                size,
                page,
            } => defmt::write!(
                f,
                "NotPageMultiple {{ partition: {=str}, size: {=u32}, page: {=u32} }}",
                partition,
                size,
                page
            ),
            LayoutError::DfuTooSmall { active, dfu, page } => defmt::write!(
                f,
                "DfuTooSmall {{ active: {=u32}, dfu: {=u32}, page: {=u32} }}",
                active,
                dfu,
                page
            ),
            LayoutError::StateTooSmall {
                needed_words,
                words,
            } => defmt::write!(
                f,
                "StateTooSmall {{ needed_words: {=u32}, words: {=u32} }}",
                needed_words,
                words
            ),
            LayoutError::StateNotEraseMultiple => defmt::write!(f, "StateNotEraseMultiple"),
            LayoutError::BadBuffer { len } => {
                defmt::write!(f, "BadBuffer {{ len: {=usize} }}", len)
            }
            LayoutError::ActiveTooSmall => defmt::write!(f, "ActiveTooSmall"),
        }
    }
}

/// What the boot stage did at this reset, read from embassy-boot's state: the swap magic
/// still set means an image swapped in and running on trial; the revert magic means the boot
/// stage put the previous image back. The boot stage cannot tell this image why (an
/// unconfirmed trial, or a swapped-in image that failed its check), so both are reported as a
/// rollback. The revert magic is cleared at once, so the rollback is reported after this reset
/// only (as on the host board, whose boot stage says what it did each time).
pub fn boot_kind(stage: &mut Stage<'_>) -> BootKind {
    match stage.loader_state() {
        Ok(State::Swap) => BootKind::Trial,
        Ok(State::Revert) => {
            if stage.mark_booted().is_err() {
                defmt::warn!("ota: could not clear the boot stage's revert mark");
            }
            BootKind::Reverted
        }
        Ok(_) => BootKind::Normal,
        Err(e) => {
            // Named here, not by `Debug2Format`: the boot errors' derived `Debug` and its
            // strings are about 1.4 KB of flash (issue 11).
            let why = match e {
                BootStageError::Flash(_) => "flash error",
                BootStageError::BadState => "bad state magic",
                _ => "unexpected error",
            };
            defmt::warn!("ota: boot state unreadable: {=str}", why);
            BootKind::Normal
        }
    }
}

/// How [`run`] ended.
pub enum Ended {
    /// An image is marked, or a trial image did not log in in time: reset, so the boot stage
    /// swaps or reverts.
    Reboot,
    /// The credentials cannot log this device in.
    Failed(CredentialsError),
}

/// The kernel's runner with its OTA service, and the download task beside it, until an update
/// needs a reset.
#[allow(clippy::too_many_arguments)] // the runner's parts, each owned by the board's main
pub async fn run<N: Network, D: Network, E: Entropy, P: AppPort, K: Credentials>(
    config: &'static DeviceConfig,
    mut stage: Stage<'_>,
    network: N,
    downloads: D,
    entropy: E,
    port: P,
    credentials: K,
) -> Ended {
    let boot = boot_kind(&mut stage);
    // LED2 on until the trial image confirms itself (after its first login): [`ShowsConfirm`].
    crate::status::set_awaiting_confirm(matches!(boot, BootKind::Trial));
    let updates = Updates::new(boot);
    let mut kernel = Kernel::with_services(config, aliot_kernel::services::all(config));
    kernel.set_watch(&crate::status::LINK);
    let mut runner = Runner::new(
        &mut kernel,
        network,
        EmbassyClock,
        entropy,
        port,
        credentials,
        RunnerOptions::default(),
    )
    .with_ota(&updates, OtaOptions::default());
    let mut downloads = downloads;
    let mut buf = [0u8; RECOMMENDED_BUF_LEN];
    let limits = Limits::default();
    let mut slot = ShowsConfirm(&mut stage);
    let task = run_updates(
        &updates,
        &mut downloads,
        &EmbassyClock,
        &mut slot,
        &limits,
        &mut buf,
    );
    let ran = match select(runner.run_until(core::future::pending()), task).await {
        Either::First(ran) => ran,
        Either::Second(never) => match never {},
    };
    match ran {
        Err(e) => Ended::Failed(e),
        // The runner returns `Ok` only when stopped, and only an update stops it here.
        Ok(()) => Ended::Reboot,
    }
}

/// The update slot, with the status LEDs told when the running image is confirmed (LED2 then
/// stops showing "awaiting confirm"); everything else is the slot's own.
struct ShowsConfirm<'s, S>(&'s mut S);

impl<S: UpdateSlot> UpdateSlot for ShowsConfirm<'_, S> {
    type Writer<'a>
        = S::Writer<'a>
    where
        Self: 'a;
    type Patcher<'a>
        = S::Patcher<'a>
    where
        Self: 'a;

    fn writer(&mut self, len: u32) -> Result<Self::Writer<'_>, SlotError> {
        self.0.writer(len)
    }

    fn patcher(&mut self) -> Result<Self::Patcher<'_>, SlotError> {
        self.0.patcher()
    }

    fn mark_updated(&mut self) -> Result<heapless::String<32>, SlotError> {
        self.0.mark_updated()
    }

    fn confirm(&mut self) -> Result<(), SlotError> {
        let confirmed = self.0.confirm();
        if confirmed.is_ok() {
            crate::status::set_awaiting_confirm(false);
        }
        confirmed
    }
}
