//! Puts memory.x where cortex-m-rt's link.x finds it, and turns the device manifest
//! (`$ALIOT_MANIFEST`, else `manifest/device.toml`) into the kernel's `DEVICE` constant and
//! `KERNEL_HEAP_BYTES`, the heap sized from the kernel's worst-case RAM (printed as a build
//! warning, as boards/host does, so every build shows it).
use std::{env, fs, path::PathBuf, process::ExitCode};

/// Room for the allocator's own bookkeeping (a few words per block) on top of the kernel's
/// worst case, which counts only what the kernel asks for.
const ALLOCATOR_SLACK: u32 = 1024;

fn main() -> ExitCode {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    aliot_manifest::emit_generated("device_config.rs", |m| {
        println!("cargo:warning={}", aliot_manifest::ram_summary(m));
        let heap = aliot_manifest::ram_report(m).kernel_heap() + ALLOCATOR_SLACK;
        format!(
            "{}\n/// The kernel's heap: its worst-case heap for this manifest (no link on this board) plus allocator slack.\npub const KERNEL_HEAP_BYTES: usize = {heap};\n",
            aliot_manifest::generate_kernel_config(m)
        )
    })
}
