//! `cargo xtask bench [--quick]` (the alias is in `.cargo/config.toml`): runs every
//! measurement of issue 12 and prints one table, each row its figure, its baseline from the
//! same run, and the ratio. `--quick` takes small counts and exits non-zero when a row failed
//! or measured nothing (CI runs it); it never judges a figure's size.
//!
//! `aliot-xtask workload ...` is this executable run under callgrind by the bench itself (see
//! `aliot_xtask::callgrind`); with [`aliot_xtask::ota::BOARD_ENV`] set, or as `--app NAME`,
//! it is the OTA row's host board and its apps. Neither is meant to be typed.

use std::process::ExitCode;
use std::time::Duration;

use aliot_kernel::config::MqttVersion;
use aliot_xtask::callgrind::{self, Callgrind};
use aliot_xtask::capsule::{self, Capsule, Start};
use aliot_xtask::syscall::{self, Case};
use aliot_xtask::table::{self, Outcome, Row, Value};
use aliot_xtask::{baseline, ota, ready, size, throughput, wire};

const USAGE: &str = "usage: cargo xtask bench [--quick] [--only 1.1,1.4,...]";

/// How much each measurement does.
struct Counts {
    /// Round trips timed for row 1.1's ns.
    syscall_ns: u32,
    /// Round trips of row 1.1's two callgrind runs.
    syscall_ir: (u32, u32),
    /// Publishes of row 1.2.
    wire: u32,
    /// Row 1.3's proxy delay each way.
    delay: Duration,
    /// Publishes of row 1.4 (each figure).
    publishes: u32,
    /// Publishes per callgrind run, and runs, of row 1.4's instructions.
    publish_ir: (u32, u32),
    /// Row 1.5's image.
    ota_bytes: usize,
}

const FULL: Counts = Counts {
    syscall_ns: 20_000,
    syscall_ir: (1_000, 2_000),
    wire: 200,
    delay: Duration::from_millis(25),
    publishes: 2_000,
    publish_ir: (1_000, 3),
    ota_bytes: 1 << 20,
};

const QUICK: Counts = Counts {
    syscall_ns: 500,
    syscall_ir: (20, 40),
    wire: 20,
    delay: Duration::from_millis(5),
    publishes: 100,
    publish_ir: (50, 1),
    ota_bytes: 256 << 10,
};

/// The OTA row's board configuration (`build.rs`).
mod ota_board {
    include!(concat!(env!("OUT_DIR"), "/ota_big_config.rs"));
}

fn main() -> ExitCode {
    // The OTA row's board (the supervisor and the firmware it re-executes inherit the
    // variable) and its apps (started with `--app NAME` and a cleared environment).
    if std::env::var_os(ota::BOARD_ENV).is_some()
        || std::env::args().nth(1).as_deref() == Some("--app")
    {
        return aliot_host::main_with(&ota_board::DEVICE);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["bench", rest @ ..] => {
            let mut quick = false;
            let mut only: Option<Vec<String>> = None;
            let mut rest = rest.iter();
            while let Some(arg) = rest.next() {
                match *arg {
                    "--quick" => quick = true,
                    "--only" => match rest.next() {
                        Some(list) => only = Some(list.split(',').map(str::to_owned).collect()),
                        None => return usage(),
                    },
                    _ => return usage(),
                }
            }
            let wanted = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == id));
            bench(if quick { &QUICK } else { &FULL }, quick, &wanted)
        }
        ["workload", rest @ ..] => match workload(rest) {
            // The kernel thread may still run: end the process (callgrind writes its counts).
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("workload: {e}");
                ExitCode::FAILURE
            }
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn version_arg(s: &str) -> Result<MqttVersion, String> {
    match s {
        "v311" => Ok(MqttVersion::V311),
        "v5" => Ok(MqttVersion::V5),
        _ => Err(format!("MQTT version {s:?}: v311 or v5")),
    }
}

