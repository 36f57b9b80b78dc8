//! The A/B boot stage: `embassy-boot` 0.7 swaps and reverts; this module adds the image check
//! so that only an image whose header and SHA-256 are right is ever run.
//!
//! # Flow
//!
//! Updater side (the running firmware, driven by the kernel's OTA download, spec §3):
//! [`BootStage::update_writer`] streams the download into the update (DFU) slot through
//! `embassy-boot`'s `BlockingFirmwareUpdater::write_firmware`; [`BootStage::mark_updated`]
//! re-reads the slot, verifies header + SHA-256 and only then sets `embassy-boot`'s swap
//! magic; after the next login succeeds, [`BootStage::mark_booted`] confirms the running image.
//!
//! Boot side: [`BootStage::boot`] runs `BootLoader::prepare_boot`, which (from the state
//! partition's magic, `embassy-boot` `boot_loader.rs`):
//! * swap magic, slots not yet swapped: swaps (resuming after a power cut, from its progress
//!   words);
//! * swap magic, slots already swapped: the image swapped in last time was never confirmed
//!   with `mark_booted`, so it reverts (also resumable), and sets the revert magic;
//! * otherwise: nothing.
//!
//! Then the active slot is verified. If a freshly swapped-in image is invalid (it can only
//! get there by a `mark_updated` that did not go through this module, or flash corruption),
//! it is **not run**: the boot stage calls `prepare_boot` a second time at once, which takes
//! `embassy-boot`'s revert path (swap magic, slots swapped) and puts the previous image back;
//! that one is verified and run ([`BootKind::RefusedUpdate`]). A power cut during that revert
//! is resumed by the next boot the same way. If the active image is invalid in any other
//! state there is nothing to fall back to and [`BootStage::boot`] returns
//! [`BootStageError::NoValidImage`]: the caller must not jump.
//!
//! # Layout requirements (checked by [`BootStage::new`])
//!
//! `embassy-boot` 0.7 *panics* (`assert!`) in `prepare_boot` when they are not met, so they
//! are checked up front and refused with a [`LayoutError`]. `PAGE` below is `max(ACTIVE::ERASE_SIZE,
//! DFU::ERASE_SIZE)` (`BootLoader::PAGE_SIZE`), the unit the swap copies.
//! * `PAGE` is a multiple of the write and erase sizes of ACTIVE and DFU (`prepare_boot`'s
//!   `const` asserts; these fail the build, not the run).
//! * Active and DFU sizes are multiples of `PAGE`; DFU is at least one `PAGE` larger than
//!   active: the swap shifts the old image up by one page in DFU (`assert_partitions`).
//! * The state partition holds `2 + 4 × (active / PAGE)` write words: magic, progress
//!   validity, and two progress words per page for the swap and for the revert
//!   (`assert_partitions`; state layout in the `BootLoader` doc). Its size is a multiple of its
//!   erase size (it is erased whole by `mark_*`).
//! * The aligned buffer (`BUF` here, `aligned_buf` in `prepare_boot`): `PAGE % BUF == 0`,
//!   `BUF >= STATE::WRITE_SIZE`, `BUF` a multiple of ACTIVE's and DFU's write size
//!   (`prepare_boot`'s asserts). `BlockingFirmwareState::new` wants a buffer of exactly
//!   `STATE::WRITE_SIZE` bytes: the first `STATE::WRITE_SIZE` bytes of the same buffer.
//!   The buffer is [`embassy_boot::AlignedBuffer`] (32-byte aligned, "largest known alignment
//!   requirement for embassy-boot").
//! * The active slot holds at least a header and is at least one page.
//!
//! On the nRF9160 (NVMC: 4-byte writes, 4096-byte pages) with the default `OtaConfig`
//! (active `0x79000` = 121 pages, update `0x7A000`, state `0x1000` = 1024 words ≥ 2 + 484)
//! every requirement holds.

use core::cell::RefCell;

