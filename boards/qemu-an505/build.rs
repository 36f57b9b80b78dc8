//! Puts memory.x where cortex-m-rt's link.x finds it, and turns the device manifest
//! (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into the kernel's `DEVICE` constant,
//! `KERNEL_HEAP_BYTES`, the heap sized from the kernel's worst-case RAM (printed as a build
//! warning, as boards/host does, so every build shows it), and `apps.x`, the regions of the
//! apps' own images (laid out from the manifest, as each app's build lays them out too), which
//! memory.x includes.
use std::{env, fs, path::PathBuf, process::ExitCode};

/// Room for the allocator's own bookkeeping (a few words per block) on top of the kernel's
/// worst case, which counts only what the kernel asks for.
const ALLOCATOR_SLACK: u32 = 1024;

/// The manifest's DeviceSecret from its file, trimmed as the host board trims it; empty
/// (no login) when the manifest keeps it elsewhere.
fn device_secret(m: &aliot_manifest::Manifest) -> Vec<u8> {
    match &m.auth.secret {
        aliot_manifest::SecretSource::File(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            match fs::read(path) {
                Ok(bytes) => bytes.trim_ascii().to_vec(),
                Err(e) => {
                    println!(
                        "cargo:warning=cannot read the secret file {}: {e}",
                        path.display()
                    );
                    Vec::new()
                }
            }
        }
        _ => {
            println!(
                "cargo:warning=the QEMU board reads the DeviceSecret from a file only; the live phase cannot log in"
            );
            Vec::new()
        }
    }
}

fn main() -> ExitCode {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    aliot_manifest::emit_generated_files(|m| {
        let layout = aliot_manifest::image_layout(m, &aliot_manifest::QEMU_AN505)?;
        Ok(vec![
            ("device_config.rs".to_owned(), device_config(m)),
            (
                "apps.x".to_owned(),
                aliot_manifest::generate_kernel_apps_x(&layout),
            ),
        ])
    })
}

/// The kernel's configuration, its worst-case RAM, heap size and login secret.
fn device_config(m: &aliot_manifest::Manifest) -> String {
    println!("cargo:warning={}", aliot_manifest::ram_summary(m));
    let report = aliot_manifest::ram_report(m);
    let secret = device_secret(m);
    let heap = report.total() + ALLOCATOR_SLACK + secret.len() as u32;
    format!(
        "{}\n/// The kernel's worst-case RAM for this manifest, as the build printed it.\npub const KERNEL_WORST_CASE_BYTES: usize = {};\n/// The kernel's heap: its worst case (queues, tables and the link's buffers) plus the login secret and allocator slack.\npub const KERNEL_HEAP_BYTES: usize = {heap};\n/// The DeviceSecret, from the manifest's secret file. This board's stand-in for the chip's credential partition (boards/nrf9160dk provisions it there instead).\npub const DEVICE_SECRET: &[u8] = &{:?};\n",
        aliot_manifest::generate_kernel_config(m),
        report.total(),
        secret
    )
}
