//! Turns the device manifest (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into the
//! kernel's `DEVICE` constant for this board.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = aliot_manifest::manifest_path_from_env();
    print!("{}", aliot_manifest::rerun_directives(&path));
    let manifest = match aliot_manifest::load(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "error: the device manifest {} is not valid: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("error: OUT_DIR is not set (this build script runs under cargo only)");
        return ExitCode::FAILURE;
    };
    let out = PathBuf::from(out_dir).join("device_config.rs");
    if let Err(e) = std::fs::write(&out, aliot_manifest::generate_kernel_config(&manifest)) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
