//! Where each app's own image sits on a Cortex-M33 board, and the linker text and header
//! constants that put it there.
//!
//! On such a board every app is built and linked on its own, for a flash region (its header,
//! code and constants) and a RAM region (its statics at the bottom, its stack at the top) that
//! the MPU opens to it alone. The regions come from the manifest, so the kernel's linker
//! script, each app's linker script and each app's header cannot disagree: the kernel's build
//! reads [`generate_kernel_apps_x`], an app's build [`generate_app_regions_x`] and
//! [`generate_app_header`], and the image builder checks the linked ELFs against the same
//! [`ImageLayout`].
//!
//! Flash: apps back to back in manifest order from the board's app flash window, each
//! `[[apps]] flash` bytes (whole 4 KiB pages, so writing one app's image never erases a page of
//! another's). RAM: [`crate::memory_layout`] in the board's app RAM window, each app's `memory`
//! bytes. The stack is an app's RAM less [`APP_STATIC_RESERVE`] bytes for its statics (apps keep
//! their state on the stack; the app's linker script checks that its `.bss` fits the reserve).

use std::fmt::Write as _;

use crate::error::ManifestError;
use crate::layout::memory_layout;
use crate::linker::IMAGE_HEADER_LEN;
use crate::model::Manifest;
use crate::validate::APP_FLASH_ALIGN;

/// Bytes below an app's stack for its statics (`.bss`); the rest of its RAM is stack.
pub const APP_STATIC_RESERVE: u32 = 2048;

/// Smallest stack an app image may have (the runtime's `aliot_cortex_m33::header::MIN_STACK`:
/// two exception frames and a little more).
pub const APP_MIN_STACK: u32 = 256;

/// A range of addresses: `start .. start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First address.
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Span {
    /// First address after the span (as `u64`: a span may end at the top of the address space).
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.len)
    }

    /// Whether `start .. start + len` lies inside this span.
    pub fn contains(&self, start: u64, len: u64) -> bool {
        start >= u64::from(self.start) && start + len <= self.end()
    }
}

/// A Cortex-M33 board's memory as the image builder sees it: where the kernel's image lives
/// and the windows the apps' images are laid out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CortexM33Board {
    /// The board's name, used in messages and the map.
    pub name: &'static str,
    /// Flash the kernel's image (with any test apps linked into it) must stay in.
    pub kernel_flash: Span,
    /// RAM the kernel's image must stay in.
    pub kernel_ram: Span,
    /// Flash the apps' own images are laid out in.
    pub app_flash: Span,
    /// RAM the apps' own images are laid out in.
    pub app_ram: Span,
}

/// QEMU `mps2-an505`: SSRAM1 (the "flash" QEMU loads images into) at 0x1000_0000 and SSRAM2/3
/// at 0x3800_0000, 4 MiB each (Secure aliases). The kernel's `memory.x` uses the first
/// 0x21_0000 bytes of each (its own 2 MiB of flash and 1 MiB of RAM, then the test apps linked
/// into it); the apps' images get the rest.
pub const QEMU_AN505: CortexM33Board = CortexM33Board {
    name: "qemu-an505",
    kernel_flash: Span {
        start: 0x1000_0000,
        len: 0x21_0000,
    },
    kernel_ram: Span {
        start: 0x3800_0000,
        len: 0x21_0000,
    },
    app_flash: Span {
        start: 0x1021_0000,
        len: 0x1F_0000,
    },
    app_ram: Span {
        start: 0x3821_0000,
        len: 0x1F_0000,
    },
};

/// The nRF9160 DK's RAM: 256 KiB at 0x2000_0000.
pub const NRF9160DK_RAM: Span = Span {
    start: 0x2000_0000,
    len: 0x4_0000,
};

/// The modem's shared memory on the nRF9160 DK: the first 32 KiB of RAM (libmodem wants it in
/// the first 128 KiB and the SPU opens it to the modem in 8 KiB regions), no app's or the
/// kernel's.
pub const NRF9160DK_MODEM_RAM: Span = Span {
    start: 0x2000_0000,
    len: 0x8000,
};

/// The apps' RAM window on the nRF9160 DK: the top 64 KiB, above the kernel's (`.data`, `.bss`,
/// then its stack growing down from the window's start). A fixed window, so the kernel's
/// `memory.x` is fixed too; the manifest's apps are laid out inside it (32-byte MPU regions) and
/// a set of apps that needs more fails the build, naming the app that does not fit.
pub const NRF9160DK_APP_RAM: Span = Span {
    start: 0x2003_0000,
    len: 0x1_0000,
};

/// The kernel's RAM on the nRF9160 DK: between the modem's shared memory and the apps' window
/// (`RAM` in `boards/nrf9160dk/kernel-memory.x`).
pub const NRF9160DK_KERNEL_RAM: Span = Span {
    start: 0x2000_8000,
    len: 0x2_8000,
};

