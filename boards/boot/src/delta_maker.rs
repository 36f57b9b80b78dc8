//! Making differential (差分) packages on the host (issue 9; spec §3 `isDiff` 1): the other half
//! of the device's patcher, `aliot_kernel::ota::delta`, whose module doc is the format.
//!
//! The diff is the `bsdiff` crate's (suffix sorting, records in the layout the device reads) and
//! the compression is the `heatshrink-lib` crate's encoder: both well kept, so nothing here
//! but the glue (the header, the encoder's runtime parameters) is ours. Every patch is applied
//! with the device's own [`Patcher`] before it is handed out, fed in awkward piece sizes as a
//! download would, so a patch this module returns is one the device rebuilds byte for byte.
//!
//! Host only (`std`): compiled when the target has an OS.

use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use aliot_kernel::ota::delta::{
    HEADER_LEN, MAX_WINDOW_BITS, NewImage, OldImage, PatchError, PatchHeader, Patcher,
};
use heatshrink::encoder::HeatshrinkEncoder;
use heatshrink::{Finish, Poll, SinkError};
use sha2::{Digest as _, Sha256};

/// Heatshrink window bits a patch uses by default (issue 9 measured `W` 10, `L` 8 as the best
/// the device's 1 KB window allows: a lookahead of 4 made patches 5-8 times larger).
pub const DEFAULT_WINDOW_BITS: u8 = 10;
/// Heatshrink lookahead bits a patch uses by default.
pub const DEFAULT_LOOKAHEAD_BITS: u8 = 8;

/// The piece sizes the verification feeds the patch in, in turn: single bytes, pieces that
/// split the header and the 24-byte controls, and large ones.
const VERIFY_PIECES: [usize; 8] = [1, 7, 83, 2, 24, 64, 1000, 4096];

/// Compresses `data` with heatshrink, window `window_bits` (4..=10, what the device decodes)
/// and lookahead `lookahead_bits` (3..window).
pub fn compress(data: &[u8], window_bits: u8, lookahead_bits: u8) -> Result<Vec<u8>, String> {
    check_parameters(window_bits, lookahead_bits)?;
    // The encoder takes its parameters as const generics: one instance per pair the device
    // decodes (BUF must be `2 << W`).
    macro_rules! dispatch {
        ($($w:literal: [$($l:literal),*]),* $(,)?) => {
            match (window_bits, lookahead_bits) {
                $($(($w, $l) => encode::<$w, $l, { 2 << $w }>(data),)*)*
                _ => Err(format!("no encoder for window {window_bits}, lookahead {lookahead_bits}")),
            }
        };
    }
    dispatch! {
        4: [3],
        5: [3, 4],
        6: [3, 4, 5],
        7: [3, 4, 5, 6],
        8: [3, 4, 5, 6, 7],
        9: [3, 4, 5, 6, 7, 8],
        10: [3, 4, 5, 6, 7, 8, 9],
    }
}

fn check_parameters(window_bits: u8, lookahead_bits: u8) -> Result<(), String> {
    if !(4..=MAX_WINDOW_BITS).contains(&window_bits) {
        return Err(format!(
            "window bits {window_bits}: the device decodes 4..={MAX_WINDOW_BITS}"
        ));
    }
    if !(3..window_bits).contains(&lookahead_bits) {
        return Err(format!(
            "lookahead bits {lookahead_bits}: must be 3..{window_bits} (below the window bits)"
        ));
    }
    Ok(())
}

/// Runs heatshrink's streaming encoder over `data` to the end.
fn encode<const W: usize, const L: usize, const BUF: usize>(
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let mut encoder = Box::new(HeatshrinkEncoder::<W, L, BUF>::new());
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    let mut buf = [0u8; 1024];
    let mut input = data;
    loop {
        if !input.is_empty() {
            match encoder.sink(input) {
                Ok(n) => input = input.get(n..).unwrap_or(&[]),
                Err(SinkError::Full) => {}
                Err(SinkError::Misuse) => return Err("heatshrink encoder refused input".into()),
            }
        }
        let finished = input.is_empty() && encoder.finish() == Finish::Done;
        loop {
            match encoder.poll(&mut buf) {
                Ok(Poll::More(n)) => out.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                Ok(Poll::Empty(n)) => {
                    out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                    break;
                }
                Err(_) => return Err("heatshrink encoder refused to poll".into()),
            }
        }
        if finished || (input.is_empty() && encoder.finish() == Finish::Done) {
            return Ok(out);
        }
    }
}

