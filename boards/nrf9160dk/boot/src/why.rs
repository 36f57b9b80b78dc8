//! Why the boot stage did not start the expected image, as short fixed strings for the defmt
//! log. Not `Display`/`Debug` through `defmt::Display2Format`: that links `core::fmt`'s
//! formatting machinery, about 10 KB of a 32 KiB stage.

use aliot_boot::{BootStageError, ImageError, LayoutError};
use embedded_storage::nor_flash::NorFlashErrorKind;

/// An image check's failure.
pub fn image(e: ImageError) -> &'static str {
    match e {
        ImageError::TooShort { .. } => "shorter than a header",
        ImageError::BadMagic => "no image header (bad magic)",
        ImageError::UnsupportedHeaderVersion(_) => "unsupported header version",
        ImageError::BadHeaderChecksum => "header checksum mismatch",
        ImageError::UnsupportedFlags(_) => "unsupported header flags",
        ImageError::ReservedNotZero => "reserved header bytes not zero",
        ImageError::BadVersionString | ImageError::VersionTooLong => "bad version string",
        ImageError::TooLarge { .. } | ImageError::PayloadTooLarge => "larger than the slot",
        ImageError::TooLong => "longer than its header says",
        ImageError::Incomplete { .. } => "incomplete",
        ImageError::DigestMismatch => "SHA-256 mismatch",
    }
}

/// A flash operation's failure.
pub fn flash(e: NorFlashErrorKind) -> &'static str {
    match e {
        NorFlashErrorKind::NotAligned => "not aligned",
        NorFlashErrorKind::OutOfBounds => "out of bounds",
        _ => "NVMC error",
    }
}

/// The boot stage's failure (other than a flash error, which is retried).
pub fn stage(e: BootStageError) -> &'static str {
    match e {
        BootStageError::Flash(k) => flash(k),
        BootStageError::NoValidImage(e) | BootStageError::InvalidUpdate(e) => image(e),
        BootStageError::NotConfirmed => "running image not confirmed",
        BootStageError::BadState => "boot state magic unusable",
    }
}

/// Why the manifest's layout does not suit `embassy-boot`.
pub fn layout(e: LayoutError) -> &'static str {
    match e {
        LayoutError::Misaligned { .. } => "a partition is not page-aligned",
        LayoutError::OutOfFlash { .. } => "a partition runs past the flash",
        LayoutError::Overlap { .. } => "two partitions overlap",
        LayoutError::NotPageMultiple { .. } => "a slot is not whole pages",
        LayoutError::DfuTooSmall { .. } => {
            "[flash.update] is not one page larger than [flash.active]"
        }
        LayoutError::StateTooSmall { .. } => "[flash.boot_state] too small",
        LayoutError::StateNotEraseMultiple => "[flash.boot_state] not whole pages",
        LayoutError::BadBuffer { .. } => "work buffer unsuitable",
        LayoutError::ActiveTooSmall => "[flash.active] smaller than a page",
    }
}
