//! The patch header (see [`super`] for the table).

use super::PatchError;

/// `ALDP`: aliot delta patch.
pub const MAGIC: [u8; 4] = *b"ALDP";
/// The format this module reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 84;
/// Largest heatshrink window the device decodes: its window buffer is `1 << 10` bytes.
pub const MAX_WINDOW_BITS: u8 = 10;

/// A parsed, checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchHeader {
    /// Heatshrink window bits.
    pub window_bits: u8,
    /// Heatshrink lookahead bits.
    pub lookahead_bits: u8,
    /// Length of the image the patch applies to.
    pub old_len: u32,
    /// Its SHA-256.
    pub old_sha256: [u8; 32],
    /// Length of the image the patch rebuilds.
    pub new_len: u32,
    /// Its SHA-256.
    pub new_sha256: [u8; 32],
}

impl PatchHeader {
    /// Reads and checks a header: magic, version, compression parameters.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, PatchError> {
        let (magic, rest) = bytes.split_at(4);
        if magic != MAGIC {
            return Err(PatchError::BadMagic);
        }
        let (version, rest) = rest.split_at(2);
        let version = u16::from_le_bytes([byte(version, 0), byte(version, 1)]);
        if version != FORMAT_VERSION {
            return Err(PatchError::UnsupportedVersion(version));
        }
        let (w, l) = (byte(rest, 0), byte(rest, 1));
        if !(4..=MAX_WINDOW_BITS).contains(&w) || l < 3 || l >= w {
            return Err(PatchError::BadCompression);
        }
        let (_, rest) = rest.split_at(2);
        let (old_len, rest) = rest.split_at(4);
        let (old_sha256, rest) = rest.split_at(32);
        let (new_len, rest) = rest.split_at(4);
        let (new_sha256, reserved) = rest.split_at(32);
        if reserved.iter().any(|b| *b != 0) {
            return Err(PatchError::BadMagic);
        }
        Ok(Self {
            window_bits: w,
            lookahead_bits: l,
            old_len: u32_at(old_len),
            old_sha256: array(old_sha256),
            new_len: u32_at(new_len),
            new_sha256: array(new_sha256),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [&[u8]; 8] = [
            &MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &[self.window_bits, self.lookahead_bits],
            &self.old_len.to_le_bytes(),
            &self.old_sha256,
            &self.new_len.to_le_bytes(),
            &self.new_sha256,
            &[0; 4],
        ];
        let mut rest: &mut [u8] = &mut out;
        for field in fields {
            let (dst, tail) = rest.split_at_mut(field.len().min(rest.len()));
            dst.copy_from_slice(field.get(..dst.len()).unwrap_or(&[]));
            rest = tail;
        }
        out
    }
}

fn byte(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

fn u32_at(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(array(bytes))
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}
