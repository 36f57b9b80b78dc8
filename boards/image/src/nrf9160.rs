//! The nRF9160 DK image and its size report: builds `boards/nrf9160dk` in release against a
//! manifest, and each manifest app's image for the DK's layout ([`crate::nrf_apps`]: at the top
//! of `[flash.active]`), checks that every part's segments lie in its regions and that no two
//! overlap, and attributes every byte of the kernel's image to our code, the modem library or
//! the rest; each app is its own part of the report. The boot stage (`boards/nrf9160dk/boot`,
//! [`crate::nrf9160_boot`]) is built too, reported as its own part and checked against
//! `[flash.bootloader]`. It writes one Intel HEX (boot stage, image header, kernel, apps) and
//! the OTA image (header, kernel, apps): the header's length and SHA-256 cover the apps too.
//!
//! The budgets it enforces (issue 11): the image within the manifest's flash layout and the
//! board's RAM (with room for the stack), and our code, meaning everything but the modem
//! library and the apps, within [`OUR_FLASH_BUDGET`] of flash and [`OUR_RAM_BUDGET`] of RAM.
//! The apps' part of RAM is their share of the kernel's heap, which the manifest declares per
//! app (event queues, outboxes, subscriptions); the modem library's is its shared memory and
//! its own heap.
//!
//! # Our code's flash (issue 11), measured with this report
//!
//! Bytes of our code (the image without the modem library), per lever, each row on top of the
//! ones above it; the last column is the OTA build (`manifest/examples/device-secret.toml`,
//! `[firmware] ota = true`), measured from the ABI's minor 3 on:
//!
//! | lever | `manifest/device.toml` | `manifest/examples/regnwl.toml` | `device-secret.toml` (OTA) |
//! |---|---:|---:|---:|
//! | before (every kernel feature, opt-level "s") | 289 746 | 289 378 | (not measured) |
//! | kernel features from the manifest ([`feature_args`]) | 126 936 | 161 458 | (not measured) |
//! | opt-level "z" instead of "s" (the board's release profile) | 122 768 | 153 692 | (not measured) |
//! | `--remap-path-prefix` (panic locations' paths, [`short_paths_args`]) | 120 528 | 151 292 | (not measured) |
//! | registration's answer read without `serde_json` | (not built in) | 131 312 | (not measured) |
//! | one signature hash (`sign-*` features) | 113 884 | 124 832 | (not measured) |
//! | (the same tree measured again before the apps came) | 113 900 | 124 840 | (not measured) |
//! | apps run: the runtime, its port, the kernel's syscall path (dead code before) | 124 984 | (not measured) | (not measured) |
//! | the board's app log lines as plain defmt fields, no `core::fmt` `Debug` | 123 540 | (not measured) | (not measured) |
//! | sha2's compact SHA-256 (`sha2_backend_soft="compact"`, the board's rustflags) | 116 832 | 127 844 | (not measured) |
//! | (main with dk-apps and the thing model, merged with dk-boot: boot stage, PSM/eDRX, network time, shared NVMC; measured on the merge) | 123 800 | 133 480 | (not measured) |
//! | the network-time task without it (measured, not kept: the feature stays) | 120 196 | 129 872 | (not measured) |
//! | `AT+CCLK?` parsed as ASCII bytes with 32-bit fields (no `str` searches, Unicode trims, 64-bit divisions) | 122 364 | 131 964 | (not measured) |
//! | `AT+CCLK?` read front to back, one field after the other (no split iterators) | 122 132 | 131 752 | (not measured) |
//! | the modem's version line trimmed as ASCII (`str`'s Unicode trim leaves the image) | 121 628 | 131 256 | (not measured) |
//! | the `log` crate's `release_max_level_info` on the board (the kernel's two `debug!` lines leave the image; every info, warn and error line stays) | 121 364 | 130 992 | (not measured) |
//! | (main with the ABI's minor 3, `Request::Time`, measured again; the board's offline capsule answers it) | 122 028 | 131 640 | 193 354 |
//! | OTA jobs read with `flat_json` (shared with registration over MQTT; it now hands out nested objects, literals and escaped strings) instead of `serde_json` and its float parsing | 122 028 | 131 704 | 172 294 |
//! | strings in log lines quoted by `aliot_kernel`'s `Quoted`, not `str`'s `Debug` (its Unicode tables and `escape_debug` leave the image) | 116 244 | 125 900 | 172 422 |
//! | the board's OTA flash-layout refusal logged as defmt fields, not `Debug2Format` (the last user of `str`'s `Debug` in the OTA build) | (no OTA) | (no OTA) | 166 054 |
//! | the OTA task downloads into one sink type, the slot's writer or patcher (`download_job` compiled once, not once per sink) | (no OTA) | (no OTA) | 163 854 |
//! | HTTP header values (`Content-Range`, `Transfer-Encoding`, `Content-Length`) trimmed as ASCII (`str`'s Unicode whitespace table leaves the image) | 116 244 | 125 900 | 163 178 |
//! | (merged with the platform-time service and `Clock::network_time_ms`: apps on the DK read the modem's time with `Request::Time`; measured by CI on the merge) | 116 192 | 125 844 | 163 578 |
//! | (the same tree measured again on the branch `size2`) | 116 192 | 125 844 | 163 586 |
//! | the links' `PidMap` a fixed table of `MAX_IN_FLIGHT` entries searched linearly, not a `BTreeMap` (the firmware's only one: the btree code leaves the image; measured on the branch) | 110 948 | 120 408 | 158 462 |
//! | the OTA slot writer's offset and length checks in 32 bits (`aliot_boot::slot`: no 64-bit arithmetic; measured on the branch) | 110 948 | 120 408 | 158 446 |
//! | (main, before the merge with `size2`, on 163 586:) the kernel's log lines through defmt (`aliot_kernel`'s `logging.rs`, feature `defmt`): their text goes to the ELF's `.defmt` section, not to flash, and the board's `log`-to-defmt bridge leaves | (not measured) | (not measured) | 154 286 |
//! | (same) the kernel's errors in log lines by their derived `defmt::Format`, not `Debug2Format` (their `Debug` code and variant-name strings leave); flash errors named by kind | (not measured) | (not measured) | 151 252 |
//! | (same) the board's credential and kernel-stop lines by `defmt::Format` (`aliot_kernel::Loggable`: a storage error is `Display`, and `Format` with defmt) | (not measured) | (not measured) | 150 280 |
//! | the boot state's read error named by hand on the board, not `Debug2Format` (the boot errors' derived `Debug` leaves; measured on the merge with `size2`) | (not measured) | (not measured) | 143 294 |
//! | registration compiled out of builds without a `register-*` feature (the runner's registration phase, the DK's registered provider) | 98 896 | 109 064 | 142 042 |
//! | the runner's registration phase behind `#[cfg]`, not a constant `if` (an `.await` in dead code still keeps its state, and all it calls, in the async state machine) | (not measured) | (not measured) | 140 630 |
//! | the provisioned half as a factory record (`aliot_kernel::store::factory`: magic, length, record, CRC-32; written once by `aliot-provision`, only read by the firmware) instead of a `sequential-storage` map: a build without registration links no map | (not measured) | (not measured) | 132 402 |
//! | the MQTT 3.1.1 link's own client-side codec (`aliot_kernel::link::v311`), not `mqttrs` (its decoders for packets a client never receives, its error strings and panic locations, and the shape check that guarded its unchecked indexing leave the image; measured on the branch against main at 6d33857, which measured 98 896 / 109 064 / 142 050) | 91 056 | 101 692 | 134 134 |
//! | (main with the factory record, merged with the MQTT 3.1.1 codec; measured on the merge) | 80 660 | 99 502 | 124 434 |
//! | the OTA digest's MD5 by hand, its 64 steps one loop (`aliot_kernel::ota::md5`), not `md-5`'s unrolled one (kept for `hmacmd5` only; measured on the branch `http-md5` from the row with 142 042) | 98 896 | 109 064 | 141 014 |
//! | HTTP response heads read by hand (`aliot_kernel::registration::https::head`: status line and header lines, no byte maps, no header array), not `httparse` (measured on the branch) | 98 896 | 109 064 | 139 766 |
//! | (main with every row above; measured on the merge: all three within the target, and CI fails each over it) | 80 660 | 99 502 | 122 078 |
//! | the OTA agent does not fetch again a job the `firmware/get` answer names after the push's download of it ended (a fix, not a lever; measured by CI at 11f242d) | 80 732 | 99 618 | 122 534 |
//!
//! Measured on the merge and not kept, each against the row it was tried on: one shared
//! `with_timeout(send_at)` for `AT+CGMR` and `AT+CCLK?` (on 122 364 / 131 964: -4 B / +32 B);
//! skipping `request_power_saving` by a const branch when the manifest asks for no PSM/eDRX
//! (same base: -28 B / -24 B; the AT strings are build-time constants already); the
//! credential store's mismatch line without `{:?}` (same base: 0 B, `str`'s `Debug` has other
//! users); the `AT+CCLK?` line cut by `position` instead of `split` (on 121 628 / 131 256: 0
//! B). Measured on the branch `size2` and not kept: `--remap-path-prefix` for the standard
//! library's `/rustc/<commit-hash>` (on 158 462 B, OTA: 0 B; its panic locations keep the
//! full path, rustc does not remap the precompiled library's file names again); the layout
//! checks of `aliot_boot::stage::partitions_from_config` in 32 bits (same base: +132 B).
//! Measured on main and not kept: the OTA topics built with `concat` instead of `format!` (on
//! 150 280 B, OTA: +404 B). Also
//! measured and not kept earlier: the `log` crate's `release_max_level_warn` on the board (a
//! further 5.3 KB and 1.7 KB, but it drops the kernel's info lines such as the login) and a panic
//! handler that prints no message instead of `panic-probe` (0.2 KB); both before the kernel's
//! lines went to defmt. Looked at and not done: a feature for the differential-package
//! patcher (its named code is about 1.5 KB: `Patcher::feed`, the heatshrink decoder, the
//! header; too little for a manifest field); resolving host names without `nrf-modem`'s
//! IP-literal parse (`core::net`'s parser, about 1.7 KB: `TlsStream::connect` resolves inside
//! the crate, so the parse stays for TLS). What the report calls unattributed (about 21 KB in
//! the OTA build) is mostly `.rodata` no symbol names: panic messages and locations (file
//! paths, shortened by the remapping; one per `async fn`, for its "resumed after completion"
//! panic), format-argument tables of the `write!`s that build payloads, vtables, the OTA
//! job's refusal texts (reported to the platform); lookup tables such as sha2's round
//! constants are named symbols. A lesson for later levers: in an `async fn`, a branch on a
//! constant does not drop an `.await` behind it (the state machine keeps the state and all
//! it calls); only `#[cfg]` does.
//! `serde_json` is built in only for registration over HTTPS (no DK manifest here asks for
//! it); registration over MQTT and OTA jobs are read by the kernel's `flat_json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aliot_manifest::{IMAGE_HEADER_LEN, Span, image_layout, nrf9160dk_board, ram_report};

