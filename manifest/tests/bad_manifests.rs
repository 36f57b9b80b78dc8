//! Every manifest in `tests/bad/` must be rejected with exactly the message in the `.expected`
//! file beside it, and `tests/good/minimal.toml` and `tests/good/minimal_register.toml` (which
//! every bad file is derived from: the 一型一密 ones from the second) must be accepted, so each
//! bad file fails for the one reason it was written for.
//!
//! To review message changes: `BLESS=1 cargo test -p aliot-manifest --test bad_manifests`
//! rewrites the `.expected` files; read the diff before committing it.
//!
//! Numbers that are the kernel's to decide (the minimum queue sizes, the worst-case RAM and
//! its parts) are placeholders in the `.expected` files, filled from `aliot_kernel::budget`
//! when the test runs: the golden file pins the wording, and the kernel may change its layout
//! without touching it. Placeholders: `{min_event_queue_bytes:N}` and `{min_outbox_bytes:N}`
//! for a `max_payload` of N; `{event_queues}`, `{outboxes}`, `{subscriptions}`, `{tables}`,
//! `{link}` and `{total}` for the worst case of the same manifest with its `ram_budget`
//! raised until it is accepted. `BLESS` leaves files with placeholders alone.

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
fn minimal_register_manifest_is_valid() {
    let path = dir("good").join("minimal_register.toml");
    let m = aliot_manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.auth.mode, aliot_manifest::AuthMode::Register);
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
        let existing = std::fs::read_to_string(&expected_path).ok();
        let has_placeholders = existing.as_deref().is_some_and(|e| e.contains('{'));
        if bless && !has_placeholders {
            std::fs::write(&expected_path, format!("{got}\n")).expect("write .expected");
            continue;
        }
        let expected = existing.unwrap_or_else(|| panic!("{}: missing", expected_path.display()));
        let expected = fill(&expected, &text, base);
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

/// `expected` with its placeholders (see the module docs) replaced.
fn fill(expected: &str, text: &str, base: &Path) -> String {
    use aliot_kernel::budget::{min_event_queue_bytes, min_outbox_bytes};
    let mut out = expected.to_owned();
    for (name, f) in [
        (
            "min_event_queue_bytes",
            min_event_queue_bytes as fn(u32) -> u32,
        ),
        ("min_outbox_bytes", min_outbox_bytes),
    ] {
        let open = format!("{{{name}:");
        while let Some(at) = out.find(&open) {
            let rest = &out[at + open.len()..];
            let end = rest.find('}').expect("placeholder closed");
            let payload: u32 = rest[..end]
                .parse()
                .expect("placeholder argument is a number");
            out = format!("{}{}{}", &out[..at], f(payload), &rest[end + 1..]);
        }
    }
    if out.contains("{total}") {
        let r = accepted_report(text, base);
        for (name, value) in [
            ("event_queues", r.event_queues),
            ("outboxes", r.outboxes),
            ("subscriptions", r.subscriptions),
            ("tables", r.tables),
            ("link", r.link),
            ("total", r.total()),
        ] {
            out = out.replace(&format!("{{{name}}}"), &grouped(value));
        }
    }
    out
}

/// The worst case of a manifest rejected for its `ram_budget` line alone: the same text with
/// the budget at its maximum must be accepted.
fn accepted_report(text: &str, base: &Path) -> aliot_manifest::RamReport {
    let line = text
        .lines()
        .find(|l| l.starts_with("ram_budget = "))
        .expect("an over-budget file sets kernel.ram_budget explicitly");
    let raised = text.replace(
        line,
        &format!("ram_budget = {}", aliot_manifest::KERNEL_RAM_BUDGET_MAX),
    );
    let m = aliot_manifest::parse(&raised, base)
        .unwrap_or_else(|e| panic!("with the budget raised the manifest must pass: {e}"));
    aliot_manifest::ram_report(&m)
}

/// Digits grouped by three with spaces, as the messages print byte counts.
fn grouped(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
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