/// Makes the patch that rebuilds `new` from `old` (whole images, header included), verified by
/// applying it with the device's patcher.
pub fn make_patch(
    old: &[u8],
    new: &[u8],
    window_bits: u8,
    lookahead_bits: u8,
) -> Result<Vec<u8>, String> {
    check_parameters(window_bits, lookahead_bits)?;
    let old_len = u32::try_from(old.len()).map_err(|_| "the old image exceeds 4 GiB")?;
    let new_len = u32::try_from(new.len()).map_err(|_| "the new image exceeds 4 GiB")?;
    let mut records = Vec::new();
    bsdiff::diff(old, new, &mut records).map_err(|e| format!("bsdiff: {e}"))?;
    let header = PatchHeader {
        window_bits,
        lookahead_bits,
        old_len,
        old_sha256: Sha256::digest(old).into(),
        new_len,
        new_sha256: Sha256::digest(new).into(),
    };
    let mut patch = Vec::with_capacity(HEADER_LEN + records.len() / 4);
    patch.extend_from_slice(&header.to_bytes());
    patch.extend_from_slice(&compress(&records, window_bits, lookahead_bits)?);

    let rebuilt = apply_patch_in_pieces(old, &patch, &VERIFY_PIECES)
        .map_err(|e| format!("the patch does not apply: {e:?} ({})", e.desc()))?;
    if rebuilt != new {
        return Err("the patch does not rebuild the new image".to_string());
    }
    Ok(patch)
}

/// Applies `patch` to `old` in memory with the device's patcher, the patch fed in one piece.
pub fn apply_patch(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, PatchError> {
    apply_patch_in_pieces(old, patch, &[usize::MAX])
}

/// Applies `patch` to `old` in memory with the device's patcher, feeding the patch in pieces of
/// the `pieces` sizes in turn (0 counts as 1), as a download would hand it over.
pub fn apply_patch_in_pieces(
    old: &[u8],
    patch: &[u8],
    pieces: &[usize],
) -> Result<Vec<u8>, PatchError> {
    let mut new = MemNew::new(u32::MAX);
    feed_in_pieces(patch, pieces, &mut MemOld::new(old), &mut new)?;
    Ok(new.data)
}

/// Runs a fresh patcher over `patch` fed in pieces of the `pieces` sizes in turn (0 counts as
/// 1), then finishes it: the first error.
pub fn feed_in_pieces<O: OldImage, N: NewImage>(
    patch: &[u8],
    pieces: &[usize],
    old: &mut O,
    new: &mut N,
) -> Result<(), PatchError> {
    let mut patcher = Patcher::new();
    let mut rest = patch;
    for size in pieces.iter().copied().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
        patcher.feed(piece, old, new)?;
        rest = tail;
    }
    patcher.finish()
}

/// The sizes `aliot-imgtool diff` reports: what a differential package saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchStats {
    /// Bytes of the patch (header included).
    pub patch: usize,
    /// Bytes of the new image.
    pub new: usize,
    /// Bytes of the new image compressed alone, with the patch's heatshrink parameters.
    pub compressed_new: usize,
}

impl PatchStats {
    /// The sizes for `patch`, which rebuilds `new`, compressed with the same parameters.
    pub fn measure(
        patch: &[u8],
        new: &[u8],
        window_bits: u8,
        lookahead_bits: u8,
    ) -> Result<Self, String> {
        Ok(Self {
            patch: patch.len(),
            new: new.len(),
            compressed_new: compress(new, window_bits, lookahead_bits)?.len(),
        })
    }

    /// The patch's size in percent of the new image's.
    pub fn percent(&self) -> f64 {
        if self.new == 0 {
            return 0.0;
        }
        self.patch as f64 * 100.0 / self.new as f64
    }
}

impl core::fmt::Display for PatchStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let compressed = if self.new == 0 {
            0.0
        } else {
            self.compressed_new as f64 * 100.0 / self.new as f64
        };
        write!(
            f,
            "patch {} bytes, new image {} bytes ({:.1} %), new image compressed alone {} bytes ({:.1} %)",
            self.patch,
            self.new,
            self.percent(),
            self.compressed_new,
            compressed
        )
    }
}

