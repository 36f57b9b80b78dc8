//! The nRF9160 DK's boot stage and the image format it runs, for [`crate::build_nrf9160dk_image`]:
//! builds `boards/nrf9160dk/boot` into `[flash.bootloader]`, puts the firmware behind an
//! `aliot-boot` image header in `[flash.active]` (the boot stage runs nothing its header and
//! SHA-256 do not vouch for), and lays out the files a user flashes or uploads:
//!
//! - one Intel HEX with the boot stage, the header and the firmware (what `probe-rs download`
//!   writes to a fresh board);
//! - the image file, header then payload, byte for byte what the active slot holds: the file
//!   an OTA job delivers (the same format `aliot-imgtool create` makes).

use std::path::Path;

use aliot_manifest::{IMAGE_HEADER_LEN, Manifest, ManifestError, Span};

use crate::BuildError;
use crate::place::{Part, check_placement};
use crate::qemu::cargo_build;

/// The boot stage's package and binary, a member of the board's workspace (built in the board's
/// directory, [`crate::NRF9160DK`]).
pub const NRF9160DK_BOOT: &str = "aliot-nrf9160dk-boot";
/// The boot stage's RAM: all of it (`RAM` in boards/nrf9160dk/boot/memory.x); it runs alone,
/// before the firmware.
pub const NRF9160DK_BOOT_RAM: Span = Span {
    start: 0x2000_0000,
    len: 256 * 1024,
};
/// Erased flash: what the gaps between the firmware's segments hold in the image.
const ERASED: u8 = 0xFF;

// The linker fragment the firmware is linked with leaves exactly the header `aliot-boot` writes.
const _: () = assert!(IMAGE_HEADER_LEN as usize == aliot_boot::HEADER_LEN);

/// `[flash.bootloader]`.
pub fn bootloader_span(m: &Manifest) -> Span {
    Span {
        start: m.flash.bootloader.offset,
        len: m.flash.bootloader.size,
    }
}

/// Where the firmware is linked: `[flash.active]` after the image header.
pub fn program_span(m: &Manifest) -> Span {
    let header = IMAGE_HEADER_LEN.min(m.flash.active.size);
    Span {
        start: m.flash.active.offset + header,
        len: m.flash.active.size - header,
    }
}

/// Builds the boot stage against the manifest (with the firmware's extra cargo `args`, minus
/// its features) in the board's directory `dir`, and checks that it lies in
/// `[flash.bootloader]` (its link already refuses more: its `FLASH` is that partition).
pub fn build_boot_stage(
    dir: &Path,
    manifest_path: &Path,
    m: &Manifest,
    args: &[String],
) -> Result<Part, BuildError> {
    let mut all = vec!["-p".to_owned(), NRF9160DK_BOOT.to_owned()];
    all.extend_from_slice(args);
    let elf = cargo_build(dir, NRF9160DK_BOOT, manifest_path, &all)?;
    let part = Part::read("bootloader", &elf, bootloader_span(m), NRF9160DK_BOOT_RAM)?;
    check_placement(std::slice::from_ref(&part))?;
    Ok(part)
}

