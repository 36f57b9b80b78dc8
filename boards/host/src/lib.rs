//! The host board: the capsule on Linux, apps in their own processes, and (by default) the
//! Alibaba IoT emulator in-process, so `cargo run -p aliot-host` shows the whole system.
//!
//! The behaviour comes from the manifest compiled in (see `manifest/device.toml`). The flags
//! below only redirect a simulator run (tests, experiments); they never change the manifest.

pub mod app_process;
pub mod apps;
pub mod clock;
pub mod confine;
pub mod flash;
pub mod net;
pub mod probe;
pub mod secret;

use std::path::PathBuf;
use std::process::ExitCode;

use aliot_kernel::config::{DeviceConfig, MqttVersion, SecretSource};
use aliot_kernel::kernel::Kernel;
use aliot_kernel::runner::{Runner, RunnerOptions};
use clap::Parser;

/// The manifest, compiled in by `build.rs`.
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/device_config.rs"));
}

/// Command line of the host board.
#[derive(Parser, Debug)]
#[command(version, about = "nRF9160 Alibaba IoT firmware, simulated on Linux")]
struct Args {
    /// Connect here instead of the manifest's endpoint (and do not start the emulator).
    #[arg(long, value_name = "HOST:PORT")]
    mqtt_addr: Option<String>,
    /// CA certificate (PEM) to trust for TLS instead of the manifest's choice.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Override the manifest's MQTT version: 3.1.1 or 5.
    #[arg(long, value_name = "VERSION")]
    mqtt_version: Option<String>,
    /// Override the manifest's TLS switch.
    #[arg(long, value_name = "BOOL")]
    tls: Option<bool>,
    /// Read the DeviceSecret from this file instead of the manifest's source.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Board state (flash file, provisioned secrets, app pid files).
    #[arg(long, value_name = "DIR", default_value = ".aliot-host")]
    state_dir: PathBuf,
    /// First reconnect delay in ms (doubles per failure up to 60 s).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    backoff_base_ms: u32,
    /// Internal: run as the app process NAME.
    #[arg(long, value_name = "NAME", hide = true)]
    app: Option<String>,
    /// Internal, for tests: start every app process as the confinement probe, which reports
    /// whether it can reach the secret, instead of the app.
    #[arg(long, hide = true)]
    confinement_probe: bool,
}

fn init_logging(prefix: Option<String>) {
    let mut builder = env_logger::Builder::from_env(
        env_logger::Env::default()
            .default_filter_or("info,ntex=warn,ntex_mqtt=warn,ntex_server=warn,rustls=warn"),
    );
    if let Some(prefix) = prefix {
        use std::io::Write;
        builder.format(move |buf, record| {
            writeln!(buf, "[app {prefix}] {} {}", record.level(), record.args())
        });
    }
    builder.init();
}

/// The board's entry point (also used by the end-to-end tests' copy of the binary).
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(name) = args.app.clone() {
        init_logging(Some(name.clone()));
        let role = if args.confinement_probe {
            app_process::Role::ConfinementProbe
        } else {
            app_process::Role::App
        };
        return app_process::run(&generated::DEVICE, &name, role);
    }
    init_logging(None);
    match run_board(args) {
        Ok(never) => match never {},
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Apply the command-line redirections to the manifest's configuration.
fn effective_config(args: &Args) -> Result<DeviceConfig, String> {
    let mut config = generated::DEVICE;
    if let Some(version) = &args.mqtt_version {
        config.mqtt_version = match version.as_str() {
            "3.1.1" | "3" | "4" => MqttVersion::V311,
            "5" | "5.0" => MqttVersion::V5,
            other => {
                return Err(format!(
                    "--mqtt-version {other}: allowed values are 3.1.1 and 5"
                ));
            }
        };
    }
    if let Some(tls) = args.tls {
        config.tls.enabled = tls;
    }
    Ok(config)
}

fn parse_addr(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("--mqtt-addr {addr}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("--mqtt-addr {addr}: bad port"))?;
    Ok((host.to_owned(), port))
}

fn run_board(args: Args) -> Result<std::convert::Infallible, String> {
    let config: &'static DeviceConfig = Box::leak(Box::new(effective_config(&args)?));
    std::fs::create_dir_all(&args.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    let secret = secret::load(config.secret, args.secret_file.as_deref(), &args.state_dir)?;

    // Keep the emulator alive for the whole run.
    let mut _emulator = None;
    let mut address = args.mqtt_addr.as_deref().map(parse_addr).transpose()?;
    let mut ca = args
        .ca
        .clone()
        .or_else(|| config.tls.ca_file.map(PathBuf::from));
    if address.is_none() && config.endpoint.emulator {
        let emulator = aliot_emulator::Emulator::start(aliot_emulator::EmulatorConfig::demo())
            .map_err(|e| format!("cannot start the built-in emulator: {e}"))?;
        let addr = if config.tls.enabled {
            emulator.tls_addr()
        } else {
            emulator.mqtt_addr()
        };
        log::info!(
            "built-in Alibaba IoT emulator: MQTT {} TLS {} HTTP {} (CA {})",
            emulator.mqtt_addr(),
            emulator.tls_addr(),
            emulator.http_addr(),
            emulator.ca_pem_path().display()
        );
        // The emulator's certificate names `localhost`.
        address = Some(("localhost".to_owned(), addr.port()));
        ca = ca.or_else(|| Some(emulator.ca_pem_path().to_path_buf()));
        _emulator = Some(emulator);
    }
    let tls = net::tls_config(ca.as_deref())?;
    let network = net::HostNetwork::new(tls, address);

    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    for app in config.apps {
        if !app_process::LINKED_APPS
            .iter()
            .any(|(name, _)| *name == app.name)
        {
            return Err(format!(
                "the manifest names app {:?}, which this board does not link",
                app.name
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let options = RunnerOptions {
        backoff_base_ms: args.backoff_base_ms,
        ..RunnerOptions::default()
    };
    runtime.block_on(async move {
        let launch = apps::AppLaunch {
            exe,
            secret_env: match config.secret {
                SecretSource::Env(var) => Some(var),
                _ => None,
            },
            probe: args.confinement_probe,
        };
        let port = apps::start(config.apps, launch, &args.state_dir);
        let mut kernel = Kernel::new(config);
        let mut runner = Runner::new(
            &mut kernel,
            network,
            clock::HostClock::new(),
            clock::HostEntropy,
            port,
            secret,
            options,
        );
        runner.run().await
    })
}
