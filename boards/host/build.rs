//! Turns the device manifest (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into the
//! kernel's `DEVICE` constant for this board.

fn main() -> std::process::ExitCode {
    aliot_manifest::emit_generated("device_config.rs", aliot_manifest::generate_kernel_config)
}
