//! The whole job of a build script that turns the manifest into Rust source, shared by the
//! kernel boards and the app library so both report a bad manifest the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Manifest, ManifestError, load, manifest_path_from_env, rerun_directives};

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
