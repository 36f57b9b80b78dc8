//! Intel HEX (I8HEX with 32-bit extended linear addresses), the one format QEMU's generic
//! loader, nrfjprog, probe-rs and most programmers all read.
//!
//! Records: `:LLAAAATT<data>CC`, with `CC` the two's complement of the sum of every byte
//! before it. Data records (`00`) carry at most [`RECORD_DATA`] bytes and never cross a 64 KiB
//! boundary; an extended linear address record (`04`) sets the upper 16 bits whenever they
//! change; a start linear address record (`05`) names the entry; `01` ends the file.

use std::fmt::Write as _;

/// Data bytes per data record (what most tools write).
pub const RECORD_DATA: usize = 16;

/// One record: `:`, length, address, type, data, checksum, newline.
fn record(out: &mut String, address: u16, kind: u8, data: &[u8]) {
    // Callers pass at most RECORD_DATA (data records) or 4 bytes.
    let len = data.len() as u8;
    let [hi, lo] = address.to_be_bytes();
    let mut sum = len.wrapping_add(hi).wrapping_add(lo).wrapping_add(kind);
    let _ = write!(out, ":{len:02X}{address:04X}{kind:02X}");
    for b in data {
        sum = sum.wrapping_add(*b);
        let _ = write!(out, "{b:02X}");
    }
    let _ = writeln!(out, "{:02X}", sum.wrapping_neg());
}

/// The Intel HEX text of `chunks` (`(address, bytes)`, in any order; they must not overlap,
/// which the caller checks) with `entry`, if any, as the start linear address.
pub fn intel_hex(chunks: &[(u32, &[u8])], entry: Option<u32>) -> String {
    let mut sorted: Vec<&(u32, &[u8])> = chunks.iter().collect();
    sorted.sort_by_key(|(address, _)| *address);
    let mut out = String::new();
    let mut upper: Option<u16> = None;
    for (start, bytes) in sorted {
        let mut address = u64::from(*start);
        let mut rest: &[u8] = bytes;
        while !rest.is_empty() {
            let high = (address >> 16) as u16;
            if upper != Some(high) {
                record(&mut out, 0, 0x04, &high.to_be_bytes());
                upper = Some(high);
            }
            let low = (address & 0xFFFF) as u16;
            // Up to RECORD_DATA bytes, stopping at the next 64 KiB boundary.
            let to_boundary = 0x1_0000 - usize::from(low);
            let n = rest.len().min(RECORD_DATA).min(to_boundary);
            record(&mut out, low, 0x00, &rest[..n]);
            rest = &rest[n..];
            address += n as u64;
        }
    }
    if let Some(entry) = entry {
        record(&mut out, 0, 0x05, &entry.to_be_bytes());
    }
    record(&mut out, 0, 0x01, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record's bytes sum to 0 mod 256 (what a reader checks).
    fn checksums_hold(hex: &str) -> bool {
        hex.lines().all(|l| {
            let bytes: Vec<u8> = (1..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex digits"))
                .collect();
            bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
        })
    }

    #[test]
    fn records_built_by_hand() {
        // The classic example record: 16 bytes at 0x0100 with checksum 0x40.
        let data = [
            0x21, 0x46, 0x01, 0x36, 0x01, 0x21, 0x47, 0x01, 0x36, 0x00, 0x7E, 0xFE, 0x09, 0xD2,
            0x19, 0x01,
        ];
        let hex = intel_hex(&[(0x0000_0100, &data)], None);
        assert_eq!(
            hex,
            ":020000040000FA\n:10010000214601360121470136007EFE09D2190140\n:00000001FF\n"
        );
    }

    #[test]
    fn upper_address_start_and_entry() {
        let hex = intel_hex(
            &[(0x1021_0000, &[0x41, 0x4C, 0x41, 0x50])],
            Some(0x1000_07C1),
        );
        assert_eq!(
            hex,
            ":020000041021C9\n:04000000414C4150DE\n:04000005100007C11F\n:00000001FF\n"
        );
        assert!(checksums_hold(&hex));
    }

    #[test]
    fn records_split_at_sixteen_bytes_and_at_64k_boundaries() {
        // 20 bytes from 12 below a 64 KiB boundary: the first record stops at the boundary
        // (12 bytes), a new upper address follows, then the last 8 bytes.
        let data: Vec<u8> = (0..20).collect();
        let hex = intel_hex(&[(0x1000_FFF4, &data)], None);
        let lines: Vec<&str> = hex.lines().collect();
        assert_eq!(
            lines,
            [
                ":020000041000EA",
                ":0CFFF400000102030405060708090A0BBF",
                ":020000041001E9",
                ":080000000C0D0E0F101112137C",
                ":00000001FF",
            ]
        );
        assert!(checksums_hold(&hex));
    }

    #[test]
    fn chunks_are_written_in_address_order_with_one_upper_record_per_change() {
        let hex = intel_hex(
            &[
                (0x3800_0000, &[1]),
                (0x1000_0000, &[2]),
                (0x1000_0010, &[3]),
            ],
            None,
        );
        let lines: Vec<&str> = hex.lines().collect();
        assert_eq!(
            lines,
            [
                ":020000041000EA",
                ":0100000002FD",
                ":0100100003EC",
                ":020000043800C2",
                ":0100000001FE",
                ":00000001FF",
            ]
        );
    }
}
