//! The map: for each part of the image (the kernel, each manifest app) its flash and RAM
//! region, the bytes it uses of each, its entry, and its segments, read from the ELFs' program
//! headers. A person reads it to see where things sit and how much room is left.

use std::fmt::Write as _;
use std::path::Path;

use aliot_manifest::{CortexM33Board, ImageLayout, Span};

use crate::place::Part;

fn row(out: &mut String, label: &str, kind: &str, span: Span, used: &str, note: &str) {
    let _ = writeln!(
        out,
        "{label:<22} {kind:<6} {:#010x}  {:#010x}  {:>8}  {used:>8}  {note}",
        span.start,
        span.end(),
        span.len
    );
}

/// The map text of `parts` (kernel first, then the apps that have an image) on `board`, with
/// the manifest's other apps listed as having none.
pub fn map_text(
    board: &CortexM33Board,
    manifest: &Path,
    layout: &ImageLayout,
    parts: &[Part],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "aliot image map: board {}, manifest {}\n",
        board.name,
        manifest.display()
    );
    let _ = writeln!(
        s,
        "{:<22} {:<6} {:<10}  {:<10}  {:>8}  {:>8}  note",
        "part", "region", "start", "end", "size", "used"
    );
    for p in parts {
        let app = layout.apps.iter().find(|a| a.name == p.name);
        let label = match app {
            Some(a) => format!("{} (app {})", p.name, a.id),
            None => p.name.clone(),
        };
        let flash_used = p.flash_used().to_string();
        let ram_used = p.ram_used().to_string();
        row(
            &mut s,
            &label,
            "flash",
            p.flash,
            &flash_used,
            &format!("entry {:#010x}", p.entry),
        );
        let ram_note = match app {
            Some(a) => format!("+ stack {} at the top (its header)", a.stack_size),
            None => "(.data, .bss; its stack is no segment)".to_owned(),
        };
        row(&mut s, &label, "RAM", p.ram, &ram_used, &ram_note);
    }
    for a in &layout.apps {
        if !parts.iter().any(|p| p.name == a.name) {
            let label = format!("{} (app {})", a.name, a.id);
            row(
                &mut s,
                &label,
                "flash",
                a.flash,
                "-",
                "no image for this board",
            );
            row(&mut s, &label, "RAM", a.ram, "-", "reserved");
        }
    }
    let _ = writeln!(
        s,
        "\nsegments (ELF PT_LOAD): load address, run address, file bytes, memory bytes"
    );
    for p in parts {
        let _ = writeln!(s, "{}: {}", p.name, p.elf.display());
        for seg in &p.segments {
            let _ = writeln!(
                s,
                "  {:#010x}  {:#010x}  {:>8}  {:>8}",
                seg.load,
                seg.run,
                seg.data.len(),
                seg.mem_size
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::Segment;
    use aliot_manifest::{AppImage, QEMU_AN505};
    use std::path::PathBuf;

    #[test]
    fn every_part_and_every_manifest_app_has_its_rows() {
        let app = |name: &str, id: usize, flash: u32, ram: u32| AppImage {
            name: name.to_owned(),
            id,
            flash: Span {
                start: flash,
                len: 0x1_0000,
            },
            ram: Span {
                start: ram,
                len: 0x6000,
            },
            stack_size: 0x5800,
        };
        let layout = ImageLayout {
            board: "qemu-an505",
            apps: vec![
                app("publish_test", 0, 0x1021_0000, 0x3821_0000),
                app("echo", 1, 0x1022_0000, 0x3821_6000),
            ],
        };
        let a = &layout.apps[0];
        let part = Part {
            name: "publish_test".to_owned(),
            elf: PathBuf::from("p.elf"),
            flash: a.flash,
            ram: a.ram,
            entry: 0x1021_16E7,
            segments: vec![
                Segment {
                    load: 0x1021_0000,
                    run: 0x1021_0000,
                    data: vec![0; 100],
                    mem_size: 100,
                },
                Segment {
                    load: 0x3821_0000,
                    run: 0x3821_0000,
                    data: Vec::new(),
                    mem_size: 64,
                },
            ],
        };
        let map = map_text(&QEMU_AN505, Path::new("device.toml"), &layout, &[part]);
        let lines: Vec<&str> = map.lines().collect();
        assert_eq!(
            lines[0],
            "aliot image map: board qemu-an505, manifest device.toml"
        );
        assert_eq!(
            &lines[3..7],
            [
                "publish_test (app 0)   flash  0x10210000  0x10220000     65536       100  entry 0x102116e7",
                "publish_test (app 0)   RAM    0x38210000  0x38216000     24576        64  + stack 22528 at the top (its header)",
                "echo (app 1)           flash  0x10220000  0x10230000     65536         -  no image for this board",
                "echo (app 1)           RAM    0x38216000  0x3821c000     24576         -  reserved",
            ]
        );
        assert_eq!(
            &lines[9..],
            [
                "publish_test: p.elf",
                "  0x10210000  0x10210000       100       100",
                "  0x38210000  0x38210000         0        64"
            ]
        );
    }
}
