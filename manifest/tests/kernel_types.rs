//! The generated kernel config must name exactly the fields and variants that
//! `kernel_component/src/config.rs` (and `budget.rs`, for `AppBudget`) defines. Compiling the
//! generated code here would need a build script and the kernel crate (the host board's build
//! does that for real); this test reads the type definitions as text instead, so a renamed or
//! added field shows up here first.

use std::path::Path;

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

fn generated_sources() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default = aliot_manifest::load(&dir.join("device.toml")).expect("default manifest");
    let minimal = aliot_manifest::load(&dir.join("tests/good/minimal.toml")).expect("minimal");
    vec![
        aliot_manifest::generate_kernel_config(&default),
        aliot_manifest::generate_kernel_config(&minimal),
    ]
}

#[test]
fn every_struct_field_is_set_and_no_other() {
    let src = config_rs();
    for gen_src in generated_sources() {
        for ty in [
            "DeviceConfig",
            "Endpoint",
            "TlsConfig",
            "TopicDef",
            "AppDef",
            "AppBudget",
        ] {
            let want = fields(&src, ty);
            assert!(!want.is_empty(), "no fields found for {ty}");
            // The text of each struct literal of this type in the generated source.
            let opener = format!("config::{ty} {{");
            let mut seen = 0;
            for (at, _) in gen_src.match_indices(&opener) {
                seen += 1;
                let lit = &gen_src[at + opener.len()..];
                // A literal ends at the first `}` on the same nesting level; the types here
                // nest only through `&[ ... ]`, so stop at the first line starting with `}`.
                let lit = if ty == "DeviceConfig" {
                    lit
                } else {
                    &lit[..lit.find('}').unwrap_or(lit.len())]
                };
                for f in &want {
                    assert!(
                        lit.contains(&format!("{f}:")),
                        "{ty} literal lacks `{f}`:\n{gen_src}"
                    );
                }
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
