//! Lays out the manifest's apps on the QEMU board (`$ALIOT_MANIFEST`, else
//! `manifest/device.toml`), as the kernel's build does, and writes this app's share: its
//! flash and RAM regions (`app-regions.x`, included by app.x) and its header's stack and RAM
//! sizes (`app_image.rs`). The image is the manifest app [`APP`]; a manifest without it fails
//! the build, naming the apps it has.
use std::{env, fs, path::PathBuf, process::ExitCode};

/// The manifest app this image is.
const APP: &str = "publish_test";

fn main() -> ExitCode {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("app.x", out.join("app.x")).expect("app.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=app.x");
    aliot_manifest::emit_generated_files(|m| {
        let layout = aliot_manifest::image_layout(m, &aliot_manifest::QEMU_AN505)?;
        let app = layout.app(APP)?;
        Ok(vec![
            (
                "app-regions.x".to_owned(),
                aliot_manifest::generate_app_regions_x(&layout, app),
            ),
            (
                "app_image.rs".to_owned(),
                aliot_manifest::generate_app_header(&layout, app),
            ),
        ])
    })
}
