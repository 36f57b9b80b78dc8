//! Generates `aliot_app::manifest::*` from the device manifest (`$ALIOT_MANIFEST`, else the
//! workspace's `manifest/device.toml`), so apps name topics and read settings without
//! knowing the ProductKey or DeviceName.

fn main() -> std::process::ExitCode {
    aliot_manifest::emit_generated(
        "manifest_constants.rs",
        aliot_manifest::generate_app_constants,
    )
}
