//! Reads the DeviceSecret from the source the manifest names. The value is never logged:
//! errors say where it was looked for, not what was found. What is read is held in zeroizing
//! buffers and handed over as a [`Secret`] (zeroized on drop, never printed); an environment
//! variable's value also stays in the process environment, which app processes never inherit.

use std::io::Read;
use std::path::{Path, PathBuf};

use aliot_kernel::config::SecretSource;
use aliot_kernel::credentials::Secret;
use zeroize::Zeroizing;

/// Which secret the manifest's source names: the DeviceSecret (一机一密, `auth.secret`) or
/// the ProductSecret (一型一密, `auth.product_secret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `auth.secret`.
    Device,
    /// `auth.product_secret`.
    Product,
}

impl SecretKind {
    fn noun(self) -> &'static str {
        match self {
            SecretKind::Device => "device secret",
            SecretKind::Product => "ProductSecret",
        }
    }

    fn field(self) -> &'static str {
        match self {
            SecretKind::Device => "auth.secret",
            SecretKind::Product => "auth.product_secret",
        }
    }
}

/// Where provisioned secrets live inside the board's state directory.
pub fn provisioned_secret_path(state_dir: &Path) -> PathBuf {
    provisioned_path(state_dir, SecretKind::Device)
}

/// Where the provisioned secret of `kind` lives inside the board's state directory.
pub fn provisioned_path(state_dir: &Path, kind: SecretKind) -> PathBuf {
    state_dir.join("provisioned").join(match kind {
        SecretKind::Device => "device_secret",
        SecretKind::Product => "product_secret",
    })
}

/// Load the DeviceSecret. `override_file` (from `--secret-file`) wins over the manifest.
pub fn load(
    source: SecretSource,
    override_file: Option<&Path>,
    state_dir: &Path,
) -> Result<Secret, String> {
    load_kind(source, override_file, state_dir, SecretKind::Device)
}

/// Load the secret of `kind`. `override_file` (from `--secret-file`) wins over the manifest.
pub fn load_kind(
    source: SecretSource,
    override_file: Option<&Path>,
    state_dir: &Path,
    kind: SecretKind,
) -> Result<Secret, String> {
    let field = kind.field();
    if let Some(path) = override_file {
        return from_file(path, "--secret-file", kind);
    }
    match source {
        SecretSource::Env(var) => {
            let value = Zeroizing::new(
                std::env::var_os(var)
                    .ok_or_else(|| {
                        format!(
                            "environment variable {var} is not set (the manifest's {field} says env = \"{var}\")"
                        )
                    })?
                    .into_encoded_bytes(),
            );
            trimmed(&value).ok_or_else(|| {
                format!(
                    "environment variable {var} is empty (the manifest's {field} says env = \"{var}\")"
                )
            })
        }
        SecretSource::File(path) => from_file(
            Path::new(path),
            &format!("the manifest's {field} file"),
            kind,
        ),
        SecretSource::Provisioned => from_file(
            &provisioned_path(state_dir, kind),
            &format!("provisioned storage ({field} = \"provisioned\")"),
            kind,
        ),
    }
}

/// The secret in `bytes` without surrounding whitespace, copied once into its own buffer;
/// `None` when nothing is left.
fn trimmed(bytes: &[u8]) -> Option<Secret> {
    let secret = bytes.trim_ascii();
    (!secret.is_empty()).then(|| Secret::new(secret.to_vec()))
}

fn from_file(path: &Path, what: &str, kind: SecretKind) -> Result<Secret, String> {
    let noun = kind.noun();
    let cannot = |e: std::io::Error| {
        format!(
            "cannot read the {noun} from {} ({what}): {e}",
            path.display()
        )
    };
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    // Room for any secret file (a DeviceSecret is 32 characters) without growing, so no
    // reallocation leaves a copy behind; a longer file is refused rather than grown.
    const MAX_SECRET_FILE: usize = 4096;
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE + 1));
    file.by_ref()
        .take(MAX_SECRET_FILE as u64 + 1)
        .read_to_end(&mut text)
        .map_err(cannot)?;
    if text.len() > MAX_SECRET_FILE {
        return Err(format!(
            "the {noun} file {} ({what}) is longer than {MAX_SECRET_FILE} bytes",
            path.display()
        ));
    }
    trimmed(&text).ok_or_else(|| format!("the {noun} file {} ({what}) is empty", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_is_trimmed_and_errors_never_echo_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "  abc123\n").unwrap();
        assert_eq!(
            load(SecretSource::Provisioned, Some(&file), dir.path())
                .unwrap()
                .expose(),
            b"abc123"
        );
        std::fs::write(&file, "\n").unwrap();
        let err = load(SecretSource::Provisioned, Some(&file), dir.path())
            .err()
            .unwrap();
        assert!(err.contains("empty"), "{err}");
        std::fs::write(&file, "x".repeat(5000)).unwrap();
        let err = load(SecretSource::Provisioned, Some(&file), dir.path())
            .err()
            .unwrap();
        assert!(err.contains("longer than"), "{err}");
        assert!(!err.contains("xxx"), "{err}");
        let err = load(SecretSource::Provisioned, None, dir.path())
            .err()
            .unwrap();
        assert!(err.contains("provisioned"), "{err}");
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = load(
            SecretSource::Env("ALIOT_TEST_SURELY_UNSET_VAR"),
            None,
            Path::new("."),
        )
        .err()
        .unwrap();
        assert!(err.contains("ALIOT_TEST_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn provisioned_secret_is_read_from_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = provisioned_secret_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "p-secret").unwrap();
        assert_eq!(
            load(SecretSource::Provisioned, None, dir.path())
                .unwrap()
                .expose(),
            b"p-secret"
        );
    }
}
