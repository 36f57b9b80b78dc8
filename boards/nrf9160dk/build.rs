//! Puts kernel-memory.x where cortex-m-rt's link.x finds it (as memory.x, see
//! `aliot_manifest::use_board_memory_x` for why it is not named so here) and turns the device manifest
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
    if let Err(e) = aliot_manifest::use_board_memory_x("kernel-memory.x") {
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
        ]
        .into_iter()
        .chain(app_images(m)?)
        .collect())
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

/// The apps' images on this board (`aliot_manifest::nrf9160dk_board`: at the top of
/// `[flash.active]`, their RAM above the kernel's): `apps.x`, their regions for the kernel's
/// link, with a check that the kernel's flash ends below them, and `app_images.rs`, the
/// regions as constants for the runtime (src/apps.rs).
fn app_images(
    m: &aliot_manifest::Manifest,
) -> Result<Vec<(String, String)>, aliot_manifest::ManifestError> {
    let board = aliot_manifest::nrf9160dk_board(m);
    let layout = aliot_manifest::image_layout(m, &board)?;
    let mut x = aliot_manifest::generate_kernel_apps_x(&layout);
    x.push_str(&format!(
        "\n/* The kernel's image (code, constants, .data's initial values, veneers) ends below the apps'. */\n__apps_flash_start = {:#010X};\nASSERT(__sidata + SIZEOF(.data) <= __apps_flash_start && __veneer_limit <= __apps_flash_start, \"the kernel's image reaches into the apps' flash at the top of [flash.active]: lower the apps' [[apps]] flash or enlarge [flash.active]\");\n",
        board.app_flash.start
    ));
    let mut rs = String::from(
        "use aliot_cortex_m33::region::Region;\n/// The manifest's apps on this board, in app-id order: name, flash region, RAM region.\npub const APP_IMAGES: &[(&str, Region, Region)] = &[\n",
    );
    for a in &layout.apps {
        rs.push_str(&format!(
            "    ({:?}, Region {{ start: {:#010x}, len: {:#x} }}, Region {{ start: {:#010x}, len: {:#x} }}),\n",
            a.name, a.flash.start, a.flash.len, a.ram.start, a.ram.len
        ));
    }
    rs.push_str(&format!(
        "];\n/// Number of manifest apps.\npub const APP_COUNT: usize = {};\n/// RAM no app may touch: the modem's shared memory and the kernel's RAM.\npub const KERNEL_RAM: Region = Region {{ start: {:#010x}, len: {:#x} }};\n",
        layout.apps.len(),
        aliot_manifest::NRF9160DK_MODEM_RAM.start,
        board.kernel_ram.end() - u64::from(aliot_manifest::NRF9160DK_MODEM_RAM.start),
    ));
    Ok(vec![
        ("apps.x".to_owned(), x),
        ("app_images.rs".to_owned(), rs),
    ])
}
