//! Generates `aliot_app::manifest::*` from the device manifest (`$ALIOT_MANIFEST`, else the
//! workspace's `manifest/device.toml`), so apps name topics and read settings without
//! knowing the ProductKey or DeviceName, and `aliot_app::thing_model`, the typed API of the
//! manifest's thing model (TSL), if it has one.

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
        ])
    })
}
