//! The host board: the capsule on Linux, apps in their own processes, and (by default) the
//! Alibaba IoT emulator in-process, so `cargo run -p aliot-host` shows the whole system.
//!
//! The behaviour comes from the manifest compiled in (see `manifest/device.toml`). The flags
//! below only redirect a simulator run (tests, experiments); they never change the manifest.
//!
//! The binary has three roles ([`supervisor`]): the supervisor (the default) boots the flash
//! file's active image and runs it as the firmware process, across reboots; the firmware runs
//! the capsule; the apps run in their own processes.
//!
//! SIGINT and SIGTERM stop the board cleanly: the supervisor passes SIGTERM to the firmware,
//! whose session says DISCONNECT (when logged in) and whose apps are told to stop (their
//! syscall pipes close); then the built-in emulator is dropped (its temporary CA folder with
//! it), and the process exits with 0.

pub mod app_process;
pub mod apps;
pub mod bridge;
pub mod clock;
pub mod confine;
pub mod flash;
pub mod net;
pub mod ota;
pub mod probe;
pub mod provision;
pub mod qemu;
pub mod secret;
pub mod supervisor;

pub use supervisor::HostBoot;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aliot_kernel::config::{AuthMode, DeviceConfig, MqttVersion, SecretSource};
use aliot_kernel::credentials::{Credentials, DeviceSecretLogin, RegisteredLogin};
use aliot_kernel::kernel::Kernel;
use aliot_kernel::ota::updates::Updates;
use aliot_kernel::runner::{Runner, RunnerOptions};
use aliot_kernel::store::{BlockingFlash, CredentialStore};
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
    /// Send the HTTPS registration (一型一密 over HTTPS) here instead of the manifest's
    /// endpoint.
    #[arg(long, value_name = "HOST:PORT")]
    https_addr: Option<String>,
    /// Read the secret (the DeviceSecret, or the ProductSecret for register/regnwl) from this
    /// file instead of the manifest's source.
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
    /// Internal, for tests: simulate a power cut in the Nth flash erase or write of this run
    /// (0 = the first): it is left half done and the board dies at once.
    #[arg(long, value_name = "N", hide = true)]
    cut_power_at_flash_op: Option<u32>,
    /// Internal, for tests: start every app process as the confinement probe, which reports
    /// whether it can reach the secret, instead of the app.
    #[arg(long, hide = true)]
    confinement_probe: bool,
    /// Internal, for tests: how long a trial image may take to log in before it reboots
    /// (and the boot stage reverts it).
    #[arg(long, value_name = "MS", hide = true)]
    trial_login_ms: Option<u64>,
    /// Internal, for tests: the Nth flash erase or write of this run (0 = the first) and
    /// every later one fail with an error (a worn-out flash); the board keeps running.
    #[arg(long, value_name = "N", hide = true)]
    flash_fails_from_op: Option<u32>,
    /// Internal, for tests: wait between OTA download attempts.
    #[arg(long, value_name = "MS", hide = true)]
    ota_retry_ms: Option<u64>,
    /// Internal, for tests: simulate a power cut in the Nth flash erase or write of the boot
    /// stage, in the first boot of this run.
    #[arg(long, value_name = "N", hide = true)]
    cut_power_at_boot_op: Option<u32>,
    /// Internal, for tests: run the boot stage once, print `booted VERSION KIND`, and exit.
    #[arg(long, hide = true)]
    boot_only: bool,
    /// Internal, for tests: write IMAGE into the update slot, mark it for the next boot, and
    /// exit.
    #[arg(long, value_name = "IMAGE", hide = true)]
    stage_update: Option<PathBuf>,
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
    main_with(&generated::DEVICE)
}

