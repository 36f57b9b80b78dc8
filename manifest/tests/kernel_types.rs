//! The generated kernel config must name exactly the fields and variants that
//! `kernel_component/src/config.rs` (and `budget.rs`, for `AppBudget`) defines.
//!
//! Two checks. The first reads the type definitions as text and compares every struct literal
//! and variant the generator emits for the default, the minimal and every example manifest, so
//! a renamed or added field shows up with its name. The second compiles: the generated config of
//! each example is committed under `tests/generated/` and `include!`d below against
//! `aliot_kernel::config`. `tests/examples.rs` keeps the committed files equal to what the
//! generator emits now, and rewrites them with `BLESS=1` (from that test target, which does not
//! include them, so a config that no longer compiles can still be regenerated).

use std::path::{Path, PathBuf};

use aliot_kernel::config::{AuthMode, DeviceConfig, RegistrationTransport, SecretSource};

/// `config.rs` and `budget.rs` (where `AppBudget`, re-exported by `config`, is defined).
fn config_rs() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel_component/src");
    ["config.rs", "budget.rs"]
        .iter()
        .map(|f| {
            let path = dir.join(f);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body (between the braces) of `pub struct NAME` or `pub enum NAME`.
fn body<'a>(src: &'a str, kind: &str, name: &str) -> &'a str {
    let head = format!("pub {kind} {name} {{");
    let start = src
        .find(&head)
        .unwrap_or_else(|| panic!("`{head}` not in config.rs"))
        + head.len();
    let len = src[start..].find("\n}").expect("closing brace");
    &src[start..start + len]
}

/// The text inside the braces of the struct literal that starts at `src[0]`'s `{`, nested
/// braces included.
fn literal(src: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in src.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &src[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unclosed literal: {src}");
}

/// Field names at the top level of a struct literal's text (nested literals skipped).
fn literal_fields(lit: &str) -> Vec<String> {
    let mut depth = 0usize;
    let mut top = String::new();
    for c in lit.chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            _ if depth == 0 => top.push(c),
            _ => {}
        }
    }
    top.split(',')
        .filter_map(|part| part.split_once(':').map(|(f, _)| f.trim().to_owned()))
        .filter(|f| !f.is_empty() && !f.starts_with("//"))
        .collect()
}

/// Field names of a struct (`pub name: Type,` lines).
fn fields(src: &str, name: &str) -> Vec<String> {
    body(src, "struct", name)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split_once(':').map(|(f, _)| f.trim().to_owned()))
        .collect()
}

/// Variant names of an enum.
fn variants(src: &str, name: &str) -> Vec<String> {
    body(src, "enum", name)
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['(', ',', ' ']).next().unwrap_or("").to_owned())
        .collect()
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.toml` files in `examples/`, sorted.
fn examples() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

fn generated_sources() -> Vec<String> {
    let dir = manifest_dir();
    let mut manifests = vec![dir.join("device.toml"), dir.join("tests/good/minimal.toml")];
    manifests.push(dir.join("tests/good/minimal_register.toml"));
    manifests.extend(examples());
    manifests
        .iter()
        .map(|p| {
            let m = aliot_manifest::load(p).unwrap_or_else(|e| panic!("{e}"));
            aliot_manifest::generate_kernel_config(&m)
        })
        .collect()
}

#[test]
fn every_struct_field_is_set_and_no_other() {
    let src = config_rs();
    for gen_src in generated_sources() {
        for ty in [
            "DeviceConfig",
            "RegistrationConfig",
            "FlashPartition",
            "Endpoint",
            "TlsConfig",
            "TopicDef",
            "AppDef",
            "AppBudget",
        ] {
            let want = fields(&src, ty);
            assert!(!want.is_empty(), "no fields found for {ty}");
            // Each struct literal of this type in the generated source, by its fields.
            let opener = format!("config::{ty} {{");
            let mut seen = 0;
            for (at, _) in gen_src.match_indices(&opener) {
                seen += 1;
                let lit = literal(&gen_src[at + opener.len() - 1..]);
                assert_eq!(
                    literal_fields(lit),
                    want,
                    "{ty} literal sets other fields than config.rs defines:\n{gen_src}"
                );
            }
            assert!(seen > 0, "no {ty} literal in:\n{gen_src}");
        }
        assert_eq!(gen_src.matches("config::DeviceConfig {").count(), 1);
    }
}

#[test]
fn every_emitted_variant_exists() {
    let src = config_rs();
    for gen_src in generated_sources() {
        for ty in [
            "AuthMode",
            "SecretSource",
            "MqttVersion",
            "SignMethod",
            "Direction",
            "RestartPolicy",
            "RegistrationTransport",
        ] {
            let known = variants(&src, ty);
            let needle = format!("config::{ty}::");
            for (at, _) in gen_src.match_indices(&needle) {
                let rest = &gen_src[at + needle.len()..];
                let v: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                assert!(
                    known.contains(&v),
                    "{ty}::{v} is not in config.rs (known: {known:?})"
                );
            }
        }
    }
}

/// The committed generated config of each example, compiled against `aliot_kernel::config`.
/// Module names are the file stems with `-` as `_`.
mod compiled {
    pub mod device_secret {
        include!("generated/device-secret.rs");
    }
    pub mod emulator_register {
        include!("generated/emulator-register.rs");
    }
    pub mod register {
        include!("generated/register.rs");
    }
    pub mod register_https {
        include!("generated/register-https.rs");
    }
    pub mod regnwl {
        include!("generated/regnwl.rs");
    }
}

/// Each compiled config with its example's file stem, in file-name order.
const COMPILED: &[(&str, &DeviceConfig)] = &[
    ("device-secret", &compiled::device_secret::DEVICE),
    ("emulator-register", &compiled::emulator_register::DEVICE),
    ("register-https", &compiled::register_https::DEVICE),
    ("register", &compiled::register::DEVICE),
    ("regnwl", &compiled::regnwl::DEVICE),
];

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file stem")
        .to_owned()
}

#[test]
fn every_example_is_compiled() {
    let stems: Vec<String> = examples().iter().map(|p| stem(p)).collect();
    let compiled: Vec<&str> = COMPILED.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        stems, compiled,
        "add the example's generated config to `mod compiled` and COMPILED"
    );
}

#[test]
fn compiled_configs_carry_the_examples_choices() {
    let by_stem = |s: &str| {
        COMPILED
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, d)| *d)
            .unwrap_or_else(|| panic!("{s} not compiled"))
    };
    let d = by_stem("register-https");
    assert_eq!(d.auth, AuthMode::ProductSecretRegister);
    assert_eq!(d.secret, SecretSource::Env("ALIOT_PRODUCT_SECRET"));
    assert_eq!(d.registration.transport, RegistrationTransport::Https);
    assert_eq!(
        d.registration.https.host,
        "iot-auth.cn-shanghai.aliyuncs.com"
    );
    assert_eq!(d.registration.https.port, 443);
    let d = by_stem("regnwl");
    assert_eq!(d.auth, AuthMode::ProductSecretNoPreRegister);
    assert_eq!(d.registration.instance_id, Some("iot-06z00ab"));
    assert_eq!(
        (d.credentials_partition.offset, d.credentials_partition.size),
        (0xFA000, 0x2000)
    );
    let d = by_stem("device-secret");
    assert_eq!(d.auth, AuthMode::DeviceSecret);
    assert_eq!(d.registration.instance_id, None);
    for (name, d) in COMPILED {
        assert_eq!(d.credentials_partition.erase_page, 4096, "{name}");
        assert!(d.tls.enabled, "{name}");
    }
}
