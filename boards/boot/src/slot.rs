//! The kernel's update slot ([`aliot_kernel::ota::slot::UpdateSlot`]) on the boot stage: the
//! OTA task streams a download through a [`SlotWriter`] into the update (DFU) partition, then
//! asks [`BootStage::mark_updated`] to verify it and request the swap, and confirms the
//! running image with [`BootStage::mark_booted`].
//!
//! Why not `embassy-boot`'s `write_firmware`: it erases a page whenever a write starts in a
//! page other than the last one it erased, so a write that straddles a page boundary, or a
//! restart from 0 while still in page 0, would either erase bytes already written or program
//! over them. The download hands over pieces of any length (HTTP reads), so this writer keeps
//! a tail of less than one write word and erases each page exactly once, ahead of the first
//! byte programmed into it; a restart starts erasing from page 0 again.
//!
//! Writes are synchronous inside the `async` sink: a deadline can never drop one half done.

use aliot_kernel::ota::delta::{NewImage, OldImage, PatchError, Patcher};
use aliot_kernel::ota::download::{Sink, SinkError};
use aliot_kernel::ota::slot::{SlotError, UpdateSlot};
use embassy_boot::State;
use embedded_storage::nor_flash::NorFlash;

use crate::stage::{BootStage, BootStageError};

/// Largest flash write word this writer buffers (the nRF9160's NVMC writes 4 bytes).
const MAX_WORD: usize = 32;

/// One download into the update partition (see the module doc).
pub struct SlotWriter<'a, DFU: NorFlash> {
    dfu: &'a mut DFU,
    /// The download's length.
    len: u32,
    /// The longest image the slot takes (a patch's new image is checked against it).
    max_len: u32,
    /// Bytes programmed (a multiple of the write word).
    programmed: u32,
    /// Pages `0..erased` (in bytes) are erased since the last start.
    erased: u32,
    tail: [u8; MAX_WORD],
    tail_len: usize,
}

impl<DFU: NorFlash> SlotWriter<'_, DFU> {
    fn word() -> usize {
        DFU::WRITE_SIZE.max(1)
    }

    /// Programs `data` (whole words) at `self.programmed`, erasing pages ahead of it.
    fn program(&mut self, data: &[u8]) -> Result<(), SinkError> {
        let start = self.programmed;
        let end = start
            .checked_add(u32::try_from(data.len()).map_err(|_| SinkError::Write)?)
            .ok_or(SinkError::Write)?;
        let page = DFU::ERASE_SIZE as u32;
        while self.erased < end {
            let next = self.erased.checked_add(page).ok_or(SinkError::Write)?;
            self.dfu
                .erase(self.erased, next)
                .map_err(|_| SinkError::Write)?;
            self.erased = next;
        }
        self.dfu.write(start, data).map_err(|_| SinkError::Write)?;
        self.programmed = end;
        Ok(())
    }

    /// Every byte of the download was handed over: it must be whole (the tail is flushed as
    /// soon as the last byte comes).
    fn finish_now(&mut self) -> Result<(), SinkError> {
        // Programmed includes the last word's padding.
        if self.tail_len == 0 && self.programmed >= self.len {
            Ok(())
        } else {
            Err(SinkError::Write)
        }
    }

    /// The tail, padded with the erased value, once the download is complete.
    fn flush_tail(&mut self) -> Result<(), SinkError> {
        let word = Self::word();
        let mut padded = [0xFFu8; MAX_WORD];
        let (head, _) = padded.split_at_mut(word);
        let (tail, _) = self.tail.split_at(self.tail_len);
        let (dst, _) = head.split_at_mut(self.tail_len);
        dst.copy_from_slice(tail);
        self.tail_len = 0;
        self.program(head)
    }
}

impl<DFU: NorFlash> Sink for SlotWriter<'_, DFU> {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.programmed = 0;
        self.erased = 0;
        self.tail_len = 0;
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        self.put(offset, data)
    }

    async fn finish(&mut self) -> Result<(), SinkError> {
        self.finish_now()
    }
}

impl<DFU: NorFlash> SlotWriter<'_, DFU> {
    /// Bytes taken so far: programmed plus the tail held back. Never above `len` (`put`
    /// refuses more), so it fits a u32 and the checks need no 64-bit arithmetic.
    fn written(&self) -> u32 {
        self.programmed.saturating_add(self.tail_len as u32)
    }

    /// [`Sink::write`], synchronously.
    fn put(&mut self, offset: u32, mut data: &[u8]) -> Result<(), SinkError> {
        let at = self.written();
        if offset != at {
            return Err(SinkError::OutOfOrder);
        }
        if u32::try_from(data.len())
            .ok()
            .and_then(|n| at.checked_add(n))
            .is_none_or(|end| end > self.len)
        {
            return Err(SinkError::Write);
        }
        let word = Self::word();
        // Complete the tail into one word.
        if self.tail_len > 0 {
            let take = (word - self.tail_len).min(data.len());
            let (piece, rest) = data.split_at(take);
            let room = self.tail.get_mut(self.tail_len..self.tail_len + take);
            room.ok_or(SinkError::Write)?.copy_from_slice(piece);
            self.tail_len += take;
            data = rest;
            if self.tail_len == word {
                let full = self.tail;
                self.tail_len = 0;
                let (full, _) = full.split_at(word);
                self.program(full)?;
            }
        }
        // Whole words straight from `data`, at most a page a write.
        let whole = data.len() / word * word;
        let (words, rest) = data.split_at(whole);
        for chunk in words.chunks(DFU::ERASE_SIZE.max(word)) {
            self.program(chunk)?;
        }
        let room = self.tail.get_mut(self.tail_len..self.tail_len + rest.len());
        room.ok_or(SinkError::Write)?.copy_from_slice(rest);
        self.tail_len += rest.len();
        if self.tail_len > 0 && self.written() == self.len {
            self.flush_tail()?;
        }
        Ok(())
    }
}

