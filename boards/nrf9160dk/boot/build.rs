//! Links the boot stage into `[flash.bootloader]` of the device manifest (`$ALIOT_MANIFEST`,
//! else `manifest/device.toml`) with the same `flash.x` generator as the firmware
//! (`aliot_manifest::flash_x`), and writes `device_config.rs`: the manifest's `DEVICE`, whose
//! `ota` partitions the boot stage manages. No secret is read.
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = aliot_manifest::use_board_memory_x("memory.x") {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    aliot_manifest::emit_generated_files(|m| {
        Ok(vec![
            (
                "device_config.rs".to_owned(),
                aliot_manifest::generate_kernel_config(m),
            ),
            aliot_manifest::flash_x(m, aliot_manifest::Image::Bootloader),
        ])
    })
}
