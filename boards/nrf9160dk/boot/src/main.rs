//! The nRF9160 DK's boot stage, at `[flash.bootloader]` (address 0, where the chip starts after
//! every reset): `aliot-boot`'s [`BootStage`] over the NVMC, then a jump to the firmware.
//!
//! What it does, in order:
//! 1. takes the manifest's partitions (`[flash.active]`, `[flash.update]`,
//!    `[flash.boot_state]`, compiled in by `build.rs`) on the NVMC, refusing a layout
//!    `embassy-boot` cannot use instead of panicking inside it;
//! 2. [`BootStage::boot`]: `embassy-boot` swaps in an image the firmware marked
//!    (`[flash.boot_state]`), or reverts one that ran on trial without confirming itself,
//!    resuming after a power cut at any step; then the active slot's image header and
//!    SHA-256 are checked, and a freshly swapped image that fails is swapped back out at once;
//! 3. jumps to the firmware's vector table, right after the image header in `[flash.active]`
//!    (`aliot_manifest::IMAGE_HEADER_LEN`, the offset the firmware is linked at).
//!
//! When no valid image is there (only the boot stage flashed, or flash corruption) it does not
//! jump: it logs why and waits for a debugger. A flash error is retried by a reset, since every
//! step is resumable.
//!
//! Secure, like the firmware (no TF-M, see boards/nrf9160dk/src/main.rs): nothing is set up for
//! a non-secure world, and the firmware configures the SPU for the modem itself. The log is
//! defmt over RTT, as the firmware's.
//!
//! UNTESTED ON HARDWARE: all of it. The boot logic is `aliot-boot`'s, tested on the host with
//! power cuts at every flash operation; what is new here is the NVMC, the partitions as
//! `embassy-embedded-hal` slices of it, and the jump.
#![no_std]
#![no_main]

use core::cell::RefCell;

use aliot_boot::{
    BootKind, BootStage, BootStageError, HEADER_LEN, Partition, partitions_from_config,
};
use defmt_rtt as _;
use embassy_nrf::nvmc::Nvmc;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::ReadNorFlash;
use panic_probe as _;

mod why;

/// No heap: nothing in the boot stage allocates, but `aliot-kernel` (whose config and slot
/// types `aliot-boot` uses) is an `alloc` crate, so the link needs a global allocator. This one
/// refuses every request; an allocation would end in the alloc error handler (a panic).
struct NoHeap;

// SAFETY: `alloc` returns null (the trait's way to say "no memory"), which is always sound;
// `dealloc` is never given a pointer this allocator returned, since it returns none.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _layout: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: core::alloc::Layout) {}
}

#[global_allocator]
static HEAP: NoHeap = NoHeap;

/// The manifest, compiled in by `build.rs`: only `DEVICE.ota`, the slots, is used.
mod generated {
    include!(concat!(env!("OUT_DIR"), "/device_config.rs"));
}

/// The slots. A `const` of its own: a reference into `DEVICE` itself would put the whole
/// configuration (topics, apps) into this stage's flash.
const OTA: aliot_kernel::config::OtaConfig = generated::DEVICE.ota;

/// The NVMC's page: `embassy-boot` copies one at a time, through this much RAM.
const PAGE: usize = 4096;

/// The boot stage over three slices of the NVMC.
type Stage<'a> = BootStage<
    Partition<'a, Nvmc<'static>>,
    Partition<'a, Nvmc<'static>>,
    Partition<'a, Nvmc<'static>>,
    PAGE,
>;

/// CPU cycles to wait before a reset that retries a failed flash operation (about a second
/// at 64 MHz), so a persistent failure does not spin at full speed.
const RETRY_DELAY_CYCLES: u32 = 64_000_000;

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_nrf::init(Default::default());
    let ota = &OTA;
    let flash = Mutex::<NoopRawMutex, _>::new(RefCell::new(Nvmc::new(p.NVMC)));
    let capacity = flash.lock(|f| f.borrow().capacity()) as u32;
    let (active, update, state) = match partitions_from_config(&flash, capacity, ota) {
        Ok(partitions) => partitions,
        Err(e) => halt_layout(why::layout(e)),
    };
    let mut stage: Stage<'_> = match BootStage::new(active, update, state) {
        Ok(stage) => stage,
        Err(e) => halt_layout(why::layout(e)),
    };
    match stage.boot() {
        Ok(booted) => {
            let version = booted.image.version.as_str();
            match booted.kind {
                BootKind::Normal => defmt::info!("boot: image {=str}", version),
                BootKind::Trial => {
                    defmt::info!("boot: image {=str} swapped in, on trial", version)
                }
                BootKind::Reverted => defmt::warn!(
                    "boot: the last update never confirmed itself; back to image {=str}",
                    version
                ),
                BootKind::RefusedUpdate(e) => defmt::warn!(
                    "boot: the update failed its check ({=str}); back to image {=str}",
                    why::image(e),
                    version
                ),
            }
        }
        Err(BootStageError::Flash(e)) => {
            defmt::error!(
                "boot: flash error ({=str}); resetting to resume",
                why::flash(e)
            );
            cortex_m::asm::delay(RETRY_DELAY_CYCLES);
            cortex_m::peripheral::SCB::sys_reset()
        }
        Err(e) => {
            defmt::error!(
                "boot: nothing to run ({=str}); flash an image into [flash.active]",
                why::stage(e)
            );
            halt()
        }
    }
    let vector_table = ota.active.offset + HEADER_LEN as u32;
    // SAFETY: the active slot holds an image whose header and SHA-256 were just checked, and
    // its payload starts with the firmware's vector table (the firmware is linked at
    // `[flash.active].offset + IMAGE_HEADER_LEN`, 512-byte aligned as VTOR needs); nothing of
    // this stage is used after the jump and no interrupt of it is enabled.
    unsafe { start(vector_table) }
}

/// Hands the core to the image whose vector table is at `vector_table`: VTOR to it, then its
/// stack pointer and reset handler (`cortex_m::asm::bootload`).
///
/// # Safety
/// `vector_table` must be the address of a valid vector table of a program that expects to be
/// started this way (fresh from reset, privileged, secure, on MSP).
unsafe fn start(vector_table: u32) -> ! {
    // SAFETY: this stage is done with the core peripherals; the caller vouches for the table.
    unsafe {
        let core = cortex_m::Peripherals::steal();
        core.SCB.vtor.write(vector_table);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        cortex_m::asm::bootload(vector_table as *const u32)
    }
}

/// The manifest's layout cannot be used by `embassy-boot`: the build that made this stage
/// passed a layout aliot-manifest accepted, so this is a mismatch between the two (never a
/// state a reset fixes).
fn halt_layout(why: &'static str) -> ! {
    defmt::error!(
        "boot: the manifest's flash layout does not suit the boot stage: {=str}",
        why
    );
    halt()
}

/// Nothing can run: wait (for a debugger or a new image) without spinning.
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
