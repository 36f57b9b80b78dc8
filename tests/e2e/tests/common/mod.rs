//! Harness for end-to-end tests: an emulator in the test process, the host board as a real
//! child process (which starts its apps as grandchildren), and bounded waits on both.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aliot_emulator::{Emulator, EmulatorConfig, Uplink};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The default manifest's device (see manifest/device.toml and the emulator's demo registry).
pub const PK: &str = "a1NrfDemo01";
/// DeviceName of the default manifest.
pub const DN: &str = "nrf9160-dk-01";
/// Generous bound for anything that should take well under a second.
pub const WAIT: Duration = Duration::from_secs(20);

/// Topic of the default manifest named `name` (`update`, `get`, ...).
pub fn topic(name: &str) -> String {
    format!("/{PK}/{DN}/user/{name}")
}

/// Start an emulator with the demo registry on free ports.
pub fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::demo()).expect("emulator starts")
}

/// How to start the device.
#[derive(Clone)]
pub struct DeviceOptions {
    /// "3.1.1" or "5".
    pub mqtt_version: &'static str,
    /// TLS on.
    pub tls: bool,
    /// Replace the secret (to test a wrong one).
    pub secret: Option<String>,
    /// CA file instead of the emulator's.
    pub ca: Option<PathBuf>,
    /// Extra environment (app settings).
    pub env: Vec<(String, String)>,
    /// First reconnect delay.
    pub backoff_base_ms: u32,
    /// Dial here instead of the emulator's port.
    pub mqtt_addr: Option<SocketAddr>,
    /// Run this board binary instead of `aliot-host-under-test` (the registration tests'
    /// `aliot-host-<mode>`).
    pub exe: Option<&'static str>,
    /// Use this state directory (flash file, pid files) instead of a fresh one, so a restart
    /// finds what the last run stored.
    pub state_dir: Option<PathBuf>,
    /// Send the HTTPS registration to the emulator's HTTPS port.
    pub https: bool,
    /// More flags for the board.
    pub args: Vec<String>,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            mqtt_version: "3.1.1",
            tls: true,
            secret: None,
            ca: None,
            env: vec![(
                "ALIOT_SETTING_PUBLISH_TEST_INTERVAL_MS".into(),
                "300".into(),
            )],
            backoff_base_ms: 300,
            mqtt_addr: None,
            exe: None,
            state_dir: None,
            https: false,
            args: Vec::new(),
        }
    }
}

/// The host board running as a child process; killed (with its apps) on drop.
pub struct Device {
    child: Child,
    /// Removed on drop unless the test gave its own directory.
    _state: tempfile::TempDir,
    state: PathBuf,
    log: Arc<Mutex<String>>,
    /// The board's stderr reached its end (the board and every app closed it).
    log_closed: Arc<AtomicBool>,
}

impl Device {
    /// Start the board against `emu`.
    pub fn start(emu: &Emulator, opts: DeviceOptions) -> Device {
        let state = tempfile::tempdir().expect("temp dir");
        let addr = opts.mqtt_addr.unwrap_or(if opts.tls {
            emu.tls_addr()
        } else {
            emu.mqtt_addr()
        });
        let state_dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| state.path().to_path_buf());
        let mut cmd = Command::new(
            opts.exe
                .unwrap_or(env!("CARGO_BIN_EXE_aliot-host-under-test")),
        );
        cmd.arg("--mqtt-addr")
            .arg(format!("127.0.0.1:{}", addr.port()))
            .arg("--ca")
            .arg(
                opts.ca
                    .clone()
                    .unwrap_or_else(|| emu.ca_pem_path().to_path_buf()),
            )
            .arg("--mqtt-version")
            .arg(opts.mqtt_version)
            .arg("--tls")
            .arg(opts.tls.to_string())
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--backoff-base-ms")
            .arg(opts.backoff_base_ms.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(secret) = &opts.secret {
            let file = state.path().join("secret-override");
            std::fs::write(&file, secret).expect("write secret");
            cmd.arg("--secret-file").arg(file);
        }
        if opts.https {
            cmd.arg("--https-addr")
                .arg(format!("127.0.0.1:{}", emu.https_addr().port()));
        }
        cmd.args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        Self::spawn(cmd, state, state_dir)
    }

