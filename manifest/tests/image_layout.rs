//! The app-image layout on a Cortex-M33 board: regions aligned, disjoint and inside the board's
//! windows; an app that does not fit is an error naming it; the generated linker text and
//! header constants are pinned by golden files in `tests/generated/` (`BLESS=1` rewrites them:
//! read the diff before committing it).

use std::path::{Path, PathBuf};

use aliot_manifest::{
    APP_FLASH_ALIGN, APP_STATIC_RESERVE, CortexM33Board, MPU_ALIGN, Manifest, NRF9160DK_MODEM_RAM,
    NRF9160DK_RAM, QEMU_AN505, Span, generate_app_header, generate_app_regions_x,
    generate_kernel_apps_x, image_layout, nrf9160dk_board, parse,
};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// `tests/good/minimal.toml` (two apps of 4096 bytes RAM, default flash) with `edit` applied.
fn minimal_with(edit: impl Fn(String) -> String) -> Manifest {
    let text = std::fs::read_to_string(dir("good").join("minimal.toml")).expect("readable");
    parse(&edit(text), &dir("good")).unwrap_or_else(|e| panic!("{e}"))
}

fn board(app_flash: Span, app_ram: Span) -> CortexM33Board {
    CortexM33Board {
        name: "test-board",
        app_flash,
        app_ram,
        ..QEMU_AN505
    }
}

fn overlaps(a: Span, b: Span) -> bool {
    u64::from(a.start) < b.end() && u64::from(b.start) < a.end()
}

#[test]
fn regions_are_aligned_disjoint_and_inside_the_windows() {
    let m = minimal_with(|t| {
        t.replace(
            "memory = 4096\npublish = [\"ceshi\"]",
            "memory = 8192\nflash = 8192\npublish = [\"ceshi\"]",
        )
    });
    // Windows that start off their alignment: the layout rounds up, never down.
    let flash = Span {
        start: 0x0010_0010,
        len: 0x3_0000,
    };
    let ram = Span {
        start: 0x2000_0004,
        len: 0x8000,
    };
    let l = image_layout(&m, &board(flash, ram)).expect("fits");
    assert_eq!(l.apps.len(), 2);
    assert_eq!(
        l.apps.iter().map(|a| (a.flash, a.ram)).collect::<Vec<_>>(),
        [
            (
                Span {
                    start: 0x0010_1000,
                    len: 0x1_0000
                },
                Span {
                    start: 0x2000_0020,
                    len: 4096
                }
            ),
            (
                Span {
                    start: 0x0011_1000,
                    len: 8192
                },
                Span {
                    start: 0x2000_1020,
                    len: 8192
                }
            ),
        ]
    );
    for (i, a) in l.apps.iter().enumerate() {
        assert_eq!(a.id, i);
        assert_eq!(a.flash.start % APP_FLASH_ALIGN, 0, "{a:?}");
        assert_eq!(a.flash.len % APP_FLASH_ALIGN, 0, "{a:?}");
        assert_eq!(a.ram.start % MPU_ALIGN, 0, "{a:?}");
        assert_eq!(a.ram.len % MPU_ALIGN, 0, "{a:?}");
        assert!(
            flash.contains(a.flash.start.into(), a.flash.len.into()),
            "{a:?}"
        );
        assert!(ram.contains(a.ram.start.into(), a.ram.len.into()), "{a:?}");
        assert_eq!(a.stack_size, a.ram.len - APP_STATIC_RESERVE);
        for b in &l.apps[i + 1..] {
            assert!(!overlaps(a.flash, b.flash), "{a:?} {b:?}");
            assert!(!overlaps(a.ram, b.ram), "{a:?} {b:?}");
        }
    }
    assert_eq!(l.app("second").map(|a| a.id), Ok(1));
    let e = l.app("third").expect_err("not in the manifest");
    assert_eq!(
        e.to_string(),
        "apps: no app named `third`, which this image is built as; allowed: an app of the manifest (first, second)"
    );
}

#[test]
fn an_app_whose_flash_does_not_fit_is_named() {
    let m = minimal_with(|t| t);
    let ram = QEMU_AN505.app_ram;
    // Two default apps need 128 KiB: exactly enough fits, one page less does not.
    let exact = Span {
        start: 0x1000,
        len: 0x2_0000,
    };
    assert!(image_layout(&m, &board(exact, ram)).is_ok());
    let short = Span {
        start: 0x1000,
        len: 0x2_0000 - 1,
    };
    let e = image_layout(&m, &board(short, ram)).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("apps[1].flash"));
    assert_eq!(
        e.to_string(),
        "apps[1].flash: app `second` (65536 bytes) does not fit: the apps need 131072 bytes of flash in total (each region whole 4096-byte pages), board test-board gives 131071 bytes at 0x00001000; allowed: a total that fits, so lower the apps' flash"
    );
    // Rounding the window's start up to a page eats into it.
    let unaligned = Span {
        start: 0x1004,
        len: 0x2_0000,
    };
    assert!(image_layout(&m, &board(unaligned, ram)).is_err());
    // The top of the address space: no wrap-around.
    let top = Span {
        start: 0xFFFF_0000,
        len: 0xFFFF,
    };
    let e = image_layout(&m, &board(top, ram)).expect_err("runs past 4 GiB");
    assert_eq!(e.field_path(), Some("apps[0].flash"));
}

