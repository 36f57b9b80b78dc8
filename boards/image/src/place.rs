//! What each linked ELF puts where, and the check that the parts of one image fit together.
//!
//! Only the ELF's `PT_LOAD` program headers matter: they are what a loader (QEMU, a
//! programmer) writes. A segment's file bytes are written at its physical address (its load
//! address: `.data`'s initial values sit in flash and are copied to RAM at start-up); at run
//! time it occupies its virtual address for its memory size (`.bss` has no file bytes). So
//! every part's loaded bytes must lie in its flash region and its run-time ranges in its flash
//! or RAM region, and no two loaded ranges nor two RAM ranges of the whole image may overlap.

use std::path::{Path, PathBuf};

use aliot_manifest::Span;
use object::Endianness;
use object::elf::{EM_ARM, FileHeader32, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};

use crate::BuildError;

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where its file bytes are loaded (`p_paddr`).
    pub load: u32,
    /// Where it lives at run time (`p_vaddr`).
    pub run: u32,
    /// Its file bytes (`p_filesz` of them; none for `.bss`).
    pub data: Vec<u8>,
    /// Its size at run time (`p_memsz`).
    pub mem_size: u32,
}

/// One part of the image: the kernel or an app, with the regions it must stay in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `kernel` or the manifest app's name.
    pub name: String,
    /// The ELF it was read from.
    pub elf: PathBuf,
    /// Flash it must stay in (all its loaded bytes).
    pub flash: Span,
    /// RAM it may use at run time.
    pub ram: Span,
    /// The ELF's entry address.
    pub entry: u32,
    /// Its `PT_LOAD` segments.
    pub segments: Vec<Segment>,
}

impl Part {
    /// Reads the part's segments and entry from the 32-bit little-endian ARM ELF at `elf`.
    pub fn read(name: &str, elf: &Path, flash: Span, ram: Span) -> Result<Part, BuildError> {
        let bytes = std::fs::read(elf).map_err(|e| BuildError::Io {
            path: elf.to_path_buf(),
            message: e.to_string(),
        })?;
        let (entry, segments) = parse_elf(&bytes).map_err(|message| BuildError::Elf {
            path: elf.to_path_buf(),
            message,
        })?;
        Ok(Part {
            name: name.to_owned(),
            elf: elf.to_path_buf(),
            flash,
            ram,
            entry,
            segments,
        })
    }

    /// Bytes it loads (all in flash).
    pub fn flash_used(&self) -> u64 {
        self.segments.iter().map(|s| s.data.len() as u64).sum()
    }

    /// Bytes it occupies in its RAM region at run time (`.data`, `.bss`).
    pub fn ram_used(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| self.ram.contains(s.run.into(), s.mem_size.into()))
            .map(|s| u64::from(s.mem_size))
            .sum()
    }
}

/// The entry and the `PT_LOAD` segments of an ELF; the error says what is wrong with it.
pub fn parse_elf(bytes: &[u8]) -> Result<(u32, Vec<Segment>), String> {
    let header = FileHeader32::<Endianness>::parse(bytes).map_err(|e| {
        format!("not a 32-bit ELF ({e}); allowed: an ELF linked for thumbv8m.main-none-eabihf")
    })?;
    let endian = header
        .endian()
        .map_err(|e| format!("unreadable byte order ({e})"))?;
    let machine = header.e_machine(endian);
    if machine != EM_ARM {
        return Err(format!(
            "machine {machine} is not ARM ({EM_ARM}); allowed: an ELF linked for thumbv8m.main-none-eabihf"
        ));
    }
    let headers = header
        .program_headers(endian, bytes)
        .map_err(|e| format!("unreadable program headers ({e})"))?;
    let mut segments = Vec::new();
    for ph in headers {
        if ph.p_type(endian) != PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let data = ph.data(endian, bytes).map_err(|()| {
            format!(
                "the segment at {:#010x} runs past the end of the file",
                ph.p_paddr(endian)
            )
        })?;
        segments.push(Segment {
            load: ph.p_paddr(endian),
            run: ph.p_vaddr(endian),
            data: data.to_vec(),
            mem_size: ph.p_memsz(endian),
        });
    }
    Ok((header.e_entry(endian), segments))
}

