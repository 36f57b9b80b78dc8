//! The image builder: builds the kernel and each app for `thumbv8m.main-none-eabihf` (each
//! app linked at the regions the manifest gives it), then writes ONE image, an Intel HEX of
//! every loadable segment of every ELF, and a map of what sits where.
//!
//! It is its own crate, not a subcommand of the host board, because it serves every
//! Cortex-M33 board (QEMU's `mps2-an505`, and the nRF9160 DK, whose image it also size-reports against the
//! issue's budgets: [`build_nrf9160dk_image`]) and because the host board's
//! `aliot-qemu` is only one of its callers: it calls [`build_qemu_image`] as a library. The
//! layout comes from `aliot_manifest::image_layout`, the same function the boards' build
//! scripts use, so the ELFs are checked against exactly the regions they were linked for.

mod hex;
mod map;
mod nrf9160;
mod nrf9160_boot;
mod nrf_apps;
mod place;
mod qemu;
mod size;

use std::fmt;
use std::path::PathBuf;

pub use hex::{RECORD_DATA, intel_hex};
pub use map::map_text;
pub use nrf_apps::{AppSize, NRF9160DK_APP_BOARD, app_sizes};
pub use nrf9160::{
    Inputs, MIN_STACK, NRF9160DK, NRF9160DK_MODEM_RAM, NRF9160DK_RAM, NrfReport, OUR_FLASH_BUDGET,
    OUR_RAM_BUDGET, build_nrf9160dk_image, report_text,
};
pub use nrf9160_boot::{
    NRF9160DK_BOOT, NRF9160DK_BOOT_RAM, active_image, bootloader_span, build_boot_stage,
    program_span,
};
pub use place::{Part, Segment, check_placement, parse_elf};
pub use qemu::{BuiltImage, QEMU_APP_IMAGES, QEMU_KERNEL, build_qemu_image, image_from_parts};
pub use size::{ArchiveSymbols, CLibrary, Memory, Origins, archive_symbols, attribute, crate_of};

/// Why an image could not be built; each names what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The manifest is not valid or does not fit the board.
    Manifest(aliot_manifest::ManifestError),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's description.
        message: String,
    },
    /// `cargo build` failed (its output went to this process's stderr) or could not start.
    Cargo {
        /// The directory it ran in.
        dir: PathBuf,
        /// Its exit status, or why it did not start.
        status: String,
    },
    /// A built file is not a usable ELF.
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what is allowed.
        message: String,
    },
    /// A part puts bytes outside its regions.
    OutsideRegion {
        /// `kernel` or the app's name.
        part: String,
        /// What it puts where.
        what: String,
        /// Where it may put it.
        allowed: String,
    },
    /// Two parts (or two segments) claim the same bytes.
    Overlap {
        /// `flash` (loaded bytes) or `RAM` (run-time ranges).
        kind: &'static str,
        /// The first claim: part and range.
        first: String,
        /// The second claim: part and range.
        second: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Manifest(e) => write!(f, "{e}"),
            BuildError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            BuildError::Cargo { dir, status } => write!(
                f,
                "cargo build --release --locked in {} failed: {status}; allowed: a build that succeeds (its errors are above)",
                dir.display()
            ),
            BuildError::Elf { path, message } => write!(f, "{}: {message}", path.display()),
            BuildError::OutsideRegion {
                part,
                what,
                allowed,
            } => write!(f, "{part} {what}, outside its region; allowed: {allowed}"),
            BuildError::Overlap {
                kind,
                first,
                second,
            } => write!(
                f,
                "{kind} overlap: {first} and {second}; allowed: every part's bytes apart"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<aliot_manifest::ManifestError> for BuildError {
    fn from(e: aliot_manifest::ManifestError) -> Self {
        BuildError::Manifest(e)
    }
}
