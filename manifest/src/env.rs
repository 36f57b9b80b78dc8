//! Finding the manifest from a build script, and telling cargo when to rebuild.

use std::path::{Path, PathBuf};

/// Environment variable that selects another manifest file.
pub const MANIFEST_ENV: &str = "ALIOT_MANIFEST";

/// The directory of this crate (`<workspace>/manifest`), fixed at compile time.
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default manifest, `<workspace>/manifest/device.toml`.
pub fn default_manifest_path() -> PathBuf {
    crate_dir().join("device.toml")
}

/// `$ALIOT_MANIFEST` if set and not empty, else [`default_manifest_path`].
///
/// A relative `$ALIOT_MANIFEST` is taken from the workspace root: build scripts run in their
/// own package directory, so the shell's directory is unknown to them, and the root is the
/// one directory every package agrees on.
pub fn manifest_path_from_env() -> PathBuf {
    match std::env::var_os(MANIFEST_ENV) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => default_manifest_path(),
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let dir = crate_dir();
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// The `cargo:` lines a build script prints so it reruns when the manifest file or the
/// variable choosing it changes.
pub fn rerun_directives(path: &Path) -> String {
    format!(
        "cargo:rerun-if-env-changed={MANIFEST_ENV}\ncargo:rerun-if-changed={}\n",
        path.display()
    )
}
