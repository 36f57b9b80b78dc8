//! The QEMU `mps2-an505` image: the kernel (`boards/qemu-an505`, with its test apps linked in)
//! and each app that has an image crate for the board, each built with
//! `cargo build --release --locked` in its own directory (their own workspaces and lockfiles,
//! as `.ci/run` builds them) against the same manifest.

use std::path::{Path, PathBuf};
use std::process::Command;

use aliot_manifest::{CortexM33Board, ImageLayout, QEMU_AN505, image_layout};

use crate::BuildError;
use crate::hex::intel_hex;
use crate::map::map_text;
use crate::place::{Part, check_placement};

/// The kernel's crate directory (from the repository root) and binary name.
pub const QEMU_KERNEL: (&str, &str) = ("boards/qemu-an505", "aliot-qemu-an505");

/// The apps that have an image for the board: manifest app name, crate directory (from the
/// repository root), binary name. Each crate's build script links it as that manifest app.
pub const QEMU_APP_IMAGES: &[(&str, &str, &str)] = &[(
    "publish_test",
    "boards/qemu-an505-publisher",
    "aliot-qemu-publisher",
)];

/// What [`build_qemu_image`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The kernel's ELF.
    pub kernel_elf: PathBuf,
    /// Each app's ELF: `(manifest app name, path)`.
    pub app_elfs: Vec<(String, PathBuf)>,
    /// The one image: Intel HEX of every loadable segment.
    pub hex: PathBuf,
    /// The map, as written to `map`.
    pub map_text: String,
    /// Where the map was written.
    pub map: PathBuf,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Runs `cargo build --release --locked` (then `args`) in `dir` against `manifest`; returns
/// the ELF of `bin`. The environment is cleaned of what would change where or how it builds (a caller
/// running under cargo has its own `RUSTFLAGS` or target dir), so the board's
/// `.cargo/config.toml` decides, as it does for `.ci/run`.
pub(crate) fn cargo_build(
    dir: &Path,
    bin: &str,
    manifest: &Path,
    args: &[String],
) -> Result<PathBuf, BuildError> {
    cargo_build_in(dir, bin, manifest, args, &dir.join("target"), &[])
}

/// [`cargo_build`] into `target_dir`, with `envs` set too (an app crate built for another
/// board's layout keeps its own target directory, so the two builds never overwrite each other).
pub(crate) fn cargo_build_in(
    dir: &Path,
    bin: &str,
    manifest: &Path,
    args: &[String],
    target_dir: &Path,
    envs: &[(&str, &str)],
) -> Result<PathBuf, BuildError> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked"])
        .args(args)
        .current_dir(dir)
        .env(aliot_manifest::MANIFEST_ENV, manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .envs(envs.iter().copied())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .map_err(|e| BuildError::Cargo {
            dir: dir.to_path_buf(),
            status: format!("cannot run cargo: {e}"),
        })?;
    if !status.success() {
        return Err(BuildError::Cargo {
            dir: dir.to_path_buf(),
            status: status.to_string(),
        });
    }
    Ok(target_dir
        .join("thumbv8m.main-none-eabihf")
        .join("release")
        .join(bin))
}

/// Builds the kernel and every app image of the QEMU board against the manifest at
/// `manifest_path`, then writes `aliot-qemu-an505.hex` and `aliot-qemu-an505.map` in
/// `out_dir` (created if missing).
pub fn build_qemu_image(manifest_path: &Path, out_dir: &Path) -> Result<BuiltImage, BuildError> {
    let manifest_path = std::path::absolute(manifest_path).map_err(io(manifest_path))?;
    let m = aliot_manifest::load(&manifest_path)?;
    let layout = image_layout(&m, &QEMU_AN505)?;
    // Refuse a manifest without the board's apps before spending minutes on cargo.
    for (app, _, _) in QEMU_APP_IMAGES {
        layout.app(app)?;
    }
    let root = aliot_manifest::workspace_root();
    let (kernel_dir, kernel_bin) = QEMU_KERNEL;
    let kernel_elf = cargo_build(&root.join(kernel_dir), kernel_bin, &manifest_path, &[])?;
    let mut app_elfs = Vec::new();
    for (app, dir, bin) in QEMU_APP_IMAGES {
        app_elfs.push((
            (*app).to_owned(),
            cargo_build(&root.join(dir), bin, &manifest_path, &[])?,
        ));
    }
    image_from_parts(
        &QEMU_AN505,
        &layout,
        &manifest_path,
        &kernel_elf,
        &app_elfs,
        out_dir,
    )
}

/// The image and map from ELFs already built: the kernel's, checked against the board's
/// kernel regions, and each app's (`(manifest app name, path)`), checked against its regions
/// in `layout`. Writes `aliot-<board>.hex` and `aliot-<board>.map` in `out_dir`.
pub fn image_from_parts(
    board: &CortexM33Board,
    layout: &ImageLayout,
    manifest_path: &Path,
    kernel_elf: &Path,
    app_elfs: &[(String, PathBuf)],
    out_dir: &Path,
) -> Result<BuiltImage, BuildError> {
    let mut parts = vec![Part::read(
        "kernel",
        kernel_elf,
        board.kernel_flash,
        board.kernel_ram,
    )?];
    for (name, elf) in app_elfs {
        let app = layout.app(name)?;
        parts.push(Part::read(name, elf, app.flash, app.ram)?);
    }
    check_placement(&parts)?;
    let chunks: Vec<(u32, &[u8])> = parts
        .iter()
        .flat_map(|p| p.segments.iter())
        .filter(|s| !s.data.is_empty())
        .map(|s| (s.load, s.data.as_slice()))
        .collect();
    let hex_text = intel_hex(&chunks, Some(parts[0].entry));
    let map_text = map_text(board, manifest_path, layout, &parts);
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let hex = out_dir.join(format!("aliot-{}.hex", board.name));
    let map = out_dir.join(format!("aliot-{}.map", board.name));
    std::fs::write(&hex, hex_text).map_err(io(&hex))?;
    std::fs::write(&map, &map_text).map_err(io(&map))?;
    Ok(BuiltImage {
        kernel_elf: kernel_elf.to_path_buf(),
        app_elfs: app_elfs.to_vec(),
        hex,
        map_text,
        map,
    })
}
