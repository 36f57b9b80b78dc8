//! Generates `aliot_app::manifest::*` from the device manifest (`$ALIOT_MANIFEST`, else the
//! workspace's `manifest/device.toml`), so apps name topics and read settings without
//! knowing the ProductKey or DeviceName, and `aliot_app::thing_model`, the typed API of the
//! manifest's thing model (TSL), if it has one.
//!
//! For this crate's own tests it also generates the API of `tests/fixtures/rich_tsl.json` (the
//! default manifest with that TSL), which uses every type the generator supports (struct,
//! array, date beside the sensor's numbers): `thing_fixture.rs`.

use std::path::Path;

fn main() -> std::process::ExitCode {
    aliot_manifest::emit_generated_files(|m| {
        Ok(vec![
            (
                "manifest_constants.rs".to_owned(),
                aliot_manifest::generate_app_constants(m),
            ),
            (
                "thing_model.rs".to_owned(),
                aliot_manifest::generate_thing_api(m)?,
            ),
            ("thing_fixture.rs".to_owned(), fixture_api()?),
        ])
    })
}

/// The typed API of the test fixture's TSL, owned by the default manifest's `sensor`.
fn fixture_api() -> Result<String, aliot_manifest::ManifestError> {
    let root = aliot_manifest::workspace_root();
    let manifest_dir = root.join("manifest");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rich_tsl.json");
    println!("cargo:rerun-if-changed={}", fixture.display());
    let default = manifest_dir.join("device.toml");
    let text = std::fs::read_to_string(&default)
        .unwrap_or_default()
        .replace(
            "file = \"tsl/sensor.json\"",
            &format!("file = {:?}", fixture.display().to_string()),
        );
    let m = aliot_manifest::parse(&text, &manifest_dir)?;
    aliot_manifest::generate_thing_api(&m)
}