use aliot_kernel::config::{FlashPartition, OtaConfig};
use embassy_boot::{
    AlignedBuffer, BlockingFirmwareState, BlockingFirmwareUpdater, BootError, BootLoader,
    BootLoaderConfig, FirmwareUpdaterConfig, FirmwareUpdaterError, State,
};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

use crate::image::{HEADER_LEN, ImageError, ImageHeader, ImageVerifier};

/// A partition of one shared flash (`embassy-embedded-hal`).
pub type Partition<'a, F> = BlockingPartition<'a, NoopRawMutex, F>;

/// Why a flash layout cannot be used by `embassy-boot` (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// A partition's offset or size is not a multiple of the flash's read/write/erase sizes.
    Misaligned {
        /// Which partition.
        partition: &'static str,
    },
    /// A partition runs past the end of the flash.
    OutOfFlash {
        /// Which partition.
        partition: &'static str,
    },
    /// Two partitions overlap.
    Overlap {
        /// One partition.
        a: &'static str,
        /// The other.
        b: &'static str,
    },
    /// Active or DFU size is not a multiple of the swap page.
    NotPageMultiple {
        /// Which partition.
        partition: &'static str,
        /// Its size.
        size: u32,
        /// The swap page.
        page: u32,
    },
    /// DFU must be at least one page larger than active.
    DfuTooSmall {
        /// Active size.
        active: u32,
        /// DFU size.
        dfu: u32,
        /// The swap page.
        page: u32,
    },
    /// The state partition has fewer write words than `2 + 4 × active pages`.
    StateTooSmall {
        /// Write words needed.
        needed_words: u32,
        /// Write words there.
        words: u32,
    },
    /// The state partition is not a whole number of its erase pages.
    StateNotEraseMultiple,
    /// The aligned buffer does not suit the page or the write sizes.
    BadBuffer {
        /// Its length.
        len: usize,
    },
    /// The active slot is smaller than one page or than an image header.
    ActiveTooSmall,
}

/// What [`BootStage::boot`] did before handing over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootKind {
    /// Nothing pending: the active (confirmed) image runs.
    Normal,
    /// A new image was swapped in and runs on trial: unless it calls
    /// [`BootStage::mark_booted`], the next boot reverts.
    Trial,
    /// The last trial image was not confirmed; the previous image was put back. (After a
    /// power cut inside `mark_booted`, between its "progress invalid" write and its erase,
    /// `embassy-boot` takes the revert path with nothing to copy: the confirmed trial image
    /// stays and is reported with this kind.)
    Reverted,
    /// The image swapped in failed verification and was not run; the previous image was put
    /// back at once.
    RefusedUpdate(ImageError),
}

/// The image chosen to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booted {
    /// Its header (version, length, digest), checked against the active slot.
    pub image: ImageHeader,
    /// How it came to be there.
    pub kind: BootKind,
}

/// Why the boot stage or the updater could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStageError {
    /// A flash operation failed.
    Flash(NorFlashErrorKind),
    /// The active slot holds no valid image and there is nothing to fall back to: do not
    /// jump.
    NoValidImage(ImageError),
    /// The update slot does not hold a valid image; the swap was not requested.
    InvalidUpdate(ImageError),
    /// The running image has not been confirmed (`mark_booted`), so no update may be written
    /// or marked: the next boot would revert to the previous image anyway.
    NotConfirmed,
    /// `embassy-boot` reported its state magic unusable.
    BadState,
}

impl From<BootError> for BootStageError {
    fn from(e: BootError) -> Self {
        match e {
            BootError::Flash(k) => Self::Flash(k),
            BootError::BadMagic => Self::BadState,
        }
    }
}

impl From<FirmwareUpdaterError> for BootStageError {
    fn from(e: FirmwareUpdaterError) -> Self {
        match e {
            FirmwareUpdaterError::Flash(k) => Self::Flash(k),
            // Signatures are not used (no `_verify` feature); BadState means "not confirmed".
            FirmwareUpdaterError::Signature(_) | FirmwareUpdaterError::BadState => {
                Self::NotConfirmed
            }
        }
    }
}

/// Active, update (DFU) and state partitions, in that order.
pub type SlotPartitions<'a, F> = (Partition<'a, F>, Partition<'a, F>, Partition<'a, F>);