/// The workloads callgrind runs (see `aliot_xtask::callgrind`).
fn workload(args: &[&str]) -> Result<(), String> {
    let number = |s: &str| s.parse::<u32>().map_err(|e| format!("{s:?}: {e}"));
    match args {
        ["syscall", case, n] => {
            let case = Case::from_name(case).ok_or_else(|| format!("no case {case:?}"))?;
            syscall::workload(case, number(n)?)
        }
        ["capsule", port, n, v] => {
            let port = u16::try_from(number(port)?).map_err(|e| e.to_string())?;
            let mut c = Capsule::start(Start {
                mqtt_port: port,
                version: version_arg(v)?,
                count: false,
                prepare: None,
            })?;
            c.wait_connected(30_000)?;
            capsule::PHASE.store(capsule::MEASURING, std::sync::atomic::Ordering::SeqCst);
            for _ in 0..number(n)? {
                c.publish_and_wait(30_000)?;
            }
            capsule::PHASE.store(capsule::DONE, std::sync::atomic::Ordering::SeqCst);
            // The frame that makes the kernel thread call measure_end.
            c.app.status().map_err(|e| format!("status: {e:?}"))?;
            Ok(())
        }
        ["rumqttc", port, n, v] => {
            let port = u16::try_from(number(port)?).map_err(|e| e.to_string())?;
            baseline::run(
                port,
                version_arg(v)?,
                baseline::Work::Sequential(number(n)?),
                Duration::from_secs(600),
            )
            .map(|_| ())
        }
        _ => Err(format!("unknown workload {args:?}")),
    }
}

fn progress(what: &str) {
    eprintln!("xtask bench: {what}");
}

fn bench(c: &Counts, quick: bool, wanted: &dyn Fn(&str) -> bool) -> ExitCode {
    let root = aliot_manifest::workspace_root();
    let out = root.join("target/xtask");
    let mut rows = Vec::new();

    if wanted("1.1") {
        progress("1.1 syscall round trips");
        rows.extend(syscall_rows(c, &out));
    }
    if ["1.2", "1.3", "1.4"].iter().any(|id| wanted(id)) {
        match aliot_emulator::Emulator::start(aliot_emulator::EmulatorConfig::demo()) {
            Ok(emu) => rows.extend(link_rows(c, &out, &emu, wanted)),
            Err(e) => rows.push(Row::other(
                "1.2",
                "the emulator",
                Outcome::Failed(format!("did not start: {e:?}")),
            )),
        }
    }
    if wanted("1.5") {
        progress("1.5 OTA");
        match ota::board_exe() {
            Ok(board) => rows.extend(ota::rows(&board, c.ota_bytes)),
            Err(e) => rows.push(Row::other("1.5", "OTA", Outcome::Failed(e))),
        }
    }
    if wanted("1.6") {
        progress("1.6 RAM and image sizes");
        let manifest = root.join("manifest/device.toml");
        rows.push(size::ram_row(&manifest));
        rows.extend(size::qemu_rows(&manifest, &out.join("qemu-image")));
        rows.extend(size::nrf_rows(&manifest, &out.join("nrf9160dk")));
    }

    println!(
        "\naliot bench{}: every figure beside a baseline from this run (ratio = figure / baseline)\n",
        if quick {
            " --quick (small counts: checks, not figures)"
        } else {
            ""
        }
    );
    print!("{}", table::render(&rows));
    let problems = table::problems(&rows);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("\nxtask bench: {} row(s) failed:", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        // A full run printed what it could; it fails too, so a broken row is not missed.
        ExitCode::FAILURE
    }
}

/// Rows 1.2 to 1.4, against one emulator in this process.
fn link_rows(
    c: &Counts,
    out: &std::path::Path,
    emu: &aliot_emulator::Emulator,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let port = emu.mqtt_addr().port();
    let versions = [MqttVersion::V311, MqttVersion::V5];
    if wanted("1.2") {
        progress("1.2 wire cost");
        for v in versions {
            rows.extend(wire::rows(port, v, c.wire));
        }
    }
    if wanted("1.3") {
        progress("1.3 round trips to ready");
        for v in versions {
            rows.extend(ready::rows(emu.mqtt_addr(), v, c.delay));
        }
    }
    if wanted("1.4") {
        progress("1.4 QoS 1 round trip and throughput");
        for v in versions {
            rows.extend(throughput::rows(port, v, c.publishes));
        }
        progress("1.4 instructions per publish");
        rows.extend(publish_ir_rows(c, out, port));
    }
    rows
}

