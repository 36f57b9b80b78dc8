//! The manifest parser and validator on arbitrary text (`aliot_manifest::parse`, what every
//! build script runs through `load`), and, for a manifest that validates, everything the build
//! generates from it: the kernel's config, the app constants, the linker fragments, the RAM
//! report, the memory layout and the QEMU image layout with each app's header and regions.
//! Checked: no panic, no hang; every error displays. The input is a manifest only when it is
//! UTF-8 (the build reads the file as a `String`).

#![no_main]

use std::path::Path;

use aliot_manifest::{
    Image, QEMU_AN505, generate_app_constants, generate_app_header, generate_app_regions_x,
    generate_kernel_apps_x, generate_kernel_config, generate_memory_layout, generate_memory_x,
    image_layout, memory_layout, parse, ram_summary,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match parse(text, Path::new("/fuzz/manifest")) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = generate_kernel_config(&m);
    let _ = generate_app_constants(&m);
    let _ = generate_memory_x(&m, Image::Active);
    let _ = generate_memory_x(&m, Image::Bootloader);
    let _ = ram_summary(&m);
    match memory_layout(&m, 0x2000_0000, 0x4_0000) {
        Ok(layout) => {
            let _ = generate_memory_layout(&layout);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match image_layout(&m, &QEMU_AN505) {
        Ok(layout) => {
            let _ = generate_kernel_apps_x(&layout);
            for app in &layout.apps {
                let _ = generate_app_header(&layout, app);
                let _ = generate_app_regions_x(&layout, app);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
