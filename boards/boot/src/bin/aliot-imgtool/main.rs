//! `aliot-imgtool`: makes and inspects firmware images (the role MCUboot's `imgtool` plays).
//!
//! ```text
//! aliot-imgtool create --version 1.2.3 --input payload.bin --output image.bin
//! aliot-imgtool show image.bin
//! aliot-imgtool host-launcher --exec target/debug/aliot-host --output payload.sh [--pad-to N] [-- ARGS...]
//! aliot-imgtool diff --old running.bin --new image.bin --output patch.bin [--window 10 --lookahead 8]
//! aliot-imgtool patch --old running.bin --patch patch.bin --output image.bin
//! ```
//! `diff` makes a differential (差分) package for a job with `isDiff` 1: it rebuilds `--new` from
//! `--old` (both whole images, as the slots hold them), and is verified by applying it with the
//! device's patcher before it is written. `patch` applies one on the host.
//! `host-launcher` writes the payload of a host-board image: a `#!/bin/sh` script that execs
//! a board binary (the simulator's stand-in for firmware, see `aliot_boot::launcher`).
//! `show` exits with status 1 when the image does not verify.

mod tool;

use std::path::PathBuf;
use std::process::ExitCode;

use aliot_boot::delta_maker;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "aliot-imgtool",
    about = "Make and inspect aliot firmware images"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Put the image header in front of a payload.
    Create {
        /// Firmware version the image reports (1..=32 printable ASCII bytes, no `"` or `\`).
        #[arg(long)]
        version: String,
        /// The payload (the application binary, linked at active slot + 512).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the image.
        #[arg(long)]
        output: PathBuf,
        /// Refuse an image larger than this slot (bytes, header included).
        #[arg(long)]
        slot_size: Option<u32>,
    },
    /// Write a host-board image payload: a `#!/bin/sh` launcher that execs EXEC with the
    /// board's arguments, then ARGS (then `create` makes it an image).
    HostLauncher {
        /// The board binary the launcher runs (made absolute).
        #[arg(long)]
        exec: PathBuf,
        /// Pad the script with comment lines after an `exit` line up to this many bytes.
        #[arg(long, value_name = "BYTES")]
        pad_to: Option<usize>,
        /// Where to write the script (mode 0755).
        #[arg(long)]
        output: PathBuf,
        /// Arguments appended after the board's own.
        #[arg(last = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Make a differential package (isDiff 1) that rebuilds NEW from OLD, the running image.
    Diff {
        /// The image the device runs (the patch refuses any other).
        #[arg(long)]
        old: PathBuf,
        /// The image to install.
        #[arg(long)]
        new: PathBuf,
        /// Where to write the patch.
        #[arg(long)]
        output: PathBuf,
        /// Heatshrink window bits (4..=10: the device's window is 1 KB).
        #[arg(long, default_value_t = aliot_boot::delta_maker::DEFAULT_WINDOW_BITS)]
        window: u8,
        /// Heatshrink lookahead bits (3..WINDOW).
        #[arg(long, default_value_t = aliot_boot::delta_maker::DEFAULT_LOOKAHEAD_BITS)]
        lookahead: u8,
    },
    /// Apply a differential package to OLD on the host (what the device does).
    Patch {
        /// The image the patch was made for.
        #[arg(long)]
        old: PathBuf,
        /// The patch.
        #[arg(long)]
        patch: PathBuf,
        /// Where to write the rebuilt image.
        #[arg(long)]
        output: PathBuf,
    },
    /// Print an image's header and whether its payload digest matches.
    Show {
        /// The image.
        image: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aliot-imgtool: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Create {
            version,
            input,
            output,
            slot_size,
        } => {
            let payload = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
            let image = tool::create(&version, &payload, slot_size).map_err(|e| e.to_string())?;
            std::fs::write(&output, &image).map_err(|e| format!("{}: {e}", output.display()))?;
            println!(
                "{}: version {version}, {} bytes of payload, {} bytes of image",
                output.display(),
                payload.len(),
                image.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::HostLauncher {
            exec,
            pad_to,
            output,
            args,
        } => {
            let exec =
                std::path::absolute(&exec).map_err(|e| format!("{}: {e}", exec.display()))?;
            let script = tool::host_launcher(&exec, &args, pad_to.unwrap_or(0))?;
            tool::write_executable(&output, &script)
                .map_err(|e| format!("{}: {e}", output.display()))?;
            println!(
                "{}: launcher for {}, {} bytes",
                output.display(),
                exec.display(),
                script.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Diff {
            old,
            new,
            output,
            window,
            lookahead,
        } => {
            let old = read(&old)?;
            let new = read(&new)?;
            let patch = delta_maker::make_patch(&old, &new, window, lookahead)?;
            let stats = delta_maker::PatchStats::measure(&patch, &new, window, lookahead)?;
            std::fs::write(&output, &patch).map_err(|e| format!("{}: {e}", output.display()))?;
            println!("{}: {stats}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Patch { old, patch, output } => {
            let old = read(&old)?;
            let patch = read(&patch)?;
            let new = delta_maker::apply_patch(&old, &patch)
                .map_err(|e| format!("the patch does not apply: {}", e.desc()))?;
            std::fs::write(&output, &new).map_err(|e| format!("{}: {e}", output.display()))?;
            println!("{}: {} bytes", output.display(), new.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { image } => {
            let bytes = std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
            let report = tool::show(&bytes);
            print!("{}", report.text);
            Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
