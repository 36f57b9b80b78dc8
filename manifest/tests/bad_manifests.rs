//! Every manifest in `tests/bad/` must be rejected with exactly the message in the `.expected`
//! file beside it, and `tests/good/minimal.toml` (which every bad file is derived from) must be
//! accepted, so each bad file fails for the one reason it was written for.
//!
//! To review message changes: `BLESS=1 cargo test -p aliot-manifest --test bad_manifests`
//! rewrites the `.expected` files; read the diff before committing it.

use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Secrets written inline in the bad files; no error message may repeat them.
const INLINE_SECRETS: &[&str] = &["NotARealSecretButInline01"];

#[test]
fn minimal_manifest_is_valid() {
    let path = dir("good").join("minimal.toml");
    let m = aliot_manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.apps.len(), 2);
}

#[test]
fn bad_manifests_fail_with_their_expected_messages() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir("bad"))
        .expect("tests/bad exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 40,
        "only {} bad manifests found",
        entries.len()
    );
    let mut failures = Vec::new();
    for path in &entries {
        let text = std::fs::read_to_string(path).expect("readable bad manifest");
        let base = path.parent().expect("file has a parent");
        let got = match aliot_manifest::parse(&text, base) {
            Ok(_) => {
                failures.push(format!(
                    "{}: accepted, but should be rejected",
                    path.display()
                ));
                continue;
            }
            Err(e) => e.to_string(),
        };
        for secret in INLINE_SECRETS {
            assert!(
                !got.contains(secret),
                "{}: the error repeats the inline secret",
                path.display()
            );
        }
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).expect("write .expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if got != expected.trim_end() {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {got}",
                path.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn load_reports_the_file_and_the_field() {
    let path = dir("bad").join("keepalive_too_low.toml");
    let e = aliot_manifest::load(&path).expect_err("bad manifest");
    assert_eq!(e.field_path(), Some("mqtt.keepalive_secs"));
    let shown = e.to_string();
    assert!(shown.starts_with(&path.display().to_string()), "{shown}");
}

#[test]
fn load_of_a_missing_file_is_an_io_error() {
    let path = dir("bad").join("does-not-exist.toml");
    let e = aliot_manifest::load(&path).expect_err("missing file");
    assert!(
        matches!(e, aliot_manifest::ManifestError::Io { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("does-not-exist.toml"), "{e}");
}