use crate::BuildError;
use crate::hex::intel_hex;
use crate::nrf_apps::{AppSize, app_elfs, app_sizes, build_app_parts};
use crate::nrf9160_boot::{active_image, build_boot_stage};
use crate::place::{Part, check_placement};
use crate::qemu::{cargo_build, io};
use crate::size::{CLibrary, Memory, Origins, archive_symbols, attribute};

/// The board's crate directory (from the repository root) and binary name.
pub const NRF9160DK: (&str, &str) = ("boards/nrf9160dk", "aliot-nrf9160dk");
/// The board's RAM for the kernel's image (`RAM` in boards/nrf9160dk/kernel-memory.x); the apps'
/// RAM is above it (`aliot_manifest::NRF9160DK_APP_RAM`).
pub const NRF9160DK_RAM: Span = aliot_manifest::NRF9160DK_KERNEL_RAM;
/// The modem's shared memory (`MODEM` in memory.x), reserved for the modem library.
pub const NRF9160DK_MODEM_RAM: u64 = 32 * 1024;
/// Least RAM left above `.data` and `.bss` for the stack.
pub const MIN_STACK: u64 = 16 * 1024;
/// Flash our code may use: the image without the modem library and the apps.
pub const OUR_FLASH_BUDGET: u64 = 128 * 1024;
/// RAM our code may use: `.data` and `.bss` without the modem library and the apps' share.
pub const OUR_RAM_BUDGET: u64 = 48 * 1024;