/// The active slot's image: `aliot-boot`'s header, then the slot's bytes from the start of
/// [`program_span`] to the end of the last loaded segment of the firmware or of an app's image
/// (gaps erased). The firmware must start at [`program_span`]: the boot stage jumps to the
/// vector table there.
///
/// The apps' images sit at the top of `[flash.active]` (`aliot_manifest::nrf9160dk_board`)
/// and the kernel starts them without checks of its own, so the header's length and SHA-256
/// cover them: the boot stage then runs nothing unverified, and an OTA image carries the apps
/// with the kernel they were built for. The price is the erased gap between the kernel and the
/// apps, which the image (and an OTA download) carries and the boot stage hashes: about the
/// whole slot. An app region the manifest reserves without an image (no ELF) is erased flash
/// in the image, and the image ends at the last byte a part loads.
pub fn active_image(m: &Manifest, firmware: &Part, apps: &[Part]) -> Result<Vec<u8>, BuildError> {
    let program = program_span(m);
    let first = firmware
        .segments
        .iter()
        .filter(|s| !s.data.is_empty())
        .map(|s| s.load)
        .min();
    if first != Some(program.start) {
        return Err(BuildError::Elf {
            path: firmware.elf.clone(),
            message: format!(
                "the firmware's first loaded byte is at {}, not at {:#010x}; allowed: the vector table first, at [flash.active] + {IMAGE_HEADER_LEN} (where the boot stage jumps)",
                first.map_or("nowhere".to_owned(), |a| format!("{a:#010x}")),
                program.start
            ),
        });
    }
    let loaded: Vec<_> = std::iter::once(firmware)
        .chain(apps)
        .flat_map(|p| p.segments.iter())
        .filter(|s| !s.data.is_empty())
        .collect();
    // Every part lies in its region (`check_placement`), the apps' inside the slot; an app
    // segment below the program's start would be a layout bug: refuse it, do not wrap.
    if let Some(s) = loaded
        .iter()
        .find(|s| s.load < program.start || u64::from(s.load) + s.data.len() as u64 > program.end())
    {
        return Err(BuildError::Elf {
            path: firmware.elf.clone(),
            message: format!(
                "a segment at {:#010x} ({} bytes) lies outside [flash.active] after the image header ({:#010x}..{:#010x}); allowed: the kernel and the apps' images inside it",
                s.load,
                s.data.len(),
                program.start,
                program.end()
            ),
        });
    }
    let end = loaded
        .iter()
        .map(|s| u64::from(s.load) + s.data.len() as u64)
        .max()
        .unwrap_or(u64::from(program.start));
    let mut payload = vec![ERASED; (end - u64::from(program.start)) as usize];
    for s in loaded {
        let at = (s.load - program.start) as usize;
        payload[at..at + s.data.len()].copy_from_slice(&s.data);
    }
    let header = aliot_boot::ImageHeader::new(&m.firmware.version, &payload).map_err(|e| {
        BuildError::Manifest(ManifestError::Field {
            field: "firmware.version".to_owned(),
            message: format!(
                "{:?} does not fit the nRF9160 DK's image header ({e}); allowed: at most {} characters",
                m.firmware.version,
                aliot_boot::image::VERSION_LEN
            ),
        })
    })?;
    let mut image = header.to_bytes().to_vec();
    image.extend_from_slice(&payload);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::place::Segment;

    fn manifest(firmware: &str) -> Manifest {
        let root = aliot_manifest::workspace_root();
        let text = std::fs::read_to_string(root.join("manifest/device.toml"))
            .unwrap()
            .replace("# [firmware]\n", &format!("[firmware]\n{firmware}\n"));
        aliot_manifest::parse(&text, &root.join("manifest")).unwrap()
    }

    fn firmware(segments: Vec<(u32, Vec<u8>)>) -> Part {
        Part {
            name: "kernel".to_owned(),
            elf: PathBuf::from("fw.elf"),
            flash: Span { start: 0, len: 0 },
            ram: Span { start: 0, len: 0 },
            entry: 0,
            segments: segments
                .into_iter()
                .map(|(load, data)| Segment {
                    load,
                    run: load,
                    mem_size: data.len() as u32,
                    data,
                })
                .collect(),
        }
    }

    #[test]
    fn the_image_is_a_header_the_boot_stage_accepts_then_the_firmware_with_gaps_erased() {
        let m = manifest("version = \"2.1.0\"");
        let start = m.flash.active.offset + IMAGE_HEADER_LEN;
        // Vector table and text, then `.data`'s initial values 4 bytes further on.
        let fw = firmware(vec![(start + 8, vec![7, 8]), (start, vec![1, 2, 3, 4])]);
        let image = active_image(&m, &fw, &[]).unwrap();
        let header = aliot_boot::verify_image(&image, m.flash.active.size).unwrap();
        assert_eq!(header.version.as_str(), "2.1.0");
        assert_eq!(
            &image[aliot_boot::HEADER_LEN..],
            &[1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 7, 8]
        );
    }

    #[test]
    fn the_header_covers_the_apps_at_the_top_of_the_slot() {
        let m = manifest("");
        let start = m.flash.active.offset + IMAGE_HEADER_LEN;
        let top = (m.flash.active.end() - 4) as u32;
        let fw = firmware(vec![(start, vec![1, 2])]);
        let app = firmware(vec![(top, vec![5, 6, 7, 8])]);
        let image = active_image(&m, &fw, std::slice::from_ref(&app)).unwrap();
        // Header + the whole rest of the slot: the app's last byte is the slot's last.
        assert_eq!(image.len() as u32, m.flash.active.size);
        assert_eq!(&image[image.len() - 4..], &[5, 6, 7, 8]);
        assert_eq!(
            &image[aliot_boot::HEADER_LEN..aliot_boot::HEADER_LEN + 3],
            &[1, 2, 0xFF]
        );
        aliot_boot::verify_image(&image, m.flash.active.size).unwrap();
        // A changed app byte fails the boot stage's check.
        let mut bad = image.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(aliot_boot::verify_image(&bad, m.flash.active.size).is_err());
    }

    #[test]
    fn an_app_segment_outside_the_slot_is_refused() {
        let m = manifest("");
        let start = m.flash.active.offset + IMAGE_HEADER_LEN;
        let fw = firmware(vec![(start, vec![1, 2])]);
        let app = firmware(vec![(m.flash.active.end() as u32, vec![5])]);
        let e = active_image(&m, &fw, &[app]).unwrap_err().to_string();
        assert!(e.contains("outside [flash.active]"), "{e}");
    }

    #[test]
    fn a_firmware_not_linked_after_the_header_is_refused() {
        let m = manifest("");
        // Linked at the slot's start, where the header goes.
        let fw = firmware(vec![(m.flash.active.offset, vec![1, 2, 3, 4])]);
        let e = active_image(&m, &fw, &[]).unwrap_err().to_string();
        assert!(e.contains("not at 0x00008200"), "{e}");
    }

    #[test]
    fn a_version_the_header_cannot_hold_names_the_field() {
        let m = manifest(&format!("version = \"{}\"", "1".repeat(33)));
        let start = m.flash.active.offset + IMAGE_HEADER_LEN;
        let e = active_image(&m, &firmware(vec![(start, vec![0; 4])]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("firmware.version"), "{e}");
        assert!(e.contains("at most 32 characters"), "{e}");
    }
}
