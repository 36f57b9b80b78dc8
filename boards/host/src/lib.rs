//! The host board: the capsule on Linux, apps in their own processes, and (by default) the
//! Alibaba IoT emulator in-process, so `cargo run -p aliot-host` shows the whole system.
//!
//! The behaviour comes from the manifest compiled in (see `manifest/device.toml`). The flags
//! below only redirect a simulator run (tests, experiments); they never change the manifest.
//!
//! SIGINT and SIGTERM stop the board cleanly: the session says DISCONNECT (when logged in),
//! the apps are told to stop (their syscall pipes close), the built-in emulator is dropped
//! (its temporary CA folder with it), and the process exits with 0.

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
use std::time::Duration;

use aliot_kernel::config::AuthMode;
use aliot_kernel::config::{DeviceConfig, MqttVersion, SecretSource};
use aliot_kernel::credentials::DeviceSecretLogin;
use aliot_kernel::kernel::Kernel;
use aliot_kernel::runner::{Runner, RunnerOptions};
use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};

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
    // When the built-in emulator stops, ntex-server 3.11's worker may find its channel closed
    // before it reads the stop command and logs "Server is gone" as an error (a race inside
    // ntex-server, harmless), so a clean stop would print an error line. Silenced whatever
    // RUST_LOG says; the module's only other message is a worker that cannot start, which
    // shows as an emulator that does not answer.
    builder.filter_module("ntex_server::wrk", log::LevelFilter::Off);
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
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// How long apps get to stop after their pipes close before they are killed.
const APP_STOP_GRACE: Duration = Duration::from_secs(5);

/// SIGINT and SIGTERM, caught from start-up on (a signal during start-up still stops the
/// board cleanly once it runs).
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Must be called inside the runtime.
    fn catch() -> Result<Self, String> {
        let catch = |kind| signal(kind).map_err(|e| format!("cannot catch signals: {e}"));
        Ok(Self {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
        })
    }

    /// Completes on the first of them.
    async fn received(&mut self) {
        let name = tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        };
        log::info!("{name} received: stopping");
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

fn run_board(args: Args) -> Result<(), String> {
    let config: &'static DeviceConfig = Box::leak(Box::new(effective_config(&args)?));
    // UNFINISHED (issue 7): the host board does not wire 一型一密 registration yet.
    if config.auth != AuthMode::DeviceSecret {
        return Err("this board does not run 一型一密 registration yet".into());
    }
    std::fs::create_dir_all(&args.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    let secret = secret::load(config.secret, args.secret_file.as_deref(), &args.state_dir)?;
    let credentials = DeviceSecretLogin::new(secret).map_err(|e| e.to_string())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut signals = {
        let _inside = runtime.enter();
        StopSignals::catch()?
    };

    // Kept for the whole run; dropped (and its temporary CA folder removed) at the end.
    let mut emulator = None;
    let mut address = args.mqtt_addr.as_deref().map(parse_addr).transpose()?;
    let mut ca = args
        .ca
        .clone()
        .or_else(|| config.tls.ca_file.map(PathBuf::from));
    if address.is_none() && config.endpoint.emulator {
        let started = aliot_emulator::Emulator::start(aliot_emulator::EmulatorConfig::demo())
            .map_err(|e| format!("cannot start the built-in emulator: {e}"))?;
        let addr = if config.tls.enabled {
            started.tls_addr()
        } else {
            started.mqtt_addr()
        };
        log::info!(
            "built-in Alibaba IoT emulator: MQTT {} TLS {} HTTP {} (CA {})",
            started.mqtt_addr(),
            started.tls_addr(),
            started.http_addr(),
            started.ca_pem_path().display()
        );
        // The emulator's certificate names `localhost`.
        address = Some(("localhost".to_owned(), addr.port()));
        ca = ca.or_else(|| Some(started.ca_pem_path().to_path_buf()));
        emulator = Some(started);
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
    let options = RunnerOptions {
        backoff_base_ms: args.backoff_base_ms,
        ..RunnerOptions::default()
    };
    let launch = apps::AppLaunch {
        exe,
        secret_env: match config.secret {
            SecretSource::Env(var) => Some(var),
            _ => None,
        },
        probe: args.confinement_probe,
    };
    let mut port = apps::start(config.apps, launch, &args.state_dir);
    let ran = runtime.block_on(async {
        let mut kernel = Kernel::new(config);
        let mut runner = Runner::new(
            &mut kernel,
            network,
            clock::HostClock::new(),
            clock::HostEntropy,
            &mut port,
            credentials,
            options,
        );
        runner.run_until(signals.received()).await
    });
    port.shutdown(APP_STOP_GRACE);
    if let Some(emulator) = emulator.take() {
        drop(emulator);
        log::info!("built-in emulator stopped");
    }
    ran.map_err(|e| e.to_string())?;
    log::info!("stopped");
    Ok(())
}