/// The nRF9160 DK, laid out from the manifest's `[flash.active]`: the image header the boot
/// stage checks ([`IMAGE_HEADER_LEN`] bytes), then the kernel's image (its vector table first,
/// where the boot stage jumps), the apps' images at the top of the slot, each `[[apps]] flash` bytes in whole pages. Both are inside
/// `[flash.active]`, so an OTA image of the slot carries the apps with the kernel they were
/// built for (an app is never left behind running against a new kernel's ABI). RAM: the modem's
/// 32 KiB, then [`NRF9160DK_KERNEL_RAM`], then [`NRF9160DK_APP_RAM`].
///
/// The apps sit at the top, not right after the kernel's last byte, so their addresses do not
/// depend on the kernel's size: each image is linked once, and the kernel's linker script
/// refuses a kernel that grows into them. The price: the slot's bytes between the kernel and
/// the apps are erased flash that an OTA image of the whole slot carries too.
pub fn nrf9160dk_board(m: &Manifest) -> CortexM33Board {
    let active = m.flash.active;
    let align = u64::from(APP_FLASH_ALIGN);
    let apps: u64 = m
        .apps
        .iter()
        .map(|a| u64::from(a.flash).div_ceil(align) * align)
        .sum();
    // More than the slot: the window is the whole slot and `image_layout` names the app that
    // does not fit.
    let apps = apps.min(u64::from(active.size));
    let app_start = active.end() - apps;
    // The kernel is linked after the image header the boot stage checks (`IMAGE_HEADER_LEN`).
    let kernel_start = u64::from(active.offset) + u64::from(IMAGE_HEADER_LEN.min(active.size));
    CortexM33Board {
        name: "nrf9160dk",
        kernel_flash: Span {
            start: kernel_start as u32,
            // Below 2^32: inside the slot.
            len: app_start.saturating_sub(kernel_start) as u32,
        },
        kernel_ram: NRF9160DK_KERNEL_RAM,
        app_flash: Span {
            start: app_start as u32,
            len: apps as u32,
        },
        app_ram: NRF9160DK_APP_RAM,
    }
}

/// One app's image regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppImage {
    /// The app's name in the manifest.
    pub name: String,
    /// The app's id (its index in the manifest).
    pub id: usize,
    /// Its flash region: header first, then code and constants.
    pub flash: Span,
    /// Its RAM region: statics at the bottom, the stack at the top.
    pub ram: Span,
    /// Stack bytes at the top of `ram` (what its header declares).
    pub stack_size: u32,
}

/// Every manifest app's image regions on one board, in app-id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayout {
    /// The board's name.
    pub board: &'static str,
    /// One entry per manifest app, in app-id order.
    pub apps: Vec<AppImage>,
}

impl ImageLayout {
    /// The app named `name`; the error lists the manifest's apps.
    pub fn app(&self, name: &str) -> Result<&AppImage, ManifestError> {
        self.apps.iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.apps.iter().map(|a| a.name.as_str()).collect();
            ManifestError::field(
                "apps",
                format!(
                    "no app named `{name}`, which this image is built as; allowed: an app of the manifest ({})",
                    known.join(", ")
                ),
            )
        })
    }
}

/// Lays out every manifest app's image on `board`; an error names the first app that does not
/// fit its window or whose `memory` leaves no stack.
pub fn image_layout(m: &Manifest, board: &CortexM33Board) -> Result<ImageLayout, ManifestError> {
    let ram = memory_layout(m, board.app_ram.start, board.app_ram.len)?;
    let align = u64::from(APP_FLASH_ALIGN);
    let window_end = board.app_flash.end();
    let total: u64 = m.apps.iter().map(|a| u64::from(a.flash)).sum();
    let mut cursor = u64::from(board.app_flash.start).div_ceil(align) * align;
    let mut apps = Vec::with_capacity(m.apps.len());
    for (i, (app, region)) in m.apps.iter().zip(&ram.regions).enumerate() {
        // `flash` is validated as whole pages; align again for a hand-built Manifest.
        let size = u64::from(app.flash).div_ceil(align) * align;
        let end = cursor + size;
        if end > window_end || end > u64::from(u32::MAX) + 1 {
            return Err(ManifestError::field(
                format!("apps[{i}].flash"),
                format!(
                    "app `{}` ({} bytes) does not fit: the apps need {total} bytes of flash in total (each region whole {APP_FLASH_ALIGN}-byte pages), board {} gives {} bytes at {:#010x}; allowed: a total that fits, so lower the apps' flash",
                    app.name, app.flash, board.name, board.app_flash.len, board.app_flash.start
                ),
            ));
        }
        let min_memory = APP_STATIC_RESERVE + APP_MIN_STACK;
        if region.size < min_memory {
            return Err(ManifestError::field(
                format!("apps[{i}].memory"),
                format!(
                    "app `{}` ({} bytes) leaves no stack: its image keeps {APP_STATIC_RESERVE} bytes for statics below a stack of at least {APP_MIN_STACK}; allowed on board {}: at least {min_memory}",
                    app.name, app.memory, board.name
                ),
            ));
        }
        apps.push(AppImage {
            name: app.name.clone(),
            id: i,
            // Below 2^32: checked above.
            flash: Span {
                start: cursor as u32,
                len: size as u32,
            },
            ram: Span {
                start: region.start,
                len: region.size,
            },
            stack_size: region.size - APP_STATIC_RESERVE,
        });
        cursor = end;
    }
    Ok(ImageLayout {
        board: board.name,
        apps,
    })
}

