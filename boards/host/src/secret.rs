//! Reads the DeviceSecret from the source the manifest names. The value is never logged:
//! errors say where it was looked for, not what was found.

use std::path::{Path, PathBuf};

use aliot_kernel::config::SecretSource;

/// Where provisioned secrets live inside the board's state directory.
pub fn provisioned_secret_path(state_dir: &Path) -> PathBuf {
    state_dir.join("provisioned").join("device_secret")
}

/// Load the secret. `override_file` (from `--secret-file`) wins over the manifest.
pub fn load(
    source: SecretSource,
    override_file: Option<&Path>,
    state_dir: &Path,
) -> Result<String, String> {
    if let Some(path) = override_file {
        return from_file(path, "--secret-file");
    }
    match source {
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            Ok(_) => Err(format!(
                "environment variable {var} is empty (the manifest's auth.secret says env = \"{var}\")"
            )),
            Err(_) => Err(format!(
                "environment variable {var} is not set (the manifest's auth.secret says env = \"{var}\")"
            )),
        },
        SecretSource::File(path) => from_file(Path::new(path), "the manifest's auth.secret file"),
        SecretSource::Provisioned => from_file(
            &provisioned_secret_path(state_dir),
            "provisioned storage (auth.secret = \"provisioned\")",
        ),
    }
}

fn from_file(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the device secret from {} ({what}): {e}",
            path.display()
        )
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!(
            "the device secret file {} ({what}) is empty",
            path.display()
        ));
    }
    Ok(secret.to_owned())
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
            load(SecretSource::Provisioned, Some(&file), dir.path()).unwrap(),
            "abc123"
        );
        std::fs::write(&file, "\n").unwrap();
        let err = load(SecretSource::Provisioned, Some(&file), dir.path()).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = load(SecretSource::Provisioned, None, dir.path()).unwrap_err();
        assert!(err.contains("provisioned"), "{err}");
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = load(
            SecretSource::Env("ALIOT_TEST_SURELY_UNSET_VAR"),
            None,
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("ALIOT_TEST_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn provisioned_secret_is_read_from_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = provisioned_secret_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "p-secret").unwrap();
        assert_eq!(
            load(SecretSource::Provisioned, None, dir.path()).unwrap(),
            "p-secret"
        );
    }
}
