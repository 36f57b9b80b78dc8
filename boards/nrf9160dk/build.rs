//! Puts memory.x where cortex-m-rt's link.x finds it and turns the device manifest
//! (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into `flash.x`, the flash layout the image
//! is linked into (`[flash.active]` after the boot stage's image header; the boot stage in
//! `boot/` links against the same generator), and `device_config.rs`: the kernel's `DEVICE` constant,
//! the heap sized from the kernel's worst-case RAM (printed as a build warning, as the other
//! boards do) and the modem's security tag. No secret is read here: this board takes them
//! from the credentials partition at run time. It also refuses a manifest that needs a kernel
//! feature this build leaves out (`aliot_manifest::check_kernel_features`).
use std::{env, process::ExitCode};

/// Room for the allocator's own bookkeeping (a few words per block) and the login material
/// (secret, client id, password) on top of the kernel's worst case, which counts only what
/// the kernel asks for.
const ALLOCATOR_SLACK: u32 = 2048;

fn main() -> ExitCode {
    if let Err(e) = aliot_manifest::use_board_memory_x() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    aliot_manifest::emit_generated_files(|m| {
        // The kernel features this build has are the board's own (Cargo.toml passes each on).
        let enabled = |feature: &str| {
            let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
            env::var_os(var).is_some()
        };
        aliot_manifest::check_kernel_features(m, enabled).map_err(|message| {
            aliot_manifest::ManifestError::Field {
                field: "mqtt.version, auth.registration or auth.sign_method".to_owned(),
                message,
            }
        })?;
        Ok(vec![
            ("device_config.rs".to_owned(), device_config(m)),
            aliot_manifest::flash_x(m, aliot_manifest::Image::Active),
        ])
    })
}

/// The kernel's configuration, its heap and the board's settings from the manifest.
fn device_config(m: &aliot_manifest::Manifest) -> String {
    println!("cargo:warning={}", aliot_manifest::ram_summary(m));
    let report = aliot_manifest::ram_report(m);
    let heap = report.total() + ALLOCATOR_SLACK;
    // `{:?}` of a str is a Rust string literal.
    let after_attach: Vec<String> = m
        .modem
        .after_attach()
        .iter()
        .map(|c| format!("{c:?}"))
        .collect();
    let power = format!(
        "/// Whether PSM is requested (`[modem] psm`): the modem library starts with PSM support on.\npub const LTE_PSM: bool = {};\n/// `AT+CPSMS`/`AT+CEDRXS` from `[modem] psm` and `edrx`, sent after every attach.\npub const AFTER_ATTACH: &[&str] = &[{}];\n",
        m.modem.psm.is_some(),
        after_attach.join(", ")
    );
    power
        + &format!(
            "{}\n/// The kernel's heap: its worst case (queues, tables and the link's buffers) plus allocator slack.\npub const KERNEL_HEAP_BYTES: usize = {heap};\n/// The modem security tag holding the CA certificate the TLS handshake verifies against (`[modem] security_tag`).\npub const SECURITY_TAG: u32 = {};\n/// Whether the manifest asks for the OTA service (`[firmware] ota`; it runs only in a build with the `ota` feature).\n#[allow(dead_code)]\npub const RUN_OTA: bool = {};\n",
            aliot_manifest::generate_kernel_config(m),
            m.modem.security_tag,
            m.firmware.ota,
        )
}