/// An old image in memory, for [`Patcher`].
#[derive(Debug)]
pub struct MemOld<'a> {
    image: &'a [u8],
    /// Bytes read, all calls together (the digest check reads the whole image once).
    pub bytes_read: u64,
}

impl<'a> MemOld<'a> {
    /// The old image `image`; its length is the slot's capacity.
    pub fn new(image: &'a [u8]) -> Self {
        Self {
            image,
            bytes_read: 0,
        }
    }
}

impl OldImage for MemOld<'_> {
    fn capacity(&self) -> u32 {
        u32::try_from(self.image.len()).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), PatchError> {
        let start = usize::try_from(offset).map_err(|_| PatchError::OldRead)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.image.get(start..end))
            .ok_or(PatchError::OldRead)?;
        buf.copy_from_slice(src);
        self.bytes_read += buf.len() as u64;
        Ok(())
    }
}

/// A new image built in memory, for [`Patcher`]: it records what the patcher did, and refuses
/// to grow past the length announced by `begin` or the slot's size.
#[derive(Debug, Default)]
pub struct MemNew {
    /// The slot's size: `begin` with more is refused with [`PatchError::NewTooLarge`].
    pub slot_len: u32,
    /// The length `begin` announced, once called.
    pub announced: Option<u32>,
    /// Number of `write` calls.
    pub writes: usize,
    /// The bytes written.
    pub data: Vec<u8>,
}

impl MemNew {
    /// An empty slot of `slot_len` bytes.
    pub fn new(slot_len: u32) -> Self {
        Self {
            slot_len,
            ..Self::default()
        }
    }
}

impl NewImage for MemNew {
    fn begin(&mut self, len: u32) -> Result<(), PatchError> {
        if len > self.slot_len {
            return Err(PatchError::NewTooLarge);
        }
        self.announced = Some(len);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PatchError> {
        self.writes += 1;
        let limit = self.announced.ok_or(PatchError::Write)?;
        if self.data.len() + data.len() > limit as usize {
            return Err(PatchError::Write);
        }
        self.data.extend_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_a_small_edit() {
        let old: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut new = old.clone();
        new[1234] ^= 0x55;
        new.splice(3000..3000, [1, 2, 3, 4]);
        let patch = make_patch(&old, &new, DEFAULT_WINDOW_BITS, DEFAULT_LOOKAHEAD_BITS).unwrap();
        assert_eq!(&patch[..4], b"ALDP");
        assert!(patch.len() < new.len() / 10, "{} bytes", patch.len());
        assert_eq!(apply_patch(&old, &patch).unwrap(), new);
    }

    #[test]
    fn every_supported_parameter_pair_round_trips() {
        let old: Vec<u8> = (0..3000u32).map(|i| (i % 97) as u8).collect();
        let mut new = old.clone();
        new[10] = 0xff;
        for w in 4..=MAX_WINDOW_BITS {
            for l in 3..w {
                let patch = make_patch(&old, &new, w, l).unwrap();
                assert_eq!((patch[6], patch[7]), (w, l));
                assert_eq!(apply_patch(&old, &patch).unwrap(), new, "W {w} L {l}");
            }
        }
    }

    #[test]
    fn parameters_the_device_does_not_decode_are_refused() {
        for (w, l) in [(3, 2), (11, 8), (10, 10), (10, 2), (8, 9)] {
            assert!(make_patch(b"a", b"b", w, l).is_err(), "W {w} L {l}");
            assert!(compress(b"a", w, l).is_err(), "W {w} L {l}");
        }
    }

    #[test]
    fn empty_images() {
        for (old, new) in [(&b""[..], &b""[..]), (b"", b"abc"), (b"abc", b"")] {
            let patch = make_patch(old, new, 10, 8).unwrap();
            assert_eq!(apply_patch(old, &patch).unwrap(), new);
        }
    }

    #[test]
    fn stats_line() {
        let s = PatchStats {
            patch: 50,
            new: 1000,
            compressed_new: 600,
        };
        assert_eq!(
            s.to_string(),
            "patch 50 bytes, new image 1000 bytes (5.0 %), new image compressed alone 600 bytes (60.0 %)"
        );
    }
}
