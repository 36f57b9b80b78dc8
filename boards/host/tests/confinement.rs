//! No app process can read the DeviceSecret, by any route.
//!
//! The real board binary runs with the secret in every place a deployment may keep it: its
//! environment (`secret = { env = ... }`), a file (`--secret-file`, absolute path), the
//! provisioned file in its state directory, its own memory and command line, and a descriptor
//! on the secret file that a careless launcher left open. It starts its apps with
//! `--confinement-probe`, which makes each app process (spawned, environment-cleared and
//! confined exactly like an app) try every route and report per route; see `src/probe.rs`.
//!
//! The test fails if any route is not refused, if a route is missing from the report (the
//! probe died early or a setting did not arrive), if an ordinary operation failed under the
//! confinement (kernel greeting over the pipes, a timed wait, a thread, memory), or if the
//! secret shows up in any log line.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const APPS: [&str; 2] = ["publish_test", "echo"];
/// The variable a `secret = { env = "ALIOT_DEVICE_SECRET" }` manifest would name.
const SECRET_VAR: &str = "ALIOT_DEVICE_SECRET";
const WAIT: Duration = Duration::from_secs(30);

/// Routes every probe must report as denied (the pid and file routes come from the settings
/// below; the others the probe always tries).
const ROUTES: [&str; 16] = [
    "manifest-secret-file",
    "proc-self-environ",
    "proc-self-mem",
    "exec",
    "inherited-fds",
    "env:secret",
    "file:secret",
    "file:provisioned",
    "pid:board:environ",
    "pid:board:cmdline",
    "pid:board:mem",
    "pid:board:maps",
    "pid:board:ptrace",
    "pid:board:process_vm_readv",
    "pid:board:pidfd_getfd",
    "tcp:listener",
];
/// What must keep working inside the confinement.
const CHECKS: [&str; 5] = [
    "kernel-greeting",
    "kernel-wait",
    "clock-and-sleep",
    "thread",
    "memory",
];

/// The board and its apps, killed on drop.
struct Board {
    child: Child,
    state: std::path::PathBuf,
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for app in APPS {
            let pid_file = self.state.join("apps").join(format!("{app}.pid"));
            if let Some(pid) = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[test]
fn an_app_process_cannot_read_the_secret_by_any_route() {
    let manifest_secret =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifest/secrets/demo-device.secret");
    // The demo device's real secret, so the board really logs in with it.
    let secret = std::fs::read_to_string(&manifest_secret)
        .expect("the demo secret")
        .trim()
        .to_owned();
    assert!(
        secret.len() >= 16,
        "a secret distinctive enough to search logs for"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("device.secret");
    std::fs::write(&secret_file, &secret).expect("write the secret file");
    let state = dir.path().join("state");
    let provisioned = state.join("provisioned").join("device_secret");
    std::fs::create_dir_all(provisioned.parent().unwrap()).unwrap();
    std::fs::write(&provisioned, &secret).expect("write the provisioned secret");

    // A descriptor on the secret file that the board inherits (no close-on-exec), as from a
    // careless launcher: the board passes it on to its apps unless they close it.
    let leaked = std::fs::File::open(&secret_file).unwrap();
    nix::fcntl::fcntl(
        leaked.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .expect("clear close-on-exec");

    // Something listening on loopback, like the board's emulator API: no app may connect.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener_addr = listener.local_addr().unwrap();

    // `sh` learns its pid ($$) and `exec`s the board under the same pid, so the probes can be
    // told the board's pid before it starts.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"export ALIOT_SETTING_ECHO_PROBE_PID_BOARD=$$ ALIOT_SETTING_PUBLISH_TEST_PROBE_PID_BOARD=$$; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_aliot-host"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--secret-file")
        .arg(&secret_file)
        .arg("--confinement-probe")
        .env("RUST_LOG", "info")
        .env(SECRET_VAR, &secret)
        .env("ALIOT_PROBE_SENTINEL", "not for apps")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for app in APPS {
        let prefix = format!("ALIOT_SETTING_{}_PROBE_", app.to_uppercase());
        cmd.env(format!("{prefix}ENV_SECRET"), SECRET_VAR)
            .env(format!("{prefix}FILE_SECRET"), &secret_file)
            .env(format!("{prefix}FILE_PROVISIONED"), &provisioned)
            .env(format!("{prefix}TCP_LISTENER"), listener_addr.to_string());
    }
    let mut child = cmd.spawn().expect("start the board");
    drop(leaked);
    let stderr = child.stderr.take().unwrap();
    let board = Board {
        child,
        state: state.clone(),
    };

    let (lines, log) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut all = Vec::new();
    let done = |all: &[String], app: &str| {
        all.iter()
            .any(|l| l.starts_with(&format!("[app {app}] probe done:")))
    };
    let deadline = Instant::now() + WAIT;
    while !(APPS.iter().all(|app| done(&all, app))
        && all.iter().any(|l| l.contains("logged in as")))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => all.push(line),
            Err(_) => panic!(
                "no complete probe report within {WAIT:?}; log so far:\n{}",
                all.join("\n")
            ),
        }
    }
    drop(board);
    let text = all.join("\n");
    assert!(
        !text.contains(&secret),
        "the secret appeared in the log:\n{text}"
    );

    // Every problem is collected, so one run shows all the routes that are open.
    let mut problems = Vec::new();
    for app in APPS {
        let tag = format!("[app {app}] probe ");
        // The first report of this app (restarted probes report again).
        let end = all
            .iter()
            .position(|l| l.starts_with(&format!("{tag}done:")))
            .unwrap();
        let report: Vec<&str> = all[..=end]
            .iter()
            .filter_map(|l| l.strip_prefix(&tag))
            .collect();
        let line = |start: &str| report.iter().find_map(|l| l.strip_prefix(start));
        match line("confinement: ") {
            Some(confinement) => {
                eprintln!("{app}: protections in force: {confinement}");
                if !confinement.contains("seccomp=on") && !confinement.contains("landlock=on") {
                    problems.push(format!("{app}: neither mechanism in force: {confinement}"));
                }
            }
            None => problems.push(format!("{app}: no confinement line")),
        }
        for check in CHECKS {
            match line(&format!("check {check}: ")) {
                Some(result) if result.starts_with("ok") => {}
                Some(result) => problems.push(format!("{app}: check {check}: {result}")),
                None => problems.push(format!("{app}: check {check} did not run")),
            }
        }
        for route in ROUTES {
            match line(&format!("route {route}: ")) {
                Some(result) if result.starts_with("denied") => {}
                Some(result) => problems.push(format!("{app}: route {route}: {result}")),
                None => problems.push(format!("{app}: route {route} was not tried")),
            }
        }
        let own = format!("ALIOT_SETTING_{}_", app.to_uppercase());
        match line("environment names: ") {
            Some(names) => problems.extend(
                names
                    .split_whitespace()
                    .filter(|name| *name != "RUST_LOG" && !name.starts_with(&own))
                    .map(|name| format!("{app}: sees the board's variable {name}")),
            ),
            None => problems.push(format!("{app}: no environment line")),
        }
        let summary = format!(
            "done: {} routes, 0 leaks, 0 inconclusive; {} checks, 0 failed",
            ROUTES.len(),
            CHECKS.len()
        );
        if report.last() != Some(&summary.as_str()) {
            problems.push(format!("{app}: {}", report.last().unwrap_or(&"")));
        }
    }
    if listener.accept().is_ok() {
        problems.push("an app connected to the loopback listener".into());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