/// The running image, read by random access for a patch.
pub struct ActiveImage<'a, A: NorFlash> {
    active: &'a mut A,
}

impl<A: NorFlash> OldImage for ActiveImage<'_, A> {
    fn capacity(&self) -> u32 {
        u32::try_from(self.active.capacity()).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), PatchError> {
        self.active
            .read(offset, buf)
            .map_err(|_| PatchError::OldRead)
    }
}

/// The patched image goes into the update slot like a download: [`NewImage::begin`] learns
/// its length from the patch header.
impl<DFU: NorFlash> NewImage for SlotWriter<'_, DFU> {
    fn begin(&mut self, len: u32) -> Result<(), PatchError> {
        if len > self.max_len {
            return Err(PatchError::NewTooLarge);
        }
        self.len = len;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PatchError> {
        let at = self.written();
        self.put(at, data).map_err(|e| match e {
            SinkError::Patch(p) => p,
            _ => PatchError::Write,
        })
    }
}

/// A differential package applied as it downloads ([`aliot_kernel::ota::delta`]): the
/// patcher reads the active slot and writes the update slot. Its state stays in RAM across
/// the download's resumes within one job (a resume feeds the rest of the patch).
pub struct PatchSink<'a, A: NorFlash, DFU: NorFlash> {
    patcher: Patcher,
    old: ActiveImage<'a, A>,
    new: SlotWriter<'a, DFU>,
    /// Patch bytes taken.
    fed: u32,
}

impl<A: NorFlash, DFU: NorFlash> Sink for PatchSink<'_, A, DFU> {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.patcher = Patcher::new();
        self.fed = 0;
        self.new.restart().await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        if offset != self.fed {
            return Err(SinkError::OutOfOrder);
        }
        self.patcher
            .feed(data, &mut self.old, &mut self.new)
            .map_err(SinkError::Patch)?;
        self.fed = self.fed.saturating_add(data.len() as u32);
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), SinkError> {
        self.patcher.finish().map_err(SinkError::Patch)?;
        self.new.finish_now()
    }
}

fn slot_error(e: BootStageError) -> SlotError {
    match e {
        BootStageError::NotConfirmed => SlotError::NotConfirmed,
        BootStageError::InvalidUpdate(_) | BootStageError::NoValidImage(_) => {
            SlotError::InvalidImage
        }
        BootStageError::Flash(_) | BootStageError::BadState => SlotError::Flash,
    }
}

impl<ACTIVE: NorFlash, DFU: NorFlash, STATE: NorFlash, const BUF: usize> UpdateSlot
    for BootStage<ACTIVE, DFU, STATE, BUF>
{
    type Writer<'a>
        = SlotWriter<'a, DFU>
    where
        Self: 'a;

    type Patcher<'a>
        = PatchSink<'a, ACTIVE, DFU>
    where
        Self: 'a;

    fn patcher(&mut self) -> Result<PatchSink<'_, ACTIVE, DFU>, SlotError> {
        if self.loader_state().map_err(slot_error)? == State::Swap {
            return Err(SlotError::NotConfirmed);
        }
        let max_len = u32::try_from(self.active_capacity()).unwrap_or(u32::MAX);
        let (active, dfu) = self.active_and_dfu_mut();
        Ok(PatchSink {
            patcher: Patcher::new(),
            old: ActiveImage { active },
            new: SlotWriter {
                dfu,
                len: 0,
                max_len,
                programmed: 0,
                erased: 0,
                tail: [0; MAX_WORD],
                tail_len: 0,
            },
            fed: 0,
        })
    }

    fn writer(&mut self, len: u32) -> Result<SlotWriter<'_, DFU>, SlotError> {
        if self.loader_state().map_err(slot_error)? == State::Swap {
            return Err(SlotError::NotConfirmed);
        }
        // The image runs from the active slot; the DFU partition is one page larger.
        if u64::from(len) > self.active_capacity() || DFU::WRITE_SIZE > MAX_WORD {
            return Err(SlotError::InvalidImage);
        }
        Ok(SlotWriter {
            dfu: self.dfu_mut(),
            len,
            max_len: len,
            programmed: 0,
            erased: 0,
            tail: [0; MAX_WORD],
            tail_len: 0,
        })
    }

    fn mark_updated(&mut self) -> Result<heapless::String<32>, SlotError> {
        Ok(BootStage::mark_updated(self).map_err(slot_error)?.version)
    }

    fn confirm(&mut self) -> Result<(), SlotError> {
        self.mark_booted().map_err(slot_error)
    }
}
