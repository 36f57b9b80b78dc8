//! The kernel configuration of the OTA row's board: aliot-e2e's test manifest
//! `manifests/ota_big.toml` (the default device on a 4 MiB flash, so a 1 MiB image fits its
//! slots). The xtask runs itself as that board (see `main.rs`), so the benchmark needs no
//! second build of the host board with other dependency features.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let path = here.join("../e2e/manifests/ota_big.toml");
    println!("cargo:rerun-if-changed={}", path.display());
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("error: OUT_DIR is not set");
        return ExitCode::FAILURE;
    };
    let m = match aliot_manifest::load(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {}: {}", path.display(), e.root());
            return ExitCode::FAILURE;
        }
    };
    match std::fs::write(
        out.join("ota_big_config.rs"),
        aliot_manifest::generate_kernel_config(&m),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
