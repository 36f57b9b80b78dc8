//! The whole job of a build script that turns the manifest into Rust source, shared by the
//! kernel boards and the app library so both report a bad manifest the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{
    Image, Manifest, ManifestError, generate_memory_x, load, manifest_path_from_env,
    rerun_directives,
};

/// For the build script of a Cortex-M board whose RAM script `source` (a path relative to the
/// package) `INCLUDE`s the manifest's `flash.x` ([`flash_x`]): copies it into `OUT_DIR` as
/// `memory.x`, where cortex-m-rt's `link.x` looks for it, and tells cargo to search there and
/// to rerun when it changes. Shared by the nRF9160 DK's firmware and its boot stage.
///
/// Why `source` need not be named `memory.x`: the linker runs in the cargo workspace's root and
/// looks for an `INCLUDE`d file there before its search paths, so a `memory.x` in the root (the
/// firmware's package is the nRF9160 DK workspace's root) would be linked into every binary of
/// the workspace, the boot stage included. The firmware's is `kernel-memory.x` for that reason.
pub fn use_board_memory_x(source: &str) -> Result<(), String> {
    let out = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or("OUT_DIR is not set (this build script runs under cargo only)")?;
    std::fs::copy(source, out.join("memory.x"))
        .map_err(|e| format!("cannot copy {source} into {}: {e}", out.display()))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={source}");
    Ok(())
}

/// `("flash.x", the flash layout for image)`, for [`emit_generated_files`]: the one linker
/// fragment every image of a board links against ([`generate_memory_x`]), so the firmware and
/// its boot stage agree on where each partition is.
pub fn flash_x(m: &Manifest, image: Image) -> (String, String) {
    ("flash.x".to_owned(), generate_memory_x(m, image))
}

/// Load the manifest (`$ALIOT_MANIFEST`, else the default), print cargo's rerun directives,
/// and write `generate(&manifest)` to `$OUT_DIR/<file_name>`. On failure, print the reason
/// (the field and what is allowed) and return a failing exit code, which fails the build.
pub fn emit_generated(file_name: &str, generate: fn(&Manifest) -> String) -> ExitCode {
    emit_generated_files(|m| Ok(vec![(file_name.to_owned(), generate(m))]))
}

/// As [`emit_generated`], for generators that write several files (`(file name, text)`) or
/// that can refuse the manifest (a layout that does not fit the board).
pub fn emit_generated_files(
    generate: impl FnOnce(&Manifest) -> Result<Vec<(String, String)>, ManifestError>,
) -> ExitCode {
    let path = manifest_path_from_env();
    print!("{}", rerun_directives(&path));
    // Cargo shows a build script's stderr; the error names the field and what is allowed
    // (`root`: the path is already in the sentence).
    let invalid = |e: &ManifestError| {
        eprintln!(
            "error: the device manifest {} is not valid: {}",
            path.display(),
            e.root()
        );
        ExitCode::FAILURE
    };
    let files = match load(&path).and_then(|m| {
        if let Some(t) = &m.thing_model {
            println!("cargo:rerun-if-changed={}", t.file.display());
        }
        generate(&m)
    }) {
        Ok(files) => files,
        Err(e) => return invalid(&e),
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("error: OUT_DIR is not set (this build script runs under cargo only)");
        return ExitCode::FAILURE;
    };
    for (file_name, text) in files {
        let out = PathBuf::from(&out_dir).join(file_name);
        if let Err(e) = std::fs::write(&out, text) {
            eprintln!("error: cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