    /// Start the board as `cargo run -p aliot-host` does: no flags but its own state
    /// directory, so it starts its built-in emulator; `env` adds app settings.
    pub fn start_builtin(env: &[(&str, &str)]) -> Device {
        let state = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aliot-host-under-test"));
        let state_dir = state.path().to_path_buf();
        cmd.arg("--state-dir")
            .arg(&state_dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::spawn(cmd, state, state_dir)
    }

    /// Spawn `cmd` (stderr piped) and collect its log on a thread.
    fn spawn(mut cmd: Command, state: tempfile::TempDir, state_dir: PathBuf) -> Device {
        let mut child = cmd.spawn().expect("start the host board");
        let log = Arc::new(Mutex::new(String::new()));
        let log_closed = Arc::new(AtomicBool::new(false));
        let stderr = child.stderr.take().expect("piped stderr");
        let (sink, closed) = (log.clone(), log_closed.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  | {line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            closed.store(true, Ordering::SeqCst);
        });
        Device {
            child,
            _state: state,
            state: state_dir,
            log,
            log_closed,
        }
    }

    /// Wait until the board's stderr is closed (it and its apps are gone), so that
    /// [`Device::log`] holds everything they wrote.
    pub fn wait_log_closed(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_closed.load(Ordering::SeqCst))
    }

    /// The board's state directory (its flash file, pid files).
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state
    }

    /// Everything the board and its apps logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Send `signal` to the board process (not to its apps).
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the board");
    }

    /// Wait (bounded, polling) for the board to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// Process id of app `name`, from the board's pid file.
    pub fn app_pid(&self, name: &str) -> Option<i32> {
        let text =
            std::fs::read_to_string(self.state.join("apps").join(format!("{name}.pid"))).ok()?;
        text.trim().parse().ok()
    }

    /// Kill app `name` with SIGKILL.
    pub fn kill_app(&self, name: &str) -> i32 {
        let pid = self.app_pid(name).expect("app is running");
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill app");
        pid
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let apps: Vec<i32> = ["publish_test", "echo", "sensor"]
            .iter()
            .filter_map(|a| self.app_pid(a))
            .collect();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The apps exit on their own when the kernel's pipes close; make sure anyway.
        for pid in apps {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Lines of `log` at level ERROR (the board's `[time ERROR module]` and the apps'
/// `[app name] ERROR`).
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" ERROR ")).collect()
}

/// Whether process `pid` is gone (or a zombie nobody waits for: not our child).
pub fn process_gone(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_err()
}

/// A free local port that nothing listens on (bound once, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Accepted uplinks of the demo device on `topic`.
pub fn accepted(emu: &Emulator, topic: &str) -> Vec<Uplink> {
    emu.uplinks(PK, DN)
        .into_iter()
        .filter(|u| u.topic == topic && u.refused.is_none())
        .collect()
}

/// Wait for an accepted uplink on `topic` with exactly `payload`.
pub fn wait_uplink(emu: &Emulator, topic: &str, payload: &[u8]) -> Option<Uplink> {
    emu.wait_for_uplink(PK, DN, WAIT, |u| {
        u.topic == topic && u.payload == payload && u.refused.is_none()
    })
}

/// Wait until the device's session holds all `filters`.
pub fn wait_subscribed(emu: &Emulator, filters: &[String]) -> bool {
    wait_until(WAIT, || {
        let subs = emu.subscriptions(PK, DN);
        filters.iter().all(|f| subs.contains(f))
    })
}

/// A firmware image: the boot stage's header (version `version`) in front of `payload`.
pub fn image(version: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = aliot_boot::image::ImageHeader::new(version, payload)
        .expect("a valid version")
        .to_bytes()
        .to_vec();
    out.extend_from_slice(payload);
    out
}

/// An image (version `version`) whose payload is a launcher of `exec` with `extra` arguments.
pub fn launcher_image(version: &str, exec: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    padded_launcher_image(version, exec, extra, 0)
}

/// [`launcher_image`] with its payload padded to `pad_to` bytes (a download of a realistic
/// size).
pub fn padded_launcher_image(
    version: &str,
    exec: &std::path::Path,
    extra: &[&str],
    pad_to: usize,
) -> Vec<u8> {
    let mut payload = Vec::new();
    let extra: Vec<&[u8]> = extra.iter().map(|a| a.as_bytes()).collect();
    aliot_boot::write_host_launcher(
        exec.as_os_str().as_encoded_bytes(),
        &extra,
        pad_to,
        &mut |b| payload.extend_from_slice(b),
    );
    image(version, &payload)
}
