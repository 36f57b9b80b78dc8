//! Generates `aliot_app::manifest::*` from the device manifest.

use std::path::PathBuf;

// TEMPORARY fallback until the aliot-manifest crate lands: the constants the generator
// will emit for the default manifest, written by hand. UNFINISHED: replace with
// `aliot_manifest::generate_app_constants(&aliot_manifest::load(&path)?)`.
const FALLBACK: &str = r#"
/// The device's ProductKey.
pub const PRODUCT_KEY: &str = "a1NrfDemo01";
/// The device's DeviceName.
pub const DEVICE_NAME: &str = "nrf9160-dk-01";
/// The manifest's named topics, expanded.
pub mod topics {
    /// `update` (publish).
    pub const UPDATE: &str = "/a1NrfDemo01/nrf9160-dk-01/user/update";
    /// `update_error` (publish).
    pub const UPDATE_ERROR: &str = "/a1NrfDemo01/nrf9160-dk-01/user/update/error";
    /// `get` (subscribe).
    pub const GET: &str = "/a1NrfDemo01/nrf9160-dk-01/user/get";
    /// `ceshi` (both).
    pub const CESHI: &str = "/a1NrfDemo01/nrf9160-dk-01/user/ceshi";
}
/// The manifest's apps.
pub mod apps {
    /// App `publish_test`.
    pub mod publish_test {
        /// The app's name.
        pub const NAME: &str = "publish_test";
        /// The app's settings.
        pub const SETTINGS: &[(&str, &str)] = &[("interval_secs", "20")];
    }
    /// App `echo`.
    pub mod echo {
        /// The app's name.
        pub const NAME: &str = "echo";
        /// The app's settings.
        pub const SETTINGS: &[(&str, &str)] = &[];
    }
}
"#;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("manifest_constants.rs"), FALLBACK).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}
