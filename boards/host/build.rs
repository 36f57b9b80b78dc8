//! Turns the device manifest (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into the
//! kernel's `DEVICE` constant for this board, and prints the kernel's worst-case RAM as a
//! build warning so every build shows it. A manifest over `kernel.ram_budget` fails here.

fn main() -> std::process::ExitCode {
    aliot_manifest::emit_generated("device_config.rs", |m| {
        println!("cargo:warning={}", aliot_manifest::ram_summary(m));
        aliot_manifest::generate_kernel_config(m)
    })
}