#[test]
fn an_app_whose_ram_does_not_fit_is_named() {
    let m = minimal_with(|t| t);
    let ram = Span {
        start: 0x2000_0000,
        len: 8191,
    };
    let e = image_layout(&m, &board(QEMU_AN505.app_flash, ram)).expect_err("one byte short");
    assert_eq!(e.field_path(), Some("apps[1].memory"));
    assert!(
        e.to_string()
            .contains("app `second` (4096 bytes) does not fit"),
        "{e}"
    );
}

#[test]
fn an_app_whose_memory_leaves_no_stack_is_named() {
    let m = minimal_with(|t| t.replacen("memory = 4096", "memory = 2272", 1));
    let e = image_layout(&m, &QEMU_AN505).expect_err("2048 statics + 224 stack");
    assert_eq!(
        e.to_string(),
        "apps[0].memory: app `first` (2272 bytes) leaves no stack: its image keeps 2048 bytes for statics below a stack of at least 256; allowed on board qemu-an505: at least 2304"
    );
    let m = minimal_with(|t| t.replacen("memory = 4096", "memory = 2304", 1));
    assert_eq!(
        image_layout(&m, &QEMU_AN505).map(|l| l.apps[0].stack_size),
        Ok(256)
    );
}

#[test]
fn the_qemu_board_keeps_kernel_and_apps_apart() {
    let b = QEMU_AN505;
    assert!(!overlaps(b.kernel_flash, b.app_flash));
    assert!(!overlaps(b.kernel_ram, b.app_ram));
    assert!(!overlaps(b.kernel_flash, b.kernel_ram));
}

#[test]
fn the_nrf9160dk_puts_the_apps_at_the_top_of_the_active_slot_and_above_the_kernels_ram() {
    for manifest in ["device.toml", "examples/regnwl.toml"] {
        let m = aliot_manifest::load(&dir("..").join(manifest)).unwrap_or_else(|e| panic!("{e}"));
        let b = nrf9160dk_board(&m);
        let active = m.flash.active;
        // The image header at the slot's start, then the kernel, apps up to its end, nothing
        // between or outside.
        assert_eq!(
            b.kernel_flash.start,
            active.offset + aliot_manifest::IMAGE_HEADER_LEN,
            "{manifest}"
        );
        assert_eq!(
            u64::from(b.app_flash.start),
            b.kernel_flash.end(),
            "{manifest}"
        );
        assert_eq!(b.app_flash.end(), active.end(), "{manifest}");
        let l = image_layout(&m, &b).unwrap_or_else(|e| panic!("{manifest}: {e}"));
        assert_eq!(l.board, "nrf9160dk");
        // Each manifest app (64 KiB of flash by default) back to back in the window.
        assert_eq!(
            l.apps.iter().map(|a| a.flash.len).sum::<u32>(),
            b.app_flash.len,
            "{manifest}"
        );
        for a in &l.apps {
            assert!(!overlaps(a.flash, b.kernel_flash), "{a:?}");
            assert!(!overlaps(a.ram, b.kernel_ram), "{a:?}");
            assert!(!overlaps(a.ram, NRF9160DK_MODEM_RAM), "{a:?}");
            assert!(
                NRF9160DK_RAM.contains(a.ram.start.into(), a.ram.len.into()),
                "{a:?}"
            );
            assert_eq!(a.ram.start % MPU_ALIGN, 0, "{a:?}");
        }
    }
    // The three RAM parts tile the chip's RAM: modem, kernel, apps.
    let b = nrf9160dk_board(&minimal_with(|t| t));
    assert_eq!(NRF9160DK_MODEM_RAM.end(), u64::from(b.kernel_ram.start));
    assert_eq!(b.kernel_ram.end(), u64::from(b.app_ram.start));
    assert_eq!(b.app_ram.end(), NRF9160DK_RAM.end());
}

#[test]
fn apps_too_large_for_the_nrf9160dk_slot_are_named() {
    // Two apps of 256 KiB each: more than the default 484 KiB slot.
    let m = minimal_with(|t| t.replace("memory = 4096\n", "memory = 4096\nflash = 262144\n"));
    let e = image_layout(&m, &nrf9160dk_board(&m)).expect_err("512 KiB of apps");
    assert!(
        e.to_string().starts_with("apps[1].flash: app `second`"),
        "{e}"
    );
    // Apps needing more than the 64 KiB RAM window.
    let m = minimal_with(|t| t.replace("memory = 4096\n", "memory = 40960\n"));
    let e = image_layout(&m, &nrf9160dk_board(&m)).expect_err("80 KiB of app RAM");
    assert!(
        e.to_string().starts_with("apps[1].memory: app `second`"),
        "{e}"
    );
}

/// Compares `got` with `tests/generated/<name>`, or rewrites it under `BLESS`.
fn golden(name: &str, got: &str) {
    let path = dir("generated").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, got).expect("writable golden file");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert_eq!(
        got,
        want,
        "{} differs (BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn generated_linker_text_and_header_match_golden_files() {
    let m = aliot_manifest::load(&dir("..").join("device.toml")).unwrap_or_else(|e| panic!("{e}"));
    let l = image_layout(&m, &QEMU_AN505).unwrap_or_else(|e| panic!("{e}"));
    golden("qemu-an505-apps.x", &generate_kernel_apps_x(&l));
    let app = l.app("publish_test").unwrap_or_else(|e| panic!("{e}"));
    golden(
        "qemu-an505-publish_test.x",
        &generate_app_regions_x(&l, app),
    );
    golden("qemu-an505-publish_test.rs", &generate_app_header(&l, app));
}
