//! The header every app image starts with, checked at boot before the app may run.
//!
//! An app sits at a flash region and a RAM region the linker script (later: the manifest)
//! assigns. Its first [`HEADER_LEN`] bytes say what it was built for and what it needs; the
//! kernel refuses an app whose header does not fit its regions or the kernel's ABI, logs why,
//! and starts the others. Fields are little-endian `u32`/`u16` at fixed offsets (written by hand
//! here because the header is read from raw flash before anything about the app is trusted):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | magic [`MAGIC`] (`b"ALAP"`) |
//! | 4 | ABI major (`u16`), 6: ABI minor (`u16`) |
//! | 8 | entry address (Thumb: bit 0 set) |
//! | 12 | stack size in bytes |
//! | 16 | RAM size in bytes (stack included), a multiple of 32 (MPU granule) |

use core::fmt;

use crate::region::Region;

/// `b"ALAP"` read little-endian: the first word of every app image.
pub const MAGIC: u32 = u32::from_le_bytes(*b"ALAP");

/// Length of the header in bytes.
pub const HEADER_LEN: usize = 20;

/// Smallest stack an app may declare: room for two exception frames and a little more.
pub const MIN_STACK: u32 = 256;

/// ARMv8-M MPU regions start and end on 32-byte boundaries.
pub const MPU_GRANULE: u32 = 32;

/// An app header as read from flash, not yet checked against anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppHeader {
    /// Must be [`MAGIC`].
    pub magic: u32,
    /// The aliot-abi major the app was built against.
    pub abi_major: u16,
    /// The aliot-abi minor the app was built against.
    pub abi_minor: u16,
    /// Thumb entry address (bit 0 set).
    pub entry: u32,
    /// Stack bytes, at the top of the app's RAM.
    pub stack_size: u32,
    /// RAM bytes the app uses from the start of its RAM region.
    pub ram_size: u32,
}

/// Why an app header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TooShort,
    /// The first word is not [`MAGIC`] (no app here, or a corrupt one).
    BadMagic(u32),
    /// Built against another ABI major than the kernel's.
    AbiMismatch {
        /// The app's major.
        major: u16,
        /// The app's minor.
        minor: u16,
    },
    /// The entry address is not a Thumb address (bit 0 clear).
    EntryNotThumb(u32),
    /// The entry lies outside the app's flash (or inside its header).
    EntryOutsideFlash(u32),
    /// The RAM size is zero, not a multiple of [`MPU_GRANULE`], or larger than the region.
    BadRamSize {
        /// What the header asks for.
        asked: u32,
        /// What the region holds.
        region: u32,
    },
    /// The stack is smaller than [`MIN_STACK`] or larger than the RAM size.
    BadStackSize(u32),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort => write!(f, "header shorter than {HEADER_LEN} bytes"),
            HeaderError::BadMagic(m) => write!(f, "bad magic {m:#010x} (want {MAGIC:#010x})"),
            HeaderError::AbiMismatch { major, minor } => write!(
                f,
                "built for ABI {major}.{minor}, kernel speaks {}.{}",
                aliot_abi::ABI_MAJOR,
                aliot_abi::ABI_MINOR
            ),
            HeaderError::EntryNotThumb(e) => write!(f, "entry {e:#010x} is not a Thumb address"),
            HeaderError::EntryOutsideFlash(e) => {
                write!(f, "entry {e:#010x} outside the app's flash")
            }
            HeaderError::BadRamSize { asked, region } => write!(
                f,
                "RAM size {asked:#x} unusable (region holds {region:#x}, granule {MPU_GRANULE})"
            ),
            HeaderError::BadStackSize(s) => write!(f, "stack size {s:#x} unusable"),
        }
    }
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(b.try_into().ok()?))
}

impl AppHeader {
    /// Read the header fields from the first [`HEADER_LEN`] bytes of an app image.
    pub fn parse(bytes: &[u8]) -> Result<AppHeader, HeaderError> {
        let field = |v: Option<u32>| v.ok_or(HeaderError::TooShort);
        Ok(AppHeader {
            magic: field(le_u32(bytes, 0))?,
            abi_major: le_u16(bytes, 4).ok_or(HeaderError::TooShort)?,
            abi_minor: le_u16(bytes, 6).ok_or(HeaderError::TooShort)?,
            entry: field(le_u32(bytes, 8))?,
            stack_size: field(le_u32(bytes, 12))?,
            ram_size: field(le_u32(bytes, 16))?,
        })
    }