/// Rust crates that are the modem library (its wrapper, the bindings, its libc).
const MODEM_CRATES: &[&str] = &["nrf_modem", "nrfxlib_sys", "tinyrlibc"];
/// The modem library in the report.
const MODEM: &str = "modem library";

/// What [`build_nrf9160dk_image`] made and measured.
#[derive(Debug, Clone)]
pub struct NrfReport {
    /// The ELF.
    pub elf: PathBuf,
    /// The Intel HEX: boot stage, image header, kernel and apps, what a fresh board is
    /// flashed with.
    pub hex: PathBuf,
    /// Each app image's ELF: `(manifest app name, path)`.
    pub app_elfs: Vec<(String, PathBuf)>,
    /// The boot stage's ELF.
    pub boot_elf: PathBuf,
    /// The active slot's image (header, kernel, apps): the file an OTA job delivers.
    pub image: PathBuf,
    /// The report, as printed and written next to the HEX.
    pub text: String,
    /// The layout budgets exceeded: the image does not fit the manifest's flash layout or
    /// the chip's RAM (empty when it fits).
    pub exceeded: Vec<String>,
    /// Our code over issue 11's target (128 KiB of flash, 48 KiB of RAM without the modem
    /// library and apps): reported separately, so a caller can warn while the size work is
    /// open and fail once it is done.
    pub over_target: Vec<String>,
}

