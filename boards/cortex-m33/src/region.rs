//! Address ranges of app flash and RAM, and the containment test every pointer an app hands
//! the kernel must pass.

/// A half-open address range `[start, start + len)` in the 32-bit address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Region {
    /// The range `[start, end)`; `None` when `end < start`.
    pub fn from_bounds(start: u32, end: u32) -> Option<Region> {
        Some(Region {
            start,
            len: end.checked_sub(start)?,
        })
    }

    /// One past the last address, computed without wrapping (can be 2^32).
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.len)
    }

    /// `[addr, addr + len)` lies entirely inside this region. Computed in 64 bits, so an
    /// `addr + len` that wraps around the 32-bit address space is refused, not accepted.
    pub fn contains_range(&self, addr: u32, len: u32) -> bool {
        let end = u64::from(addr) + u64::from(len);
        addr >= self.start && end <= self.end()
    }

    /// The two ranges share at least one byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        u64::from(self.start) < other.end() && u64::from(other.start) < self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Region = Region {
        start: 0x3820_0000,
        len: 0x1000,
    };

    #[test]
    fn inside_edges_are_accepted() {
        assert!(RAM.contains_range(0x3820_0000, 0x1000));
        assert!(RAM.contains_range(0x3820_0FFF, 1));
        assert!(RAM.contains_range(0x3820_1000, 0));
    }

    #[test]
    fn one_byte_outside_is_refused() {
        assert!(!RAM.contains_range(0x381F_FFFF, 1));
        assert!(!RAM.contains_range(0x3820_0FFF, 2));
        assert!(!RAM.contains_range(0x3820_0000, 0x1001));
    }

    #[test]
    fn kernel_ram_is_refused() {
        assert!(!RAM.contains_range(0x3800_0000, 16));
    }

    #[test]
    fn wrapping_length_is_refused() {
        // 0x3820_0010 + 0xFFFF_FFF8 wraps to 0x3820_0008 in 32 bits: inside, if computed naively.
        assert!(!RAM.contains_range(0x3820_0010, 0xFFFF_FFF8));
        let top = Region {
            start: 0xFFFF_FF00,
            len: 0x100,
        };
        assert!(top.contains_range(0xFFFF_FF00, 0x100));
        assert!(!top.contains_range(0xFFFF_FF00, 0x101));
    }

    #[test]
    fn overlap() {
        let next = Region {
            start: 0x3820_1000,
            len: 0x1000,
        };
        assert!(!RAM.overlaps(&next));
        assert!(RAM.overlaps(&Region {
            start: 0x3820_0FFF,
            len: 2
        }));
        assert_eq!(Region::from_bounds(2, 1), None);
    }
}
