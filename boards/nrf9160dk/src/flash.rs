//! The NVMC, shared: the credentials store and (with the `ota` feature) the update slot and
//! the boot state each get a slice of the one flash controller, through a blocking mutex that
//! never waits (one executor thread; every operation is synchronous and finishes before the
//! next await).
//!
//! UNTESTED ON HARDWARE.

use core::cell::RefCell;

use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_nrf::nvmc::Nvmc;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::ReadNorFlash;

/// The NVMC behind its mutex.
pub type SharedNvmc = Mutex<NoopRawMutex, RefCell<Nvmc<'static>>>;

/// A slice of the NVMC (`aliot_boot::Partition` is the same type).
pub type NvmcPart<'a> = BlockingPartition<'a, NoopRawMutex, Nvmc<'static>>;

/// Shares `nvmc`.
pub fn share(nvmc: Nvmc<'static>) -> SharedNvmc {
    Mutex::new(RefCell::new(nvmc))
}

/// The whole flash (1 MiB): the credentials store addresses its partition absolutely.
pub fn whole(flash: &SharedNvmc) -> NvmcPart<'_> {
    let len = flash.lock(|f| f.borrow().capacity()) as u32;
    BlockingPartition::new(flash, 0, len)
}
