//! Generates `aliot_app::manifest::*` from the device manifest (`$ALIOT_MANIFEST`, else the
//! workspace's `manifest/device.toml`), so apps name topics and read settings without
//! knowing the ProductKey or DeviceName.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = aliot_manifest::manifest_path_from_env();
    print!("{}", aliot_manifest::rerun_directives(&path));
    let manifest = match aliot_manifest::load(&path) {
        Ok(manifest) => manifest,
        Err(e) => {
            // Cargo shows a build script's stderr; the error names the field and what is allowed.
            eprintln!("error: the device manifest is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("error: OUT_DIR is not set (this build script runs under cargo only)");
        return ExitCode::FAILURE;
    };
    let out = PathBuf::from(out_dir).join("manifest_constants.rs");
    if let Err(e) = std::fs::write(&out, aliot_manifest::generate_app_constants(&manifest)) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
