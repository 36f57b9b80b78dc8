//! File-backed NOR flash, so storage code written for the nRF9160's NVMC (4 KiB pages,
//! erase to 0xFF, writes only clear bits) runs unchanged on the host and survives restarts.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// nRF9160 flash page size.
pub const PAGE_SIZE: usize = 4096;
/// nRF9160 NVMC write granularity (one word).
pub const WORD_SIZE: usize = 4;

/// Why a flash operation failed.
#[derive(Debug)]
pub enum FlashError {
    /// Offset or length not aligned to the page/word size.
    NotAligned,
    /// Outside the device.
    OutOfBounds,
    /// The backing file failed.
    Io(std::io::Error),
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::Io(_) => NorFlashErrorKind::Other,
        }
    }
}

/// A flash device of `pages` pages backed by one file.
pub struct FileFlash {
    file: File,
    len: usize,
    /// Erases and writes so far.
    ops: u32,
    /// A simulated power cut: the process dies half-way through this erase or write.
    cut_at: Option<u32>,
    /// A simulated worn-out flash: this erase or write and every later one fails.
    fail_from: Option<u32>,
}

impl FileFlash {
    /// Open (or create, erased) the backing file.
    pub fn open(path: &Path, pages: usize) -> std::io::Result<Self> {
        let len = pages * PAGE_SIZE;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let current = file.metadata()?.len() as usize;
        if current < len {
            file.seek(SeekFrom::Start(current as u64))?;
            file.write_all(&vec![0xFF; len - current])?;
        }
        Ok(Self {
            file,
            len,
            ops: 0,
            cut_at: None,
            fail_from: None,
        })
    }

    /// Simulates a power cut (tests): the `op`th erase or write from now (0 = the next one)
    /// changes only the first half of its bytes, then the process aborts at once, the way a
    /// device loses power in the middle of programming.
    pub fn cut_power_at(&mut self, op: u32) {
        self.cut_at = Some(self.ops + op);
    }

    /// Simulates a flash that stops working (tests): the `op`th erase or write from now and
    /// every later one fail with an error, changing nothing; the board keeps running.
    pub fn fail_from(&mut self, op: u32) {
        self.fail_from = Some(self.ops + op);
    }

    /// Counts one erase or write; true when the power is to fail during it. Fails it when
    /// the flash is to stop working.
    fn power_fails_now(&mut self) -> Result<bool, FlashError> {
        let now = self.ops;
        self.ops += 1;
        if self.fail_from.is_some_and(|from| now >= from) {
            return Err(FlashError::Io(std::io::Error::other(
                "simulated flash failure",
            )));
        }
        Ok(self.cut_at == Some(now))
    }

    /// Writes the first half of `bytes` at `at` (whole words), then dies.
    fn die_half_way(&mut self, at: u64, bytes: &[u8]) -> ! {
        let half = bytes.len() / 2 / WORD_SIZE * WORD_SIZE;
        let _ = self.file.seek(SeekFrom::Start(at));
        let _ = self.file.write_all(&bytes[..half]);
        let _ = self.file.sync_data();
        log::error!("simulated power cut in a flash operation at {at:#x}: the board dies now");
        std::process::abort()
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<u64, FlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FlashError::NotAligned);
        }
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(FlashError::OutOfBounds);
        }
        Ok(start as u64)
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let at = self.check(offset, bytes.len(), 1)?;
        self.file
            .seek(SeekFrom::Start(at))
            .map_err(FlashError::Io)?;
        self.file.read_exact(bytes).map_err(FlashError::Io)
    }

    fn capacity(&self) -> usize {
        self.len
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = WORD_SIZE;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = to.checked_sub(from).ok_or(FlashError::OutOfBounds)? as usize;
        let at = self.check(from, len, PAGE_SIZE)?;
        if self.power_fails_now()? {
            self.die_half_way(at, &vec![0xFF; len]);
        }
        self.file
            .seek(SeekFrom::Start(at))
            .map_err(FlashError::Io)?;
        self.file
            .write_all(&vec![0xFF; len])
            .map_err(FlashError::Io)?;
        self.file.sync_data().map_err(FlashError::Io)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let at = self.check(offset, bytes.len(), WORD_SIZE)?;
        // NOR semantics: programming can only clear bits.
        let mut current = vec![0u8; bytes.len()];
        self.read(offset, &mut current)?;
        for (c, b) in current.iter_mut().zip(bytes) {
            *c &= *b;
        }
        if self.power_fails_now()? {
            self.die_half_way(at, &current);
        }
        self.file
            .seek(SeekFrom::Start(at))
            .map_err(FlashError::Io)?;
        self.file.write_all(&current).map_err(FlashError::Io)?;
        self.file.sync_data().map_err(FlashError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_nor_flash_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.bin");
        let mut f = FileFlash::open(&path, 2).unwrap();
        assert_eq!(f.capacity(), 2 * PAGE_SIZE);
        let mut buf = [0u8; 8];
        f.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8], "new flash reads erased");
        f.write(4, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
        f.write(4, &[0xFF, 0x0F, 0xFF, 0x0F]).unwrap();
        let mut word = [0u8; 4];
        f.read(4, &mut word).unwrap();
        assert_eq!(word, [0x0F, 0x00, 0x00, 0x0F], "writes only clear bits");
        drop(f);
        let mut f = FileFlash::open(&path, 2).unwrap();
        f.read(4, &mut word).unwrap();
        assert_eq!(word, [0x0F, 0x00, 0x00, 0x0F], "contents survive a reopen");
        f.erase(0, PAGE_SIZE as u32).unwrap();
        f.read(4, &mut word).unwrap();
        assert_eq!(word, [0xFF; 4]);
    }

    #[test]
    fn rejects_misaligned_and_out_of_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = FileFlash::open(&dir.path().join("f"), 1).unwrap();
        assert!(matches!(f.write(1, &[0; 4]), Err(FlashError::NotAligned)));
        assert!(matches!(f.write(0, &[0; 3]), Err(FlashError::NotAligned)));
        assert!(matches!(f.erase(0, 100), Err(FlashError::NotAligned)));
        assert!(matches!(
            f.write(PAGE_SIZE as u32, &[0; 4]),
            Err(FlashError::OutOfBounds)
        ));
        let mut b = [0u8; 2];
        assert!(matches!(
            f.read(PAGE_SIZE as u32 - 1, &mut b),
            Err(FlashError::OutOfBounds)
        ));
    }
}
