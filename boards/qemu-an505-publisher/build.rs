//! Lays out the manifest's apps (`$ALIOT_MANIFEST`, else `manifest/device.toml`) on the board
//! named by `$ALIOT_APP_BOARD` (`qemu-an505`, the default, or `nrf9160dk`), as that board's
//! kernel build does, and writes this app's share: its
//! flash and RAM regions (`app-regions.x`, included by app.x) and its header's stack and RAM
//! sizes (`app_image.rs`). The image is the manifest app [`APP`]; a manifest without it fails
//! the build, naming the apps it has.
use std::{env, fs, path::PathBuf, process::ExitCode};

/// The manifest app this image is.
const APP: &str = "publish_test";

/// Which board's layout the image is linked for (the image builder sets it).
const BOARD_ENV: &str = "ALIOT_APP_BOARD";

fn main() -> ExitCode {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("app.x", out.join("app.x")).expect("app.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=app.x");
    println!("cargo:rerun-if-env-changed={BOARD_ENV}");
    let board_name = env::var(BOARD_ENV).unwrap_or_else(|_| "qemu-an505".to_owned());
    aliot_manifest::emit_generated_files(|m| {
        let board = match board_name.as_str() {
            "qemu-an505" => aliot_manifest::QEMU_AN505,
            "nrf9160dk" => aliot_manifest::nrf9160dk_board(m),
            other => {
                return Err(aliot_manifest::ManifestError::Field {
                    field: BOARD_ENV.to_owned(),
                    message: format!("unknown board `{other}`; allowed: qemu-an505, nrf9160dk"),
                });
            }
        };
        let layout = aliot_manifest::image_layout(m, &board)?;
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