    /// Check the header against the app's regions and the kernel's ABI; on success, the RAM
    /// the app gets (`[ram.start, ram.start + ram_size)`, what the MPU will open).
    ///
    /// Any ABI minor is accepted: the kernel answers requests of a newer minor `Unsupported`.
    pub fn check(&self, flash: Region, ram: Region) -> Result<Region, HeaderError> {
        if self.magic != MAGIC {
            return Err(HeaderError::BadMagic(self.magic));
        }
        if self.abi_major != aliot_abi::ABI_MAJOR {
            return Err(HeaderError::AbiMismatch {
                major: self.abi_major,
                minor: self.abi_minor,
            });
        }
        if self.entry & 1 == 0 {
            return Err(HeaderError::EntryNotThumb(self.entry));
        }
        let code = self.entry & !1;
        let header_end = u64::from(flash.start) + HEADER_LEN as u64;
        if u64::from(code) < header_end || !flash.contains_range(code, 2) {
            return Err(HeaderError::EntryOutsideFlash(self.entry));
        }
        let bad_ram = HeaderError::BadRamSize {
            asked: self.ram_size,
            region: ram.len,
        };
        if self.ram_size == 0
            || !self.ram_size.is_multiple_of(MPU_GRANULE)
            || self.ram_size > ram.len
        {
            return Err(bad_ram);
        }
        if self.stack_size < MIN_STACK
            || self.stack_size > self.ram_size
            || !self.stack_size.is_multiple_of(8)
        {
            return Err(HeaderError::BadStackSize(self.stack_size));
        }
        Ok(Region {
            start: ram.start,
            len: self.ram_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLASH: Region = Region {
        start: 0x1020_0000,
        len: 0x1000,
    };
    const RAM: Region = Region {
        start: 0x3820_0000,
        len: 0x1000,
    };

    /// A good header, byte by byte.
    fn good_bytes() -> [u8; HEADER_LEN] {
        [
            b'A', b'L', b'A', b'P', // magic
            0x02, 0x00, 0x02, 0x00, // ABI 2.2
            0x21, 0x00, 0x20, 0x10, // entry 0x1020_0021
            0x00, 0x04, 0x00, 0x00, // stack 0x400
            0x00, 0x08, 0x00, 0x00, // RAM 0x800
        ]
    }

    #[test]
    fn good_header_parses_and_passes() {
        let h = AppHeader::parse(&good_bytes()).unwrap();
        assert_eq!(h.magic, MAGIC);
        assert_eq!((h.abi_major, h.abi_minor), (2, 2));
        assert_eq!(h.entry, 0x1020_0021);
        assert_eq!((h.stack_size, h.ram_size), (0x400, 0x800));
        assert_eq!(
            h.check(FLASH, RAM),
            Ok(Region {
                start: 0x3820_0000,
                len: 0x800
            })
        );
    }

    #[test]
    fn short_header_is_refused() {
        assert_eq!(
            AppHeader::parse(&good_bytes()[..19]),
            Err(HeaderError::TooShort)
        );
        assert_eq!(AppHeader::parse(&[]), Err(HeaderError::TooShort));
    }

    fn check_with(edit: impl FnOnce(&mut [u8; HEADER_LEN])) -> Result<Region, HeaderError> {
        let mut b = good_bytes();
        edit(&mut b);
        AppHeader::parse(&b).unwrap().check(FLASH, RAM)
    }

    #[test]
    fn erased_flash_is_bad_magic() {
        assert_eq!(
            check_with(|b| b.fill(0xFF)),
            Err(HeaderError::BadMagic(0xFFFF_FFFF))
        );
    }

    #[test]
    fn other_major_is_refused_any_minor_accepted() {
        assert_eq!(
            check_with(|b| b[4] = 1),
            Err(HeaderError::AbiMismatch { major: 1, minor: 2 })
        );
        assert!(check_with(|b| b[6] = 9).is_ok());
    }

    #[test]
    fn entry_must_be_thumb_and_in_flash_past_the_header() {
        assert_eq!(
            check_with(|b| b[8] = 0x20),
            Err(HeaderError::EntryNotThumb(0x1020_0020))
        );
        // Inside the header itself.
        assert_eq!(
            check_with(|b| b[8] = 0x11),
            Err(HeaderError::EntryOutsideFlash(0x1020_0011))
        );
        // Kernel flash.
        assert_eq!(
            check_with(|b| b[8..12].copy_from_slice(&0x1000_0101u32.to_le_bytes())),
            Err(HeaderError::EntryOutsideFlash(0x1000_0101))
        );
        // Last halfword of the region is fine, one past is not.
        assert!(check_with(|b| b[8..12].copy_from_slice(&0x1020_0FFFu32.to_le_bytes())).is_ok());
        assert_eq!(
            check_with(|b| b[8..12].copy_from_slice(&0x1020_1001u32.to_le_bytes())),
            Err(HeaderError::EntryOutsideFlash(0x1020_1001))
        );
    }

    #[test]
    fn ram_size_must_fit_and_be_granular() {
        let bad = |asked| {
            Err(HeaderError::BadRamSize {
                asked,
                region: 0x1000,
            })
        };
        assert_eq!(
            check_with(|b| b[16..20].copy_from_slice(&0x1020u32.to_le_bytes())),
            bad(0x1020)
        );
        assert_eq!(
            check_with(|b| b[16..20].copy_from_slice(&0x810u32.to_le_bytes())),
            bad(0x810)
        );
        assert_eq!(check_with(|b| b[16..20].fill(0)), bad(0));
    }

    #[test]
    fn stack_size_must_fit() {
        assert_eq!(
            check_with(|b| b[12..16].copy_from_slice(&0x1000u32.to_le_bytes())),
            Err(HeaderError::BadStackSize(0x1000))
        );
        assert_eq!(
            check_with(|b| b[12..16].copy_from_slice(&0x80u32.to_le_bytes())),
            Err(HeaderError::BadStackSize(0x80))
        );
    }
}
