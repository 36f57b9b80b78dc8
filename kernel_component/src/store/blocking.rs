//! [`BlockingFlash`]: the async NOR flash traits over a blocking flash.
//!
//! The boards' flashes are blocking (`embedded_storage::nor_flash::NorFlash`: the host's file
//! flash, the nRF9160's NVMC, which stalls the CPU while it writes anyway), while
//! `sequential-storage` speaks `embedded_storage_async`. The adapter is written here because the
//! crate that has one, `embassy-embedded-hal` (`BlockingAsync`), brings embassy-sync,
//! embassy-hal-internal and both embedded-hal versions with it for these thirty lines.
//!
//! Each future completes on its first poll: the executor is blocked while the flash works.

use embedded_storage::nor_flash as blocking;
use embedded_storage_async::nor_flash as nb;

/// A blocking NOR flash seen through the async traits.
pub struct BlockingFlash<F> {
    flash: F,
}

impl<F> BlockingFlash<F> {
    /// Wraps `flash`.
    pub fn new(flash: F) -> Self {
        Self { flash }
    }

    /// The wrapped flash.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The wrapped flash, borrowed.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.flash
    }
}

// `embedded_storage_async` re-exports the blocking crate's `ErrorType`: one trait for both.
impl<F: blocking::ErrorType> nb::ErrorType for BlockingFlash<F> {
    type Error = F::Error;
}

impl<F: blocking::ReadNorFlash> nb::ReadNorFlash for BlockingFlash<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.flash.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<F: blocking::NorFlash> nb::NorFlash for BlockingFlash<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.flash.erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.flash.write(offset, bytes)
    }
}

impl<F: blocking::MultiwriteNorFlash> nb::MultiwriteNorFlash for BlockingFlash<F> {}
