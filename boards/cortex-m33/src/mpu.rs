//! The ARMv8-M (PMSAv8) MPU: per-app regions.
//!
//! Each app gets exactly two regions while it runs: its flash, read-only and executable for
//! privileged and unprivileged code, and its RAM, read-write and never executable. Nothing else
//! is mapped for unprivileged code, so any other access by an app raises MemManage. The kernel
//! runs privileged with `PRIVDEFENA` (the default memory map as background region), so it needs
//! no regions of its own. Register layout: ARMv8-M Architecture Reference Manual, B3.5 (MPU) and
//! D1.2 (RBAR, RLAR, MAIR0, CTRL); the same layout Tock's `cortexm33` MPU driver uses.
//!
//! The words written to RBAR/RLAR are computed by [`encode`], which is pure and tested on the
//! host; `Mpu` (target only) writes them.

#[cfg(target_arch = "arm")]
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite},
};

use crate::header::MPU_GRANULE;
use crate::region::Region;

/// Register fields, named as in the ARMv8-M Architecture Reference Manual.
pub mod fields {
    // tock-registers' macro generates items (`Register`, `SET`, ...) without docs.
    #![allow(missing_docs)]
    use tock_registers::register_bitfields;

    register_bitfields![u32,
        /// MPU_TYPE: how many regions this MPU has.
        pub TYPE [
            /// Number of regions.
            DREGION OFFSET(8) NUMBITS(8) []
        ],
        /// MPU_CTRL.
        pub CTRL [
            /// Use the default memory map as background for privileged accesses.
            PRIVDEFENA OFFSET(2) NUMBITS(1) [],
            /// Keep the MPU on in HardFault/NMI handlers.
            HFNMIENA OFFSET(1) NUMBITS(1) [],
            /// MPU on.
            ENABLE OFFSET(0) NUMBITS(1) []
        ],
        /// MPU_RNR: which region RBAR/RLAR address.
        pub RNR [
            /// Region number.
            REGION OFFSET(0) NUMBITS(8) []
        ],
        /// MPU_RBAR: base address and access permissions.
        pub RBAR [
            /// Base address bits [31:5].
            BASE OFFSET(5) NUMBITS(27) [],
            /// Shareability.
            SH OFFSET(3) NUMBITS(2) [
                NonShareable = 0
            ],
            /// Access permissions.
            AP OFFSET(1) NUMBITS(2) [
                /// Read-write by privileged code only.
                ReadWritePrivileged = 0b00,
                /// Read-write by any privilege level.
                ReadWriteAny = 0b01,
                /// Read-only by privileged code only.
                ReadOnlyPrivileged = 0b10,
                /// Read-only by any privilege level.
                ReadOnlyAny = 0b11
            ],
            /// Execute never.
            XN OFFSET(0) NUMBITS(1) []
        ],
        /// MPU_RLAR: limit address, attributes, enable.
        pub RLAR [
            /// Limit address bits [31:5] (the region ends at LIMIT:0x1F inclusive).
            LIMIT OFFSET(5) NUMBITS(27) [],
            /// Index into MAIR0/MAIR1.
            ATTRINDX OFFSET(1) NUMBITS(3) [],
            /// Region on.
            EN OFFSET(0) NUMBITS(1) []
        ]
    ];
}

pub use fields::{CTRL, RBAR, RLAR, RNR, TYPE};

/// MAIR attribute 0: Normal memory, outer and inner non-cacheable (0x44). Code must be Normal
/// memory to be executable; QEMU and the nRF9160 have no cache to manage.
pub const MAIR0_NORMAL_NON_CACHEABLE: u32 = 0x44;

/// What an app may do in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and execute (app flash).
    ReadExecute,
    /// Read and write, never execute (app RAM).
    ReadWriteNoExecute,
}

/// The RBAR and RLAR words of one enabled region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionWords {
    /// MPU_RBAR value.
    pub rbar: u32,
    /// MPU_RLAR value.
    pub rlar: u32,
}

/// Why a range cannot be an MPU region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpuError {
    /// Start or length not a multiple of 32 bytes, or the length is zero.
    NotAligned(Region),
}

/// Encode `region` with `access` for every privilege level, MAIR attribute 0.
pub fn encode(region: Region, access: Access) -> Result<RegionWords, MpuError> {
    let bad = MpuError::NotAligned(region);
    if region.len == 0
        || !region.start.is_multiple_of(MPU_GRANULE)
        || !region.len.is_multiple_of(MPU_GRANULE)
    {
        return Err(bad);
    }
    let last = u32::try_from(region.end() - 1).map_err(|_| bad)?;
    let (ap, xn) = match access {
        Access::ReadExecute => (RBAR::AP::ReadOnlyAny, RBAR::XN::CLEAR),
        Access::ReadWriteNoExecute => (RBAR::AP::ReadWriteAny, RBAR::XN::SET),
    };
    let rbar = RBAR::BASE.val(region.start >> 5) + RBAR::SH::NonShareable + ap + xn;
    let rlar = RLAR::LIMIT.val(last >> 5) + RLAR::ATTRINDX.val(0) + RLAR::EN::SET;
    Ok(RegionWords {
        rbar: rbar.value,
        rlar: rlar.value,
    })
}

