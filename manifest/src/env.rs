//! Finding the manifest from a build script, and telling cargo when to rebuild.

use std::ffi::OsString;
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
    manifest_path_from(std::env::var_os(MANIFEST_ENV))
}

/// [`manifest_path_from_env`] with the variable's value passed in (testable without touching
/// the process environment).
pub fn manifest_path_from(value: Option<OsString>) -> PathBuf {
    match value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_crates_device_toml() {
        let p = manifest_path_from(None);
        assert!(p.ends_with("manifest/device.toml"), "{}", p.display());
        assert!(p.is_file(), "{}", p.display());
        assert_eq!(manifest_path_from(Some(OsString::new())), p);
    }

    #[test]
    fn absolute_env_value_is_used_as_is() {
        let p = manifest_path_from(Some("/etc/other.toml".into()));
        assert_eq!(p, PathBuf::from("/etc/other.toml"));
    }

    #[test]
    fn relative_env_value_is_taken_from_the_workspace_root() {
        let p = manifest_path_from(Some("manifest/tests/good/minimal.toml".into()));
        assert!(p.is_absolute(), "{}", p.display());
        assert!(p.is_file(), "{}", p.display());
    }

    #[test]
    fn rerun_lines_name_the_file_and_the_variable() {
        let s = rerun_directives(Path::new("/x/device.toml"));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "cargo:rerun-if-env-changed=ALIOT_MANIFEST",
                "cargo:rerun-if-changed=/x/device.toml"
            ]
        );
    }
}