/// The board running `device` instead of the manifest compiled in: the end-to-end tests
/// build one binary per test manifest this way (same apps and topics, other auth modes).
pub fn main_with(device: &'static DeviceConfig) -> ExitCode {
    let args = Args::parse();
    if let Some(name) = args.app.clone() {
        init_logging(Some(name.clone()));
        let role = if args.confinement_probe {
            app_process::Role::ConfinementProbe
        } else {
            app_process::Role::App
        };
        return app_process::run(device, &name, role);
    }
    init_logging(None);
    if !supervisor::is_firmware() {
        let config: &'static DeviceConfig = match effective_config(device, &args) {
            Ok(config) => Box::leak(Box::new(config)),
            Err(message) => {
                log::error!("{message}");
                return ExitCode::FAILURE;
            }
        };
        return supervisor::run(config, args);
    }
    match run_board(device, args) {
        Ok(Stopped::Requested) => ExitCode::SUCCESS,
        Ok(Stopped::Reboot) => ExitCode::from(ota::REBOOT_EXIT_CODE),
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The credentials provider the manifest's `auth.mode` asks for.
enum HostCredentials {
    /// 一机一密.
    Device(DeviceSecretLogin),
    /// 一型一密, over the flash file's credentials partition.
    /// (Boxed: the store's fixed record buffers make it large.)
    Registered(Box<RegisteredLogin<CredentialStore<BlockingFlash<FlashPartition>>>>),
}

/// The whole flash file, shared with the boot stage's slots.
type FlashPartition = aliot_boot::stage::Partition<'static, flash::FileFlash>;

/// What the OTA task needs besides the runner's.
struct OtaParts<'u> {
    /// Shared by the runner's agent and the task.
    updates: &'u Updates,
    stage: ota::HostStage,
    /// Downloads go where the job's URL says (no redirect), with the board's trust store.
    network: net::HostNetwork,
    limits: aliot_kernel::ota::fetcher::Limits,
    options: aliot_kernel::ota::OtaOptions,
}

