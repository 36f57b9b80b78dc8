//! `aliot-image`: builds a board's images against a manifest and writes one Intel HEX image:
//! for the QEMU board (default) with its map; for the nRF9160 DK with a size report that fails
//! the run when a budget is exceeded.
//!
//! ```text
//! aliot-image [--board qemu-an505|nrf9160dk] [--manifest PATH] [--out DIR]
//! ```
//! `--manifest` defaults to `$ALIOT_MANIFEST`, else `manifest/device.toml`; `--out` to
//! `target/aliot-image` under the repository root. Prints the map or the size report and the
//! image's path. `--code-budget warn` (nRF9160 DK) reports our code over its 128 KiB / 48 KiB
//! target as a warning instead of failing (the layout budgets always fail).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: aliot-image [--board qemu-an505|nrf9160dk] [--manifest PATH] [--out DIR] [--code-budget fail|warn]";

fn main() -> ExitCode {
    let mut manifest = aliot_manifest::manifest_path_from_env();
    let mut out = aliot_manifest::workspace_root()
        .join("target")
        .join("aliot-image");
    let mut board = PathBuf::from("qemu-an505");
    let mut code_budget = PathBuf::from("fail");
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.to_str() {
            Some("--board") => &mut board,
            Some("--manifest") => &mut manifest,
            Some("--out") => &mut out,
            Some("--code-budget") => &mut code_budget,
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!(
                    "error: unknown argument {}; allowed: --board NAME, --manifest PATH, --out DIR, --code-budget fail|warn\n{USAGE}",
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
        Some("nrf9160dk") => {
            let fail_over_target = match code_budget.to_str() {
                Some("fail") => true,
                Some("warn") => false,
                _ => {
                    eprintln!(
                        "error: --code-budget {}: allowed: fail, warn\n{USAGE}",
                        code_budget.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            return nrf9160dk(&manifest, &out, fail_over_target);
        }
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

/// Builds and size-reports the nRF9160 DK image; fails when a layout budget is exceeded, and
/// when our code is over its target unless told to warn.
fn nrf9160dk(
    manifest: &std::path::Path,
    out: &std::path::Path,
    fail_over_target: bool,
) -> ExitCode {
    match aliot_image::build_nrf9160dk_image(manifest, out) {
        Ok(report) => {
            print!("{}", report.text);
            println!(
                "\nimage: {} (boot stage + firmware: flash this)\nota:   {} (header + firmware: an OTA job's file)\nelf:   {}\nboot:  {}",
                report.hex.display(),
                report.image.display(),
                report.elf.display(),
                report.boot_elf.display()
            );
            for (app, elf) in &report.app_elfs {
                println!("app:   {app}: {}", elf.display());
            }
            for e in &report.exceeded {
                eprintln!("error: budget exceeded: {e}");
            }
            for e in &report.over_target {
                if fail_over_target {
                    eprintln!("error: over target: {e}");
                } else {
                    eprintln!("warning: over target (not failing: --code-budget warn): {e}");
                }
            }
            if report.exceeded.is_empty() && (report.over_target.is_empty() || !fail_over_target) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