/// Builds the board and its boot stage against `manifest_path` and measures them; writes
/// `aliot-nrf9160dk.hex` (both), `aliot-nrf9160dk.img` (the OTA image) and
/// `aliot-nrf9160dk.size.txt` in `out_dir`. A budget exceeded is in the report's
/// `exceeded`, not an error: the caller prints the figures, then fails.
pub fn build_nrf9160dk_image(
    manifest_path: &Path,
    out_dir: &Path,
) -> Result<NrfReport, BuildError> {
    let manifest_path = std::path::absolute(manifest_path).map_err(io(manifest_path))?;
    let m = aliot_manifest::load(&manifest_path)?;
    let root = aliot_manifest::workspace_root();
    let (dir, bin) = NRF9160DK;
    let dir = root.join(dir);
    let mut args = feature_args(&m);
    let features = args.last().cloned().unwrap_or_default();
    args.extend(short_paths_args(&root));
    // Refuse a manifest whose apps do not fit the board before spending minutes on cargo.
    let board = nrf9160dk_board(&m);
    let layout = image_layout(&m, &board)?;
    let elf = cargo_build(&dir, bin, &manifest_path, &args)?;
    let active = Span {
        start: m.flash.active.offset,
        len: m.flash.active.size,
    };
    // `kernel_flash` starts after the image header (`nrf9160dk_board`).
    let part = Part::read("kernel", &elf, board.kernel_flash, NRF9160DK_RAM)?;
    let app_parts = build_app_parts(&root, &manifest_path, &layout)?;
    let mut parts = vec![part.clone()];
    parts.extend(app_parts.iter().cloned());
    check_placement(&parts)?;
    let apps = app_sizes(&layout, &app_parts);
    let boot = build_boot_stage(&dir, &manifest_path, &m, &short_paths_args(&root))?;
    // The header vouches for everything the boot stage starts: the kernel and the apps.
    let image = active_image(&m, &part, &app_parts)?;

    let bytes = std::fs::read(&elf).map_err(io(&elf))?;
    let build_dir = dir.join("target/thumbv8m.main-none-eabihf/release/build");
    let libmodem = newest_archive(&build_dir, "nrfxlib-sys-", "libmodem.a")?;
    let libc = newest_archive(&build_dir, "tinyrlibc-", "libclocal.a")?;
    let read_archive = |path: &Path| {
        let data = std::fs::read(path).map_err(io(path))?;
        archive_symbols(&data).map_err(|message| BuildError::Elf {
            path: path.to_path_buf(),
            message,
        })
    };
    let (modem_syms, libc_syms) = (read_archive(&libmodem)?, read_archive(&libc)?);
    let libraries = [
        CLibrary {
            label: MODEM,
            symbols: &modem_syms,
        },
        CLibrary {
            label: MODEM,
            symbols: &libc_syms,
        },
    ];
    let origins = attribute(&bytes, &libraries).map_err(|message| BuildError::Elf {
        path: elf.clone(),
        message,
    })?;

    let report = ram_report(&m);
    let apps_heap = u64::from(report.event_queues + report.outboxes + report.subscriptions);
    let flash_total = part.flash_used();
    let ram_total = part.ram_used();
    let Budgets {
        text,
        exceeded,
        over_target,
    } = report_text(&Inputs {
        manifest: &manifest_path,
        active,
        flash_total,
        ram_total,
        apps_heap,
        origins: &origins,
        bootloader: m.flash.bootloader.size,
        bootloader_flash: boot.flash_used(),
        bootloader_ram: boot.ram_used(),
        features: &features,
        apps: &apps,
    });

    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    // The boot stage's segments, then the slot's image (header, kernel, apps, gaps erased).
    let mut chunks: Vec<(u32, &[u8])> = boot
        .segments
        .iter()
        .filter(|s| !s.data.is_empty())
        .map(|s| (s.load, s.data.as_slice()))
        .collect();
    chunks.push((active.start, &image));
    let hex = out_dir.join("aliot-nrf9160dk.hex");
    std::fs::write(&hex, intel_hex(&chunks, Some(boot.entry))).map_err(io(&hex))?;
    let image_file = out_dir.join("aliot-nrf9160dk.img");
    std::fs::write(&image_file, &image).map_err(io(&image_file))?;
    let size = out_dir.join("aliot-nrf9160dk.size.txt");
    std::fs::write(&size, &text).map_err(io(&size))?;
    Ok(NrfReport {
        elf,
        hex,
        app_elfs: app_elfs(&app_parts),
        boot_elf: boot.elf,
        image: image_file,
        text,
        exceeded,
        over_target,
    })
}

