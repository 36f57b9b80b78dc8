//! `aliot-emulator`: run the Alibaba IoT device-endpoint emulator from the command line.
//!
//! ```text
//! aliot-emulator --registry FILE --mqtt-port N --tls-port N --http-port N --https-port N
//!                [--tls12-only] [--ca-dir DIR] [--strict-ranges]
//! ```
//! Ports default to 0 (a free port). Prints the ports and the CA path, then logs (set
//! `RUST_LOG`, default `info`) until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use aliot_emulator::{Emulator, EmulatorConfig, Registry};

const USAGE: &str = "usage: aliot-emulator [--registry FILE] [--mqtt-port N] [--tls-port N] \
[--http-port N] [--https-port N] [--tls12-only] [--ca-dir DIR] [--strict-ranges]
Without --registry the built-in demo registry (demo-registry.toml) is used; port 0 = pick a free one.
--strict-ranges: answer firmware downloads as if each carried `x-oss-range-behavior: standard`.";

/// Parses the command line into a config; the options are few, so no parser crate is needed.
fn parse(args: &[String]) -> Result<EmulatorConfig, String> {
    let mut cfg = EmulatorConfig::demo();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let port = |v: String| {
            v.parse::<u16>()
                .map_err(|_| format!("{flag}: {v:?} is not a port number"))
        };
        match flag {
            "--registry" => {
                let p = PathBuf::from(value()?);
                cfg.registry = Registry::from_file(&p).map_err(|e| e.to_string())?;
            }
            "--mqtt-port" => cfg.mqtt_port = port(value()?)?,
            "--tls-port" => cfg.tls_port = port(value()?)?,
            "--http-port" => cfg.http_port = port(value()?)?,
            "--https-port" => cfg.https_port = port(value()?)?,
            "--tls12-only" => cfg.tls12_only = true,
            "--ca-dir" => cfg.ca_dir = Some(PathBuf::from(value()?)),
            "--strict-ranges" => cfg.strict_ranges = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
        i += 1;
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    // ntex-mqtt's own debug/trace output can include whole CONNECT packets (passwords), so it
    // is capped at info whatever RUST_LOG says: secrets are never printed.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(
        "info,ntex=warn,ntex_rt=warn,ntex_server=warn,ntex_service=warn,ntex_io=warn,ntex_tls=warn",
    ))
    .filter_module("ntex_mqtt", log::LevelFilter::Info)
    .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let emu = match Emulator::start(cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("emulator failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("MQTT  tcp://{}", emu.mqtt_addr());
    println!("TLS   ssl://localhost:{}", emu.tls_addr().port());
    println!("HTTP  http://{}", emu.http_addr());
    println!("HTTPS https://localhost:{}", emu.https_addr().port());
    println!("CA    {}", emu.ca_pem_path().display());
    // Serve until the process is stopped (Ctrl-C ends it; the OS frees the ports).
    loop {
        std::thread::park();
    }
}