/// The three partitions `OtaConfig` describes, on one flash, after checking that each is
/// aligned to the flash's read/write/erase sizes (`BlockingPartition::new` panics
/// otherwise), inside the flash, and that none overlap (the bootloader partition included).
pub fn partitions_from_config<'a, F: NorFlash>(
    flash: &'a Mutex<NoopRawMutex, RefCell<F>>,
    flash_capacity: u32,
    ota: &OtaConfig,
) -> Result<SlotPartitions<'a, F>, LayoutError> {
    let named = [
        ("bootloader", ota.bootloader),
        ("active", ota.active),
        ("update", ota.update),
        ("boot_state", ota.boot_state),
    ];
    for (name, p) in named {
        check_partition::<F>(name, p, flash_capacity)?;
    }
    for (i, (na, a)) in named.iter().enumerate() {
        for (nb, b) in named.iter().skip(i + 1) {
            let a_end = u64::from(a.offset) + u64::from(a.size);
            let b_end = u64::from(b.offset) + u64::from(b.size);
            if u64::from(a.offset) < b_end && u64::from(b.offset) < a_end {
                return Err(LayoutError::Overlap { a: na, b: nb });
            }
        }
    }
    Ok((
        Partition::new(flash, ota.active.offset, ota.active.size),
        Partition::new(flash, ota.update.offset, ota.update.size),
        Partition::new(flash, ota.boot_state.offset, ota.boot_state.size),
    ))
}

fn check_partition<F: NorFlash>(
    name: &'static str,
    p: FlashPartition,
    flash_capacity: u32,
) -> Result<(), LayoutError> {
    for unit in [F::READ_SIZE, F::WRITE_SIZE, F::ERASE_SIZE] {
        let unit = unit as u32;
        if unit == 0 || !p.offset.is_multiple_of(unit) || !p.size.is_multiple_of(unit) {
            return Err(LayoutError::Misaligned { partition: name });
        }
    }
    if u64::from(p.offset) + u64::from(p.size) > u64::from(flash_capacity) {
        return Err(LayoutError::OutOfFlash { partition: name });
    }
    Ok(())
}

/// `embassy-boot`'s boot loader and firmware state over three blocking `NorFlash`
/// partitions, with the image check added. `BUF` is the aligned work buffer's length (see
/// the module doc; the page size is a good choice, a few hundred bytes is enough).
pub struct BootStage<ACTIVE: NorFlash, DFU: NorFlash, STATE: NorFlash, const BUF: usize> {
    active: ACTIVE,
    dfu: DFU,
    state: STATE,
    buf: AlignedBuffer<BUF>,
}