/// The board built with only the kernel features the manifest needs
/// (`aliot_manifest::kernel_features`; the board's build script checks them again).
pub fn feature_args(m: &aliot_manifest::Manifest) -> Vec<String> {
    let features: Vec<&str> = aliot_manifest::kernel_features(m)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    vec![
        "--no-default-features".to_owned(),
        "--features".to_owned(),
        features.join(","),
    ]
}

/// Shorter source paths in the image: panic locations keep the file's path in flash (stable
/// Rust cannot leave it out), and crates.io sources sit under a long registry directory.
/// `--remap-path-prefix` for each registry source directory (`crates/...`) and the repository
/// (`./...`), added to the board's rustflags with `--config`.
pub fn short_paths_args(root: &Path) -> Vec<String> {
    let mut prefixes: Vec<(PathBuf, &str)> = vec![(root.to_path_buf(), ".")];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(src) = cargo_home.map(|h| h.join("registry").join("src"))
        && let Ok(dirs) = std::fs::read_dir(&src)
    {
        let mut dirs: Vec<PathBuf> = dirs.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        prefixes.extend(dirs.into_iter().map(|d| (d, "crates")));
    }
    let flags: Vec<String> = prefixes
        .iter()
        .filter_map(|(from, to)| {
            Some(format!(
                "{:?}",
                format!("--remap-path-prefix={}={to}", from.to_str()?)
            ))
        })
        .collect();
    vec![
        "--config".to_owned(),
        format!(
            "target.thumbv8m.main-none-eabihf.rustflags=[{}]",
            flags.join(", ")
        ),
    ]
}

/// `<build_dir>/<prefix>*/out/<file>`, the most recently written (older builds of the same
/// crate may lie beside it).
fn newest_archive(build_dir: &Path, prefix: &str, file: &str) -> Result<PathBuf, BuildError> {
    let entries = std::fs::read_dir(build_dir).map_err(io(build_dir))?;
    let newest = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path().join("out").join(file))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max();
    newest.map(|(_, p)| p).ok_or_else(|| BuildError::Io {
        path: build_dir.join(format!("{prefix}*/out/{file}")),
        message: "not found (the modem library's archive, built by the board's build)".to_owned(),
    })
}

/// What the report is made of.
pub struct Inputs<'a> {
    /// The manifest's path, for the heading.
    pub manifest: &'a Path,
    /// `[flash.active]`.
    pub active: Span,
    /// Bytes the image loads into flash.
    pub flash_total: u64,
    /// Bytes of `.data` and `.bss`.
    pub ram_total: u64,
    /// The apps' share of the kernel heap (in `.bss`), from the manifest.
    pub apps_heap: u64,
    /// Bytes per origin.
    pub origins: &'a Origins,
    /// `[flash.bootloader]` size.
    pub bootloader: u32,
    /// Bytes the boot stage loads into `[flash.bootloader]`.
    pub bootloader_flash: u64,
    /// Its `.data` and `.bss` (it runs alone, before the firmware: not counted with it).
    pub bootloader_ram: u64,
    /// The kernel features the board was built with (from the manifest).
    pub features: &'a str,
    /// Each manifest app, its own part (at the top of `[flash.active]`, RAM above the
    /// kernel's): not our code.
    pub apps: &'a [AppSize],
}

