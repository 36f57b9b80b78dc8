//! A/B boot for the device: the image format (a header with the firmware version and the
//! payload's SHA-256, [`image`]), and the boot stage over `embassy-boot` ([`stage`]) that
//! swaps, reverts and refuses to run an image that does not verify, so that a firmware
//! update can never leave the device without a valid image (ARCHITECTURE.md "A/B boot").
//!
//! The host tool `aliot-imgtool` (this crate's binary) makes and inspects images, and makes
//! differential packages with [`delta_maker`] (host only: the library stays `no_std` for the
//! chip).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(not(target_os = "none"))]
extern crate std;

#[cfg(not(target_os = "none"))]
pub mod delta_maker;

pub mod image;
pub mod launcher;
pub mod slot;
pub mod stage;

pub use image::{HEADER_LEN, ImageError, ImageHeader, ImageVerifier, parse_header, verify_image};
pub use launcher::write_host_launcher;
pub use slot::SlotWriter;
pub use stage::{
    BootKind, BootStage, BootStageError, Booted, LayoutError, Partition, SlotPartitions,
    UpdateWriter, partitions_from_config,
};
