//! Valid `[firmware]` and OTA flash layouts: the defaults are the nRF9160's 1 MiB exactly,
//! they follow the values given, the limits of embassy-boot's swap are accepted at the
//! boundary, and the layout reaches the kernel config and the linker regions. Each test starts
//! from `tests/good/minimal.toml` with tables added; the refusals are in `tests/bad/`.

use std::path::Path;

use aliot_manifest::{
    Image, Manifest, Partition, generate_kernel_config, generate_memory_x, parse,
};

/// `minimal.toml` with `tables` added before `[topics]`.
fn with(tables: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good/minimal.toml");
    let text = std::fs::read_to_string(path).expect("good manifest");
    assert_eq!(text.matches("[topics]").count(), 1);
    text.replace("[topics]", &format!("{tables}\n\n[topics]"))
}

fn ok(text: &str) -> Manifest {
    parse(text, Path::new("/srv/dev")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn part(offset: u32, size: u32) -> Partition {
    Partition { offset, size }
}

/// bootloader, active, update, boot state, credentials.
fn layout(m: &Manifest) -> [Partition; 5] {
    let f = &m.flash;
    [
        f.bootloader,
        f.active,
        f.update,
        f.boot_state,
        f.credentials,
    ]
}

#[test]
fn the_defaults_are_the_nrf9160_layout_and_version_1_0_0() {
    let m = ok(&with(""));
    assert_eq!(
        (m.firmware.version.as_str(), m.firmware.module.as_str()),
        ("1.0.0", "default")
    );
    assert_eq!(
        (m.flash.size, m.flash.erase_page, m.flash.write_size),
        (0x10_0000, 4096, 4)
    );
    assert_eq!(
        layout(&m),
        [
            part(0x0, 0x8000),
            part(0x8000, 0x79000),
            part(0x81000, 0x7A000),
            part(0xFB000, 0x1000),
            part(0xFC000, 0x4000),
        ]
    );
    let k = "aliot_kernel::config::";
    let p = |o: &str, s: &str| {
        format!("{k}FlashPartition {{ offset: {o}, size: {s}, erase_page: 4096 }}")
    };
    let line = format!(
        "    ota: {k}OtaConfig {{ version: \"1.0.0\", module: \"default\", bootloader: {}, active: {}, update: {}, boot_state: {} }},\n",
        p("0x0", "0x8000"),
        p("0x8000", "0x79000"),
        p("0x81000", "0x7A000"),
        p("0xFB000", "0x1000")
    );
    let src = generate_kernel_config(&m);
    assert!(src.contains(&line), "{src}");
    assert!(!src.contains("UNFINISHED"), "{src}");
    // The kernel's named default is the same layout.
    let d = aliot_kernel::config::NRF9160_OTA;
    let kernel = [d.bootloader, d.active, d.update, d.boot_state].map(|p| part(p.offset, p.size));
    assert_eq!(kernel[..], layout(&m)[..4]);
    assert_eq!((d.version, d.module), ("1.0.0", "default"));
}

#[test]
fn the_firmware_identity_reaches_the_kernel_config() {
    let long = "9".repeat(64);
    for (version, module) in [
        ("2.3.1-rc.1+build.7", "MCU_main-1.0"),
        // The punctuation allowed (with `-` and `.` above: all but `"` and `\`).
        ("v1!#$%&'()*+,/:;<=>?@[]^_`{|}~", "m"),
        // 64 characters of each; the module: every character it allows.
        (
            long.as_str(),
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
        ),
    ] {
        let text = with(&format!(
            "[firmware]\nversion = {version:?}\nmodule = {module:?}"
        ));
        let m = ok(&text);
        assert_eq!(
            (m.firmware.version.as_str(), m.firmware.module.as_str()),
            (version, module)
        );
        let src = generate_kernel_config(&m);
        assert!(
            src.contains(&format!(
                "OtaConfig {{ version: {version:?}, module: {module:?}, "
            )),
            "{src}"
        );
    }
}

#[test]
fn the_layout_defaults_follow_the_values_given() {
    let cases: [(&str, [Partition; 5]); 6] = [
        // Half the flash: the slots shrink, 57 and 58 pages.
        (
            "[flash]\nsize = 0x80000",
            [
                part(0x0, 0x8000),
                part(0x8000, 0x39000),
                part(0x41000, 0x3A000),
                part(0x7B000, 0x1000),
                part(0x7C000, 0x4000),
            ],
        ),
        // 8 KiB pages: the bootloader keeps 32 KiB (4 pages), one page of state.
        (
            "[flash]\nerase_page = 8192",
            [
                part(0x0, 0x8000),
                part(0x8000, 0x76000),
                part(0x7E000, 0x78000),
                part(0xF6000, 0x2000),
                part(0xF8000, 0x8000),
            ],
        ),
        // 64 KiB pages: the bootloader rounds up to one page; 9 pages for the slots leave one
        // spare page after the update slot.
        (
            "[flash]\nerase_page = 0x10000",
            [
                part(0x0, 0x10000),
                part(0x10000, 0x40000),
                part(0x50000, 0x50000),
                part(0xB0000, 0x10000),
                part(0xC0000, 0x40000),
            ],
        ),
        // 2 KiB pages of 8-byte writes: the state of a 256-page slot needs
        // (2 + 4 x 256) x 8 = 8208 bytes, five pages.
        (
            "[flash]\nerase_page = 2048\nwrite_size = 8",
            [
                part(0x0, 0x8000),
                part(0x8000, 0x79800),
                part(0x81800, 0x7A000),
                part(0xFB800, 0x2800),
                part(0xFE000, 0x2000),
            ],
        ),
        // The credentials moved down: the boot state follows them.
        (
            "[flash.credentials]\noffset = 0xFA000\nsize = 0x2000",
            [
                part(0x0, 0x8000),
                part(0x8000, 0x78000),
                part(0x80000, 0x79000),
                part(0xF9000, 0x1000),
                part(0xFA000, 0x2000),
            ],
        ),
        // The boot state placed after the bootloader and the active slot after it: the slots
        // take the free pages up to the next partition (the credentials).
        (
            "[flash.boot_state]\noffset = 0x8000\n\n[flash.active]\noffset = 0x9000",
            [
                part(0x0, 0x8000),
                part(0x9000, 0x79000),
                part(0x82000, 0x7A000),
                part(0x8000, 0x1000),
                part(0xFC000, 0x4000),
            ],
        ),
    ];
    for (tables, expected) in cases {
        assert_eq!(layout(&ok(&with(tables))), expected, "{tables}");
    }
}

#[test]
fn the_swap_limits_are_accepted_at_the_boundary() {
    // 1 KiB pages, four pages of state = 1024 words: an active slot of 255 pages needs
    // 2 + 4 x 255 = 1022 words, of 256 pages 1026.
    let tables = |active_pages: u32| {
        format!(
            "[flash]\nerase_page = 1024\n\n[flash.active]\nsize = {:#X}\n\n[flash.boot_state]\nsize = 0x1000",
            active_pages * 1024
        )
    };
    let m = ok(&with(&tables(255)));
    // The update slot's default is exactly one page more, the least the swap accepts.
    assert_eq!(m.flash.update.size, m.flash.active.size + 1024);
    let e = parse(&with(&tables(256)), Path::new("/srv/dev")).expect_err("one word short");
    assert_eq!(e.field_path(), Some("flash.boot_state.size"), "{e}");
    assert!(e.to_string().contains("= 4104 bytes"), "{e}");
    assert!(e.to_string().ends_with("at least 0x1400"), "{e}");

    // An update slot exactly one page larger than the active one, given by hand, and placed
    // before it: the order of the slots is free.
    let m = ok(&with(
        "[flash.update]\noffset = 0x8000\nsize = 0x7A000\n\n[flash.active]\noffset = 0x82000\nsize = 0x79000",
    ));
    assert_eq!(
        layout(&m),
        [
            part(0x0, 0x8000),
            part(0x82000, 0x79000),
            part(0x8000, 0x7A000),
            part(0xFB000, 0x1000),
            part(0xFC000, 0x4000),
        ]
    );
}

#[test]
fn the_application_links_into_the_active_slot_after_the_image_header() {
    let m = ok(&with(""));
    assert_eq!(
        generate_memory_x(&m, Image::Active),
        "/* @generated by aliot-manifest from the device manifest; do not edit. */
/* Flash layout for the application, linked into [flash.active] after the image header. RAM is declared by the board's memory.x. */
MEMORY
{
  BOOTLOADER       : ORIGIN = 0x00000000, LENGTH = 0x00008000
  IMAGE_HEADER     : ORIGIN = 0x00008000, LENGTH = 0x00000200
  FLASH            : ORIGIN = 0x00008200, LENGTH = 0x00078E00
  DFU              : ORIGIN = 0x00081000, LENGTH = 0x0007A000
  BOOTLOADER_STATE : ORIGIN = 0x000FB000, LENGTH = 0x00001000
  CREDENTIALS      : ORIGIN = 0x000FC000, LENGTH = 0x00004000
}

__bootloader_state_start = ORIGIN(BOOTLOADER_STATE);
__bootloader_state_end = ORIGIN(BOOTLOADER_STATE) + LENGTH(BOOTLOADER_STATE);

__bootloader_dfu_start = ORIGIN(DFU);
__bootloader_dfu_end = ORIGIN(DFU) + LENGTH(DFU);
"
    );
}

#[test]
fn the_bootloader_links_at_the_start_and_knows_the_active_slot() {
    let m = ok(&with(
        "[flash.credentials]\noffset = 0xFA000\nsize = 0x2000",
    ));
    assert_eq!(
        generate_memory_x(&m, Image::Bootloader),
        "/* @generated by aliot-manifest from the device manifest; do not edit. */
/* Flash layout for the bootloader, linked into [flash.bootloader]. RAM is declared by the board's memory.x. */
MEMORY
{
  FLASH            : ORIGIN = 0x00000000, LENGTH = 0x00008000
  ACTIVE           : ORIGIN = 0x00008000, LENGTH = 0x00078000
  DFU              : ORIGIN = 0x00080000, LENGTH = 0x00079000
  BOOTLOADER_STATE : ORIGIN = 0x000F9000, LENGTH = 0x00001000
  CREDENTIALS      : ORIGIN = 0x000FA000, LENGTH = 0x00002000
}

__bootloader_state_start = ORIGIN(BOOTLOADER_STATE);
__bootloader_state_end = ORIGIN(BOOTLOADER_STATE) + LENGTH(BOOTLOADER_STATE);

__bootloader_active_start = ORIGIN(ACTIVE);
__bootloader_active_end = ORIGIN(ACTIVE) + LENGTH(ACTIVE);

__bootloader_dfu_start = ORIGIN(DFU);
__bootloader_dfu_end = ORIGIN(DFU) + LENGTH(DFU);
"
    );
}

#[test]
fn the_commented_defaults_in_device_toml_are_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("device.toml");
    let text = std::fs::read_to_string(&path).expect("device.toml");
    let start = text.find("# [firmware]\n").expect("a commented [firmware]");
    let end = text.find("\n[kernel]").expect("[kernel]");
    // Uncomment the table headers and `key = value` lines, keep the prose commented.
    let uncommented: String = text[start..end]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(
        uncommented.contains("\n[flash.boot_state]\n"),
        "{uncommented}"
    );
    let explicit = format!("{}{uncommented}{}", &text[..start], &text[end..]);
    let base = path.parent().expect("manifest dir");
    let explicit = parse(&explicit, base).unwrap_or_else(|e| panic!("{e}\n{explicit}"));
    let default = parse(&text, base).expect("device.toml");
    assert_eq!(explicit.firmware, default.firmware);
    assert_eq!(explicit.flash, default.flash);
}
