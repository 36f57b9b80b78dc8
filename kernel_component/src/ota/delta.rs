//! Differential (差分) packages (spec §3 `isDiff` 1; issue 9): the patch format and the
//! streaming patcher that rebuilds the new image from the running one as the patch downloads.
//!
//! Alibaba accepts a vendor-made differential package but ships no generator or patcher for
//! our platform, so both sides are ours: `aliot-imgtool diff` makes a patch (bsdiff's diff,
//! heatshrink's encoder); this module applies it on the device, with no allocation. No crate
//! offers a streaming `no_std` bsdiff applier, and the heatshrink decoder is written here too
//! (about a hundred lines) so that every step on untrusted input is checked without a panic
//! and its state is plain data.
//!
//! # Format (version 1), all integers little-endian
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `ALDP` |
//! | 4 | 2 | format version, 1 |
//! | 6 | 1 | heatshrink window bits `W`, 4..=[`MAX_WINDOW_BITS`] |
//! | 7 | 1 | heatshrink lookahead bits `L`, 3..`W` |
//! | 8 | 4 | old image length |
//! | 12 | 32 | old image SHA-256 |
//! | 44 | 4 | new image length |
//! | 48 | 32 | new image SHA-256 |
//! | 80 | 4 | reserved, 0 |
//!
//! Then one heatshrink stream (`W`, `L`) whose decoded bytes are bsdiff records (the layout of
//! the `bsdiff` crate 0.2): a 24-byte control — `mix` (u64), `copy` (u64), `seek` (i64,
//! sign and magnitude) — then `mix` bytes each added (wrapping) to the old image's byte at the
//! old position, then `copy` bytes taken as they are; then the old position moves by `seek`.
//! The records end when the new image's length is reached.
//!
//! The "old image" is the whole image in the active slot (header and payload), the "new
//! image" the whole image the update slot will hold; both lengths are in whole bytes.
//!
//! # What is checked
//!
//! Before anything is written: the magic, the version, the compression parameters, and the
//! old image's length and SHA-256 against the running image (a patch for another base image
//! is refused, [`PatchError::WrongBase`]). While patching: every control against the header
//! (no record past the new image's length, no old read outside the old image, no old position
//! out of range). At the end: the new image's SHA-256, and that nothing follows it.

pub mod apply;
pub mod header;
pub mod inflate;

pub use apply::{NewImage, OldImage, Patcher};
pub use header::{FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_WINDOW_BITS, PatchHeader};

/// Why a patch was refused.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchError {
    /// Not a patch of this format (magic).
    BadMagic,
    /// A format version this firmware does not know.
    UnsupportedVersion(u16),
    /// Compression parameters outside what the device decodes.
    BadCompression,
    /// The old image's length or SHA-256 is not the running image's: made for another base.
    WrongBase,
    /// The new image does not fit the slot.
    NewTooLarge,
    /// A record reaches past the new image's length, or reads the old image out of range.
    OutOfRange,
    /// Data after the new image's end.
    TrailingData,
    /// The patch ended before the new image was complete.
    Truncated,
    /// The rebuilt image does not hash to the header's SHA-256.
    NewDigest,
    /// Reading the running image failed.
    OldRead,
    /// Writing the update slot failed.
    Write,
}

impl PatchError {
    /// The progress `step` to report (spec §3): -4 for the flash, -3 for the package.
    pub fn step(self) -> i8 {
        match self {
            PatchError::OldRead | PatchError::Write => -4,
            _ => -3,
        }
    }

    /// The `desc` to report.
    pub fn desc(self) -> &'static str {
        match self {
            PatchError::WrongBase => {
                "the differential package was made for another base image than the running one"
            }
            PatchError::BadMagic | PatchError::UnsupportedVersion(_) => {
                "the file is not a differential package this firmware reads (make it with aliot-imgtool diff)"
            }
            PatchError::BadCompression => {
                "the differential package's compression parameters are not supported"
            }
            PatchError::NewTooLarge => "the patched image is larger than the update slot",
            PatchError::OutOfRange
            | PatchError::TrailingData
            | PatchError::Truncated
            | PatchError::NewDigest => "the differential package is corrupt",
            PatchError::OldRead => "reading the running image failed",
            PatchError::Write => "writing the update slot failed",
        }
    }
}

#[cfg(test)]
mod tests;