impl<ACTIVE: NorFlash, DFU: NorFlash, STATE: NorFlash, const BUF: usize>
    BootStage<ACTIVE, DFU, STATE, BUF>
{
    /// `embassy-boot`'s swap page (`BootLoader::PAGE_SIZE`).
    pub const PAGE: u32 = if ACTIVE::ERASE_SIZE > DFU::ERASE_SIZE {
        ACTIVE::ERASE_SIZE as u32
    } else {
        DFU::ERASE_SIZE as u32
    };

    /// Takes the partitions after checking every `embassy-boot` layout requirement (module
    /// doc): a layout that would make `embassy-boot` panic is refused here instead.
    pub fn new(active: ACTIVE, dfu: DFU, state: STATE) -> Result<Self, LayoutError> {
        let page = Self::PAGE;
        let a = active.capacity() as u64;
        let d = dfu.capacity() as u64;
        let s = state.capacity() as u64;
        let p = u64::from(page);
        for (name, size) in [("active", a), ("update", d)] {
            if size % p != 0 {
                return Err(LayoutError::NotPageMultiple {
                    partition: name,
                    size: size as u32,
                    page,
                });
            }
        }
        if a < p || a < HEADER_LEN as u64 {
            return Err(LayoutError::ActiveTooSmall);
        }
        if d < a + p {
            return Err(LayoutError::DfuTooSmall {
                active: a as u32,
                dfu: d as u32,
                page,
            });
        }
        let w = STATE::WRITE_SIZE as u64;
        let needed_words = 2 + 4 * (a / p);
        if needed_words > s / w {
            return Err(LayoutError::StateTooSmall {
                needed_words: needed_words as u32,
                words: (s / w) as u32,
            });
        }
        if !s.is_multiple_of(STATE::ERASE_SIZE as u64) {
            return Err(LayoutError::StateNotEraseMultiple);
        }
        let b = BUF as u64;
        if b == 0
            || p % b != 0
            || BUF < STATE::WRITE_SIZE
            || !BUF.is_multiple_of(ACTIVE::WRITE_SIZE)
            || !BUF.is_multiple_of(DFU::WRITE_SIZE)
            || !BUF.is_multiple_of(ACTIVE::READ_SIZE)
            || !BUF.is_multiple_of(DFU::READ_SIZE)
        {
            return Err(LayoutError::BadBuffer { len: BUF });
        }
        Ok(Self {
            active,
            dfu,
            state,
            buf: AlignedBuffer([0; BUF]),
        })
    }

    /// The active slot's length: the largest image that can run.
    pub(crate) fn active_capacity(&self) -> u64 {
        self.active.capacity() as u64
    }

    /// The update partition, for [`crate::slot::SlotWriter`].
    pub(crate) fn dfu_mut(&mut self) -> &mut DFU {
        &mut self.dfu
    }

    /// The active partition (read) and the update partition (written), for a patch.
    pub(crate) fn active_and_dfu_mut(&mut self) -> (&mut ACTIVE, &mut DFU) {
        (&mut self.active, &mut self.dfu)
    }

    /// Gives the partitions back.
    pub fn into_parts(self) -> (ACTIVE, DFU, STATE) {
        (self.active, self.dfu, self.state)
    }

    /// Swaps or reverts as `embassy-boot` decides, then verifies the active image. `Ok` names
    /// the image to run; on `Err` the caller must not jump (on `Flash`, reset and try again:
    /// every step is resumable).
    pub fn boot(&mut self) -> Result<Booted, BootStageError> {
        let before = self.loader_state()?;
        self.prepare()?;
        let after = self.loader_state()?;
        let kind = match (before, after) {
            (State::Swap, State::Swap) => BootKind::Trial,
            (State::Swap, _) => BootKind::Reverted,
            _ => BootKind::Normal,
        };
        match self.verify_active() {
            Ok(image) => Ok(Booted { image, kind }),
            Err(BootStageError::NoValidImage(e)) if kind == BootKind::Trial => {
                // Not run: embassy-boot's revert path (swap magic, slots swapped) restores
                // the previous image now, as it would on the next boot.
                self.prepare()?;
                let image = self.verify_active()?;
                Ok(Booted {
                    image,
                    kind: BootKind::RefusedUpdate(e),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Verifies the active slot's header and payload digest.
    pub fn verify_active(&mut self) -> Result<ImageHeader, BootStageError> {
        let slot = self.active.capacity() as u32;
        verify_slot(&mut self.active, &mut self.buf.0, slot).map_err(|e| match e {
            SlotError::Flash(k) => BootStageError::Flash(k),
            SlotError::Image(e) => BootStageError::NoValidImage(e),
        })
    }

    /// Verifies the update slot (the image must fit the *active* slot, where it will run).
    pub fn verify_update(&mut self) -> Result<ImageHeader, BootStageError> {
        let slot = self.active.capacity() as u32;
        verify_slot(&mut self.dfu, &mut self.buf.0, slot).map_err(|e| match e {
            SlotError::Flash(k) => BootStageError::Flash(k),
            SlotError::Image(e) => BootStageError::InvalidUpdate(e),
        })
    }

    /// Starts writing a download into the update slot. Refused while the running image is
    /// unconfirmed (the next boot would revert anyway). Keep the writer for the whole
    /// download: it remembers which page it erased last.
    pub fn update_writer(&mut self) -> Result<UpdateWriter<'_, DFU, STATE>, BootStageError> {
        if self.loader_state()? == State::Swap {
            return Err(BootStageError::NotConfirmed);
        }
        let (aligned, _) = self.buf.0.split_at_mut(STATE::WRITE_SIZE);
        Ok(UpdateWriter {
            updater: BlockingFirmwareUpdater::new(
                FirmwareUpdaterConfig {
                    dfu: &mut self.dfu,
                    state: &mut self.state,
                },
                aligned,
            ),
        })
    }

    /// After a download: verifies the update slot, then asks `embassy-boot` to swap at the
    /// next boot. Refused (nothing marked) when the image is invalid or the running image is
    /// not confirmed.
    pub fn mark_updated(&mut self) -> Result<ImageHeader, BootStageError> {
        if self.loader_state()? == State::Swap {
            return Err(BootStageError::NotConfirmed);
        }
        let header = self.verify_update()?;
        self.firmware_state().mark_updated()?;
        Ok(header)
    }

    /// Confirms the running image (after a successful login): no revert at the next boot.
    pub fn mark_booted(&mut self) -> Result<(), BootStageError> {
        self.firmware_state().mark_booted()?;
        Ok(())
    }

    /// `embassy-boot`'s state magic.
    pub fn loader_state(&mut self) -> Result<State, BootStageError> {
        Ok(self.firmware_state().get_state()?)
    }

    fn firmware_state(&mut self) -> BlockingFirmwareState<'_, &mut STATE> {
        let (aligned, _) = self.buf.0.split_at_mut(STATE::WRITE_SIZE);
        BlockingFirmwareState::new(&mut self.state, aligned)
    }

    fn prepare(&mut self) -> Result<State, BootStageError> {
        let mut loader = BootLoader::new(BootLoaderConfig {
            active: &mut self.active,
            dfu: &mut self.dfu,
            state: &mut self.state,
        });
        Ok(loader.prepare_boot(&mut self.buf.0)?)
    }
}

/// Writes a download into the update slot through `embassy-boot`'s
/// `BlockingFirmwareUpdater::write_firmware`, which erases each page the first time this
/// writer touches it.
pub struct UpdateWriter<'a, DFU: NorFlash, STATE: NorFlash> {
    updater: BlockingFirmwareUpdater<'a, &'a mut DFU, &'a mut STATE>,
}

impl<DFU: NorFlash, STATE: NorFlash> UpdateWriter<'_, DFU, STATE> {
    /// Writes `data` at `offset` of the update slot. Write in order; offsets and lengths are
    /// multiples of the flash's write size. A writer's first write into a page erases that
    /// page, so a download resumed after a reset (a new writer) must restart at a page
    /// boundary.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), BootStageError> {
        self.updater.write_firmware(offset, data)?;
        Ok(())
    }
}

