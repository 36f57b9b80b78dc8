//! Generates one kernel configuration per test manifest in `manifests/` (one 一型一密 mode
//! each, firmware version 2.0.0, and small A/B slots), for the `aliot-host-<name>` binaries
//! the registration, OTA and boot tests start. Each test manifest must keep the default
//! manifest's device, topics and apps: the apps inside those binaries are compiled against
//! the default manifest's constants.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const MODES: [&str; 6] = [
    "register",
    "regnwl",
    "register_https",
    "v2",
    "ota_small",
    "ota_big",
];

fn main() -> ExitCode {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The manifest the apps are built against.
    let default_path = aliot_manifest::manifest_path_from_env();
    print!("{}", aliot_manifest::rerun_directives(&default_path));
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("error: OUT_DIR is not set");
        return ExitCode::FAILURE;
    };
    let default = match aliot_manifest::load(&default_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {}: {}", default_path.display(), e.root());
            return ExitCode::FAILURE;
        }
    };
    for mode in MODES {
        let path = here.join("manifests").join(format!("{mode}.toml"));
        println!("cargo:rerun-if-changed={}", path.display());
        match generate(&path, &default, &out_dir.join(format!("{mode}_config.rs"))) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn generate(path: &Path, default: &aliot_manifest::Manifest, out: &Path) -> Result<(), String> {
    let m = aliot_manifest::load(path).map_err(|e| e.root().to_string())?;
    if m.device != default.device || m.topics != default.topics || m.apps != default.apps {
        return Err("must keep the default manifest's [device], [topics] and [[apps]]: the apps in the test binaries are built against them".into());
    }
    std::fs::write(out, aliot_manifest::generate_kernel_config(&m)).map_err(|e| e.to_string())
}
