//! The nRF9160 DK's app images: each manifest app that has an image crate is built for the
//! DK's layout (`aliot_manifest::nrf9160dk_board`: at the top of `[flash.active]`, RAM above
//! the kernel's), from the same crate as on the QEMU board (its build script lays it out for
//! the board named by `ALIOT_APP_BOARD`), into a target directory of its own. An app without an
//! image for the board keeps its regions reserved (its flash stays erased and the kernel
//! refuses its header at boot).

use std::path::{Path, PathBuf};

use aliot_manifest::ImageLayout;

use crate::BuildError;
use crate::place::Part;
use crate::qemu::{QEMU_APP_IMAGES, cargo_build_in};

/// The board name the app crates' build scripts know this board by.
pub const NRF9160DK_APP_BOARD: &str = "nrf9160dk";

/// One manifest app in the size report: its regions and, if it has an image, what it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSize {
    /// The manifest app's name.
    pub name: String,
    /// Its app id.
    pub id: usize,
    /// Its flash region's bytes (`[[apps]] flash`).
    pub flash_region: u32,
    /// Its image's bytes in flash; `None` when it has no image for this board.
    pub flash_used: Option<u64>,
    /// Its RAM region's bytes (`memory`: statics, then its stack).
    pub ram_region: u32,
    /// Its stack at the top of its RAM.
    pub stack: u32,
}

/// Builds every app that has an image crate for the layout's board against `manifest`
/// (the crates are the QEMU board's: one source, laid out per board); returns each app's
/// part, checked later with the kernel's.
pub fn build_app_parts(
    root: &Path,
    manifest: &Path,
    layout: &ImageLayout,
) -> Result<Vec<Part>, BuildError> {
    let mut parts = Vec::new();
    for (app, dir, bin) in QEMU_APP_IMAGES {
        let Ok(image) = layout.app(app) else {
            continue; // the manifest has no such app: nothing to build
        };
        let dir = root.join(dir);
        let target = dir.join("target").join(NRF9160DK_APP_BOARD);
        let elf = cargo_build_in(
            &dir,
            bin,
            manifest,
            &[],
            &target,
            &[("ALIOT_APP_BOARD", NRF9160DK_APP_BOARD)],
        )?;
        parts.push(Part::read(app, &elf, image.flash, image.ram)?);
    }
    Ok(parts)
}

/// Each manifest app's row of the size report, from the layout and the parts built.
pub fn app_sizes(layout: &ImageLayout, parts: &[Part]) -> Vec<AppSize> {
    layout
        .apps
        .iter()
        .map(|a| AppSize {
            name: a.name.clone(),
            id: a.id,
            flash_region: a.flash.len,
            flash_used: parts
                .iter()
                .find(|p| p.name == a.name)
                .map(Part::flash_used),
            ram_region: a.ram.len,
            stack: a.stack_size,
        })
        .collect()
}

/// The ELFs of the app parts, for the caller's output.
pub fn app_elfs(parts: &[Part]) -> Vec<(String, PathBuf)> {
    parts
        .iter()
        .map(|p| (p.name.clone(), p.elf.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::Segment;
    use aliot_manifest::{AppImage, Span};

    #[test]
    fn every_manifest_app_gets_a_row_and_only_built_ones_a_size() {
        let app = |name: &str, id: usize, flash: u32, ram: u32| AppImage {
            name: name.to_owned(),
            id,
            flash: Span {
                start: flash,
                len: 0x1_0000,
            },
            ram: Span {
                start: ram,
                len: 0x4000,
            },
            stack_size: 0x3800,
        };
        let layout = ImageLayout {
            board: "nrf9160dk",
            apps: vec![
                app("publish_test", 0, 0x6_1000, 0x2003_0000),
                app("echo", 1, 0x7_1000, 0x2003_4000),
            ],
        };
        let part = Part {
            name: "publish_test".to_owned(),
            elf: PathBuf::from("p.elf"),
            flash: layout.apps[0].flash,
            ram: layout.apps[0].ram,
            entry: 0x6_16D7,
            segments: vec![Segment {
                load: 0x6_1000,
                run: 0x6_1000,
                data: vec![0; 300],
                mem_size: 300,
            }],
        };
        let rows = app_sizes(&layout, &[part]);
        assert_eq!(
            rows.iter()
                .map(|r| (r.name.as_str(), r.id, r.flash_used, r.ram_region, r.stack))
                .collect::<Vec<_>>(),
            [
                ("publish_test", 0, Some(300), 0x4000, 0x3800),
                ("echo", 1, None, 0x4000, 0x3800),
            ]
        );
    }
}