#[cfg(target_arch = "arm")]
register_structs! {
    /// The MPU register block at 0xE000_ED90 (the Secure MPU when running Secure).
    pub MpuRegisters {
        (0x00 => mpu_type: ReadOnly<u32, TYPE::Register>),
        (0x04 => ctrl: ReadWrite<u32, CTRL::Register>),
        (0x08 => rnr: ReadWrite<u32, RNR::Register>),
        (0x0C => rbar: ReadWrite<u32, RBAR::Register>),
        (0x10 => rlar: ReadWrite<u32, RLAR::Register>),
        (0x14 => _aliases),
        (0x30 => mair0: ReadWrite<u32>),
        (0x34 => mair1: ReadWrite<u32>),
        (0x38 => @END),
    }
}

/// MPU region number of the running app's flash.
pub const APP_FLASH_REGION: u32 = 0;
/// MPU region number of the running app's RAM.
pub const APP_RAM_REGION: u32 = 1;

/// The MPU, owned by the kernel.
#[cfg(target_arch = "arm")]
pub struct Mpu {
    regs: &'static MpuRegisters,
}

#[cfg(target_arch = "arm")]
impl Mpu {
    const BASE: usize = 0xE000_ED90;

    /// Take the MPU.
    ///
    /// # Safety
    /// Call once: the returned value assumes it is the only writer of the MPU registers.
    pub unsafe fn take() -> Mpu {
        // SAFETY: 0xE000_ED90 is the architectural MPU block (ARMv8-M ARM D1.2), always mapped,
        // 4-byte aligned and never moved; the caller promises there is no other writer.
        let regs = unsafe { &*(Self::BASE as *const MpuRegisters) };
        Mpu { regs }
    }

    /// Number of regions the hardware has.
    pub fn regions(&self) -> u32 {
        self.regs.mpu_type.read(TYPE::DREGION)
    }

    /// Map exactly `flash` (read, execute) and `ram` (read, write, no execute) for the next app
    /// and switch the MPU on with the privileged default map as background.
    pub fn configure_app(&self, flash: Region, ram: Region) -> Result<(), MpuError> {
        let flash_words = encode(flash, Access::ReadExecute)?;
        let ram_words = encode(ram, Access::ReadWriteNoExecute)?;
        self.regs.ctrl.set(0);
        cortex_m_barriers();
        self.regs.mair0.set(MAIR0_NORMAL_NON_CACHEABLE);
        self.regs.mair1.set(0);
        for (number, words) in [(APP_FLASH_REGION, flash_words), (APP_RAM_REGION, ram_words)] {
            self.regs.rnr.set(number);
            self.regs.rbar.set(words.rbar);
            self.regs.rlar.set(words.rlar);
        }
        // Every other region off: nothing else is mapped for unprivileged code.
        for number in 2..self.regions() {
            self.regs.rnr.set(number);
            self.regs.rlar.set(0);
        }
        self.regs
            .ctrl
            .write(CTRL::ENABLE::SET + CTRL::PRIVDEFENA::SET);
        cortex_m_barriers();
        Ok(())
    }
}

/// DSB then ISB: MPU changes take effect before the next access (ARMv8-M ARM B3.5.2).
#[cfg(target_arch = "arm")]
fn cortex_m_barriers() {
    // SAFETY: barriers have no operands and no memory effects beyond ordering.
    unsafe { core::arch::asm!("dsb", "isb", options(nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_region_is_read_only_any_and_executable() {
        // Base 0x1020_0000, AP=0b11 (bits 2:1), XN=0; limit 0x1020_0FE0 | EN.
        let w = encode(
            Region {
                start: 0x1020_0000,
                len: 0x1000,
            },
            Access::ReadExecute,
        )
        .unwrap();
        assert_eq!(w.rbar, 0x1020_0000 | 0b110);
        assert_eq!(w.rlar, 0x1020_0FE0 | 1);
    }

    #[test]
    fn ram_region_is_read_write_any_and_never_executable() {
        // AP=0b01, XN=1; 0x800 bytes end at 0x3820_07FF -> LIMIT field 0x3820_07E0.
        let w = encode(
            Region {
                start: 0x3820_0000,
                len: 0x800,
            },
            Access::ReadWriteNoExecute,
        )
        .unwrap();
        assert_eq!(w.rbar, 0x3820_0000 | 0b010 | 1);
        assert_eq!(w.rlar, 0x3820_07E0 | 1);
    }

    #[test]
    fn unaligned_or_empty_regions_are_refused() {
        for r in [
            Region {
                start: 0x3820_0010,
                len: 0x100,
            },
            Region {
                start: 0x3820_0000,
                len: 0x110,
            },
            Region {
                start: 0x3820_0000,
                len: 0,
            },
        ] {
            assert_eq!(
                encode(r, Access::ReadWriteNoExecute),
                Err(MpuError::NotAligned(r))
            );
        }
    }

    #[test]
    fn top_of_address_space() {
        let w = encode(
            Region {
                start: 0xFFFF_FFE0,
                len: 32,
            },
            Access::ReadExecute,
        )
        .unwrap();
        assert_eq!(w.rlar, 0xFFFF_FFE0 | 1);
    }
}
