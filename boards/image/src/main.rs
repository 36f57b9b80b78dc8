//! `aliot-image`: builds the QEMU board's kernel and app images against a manifest and writes
//! one Intel HEX image and its map.
//!
//! ```text
//! aliot-image [--manifest PATH] [--out DIR]
//! ```
//! `--manifest` defaults to `$ALIOT_MANIFEST`, else `manifest/device.toml`; `--out` to
//! `target/aliot-image` under the repository root. Prints the map and the image's path.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: aliot-image [--manifest PATH] [--out DIR]";

fn main() -> ExitCode {
    let mut manifest = aliot_manifest::manifest_path_from_env();
    let mut out = aliot_manifest::workspace_root()
        .join("target")
        .join("aliot-image");
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.to_str() {
            Some("--manifest") => &mut manifest,
            Some("--out") => &mut out,
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!(
                    "error: unknown argument {}; allowed: --manifest PATH, --out DIR\n{USAGE}",
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