/// The capsule's runner with `credentials` and the OTA download task beside it, until `stop`
/// or until an update asks for a reboot ([`Updates::reboot_requested`]).
async fn run<K: Credentials>(
    kernel: &mut Kernel,
    network: net::HostNetwork,
    port: &mut apps::HostAppPort,
    credentials: K,
    options: RunnerOptions,
    ota: &mut OtaParts<'_>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), aliot_kernel::credentials::CredentialsError> {
    let mut runner = Runner::new(
        kernel,
        network,
        clock::HostClock::new(),
        clock::HostEntropy,
        port,
        credentials,
        options,
    )
    .with_ota(ota.updates, ota.options)
    .with_platform_time(aliot_kernel::platform_time::TimeOptions::default());
    let clock = clock::HostClock::new();
    let mut buf = vec![0u8; aliot_kernel::ota::download::RECOMMENDED_BUF_LEN];
    let downloads = aliot_kernel::ota::task::run_updates(
        ota.updates,
        &mut ota.network,
        &clock,
        &mut ota.stage,
        &ota.limits,
        &mut buf,
    );
    match embassy_futures::select::select(runner.run_until(stop), downloads).await {
        embassy_futures::select::Either::First(ran) => ran,
        embassy_futures::select::Either::Second(never) => match never {},
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
    /// A single-threaded runtime, and the signals caught inside it.
    fn with_runtime() -> Result<(tokio::runtime::Runtime, Self), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let signals = {
            let _inside = runtime.enter();
            Self::catch()?
        };
        Ok((runtime, signals))
    }

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
fn effective_config(device: &DeviceConfig, args: &Args) -> Result<DeviceConfig, String> {
    let mut config = *device;
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

fn parse_addr(flag: &str, addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {addr}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{flag} {addr}: bad port"))?;
    Ok((host.to_owned(), port))
}

/// The flash file in the state directory, covering the manifest's whole layout (boot stage,
/// slots, credentials).
fn open_flash(config: &DeviceConfig, args: &Args) -> Result<flash::FileFlash, String> {
    let partition = config.credentials_partition;
    if partition.erase_page as usize != flash::PAGE_SIZE {
        return Err(format!(
            "the manifest's flash erase page is {} bytes; this board simulates the nRF9160's {}",
            partition.erase_page,
            flash::PAGE_SIZE
        ));
    }
    let end = u64::from(ota::layout_end(config));
    let pages = end.div_ceil(flash::PAGE_SIZE as u64) as usize;
    let path = args.state_dir.join("flash.bin");
    let mut flash = flash::FileFlash::open(&path, pages)
        .map_err(|e| format!("cannot open the flash file {}: {e}", path.display()))?;
    if let Some(op) = args.cut_power_at_flash_op {
        flash.cut_power_at(op);
    }
    if let Some(op) = args.flash_fails_from_op {
        flash.fail_from(op);
    }
    Ok(flash)
}

fn run_board(device: &'static DeviceConfig, args: Args) -> Result<Stopped, String> {
    let config: &'static DeviceConfig = Box::leak(Box::new(effective_config(device, &args)?));
    std::fs::create_dir_all(&args.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    let flash = ota::share(open_flash(config, &args)?);
    let credentials = match config.auth {
        AuthMode::DeviceSecret => {
            let secret = secret::load(config.secret, args.secret_file.as_deref(), &args.state_dir)?;
            HostCredentials::Device(DeviceSecretLogin::new(secret).map_err(|e| e.to_string())?)
        }
        AuthMode::ProductSecretRegister | AuthMode::ProductSecretNoPreRegister => {
            let product_secret = secret::load_kind(
                config.secret,
                args.secret_file.as_deref(),
                &args.state_dir,
                secret::SecretKind::Product,
            )?;
            let store = CredentialStore::new(
                BlockingFlash::new(ota::whole(flash)),
                config.credentials_partition,
            )
            .map_err(|e| format!("the credentials partition: {e}"))?;
            HostCredentials::Registered(Box::new(
                RegisteredLogin::new(product_secret, store).map_err(|e| e.to_string())?,
            ))
        }
    };

    let (runtime, mut signals) = StopSignals::with_runtime()?;

    // The supervisor points these at its built-in emulator.
    let address = args
        .mqtt_addr
        .as_deref()
        .map(|a| parse_addr("--mqtt-addr", a))
        .transpose()?;
    let https_address = args
        .https_addr
        .as_deref()
        .map(|a| parse_addr("--https-addr", a))
        .transpose()?;
    let ca = args
        .ca
        .clone()
        .or_else(|| config.tls.ca_file.map(PathBuf::from));
    let tls = net::tls_config(ca.as_deref())?;
    let updates = Updates::new(ota::boot_kind());
    let mut ota_parts = OtaParts {
        updates: &updates,
        stage: ota::stage(config, flash)?,
        network: net::HostNetwork::new(tls.clone(), None),
        limits: aliot_kernel::ota::fetcher::Limits {
            retry_delay_ms: args.ota_retry_ms.unwrap_or(10_000),
            ..Default::default()
        },
        options: aliot_kernel::ota::OtaOptions {
            trial_login_ms: args.trial_login_ms.unwrap_or(600_000),
            ..Default::default()
        },
    };
    let mut network = net::HostNetwork::new(tls, address);
    if let Some(to) = https_address {
        let https = config.registration.https;
        network.redirect((https.host.to_owned(), https.port), to);
    }

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
        let mut kernel = Kernel::with_services(config, aliot_kernel::services::all(config));
        let stop = signals.received();
        let ota = &mut ota_parts;
        match credentials {
            HostCredentials::Device(c) => {
                run(&mut kernel, network, &mut port, c, options, ota, stop).await
            }
            HostCredentials::Registered(c) => {
                run(&mut kernel, network, &mut port, *c, options, ota, stop).await
            }
        }
    });
    port.shutdown(APP_STOP_GRACE);
    ran.map_err(|e| e.to_string())?;
    if updates.reboot_requested() {
        log::info!("rebooting");
        return Ok(Stopped::Reboot);
    }
    log::info!("stopped");
    Ok(Stopped::Requested)
}

/// Why the firmware stopped.
enum Stopped {
    /// SIGINT or SIGTERM.
    Requested,
    /// An update asked for a reboot (the supervisor runs the boot stage again).
    Reboot,
}