/// One address range an image part claims, for the overlap check.
struct Claim<'a> {
    part: &'a str,
    start: u64,
    len: u64,
}

fn span_text(start: u64, len: u64) -> String {
    format!("{start:#010x}..{:#010x}", start + len)
}

/// Checks that every part stays in its regions and that no two parts (or segments) overlap,
/// in flash (loaded bytes) or in RAM (run-time ranges).
pub fn check_placement(parts: &[Part]) -> Result<(), BuildError> {
    let mut loads: Vec<Claim<'_>> = Vec::new();
    let mut rams: Vec<Claim<'_>> = Vec::new();
    for p in parts {
        for s in &p.segments {
            let (load, len) = (u64::from(s.load), s.data.len() as u64);
            if len > 0 && !p.flash.contains(load, len) {
                return Err(BuildError::OutsideRegion {
                    part: p.name.clone(),
                    what: format!("loads {len} bytes at {}", span_text(load, len)),
                    allowed: format!(
                        "its flash {}",
                        span_text(p.flash.start.into(), p.flash.len.into())
                    ),
                });
            }
            let (run, size) = (u64::from(s.run), u64::from(s.mem_size));
            let in_flash = p.flash.contains(run, size);
            if !in_flash && !p.ram.contains(run, size) {
                return Err(BuildError::OutsideRegion {
                    part: p.name.clone(),
                    what: format!("occupies {}", span_text(run, size)),
                    allowed: format!(
                        "its flash {} or its RAM {}",
                        span_text(p.flash.start.into(), p.flash.len.into()),
                        span_text(p.ram.start.into(), p.ram.len.into())
                    ),
                });
            }
            if len > 0 {
                loads.push(Claim {
                    part: &p.name,
                    start: load,
                    len,
                });
            }
            if !in_flash {
                rams.push(Claim {
                    part: &p.name,
                    start: run,
                    len: size,
                });
            }
        }
    }
    for (kind, claims) in [("flash", &mut loads), ("RAM", &mut rams)] {
        claims.sort_by_key(|c| c.start);
        for pair in claims.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if b.start < a.start + a.len {
                return Err(BuildError::Overlap {
                    kind,
                    first: format!("{} {}", a.part, span_text(a.start, a.len)),
                    second: format!("{} {}", b.part, span_text(b.start, b.len)),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    fn seg(load: u32, run: u32, file: usize, mem: u32) -> Segment {
        Segment {
            load,
            run,
            data: vec![0xA5; file],
            mem_size: mem,
        }
    }

    fn part(name: &str, flash: Span, ram: Span, segments: Vec<Segment>) -> Part {
        Part {
            name: name.to_owned(),
            elf: PathBuf::from(format!("{name}.elf")),
            flash,
            ram,
            entry: flash.start | 1,
            segments,
        }
    }

    /// A kernel with code, `.data` (loaded in flash, run in RAM) and `.bss`, and an app with
    /// code and `.bss`, each in its own regions.
    fn good() -> Vec<Part> {
        vec![
            part(
                "kernel",
                span(0x1000_0000, 0x1_0000),
                span(0x3800_0000, 0x1_0000),
                vec![
                    seg(0x1000_0000, 0x1000_0000, 0x100, 0x100),
                    seg(0x1000_0100, 0x3800_0000, 4, 4),
                    seg(0x3800_0004, 0x3800_0004, 0, 0x20),
                ],
            ),
            part(
                "publish_test",
                span(0x1001_0000, 0x1000),
                span(0x3801_0000, 0x1000),
                vec![
                    seg(0x1001_0000, 0x1001_0000, 0x1000, 0x1000),
                    seg(0x3801_0000, 0x3801_0000, 0, 0x800),
                ],
            ),
        ]
    }

    #[test]
    fn parts_in_their_regions_pass_and_count_their_bytes() {
        let parts = good();
        assert_eq!(check_placement(&parts), Ok(()));
        assert_eq!((parts[0].flash_used(), parts[0].ram_used()), (0x104, 0x24));
        assert_eq!(
            (parts[1].flash_used(), parts[1].ram_used()),
            (0x1000, 0x800)
        );
    }

    #[test]
    fn a_segment_past_its_flash_region_is_refused() {
        let mut parts = good();
        // One byte more than the app's 4 KiB flash.
        parts[1].segments[0] = seg(0x1001_0000, 0x1001_0000, 0x1001, 0x1001);
        assert_eq!(
            check_placement(&parts).map_err(|e| e.to_string()),
            Err("publish_test loads 4097 bytes at 0x10010000..0x10011001, outside its region; allowed: its flash 0x10010000..0x10011000".to_owned())
        );
    }

    #[test]
    fn loaded_bytes_must_be_in_flash_even_when_they_run_in_ram() {
        let mut parts = good();
        // `.data` loaded straight into RAM: nothing would program it on a device.
        parts[0].segments[1] = seg(0x3800_0000, 0x3800_0000, 4, 4);
        let e = check_placement(&parts).expect_err("loaded into RAM");
        assert!(
            e.to_string()
                .starts_with("kernel loads 4 bytes at 0x38000000"),
            "{e}"
        );
    }

    #[test]
    fn bss_outside_both_regions_is_refused() {
        let mut parts = good();
        parts[1].segments[1] = seg(0x3801_0800, 0x3801_0800, 0, 0x801);
        let e = check_placement(&parts).expect_err("bss past the app's RAM");
        assert_eq!(
            e.to_string(),
            "publish_test occupies 0x38010800..0x38011001, outside its region; allowed: its flash 0x10010000..0x10011000 or its RAM 0x38010000..0x38011000"
        );
    }

    #[test]
    fn overlapping_parts_are_refused_in_flash_and_in_ram() {
        // Regions that overlap by one page (a bad board definition): the loads collide.
        let mut parts = good();
        parts[1].flash = span(0x1000_0000, 0x1_1000);
        parts[1].segments[0] = seg(0x1000_00F0, 0x1000_00F0, 0x20, 0x20);
        assert_eq!(
            check_placement(&parts).map_err(|e| e.to_string()),
            Err("flash overlap: kernel 0x10000000..0x10000100 and publish_test 0x100000f0..0x10000110; allowed: every part's bytes apart".to_owned())
        );
        let mut parts = good();
        parts[1].ram = span(0x3800_0000, 0x1_1000);
        parts[1].segments[1] = seg(0x3800_0020, 0x3800_0020, 0, 0x10);
        let e = check_placement(&parts).expect_err("bss on the kernel's bss");
        assert!(
            e.to_string().starts_with(
                "RAM overlap: kernel 0x38000004..0x38000024 and publish_test 0x38000020..0x38000030"
            ),
            "{e}"
        );
    }

    #[test]
    fn touching_ranges_do_not_overlap() {
        let mut parts = good();
        parts[1].flash = span(0x1000_0104, 0x2_0000);
        parts[1].segments[0] = seg(0x1000_0104, 0x1000_0104, 0x10, 0x10);
        assert_eq!(check_placement(&parts), Ok(()));
    }

    #[test]
    fn a_non_elf_file_is_refused_with_what_is_allowed() {
        let e = parse_elf(b"not an elf at all, just some text").expect_err("no ELF magic");
        assert!(
            e.contains("allowed: an ELF linked for thumbv8m.main-none-eabihf"),
            "{e}"
        );
    }
}