fn syscall_rows(c: &Counts, out: &std::path::Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let ns = |case| syscall::median_ns(case, c.syscall_ns);
    let pairs = [
        (
            "syscall round trip, Publish 64 B QoS 1",
            Case::Publish,
            Case::DirectPublish,
        ),
        (
            "syscall round trip, Status",
            Case::Status,
            Case::DirectStatus,
        ),
    ];
    let ir = match callgrind::unavailable() {
        Some(why) => Err(why),
        None => Callgrind::new(&out.join("callgrind-syscall")),
    };
    let mut ir = ir.map_err(Outcome::Skipped);
    for (what, case, direct) in pairs {
        let row = match &mut ir {
            Ok(cg) => match cg
                .syscall(case, c.syscall_ir.0, c.syscall_ir.1)
                .and_then(|a| Ok((a, cg.syscall(direct, c.syscall_ir.0, c.syscall_ir.1)?)))
            {
                Ok((a, b)) => Row::measured(
                    "1.1",
                    format!("{what} (callgrind)"),
                    Value::new(a, "Ir"),
                    Value::new(b, "Ir"),
                    "direct call",
                ),
                Err(e) => Row::other("1.1", format!("{what} (callgrind)"), Outcome::Failed(e)),
            },
            Err(o) => Row::other("1.1", format!("{what} (callgrind)"), o.clone()),
        };
        rows.push(row);
        rows.push(match ns(case).and_then(|a| Ok((a, ns(direct)?))) {
            Ok((a, b)) => Row::measured(
                "1.1",
                format!("{what} (time)"),
                Value::new(a, "ns"),
                Value::new(b, "ns"),
                "direct call",
            ),
            Err(e) => Row::other("1.1", format!("{what} (time)"), Outcome::Failed(e)),
        });
    }
    if let Some(r) = rows.first_mut() {
        *r = r.clone().with_note(format!(
            "app library → postcard → Kernel::syscall → postcard back, against Kernel::service_call with the decoded request; Ir over calls {}..{}, ns the median of {} calls",
            c.syscall_ir.0, c.syscall_ir.1, c.syscall_ns
        ));
    }
    rows
}

fn publish_ir_rows(c: &Counts, out: &std::path::Path, port: u16) -> Vec<Row> {
    let mut rows = Vec::new();
    let (n, reps) = c.publish_ir;
    for (label, v5) in [("3.1.1", false), ("5", true)] {
        let what = format!("kernel side per QoS 1 publish, MQTT {label} (callgrind)");
        if let Some(why) = callgrind::unavailable() {
            rows.push(Row::other("1.4", what, Outcome::Skipped(why)));
            continue;
        }
        let measured = (|| -> Result<(Vec<f64>, Vec<f64>), String> {
            let mut cg = Callgrind::new(&out.join(format!("callgrind-publish-{label}")))?;
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                ours.push(cg.per_publish("capsule", port, n, v5)?);
                theirs.push(cg.per_publish("rumqttc", port, n, v5)?);
            }
            Ok((ours, theirs))
        })();
        rows.push(match measured {
            Ok((mut ours, mut theirs)) => {
                let spread = |v: &[f64]| {
                    format!(
                        "{:.0}..{:.0}",
                        v.iter().copied().fold(f64::INFINITY, f64::min),
                        v.iter().copied().fold(0.0, f64::max)
                    )
                };
                let note = format!(
                    "MQTT {label}: median of {reps} run(s) of {n} publishes each; capsule {} , rumqttc {} (runner, kernel, link and event loop on the kernel thread; rumqttc's publish loop)",
                    spread(&ours),
                    spread(&theirs)
                );
                Row::measured(
                    "1.4",
                    what,
                    Value::new(syscall::median(&mut ours), "Ir"),
                    Value::new(syscall::median(&mut theirs), "Ir"),
                    "rumqttc",
                )
                .with_note(note)
            }
            Err(e) => Row::other("1.4", what, Outcome::Failed(e)),
        });
    }
    rows
}