/// The report's text and the budgets exceeded, in two kinds (see [`NrfReport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets {
    /// The report.
    pub text: String,
    /// Layout budgets exceeded.
    pub exceeded: Vec<String>,
    /// Our code over its target.
    pub over_target: Vec<String>,
}

/// The report's text and the budgets exceeded.
pub fn report_text(i: &Inputs<'_>) -> Budgets {
    let group = |memory: Memory, pick: &dyn Fn(&str) -> bool| -> u64 {
        i.origins
            .iter()
            .filter(|((m, o), _)| *m == memory && pick(o))
            .map(|(_, b)| *b)
            .sum()
    };
    let is_modem = |o: &str| o == MODEM || MODEM_CRATES.contains(&o);
    let is_ours = |o: &str| o.starts_with("aliot_");
    let flash_modem = group(Memory::Flash, &is_modem);
    let flash_ours = group(Memory::Flash, &is_ours);
    let ram_modem_static = group(Memory::Ram, &is_modem);
    let ram_ours_static = group(Memory::Ram, &is_ours);
    // The heap is one `.bss` array of the board crate: its apps' share is theirs.
    let ram_ours = ram_ours_static.saturating_sub(i.apps_heap);
    let flash_budgeted = i.flash_total.saturating_sub(flash_modem);
    let ram_budgeted = i.ram_total.saturating_sub(ram_modem_static + i.apps_heap);
    let kib = |b: u64| format!("{:.1} KiB", b as f64 / 1024.0);

    let mut s = String::new();
    let _ = writeln!(
        s,
        "aliot size report: board nrf9160dk, manifest {}\nkernel features (from the manifest): {}\n",
        i.manifest.display(),
        i.features
    );
    let _ = writeln!(s, "{:<44} {:>9} {:>11}", "flash", "bytes", "");
    let line = |s: &mut String, label: &str, b: u64| {
        let _ = writeln!(s, "  {label:<42} {b:>9} {:>11}", kib(b));
    };
    line(
        &mut s,
        "boot stage in [flash.bootloader]",
        i.bootloader_flash,
    );
    line(&mut s, "[flash.bootloader] size", u64::from(i.bootloader));
    line(
        &mut s,
        "image header in [flash.active]",
        u64::from(IMAGE_HEADER_LEN),
    );
    line(
        &mut s,
        "kernel image (kernel, board, runtime)",
        i.flash_total,
    );
    line(&mut s, "  our code (aliot_* crates)", flash_ours);
    line(
        &mut s,
        "  modem library (libmodem, nrf-modem, libc)",
        flash_modem,
    );
    line(
        &mut s,
        "  the rest (HAL, embassy, MQTT, core, ...)",
        i.flash_total - flash_ours.min(i.flash_total) - flash_modem.min(i.flash_total),
    );
    let app_regions: u64 = i.apps.iter().map(|a| u64::from(a.flash_region)).sum();
    line(&mut s, "apps' regions, top of [flash.active]", app_regions);
    for a in i.apps {
        let label = format!(
            "  app {} (id {}), region {} B",
            a.name, a.id, a.flash_region
        );
        match a.flash_used {
            Some(used) => line(&mut s, &label, used),
            None => {
                let _ = writeln!(s, "  {label:<42} {:>9} {:>11}", "-", "no image");
            }
        }
    }
    line(&mut s, "[flash.active] size", u64::from(i.active.len));
    let _ = writeln!(s, "\n{:<44} {:>9}", "RAM", "bytes");
    line(&mut s, "image .data + .bss", i.ram_total);
    line(
        &mut s,
        "  our code (aliot_*), kernel heap included",
        ram_ours_static,
    );
    line(
        &mut s,
        "    of which the apps' share of the heap",
        i.apps_heap,
    );
    line(
        &mut s,
        "  modem library statics (its heap)",
        ram_modem_static,
    );
    line(
        &mut s,
        "  the rest (executor task, HAL, ...)",
        i.ram_total
            .saturating_sub(ram_ours_static + ram_modem_static),
    );
    line(
        &mut s,
        "modem shared memory (MODEM, memory.x)",
        NRF9160DK_MODEM_RAM,
    );
    let stack = u64::from(NRF9160DK_RAM.len).saturating_sub(i.ram_total);
    line(&mut s, "left for the kernel's stack", stack);
    for a in i.apps {
        line(
            &mut s,
            &format!("app {} RAM (stack {} B)", a.name, a.stack),
            u64::from(a.ram_region),
        );
    }
    line(
        &mut s,
        "boot stage .data + .bss (runs first, alone)",
        i.bootloader_ram,
    );

    let _ = writeln!(s, "\nper origin (flash / RAM bytes):");
    let mut names: Vec<&String> = i.origins.keys().map(|(_, o)| o).collect();
    names.sort();
    names.dedup();
    let mut rows: Vec<(u64, u64, &String)> = names
        .into_iter()
        .map(|o| {
            let f = i
                .origins
                .get(&(Memory::Flash, o.clone()))
                .copied()
                .unwrap_or(0);
            let r = i
                .origins
                .get(&(Memory::Ram, o.clone()))
                .copied()
                .unwrap_or(0);
            (f, r, o)
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    for (f, r, o) in rows {
        let _ = writeln!(s, "  {o:<32} {f:>9} {r:>9}");
    }

    let mut exceeded = Vec::new();
    let mut over_target = Vec::new();
    let _ = writeln!(s, "\nbudgets:");
    let mut check = |s: &mut String, what: String, used: u64, limit: u64, layout: bool| {
        let ok = used <= limit;
        let _ = writeln!(
            s,
            "  {} {what}: {used} of {limit} bytes ({} of {})",
            if ok { "ok  " } else { "OVER" },
            kib(used),
            kib(limit)
        );
        if !ok {
            let over = format!("{what}: {used} bytes, over {limit}");
            if layout {
                exceeded.push(over);
            } else {
                over_target.push(over);
            }
        }
    };
    check(
        &mut s,
        "boot stage in [flash.bootloader]".to_owned(),
        i.bootloader_flash,
        u64::from(i.bootloader),
        true,
    );
    check(
        &mut s,
        "header + kernel image + apps' regions in [flash.active]".to_owned(),
        u64::from(IMAGE_HEADER_LEN) + i.flash_total + app_regions,
        u64::from(i.active.len),
        true,
    );
    check(
        &mut s,
        format!("image RAM with {} of stack", kib(MIN_STACK)),
        i.ram_total + MIN_STACK,
        u64::from(NRF9160DK_RAM.len),
        true,
    );
    check(
        &mut s,
        "our code's flash (image without the modem library and apps)".to_owned(),
        flash_budgeted,
        OUR_FLASH_BUDGET,
        false,
    );
    check(
        &mut s,
        "our code's RAM (.data + .bss without the modem library and the apps' heap share)"
            .to_owned(),
        ram_budgeted,
        OUR_RAM_BUDGET,
        false,
    );
    let _ = writeln!(
        s,
        "  (our aliot_* crates alone: {} flash, {} RAM without the apps' heap share)",
        kib(flash_ours),
        kib(ram_ours)
    );
    Budgets {
        text: s,
        exceeded,
        over_target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(origins: &Origins, flash_total: u64, ram_total: u64) -> Inputs<'_> {
        Inputs {
            manifest: Path::new("m.toml"),
            active: Span {
                start: 0x8000,
                len: 480 * 1024,
            },
            flash_total,
            ram_total,
            apps_heap: 1000,
            origins,
            bootloader: 0x8000,
            bootloader_flash: 20_000,
            bootloader_ram: 2_000,
            features: "mqtt-v311,sign-hmacsha256",
            apps: &[],
        }
    }

    #[test]
    fn the_modem_library_and_the_apps_heap_share_do_not_count_against_our_code() {
        let mut origins = Origins::new();
        origins.insert((Memory::Flash, "aliot_kernel".into()), 100_000);
        origins.insert((Memory::Flash, "nrf_modem".into()), 40_000);
        origins.insert((Memory::Flash, "core".into()), 30_000);
        origins.insert((Memory::Ram, "aliot_nrf9160dk".into()), 20_000);
        // 170 000 B of flash, of which 40 000 the modem's: 130 000 of ours, within 128 KiB
        // (131 072); 21 000 B of RAM less the apps' 1 000.
        let ok = report_text(&inputs(&origins, 170_000, 21_000));
        assert!(
            ok.exceeded.is_empty() && ok.over_target.is_empty(),
            "{}",
            ok.text
        );
        // 2 000 B more of ours: over the target, not over the layout.
        let over = report_text(&inputs(&origins, 172_000, 21_000));
        assert!(over.exceeded.is_empty(), "{:?}", over.exceeded);
        assert_eq!(over.over_target.len(), 1, "{}", over.text);
        assert!(over.text.contains("OVER our code's flash"), "{}", over.text);
    }

    #[test]
    fn a_boot_stage_beyond_flash_bootloader_is_a_layout_failure() {
        let origins = Origins::new();
        let mut i = inputs(&origins, 1000, 0);
        i.bootloader_flash = 0x8000;
        let fits = report_text(&i);
        assert!(fits.exceeded.is_empty(), "{}", fits.text);
        assert!(
            fits.text
                .contains("ok   boot stage in [flash.bootloader]: 32768 of 32768 bytes"),
            "{}",
            fits.text
        );
        i.bootloader_flash = 0x8001;
        let r = report_text(&i);
        assert_eq!(r.exceeded.len(), 1, "{}", r.text);
        assert!(
            r.exceeded[0].contains("[flash.bootloader]"),
            "{:?}",
            r.exceeded
        );
    }

    #[test]
    fn the_image_header_counts_against_flash_active() {
        let origins = Origins::new();
        let fits = report_text(&inputs(&origins, 480 * 1024 - 512, 0));
        assert!(fits.exceeded.is_empty(), "{}", fits.text);
        let r = report_text(&inputs(&origins, 480 * 1024 - 511, 0));
        assert_eq!(r.exceeded.len(), 1, "{}", r.text);
    }

    #[test]
    fn an_image_beyond_flash_active_is_a_layout_failure() {
        let origins = Origins::new();
        let r = report_text(&inputs(&origins, 480 * 1024 + 1, 0));
        assert_eq!(r.exceeded.len(), 1, "{}", r.text);
        assert!(r.exceeded[0].contains("[flash.active]"), "{:?}", r.exceeded);
    }

    fn apps() -> Vec<AppSize> {
        vec![
            AppSize {
                name: "publish_test".into(),
                id: 0,
                flash_region: 64 * 1024,
                flash_used: Some(12_836),
                ram_region: 24_576,
                stack: 22_528,
            },
            AppSize {
                name: "echo".into(),
                id: 1,
                flash_region: 64 * 1024,
                flash_used: None,
                ram_region: 16_384,
                stack: 14_336,
            },
        ]
    }

    #[test]
    fn each_app_is_its_own_part_and_not_our_code() {
        let mut origins = Origins::new();
        origins.insert((Memory::Flash, "aliot_kernel".into()), 100_000);
        let apps = apps();
        let r = report_text(&Inputs {
            apps: &apps,
            ..inputs(&origins, 120_000, 21_000)
        });
        assert!(
            r.exceeded.is_empty() && r.over_target.is_empty(),
            "{}",
            r.text
        );
        for row in [
            "  apps' regions, top of [flash.active]          131072   128.0 KiB",
            "    app publish_test (id 0), region 65536 B      12836    12.5 KiB",
            "    app echo (id 1), region 65536 B                  -    no image",
            "  app publish_test RAM (stack 22528 B)           24576    24.0 KiB",
            "  app echo RAM (stack 14336 B)                   16384    16.0 KiB",
            "  ok   our code's flash (image without the modem library and apps): 120000 of 131072 bytes (117.2 KiB of 128.0 KiB)",
        ] {
            assert!(
                r.text.lines().any(|l| l == row),
                "no line {row:?} in\n{}",
                r.text
            );
        }
    }

    #[test]
    fn the_apps_regions_count_against_flash_active() {
        let origins = Origins::new();
        let apps = apps();
        // 480 KiB slot, 128 KiB of app regions and the 512-byte image header: a kernel of
        // 352 KiB - 512 B fits, one byte more does not.
        let kernel = 352 * 1024 - u64::from(IMAGE_HEADER_LEN);
        let fits = report_text(&Inputs {
            apps: &apps,
            ..inputs(&origins, kernel, 0)
        });
        assert!(fits.exceeded.is_empty(), "{}", fits.text);
        let over = report_text(&Inputs {
            apps: &apps,
            ..inputs(&origins, kernel + 1, 0)
        });
        assert_eq!(over.exceeded.len(), 1, "{}", over.text);
        assert!(
            over.exceeded[0].starts_with("header + kernel image + apps' regions in [flash.active]"),
            "{:?}",
            over.exceeded
        );
    }
}