enum SlotError {
    Flash(NorFlashErrorKind),
    Image(ImageError),
}

/// Streams a slot through [`ImageVerifier`] in `buf`-sized, `buf`-aligned reads, reading no
/// further than the header announces (and never past the slot).
fn verify_slot<F: NorFlash>(
    flash: &mut F,
    buf: &mut [u8],
    slot_len: u32,
) -> Result<ImageHeader, SlotError> {
    let mut v = ImageVerifier::new(slot_len);
    let cap = flash.capacity() as u64;
    let mut offset = 0u64;
    while v.bytes_needed() > 0 && offset < cap && !buf.is_empty() {
        flash
            .read(offset as u32, buf)
            .map_err(|e| SlotError::Flash(e.kind()))?;
        // A read may hold the header's end and the payload's start: feed all of it that
        // the verifier still wants (it asks for the header first, then the payload).
        let mut chunk: &[u8] = buf;
        while v.bytes_needed() > 0 && !chunk.is_empty() {
            let take = v.bytes_needed().min(chunk.len() as u64) as usize;
            let (now, rest) = chunk.split_at(take);
            v.update(now).map_err(SlotError::Image)?;
            chunk = rest;
        }
        offset += buf.len() as u64;
    }
    v.finish().map_err(SlotError::Image)
}
