//! `aliot-image`: builds a board's images against a manifest and writes one Intel HEX image:
//! for the QEMU board (default) with its map; for the nRF9160 DK with a size report that fails
//! the run when a budget is exceeded.
//!
//! ```text
//! aliot-image [--board qemu-an505|nrf9160dk] [--manifest PATH] [--out DIR]
//! ```
//! `--manifest` defaults to `$ALIOT_MANIFEST`, else `manifest/device.toml`; `--out` to
//! `target/aliot-image` under the repository root. Prints the map or the size report and the
//! image's path.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: aliot-image [--board qemu-an505|nrf9160dk] [--manifest PATH] [--out DIR]";

fn main() -> ExitCode {
    let mut manifest = aliot_manifest::manifest_path_from_env();
    let mut out = aliot_manifest::workspace_root()
        .join("target")
        .join("aliot-image");
    let mut board = PathBuf::from("qemu-an505");
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.to_str() {
            Some("--board") => &mut board,
            Some("--manifest") => &mut manifest,
            Some("--out") => &mut out,
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!(
                    "error: unknown argument {}; allowed: --board NAME, --manifest PATH, --out DIR\n{USAGE}",
                    arg.to_string_lossy()
                );
                return ExitCode::FAILURE;
            }
        };
        let Some(value) = args.next() else {
            eprintln!("error: {} needs a value\n{USAGE}", arg.to_string_lossy());
            return ExitCode::FAILURE;
        };
        *target = PathBuf::from(value);
    }
    match board.to_str() {
        Some("qemu-an505") => {}
        Some("nrf9160dk") => return nrf9160dk(&manifest, &out),
        _ => {
            eprintln!(
                "error: unknown board {}; allowed: qemu-an505, nrf9160dk\n{USAGE}",
                board.display()
            );
            return ExitCode::FAILURE;
        }
    }
    match aliot_image::build_qemu_image(&manifest, &out) {
        Ok(built) => {
            print!("{}", built.map_text);
            println!(
                "\nimage: {}\nmap:   {}",
                built.hex.display(),
                built.map.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds and size-reports the nRF9160 DK image; fails when a budget is exceeded.
fn nrf9160dk(manifest: &std::path::Path, out: &std::path::Path) -> ExitCode {
    match aliot_image::build_nrf9160dk_image(manifest, out) {
        Ok(report) => {
            print!("{}", report.text);
            println!(
                "\nimage: {}\nelf:   {}",
                report.hex.display(),
                report.elf.display()
            );
            if report.exceeded.is_empty() {
                return ExitCode::SUCCESS;
            }
            for e in &report.exceeded {
                eprintln!("error: budget exceeded: {e}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