const GENERATED: &str =
    "/* @generated by aliot-manifest from the device manifest; do not edit. */\n";

/// The kernel's linker fragment: a `MEMORY` region pair per app, named after it
/// (`PUBLISH_TEST_FLASH`, `PUBLISH_TEST_RAM`), and the symbols the board reads to find app
/// `N`'s regions: `__appN_flash_start`, `__appN_flash_end`, `__appN_ram_start`, `__appN_ram_end`.
/// Nothing of the kernel's image is linked into these regions.
pub fn generate_kernel_apps_x(layout: &ImageLayout) -> String {
    let mut s = String::from(GENERATED);
    let _ = writeln!(
        s,
        "/* The apps' own images on {}: each is built and linked on its own for these regions\n * and loaded next to the kernel; nothing of the kernel's image goes here. */",
        layout.board
    );
    let _ = writeln!(s, "MEMORY\n{{");
    for a in &layout.apps {
        let upper = a.name.to_ascii_uppercase();
        for (kind, span) in [("FLASH", a.flash), ("RAM", a.ram)] {
            let _ = writeln!(
                s,
                "  {:<24} : ORIGIN = {:#010X}, LENGTH = {:#010X}",
                format!("{upper}_{kind}"),
                span.start,
                span.len
            );
        }
    }
    let _ = writeln!(s, "}}");
    for a in &layout.apps {
        let upper = a.name.to_ascii_uppercase();
        let _ = writeln!(s, "\n/* app {}: {} */", a.id, a.name);
        for kind in ["flash", "ram"] {
            let region = format!("{upper}_{}", kind.to_ascii_uppercase());
            let _ = writeln!(s, "__app{}_{kind}_start = ORIGIN({region});", a.id);
            let _ = writeln!(
                s,
                "__app{}_{kind}_end = ORIGIN({region}) + LENGTH({region});",
                a.id
            );
        }
    }
    s
}

/// An app's linker fragment: its `FLASH` and `RAM` regions and `__app_stack_size`, the stack
/// at the top of `RAM` (the app's own script checks its `.bss` stays below it).
pub fn generate_app_regions_x(layout: &ImageLayout, app: &AppImage) -> String {
    let mut s = String::from(GENERATED);
    let _ = writeln!(
        s,
        "/* App {} `{}` on {}: its own flash and RAM regions, as the kernel's image names them. */",
        app.id, app.name, layout.board
    );
    let _ = writeln!(s, "MEMORY\n{{");
    let _ = writeln!(
        s,
        "  FLASH : ORIGIN = {:#010X}, LENGTH = {:#010X}",
        app.flash.start, app.flash.len
    );
    let _ = writeln!(
        s,
        "  RAM   : ORIGIN = {:#010X}, LENGTH = {:#010X}",
        app.ram.start, app.ram.len
    );
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "\n__app_stack_size = {:#X};", app.stack_size);
    s
}

/// Rust constants for an app's header: `APP_NAME`, `APP_ID`, `STACK_SIZE` and `RAM_SIZE`.
pub fn generate_app_header(layout: &ImageLayout, app: &AppImage) -> String {
    let mut s =
        String::from("// @generated by aliot-manifest from the device manifest; do not edit.\n");
    let _ = writeln!(
        s,
        "/// The manifest app this image is (on board {}).",
        layout.board
    );
    let _ = writeln!(s, "pub const APP_NAME: &str = {:?};", app.name);
    let _ = writeln!(s, "/// Its app id (its index in the manifest).");
    let _ = writeln!(s, "pub const APP_ID: u8 = {};", app.id);
    let _ = writeln!(
        s,
        "/// Stack bytes at the top of its RAM: its RAM less {APP_STATIC_RESERVE} bytes for statics."
    );
    let _ = writeln!(s, "pub const STACK_SIZE: u32 = {};", app.stack_size);
    let _ = writeln!(s, "/// Its RAM in bytes: the manifest's `memory`.");
    let _ = writeln!(s, "pub const RAM_SIZE: u32 = {};", app.ram.len);
    s
}
