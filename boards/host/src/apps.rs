//! Apps as OS processes: the board re-executes itself with `--app <name>` once per app in
//! the manifest, talks to each over its stdin/stdout with COBS-framed postcard, and restarts
//! a dead app according to its restart policy while the others keep running.
//!
//! The app id of a frame is the pipe it arrived on, so an app cannot speak for another.
//!
//! Stopping ([`HostAppPort::shutdown`]): the board closes every app's syscall pipe, which the
//! app reads as "stop" and exits normally; no app is restarted after that, and one that has
//! not exited within the grace period is killed. Apps run in their own process group, so a
//! Ctrl-C in the terminal reaches the board alone, which then stops them in this order.
//! COBS framing is this board's business: the kernel sees each app's request unframed in a
//! buffer this port lends it (one per app, allocated at start), and answers in place.
//!
//! An app process gets its two pipes and the board's stderr, `/` as working directory, and an
//! environment built from nothing ([`app_environment`]): the board's own environment may hold
//! the DeviceSecret (`secret = { env = ... }`) and is never passed on. Inside, the process
//! closes every other descriptor and confines itself before the app runs (`confine.rs`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aliot_abi::{MAX_COBS_FRAME_LEN, MAX_FRAME_LEN};
use aliot_kernel::board::{AppInput, AppPort};
use aliot_kernel::config::{AppDef, RestartPolicy};
use aliot_kernel::kernel::AppId;
use tokio::sync::mpsc;

/// Frames from all apps queue here; each app has at most one request outstanding, so a
/// small bound is plenty and a flooding app blocks only its own reader thread.
const INPUT_QUEUE: usize = 64;
/// First restart delay; doubles while an app keeps crashing soon after start.
const RESTART_BASE: Duration = Duration::from_millis(200);
const RESTART_MAX: Duration = Duration::from_secs(30);
/// An app that ran this long counts as healthy again.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Responses waiting for an app to read them. An app that lets this many pile up is not
/// following the protocol (one request, one response); it loses its pipe instead of
/// stalling the kernel.
const OUTPUT_QUEUE: usize = 16;

/// One app's response pipe, shared by the kernel's port and the app's supervisor.
#[derive(Default)]
struct AppPipe {
    /// A queue drained by a writer thread, so a blocked or dead app can never block the
    /// kernel; `None` closes the app's stdin.
    queue: Mutex<Option<SyncSender<Vec<u8>>>>,
    /// The port closed the pipe because the app did not read its responses: whatever the
    /// app's exit status, that run failed.
    evicted: AtomicBool,
    /// Process id of the app's current run.
    pid: Mutex<Option<u32>>,
}

impl AppPipe {
    fn queue(&self) -> std::sync::MutexGuard<'_, Option<SyncSender<Vec<u8>>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pid(&self) -> std::sync::MutexGuard<'_, Option<u32>> {
        self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Writer = Arc<AppPipe>;

/// Set once when the board stops; wakes supervisors waiting to restart an app.
#[derive(Default)]
struct Stopping {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Stopping {
    fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits `delay`, or less when the board stops meanwhile; true when it is stopping.
    fn wait(&self, delay: Duration) -> bool {
        let guard = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, delay, |stopping| !*stopping)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// What the pipe threads hand the kernel's port.
#[derive(Debug)]
enum PipeInput {
    /// One COBS frame (terminating zero included) from app `app`.
    Frame { app: AppId, frame: Vec<u8> },
    /// App `app` died or was stopped.
    Exited(AppId),
}

/// The kernel's end of all app pipes.
pub struct HostAppPort {
    inputs: mpsc::Receiver<PipeInput>,
    writers: Vec<Writer>,
    /// Each app's syscall buffer, lent to the kernel.
    buffers: Vec<Box<[u8]>>,
    stopping: Arc<Stopping>,
    /// Disconnected once every supervisor has returned (each holds a sender).
    supervisors: std::sync::mpsc::Receiver<()>,
}

impl AppPort for HostAppPort {
    async fn recv(&mut self) -> AppInput {
        loop {
            match self.inputs.recv().await {
                Some(PipeInput::Exited(app)) => return AppInput::Exited(app),
                Some(PipeInput::Frame { app, frame }) => {
                    let Some(buffer) = self.buffers.get_mut(usize::from(app)) else {
                        continue;
                    };
                    let len = unframe(frame, buffer);
                    return AppInput::Syscall { app, len };
                }
                // Every supervisor ended (all apps stopped for good): nothing will ever arrive.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]> {
        self.buffers.get_mut(usize::from(app)).map(|b| &mut b[..])
    }

    fn respond(&mut self, app: AppId, len: usize) {
        let Some(response) = self
            .buffers
            .get(usize::from(app))
            .and_then(|b| b.get(..len))
        else {
            return;
        };
        let frame = frame(response);
        self.send_frame(app, frame);
    }
}

/// Decodes one COBS frame from an app pipe (terminating zero optional) into `dst`; returns
/// the request's length. A frame that does not decode, or does not fit, is handed over empty:
/// the kernel answers it `Malformed`, as it would any bad request.
pub fn unframe(mut frame: Vec<u8>, dst: &mut [u8]) -> usize {
    if frame.last() == Some(&0) {
        frame.pop();
    }
    // In place: cobs 0.3's copying decoder costs about 3x as much per byte.
    match cobs::decode_in_place(&mut frame) {
        Ok(len) => match (dst.get_mut(..len), frame.get(..len)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                len
            }
            _ => 0,
        },
        Err(_) => 0,
    }
}

/// Encodes a response for an app pipe: COBS, terminating zero included, in one allocation.
pub fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0; cobs::max_encoding_length(bytes.len()) + 1];
    let len = cobs::encode(bytes, &mut out);
    out.truncate(len);
    out.push(0);
    out
}

impl HostAppPort {
    /// Queue one COBS frame for app `app`'s stdin.
    fn send_frame(&mut self, app: AppId, frame: Vec<u8>) {
        let Some(writer) = self.writers.get(usize::from(app)) else {
            return;
        };
        let mut guard = writer.queue();
        let Some(queue) = guard.as_ref() else { return };
        match queue.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Dropping the queue ends the writer thread, which closes the app's stdin:
                // the app sees EOF, exits, and its supervisor restarts it per the manifest
                // (as after a failure, whatever the exit status).
                log::warn!("app {app} does not read its responses; closing its pipe");
                writer.evicted.store(true, Ordering::SeqCst);
                *guard = None;
            }
            // The app died; its supervisor reports the exit.
            Err(TrySendError::Disconnected(_)) => *guard = None,
        }
    }

    /// Stops every app: closes its syscall pipe (the app reads EOF and exits normally),
    /// restarts none, and waits up to `grace` for all to exit; those still running then are
    /// killed. Returns when every supervisor is done (or after a further second at most).
    pub fn shutdown(&mut self, grace: Duration) {
        self.stopping.set();
        // Nothing reads app requests any more: a supervisor forwarding one gives up at once.
        self.inputs.close();
        for writer in &self.writers {
            *writer.queue() = None;
        }
        if self.wait_for_supervisors(grace) {
            return;
        }
        for writer in &self.writers {
            if let Some(pid) = *writer.pid() {
                log::warn!("app process {pid} did not stop within {grace:?}; killing it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !self.wait_for_supervisors(Duration::from_secs(1)) {
            log::warn!("an app supervisor did not finish");
        }
    }

    /// True once every supervisor has returned, false if `timeout` passed first.
    fn wait_for_supervisors(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.supervisors.recv_timeout(left) {
                // Supervisors never send; a message would only be noise.
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

/// Variables an app process gets besides its own `ALIOT_SETTING_<APP>_*` overrides.
const PASSED_VARS: &[&str] = &["RUST_LOG"];

/// How the board starts app processes.
#[derive(Debug, Clone)]
pub struct AppLaunch {
    /// This board's binary, re-executed as `EXE --app NAME`.
    pub exe: PathBuf,
    /// The environment variable that holds the DeviceSecret, if the manifest says so: it is
    /// never passed on, even when its name looks like a setting.
    pub secret_env: Option<&'static str>,
    /// Tests only: start every app as the confinement probe (`--confinement-probe`).
    pub probe: bool,
}

/// The environment of app `app`, picked from the board's `vars`: `RUST_LOG` and the
/// app's own `ALIOT_SETTING_<APP>_*` overrides, minus `secret_env`. Nothing else (`PATH`,
/// `HOME`, another app's settings, the secret) reaches the app.
pub fn app_environment(
    app: &str,
    secret_env: Option<&str>,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let prefix = crate::app_process::setting_prefix(app);
    vars.into_iter()
        .filter(|(name, _)| {
            let Some(name) = name.to_str() else {
                return false;
            };
            Some(name) != secret_env && (PASSED_VARS.contains(&name) || name.starts_with(&prefix))
        })
        .collect()
}

/// Start one supervisor thread per app.
pub fn start(apps: &'static [AppDef], launch: AppLaunch, state_dir: &Path) -> HostAppPort {
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let (alive, supervisors) = std::sync::mpsc::channel();
    let stopping = Arc::new(Stopping::default());
    let pid_dir = state_dir.join("apps");
    let _ = std::fs::create_dir_all(&pid_dir);
    let mut writers = Vec::new();
    for (index, def) in apps.iter().enumerate() {
        let writer: Writer = Arc::default();
        writers.push(writer.clone());
        let supervisor = Supervisor {
            app: index as AppId,
            def,
            launch: launch.clone(),
            pid_file: pid_dir.join(format!("{}.pid", def.name)),
            writer,
            inputs: tx.clone(),
            stopping: stopping.clone(),
            _alive: alive.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("app-{}", def.name))
            .spawn(move || supervisor.run());
        if let Err(e) = spawned {
            log::error!("cannot start the supervisor of app {}: {e}", def.name);
        }
    }
    HostAppPort {
        inputs: rx,
        buffers: apps
            .iter()
            .map(|_| vec![0; MAX_FRAME_LEN].into_boxed_slice())
            .collect(),
        writers,
        stopping,
        supervisors,
    }
}

struct Supervisor {
    app: AppId,
    def: &'static AppDef,
    launch: AppLaunch,
    pid_file: PathBuf,
    writer: Writer,
    inputs: mpsc::Sender<PipeInput>,
    stopping: Arc<Stopping>,
    /// Dropped when the supervisor returns (see [`HostAppPort::shutdown`]).
    _alive: std::sync::mpsc::Sender<()>,
}

impl Supervisor {
    fn run(self) {
        let mut delay = RESTART_BASE;
        loop {
            if self.stopping.is_set() {
                return;
            }
            let started = Instant::now();
            let status = match self.spawn() {
                Ok(child) => self.serve(child),
                Err(e) => {
                    log::error!("cannot start app {}: {e}", self.def.name);
                    None
                }
            };
            if self.stopping.is_set() {
                match status {
                    Some(status) => log::info!("app {} stopped ({status})", self.def.name),
                    None => log::info!("app {} stopped", self.def.name),
                }
                return;
            }
            if let Some(status) = status {
                log::warn!("app {} exited: {status}", self.def.name);
            }
            let evicted = self.writer.evicted.swap(false, Ordering::SeqCst);
            let success = status.is_some_and(|s| s.success()) && !evicted;
            if self
                .inputs
                .blocking_send(PipeInput::Exited(self.app))
                .is_err()
            {
                return; // the kernel is gone
            }
            let restart = match self.def.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !success,
                RestartPolicy::Always => true,
            };
            if !restart {
                log::info!(
                    "app {} stopped for good (restart policy {:?})",
                    self.def.name,
                    self.def.restart
                );
                return;
            }
            delay = if started.elapsed() >= HEALTHY_AFTER {
                RESTART_BASE
            } else {
                (delay * 2).min(RESTART_MAX)
            };
            log::warn!(
                "restarting app {} in {} ms",
                self.def.name,
                delay.as_millis()
            );
            if self.stopping.wait(delay) {
                return;
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.launch.exe);
        // Its own process group: a terminal's Ctrl-C goes to the board, which stops the apps.
        command.process_group(0);
        command.arg("--app").arg(self.def.name);
        if self.launch.probe {
            command.arg("--confinement-probe");
        }
        let mut child = command
            .env_clear()
            .envs(app_environment(
                self.def.name,
                self.launch.secret_env,
                std::env::vars_os(),
            ))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let _ = std::fs::write(&self.pid_file, child.id().to_string());
        *self.writer.pid() = Some(child.id());
        log::info!("app {} started as process {}", self.def.name, child.id());
        if let Some(stdin) = child.stdin.take() {
            let (queue, frames) = sync_channel(OUTPUT_QUEUE);
            let name = self.def.name;
            thread::Builder::new()
                .name(format!("app-{name}-out"))
                .spawn(move || write_frames(stdin, frames))?;
            *self.writer.queue() = Some(queue);
            if self.stopping.is_set() {
                // Started as the board began to stop: let it stop too.
                *self.writer.queue() = None;
            }
        }
        Ok(child)
    }

    /// Forward the app's frames until its stdout closes; returns how it exited.
    fn serve(&self, mut child: Child) -> Option<ExitStatus> {
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::new(stdout);
            let mut frame = Vec::with_capacity(256);
            loop {
                frame.clear();
                match reader
                    .by_ref()
                    .take(MAX_COBS_FRAME_LEN as u64 + 1)
                    .read_until(0, &mut frame)
                {
                    Ok(0) => break,
                    Ok(_) if frame.last() != Some(&0) => {
                        log::warn!(
                            "app {} sent an oversized or truncated frame; stopping it",
                            self.def.name
                        );
                        let _ = child.kill();
                        break;
                    }
                    Ok(_) => {
                        let input = PipeInput::Frame {
                            app: self.app,
                            frame: std::mem::take(&mut frame),
                        };
                        if self.inputs.blocking_send(input).is_err() {
                            let _ = child.kill();
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        *self.writer.queue() = None;
        let _ = std::fs::remove_file(&self.pid_file);
        let status = child.wait();
        *self.writer.pid() = None;
        match status {
            Ok(status) => Some(status),
            Err(e) => {
                log::error!("app {}: cannot collect exit status: {e}", self.def.name);
                None
            }
        }
    }
}

/// Copy queued response frames to the app's stdin until the queue or the pipe closes.
fn write_frames(mut stdin: ChildStdin, frames: std::sync::mpsc::Receiver<Vec<u8>>) {
    for frame in frames {
        if stdin
            .write_all(&frame)
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_gets_only_its_settings_and_rust_log_never_the_secret() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("RUST_LOG", "debug"),
            ("ALIOT_DEVICE_SECRET", "s3cr3t"),
            ("ALIOT_SETTING_ECHO_PREFIX", "x"),
            ("ALIOT_SETTING_ECHO_SECRET", "s3cr3t"),
            ("ALIOT_SETTING_PUBLISH_TEST_COUNT", "3"),
            ("ALIOT_SETTING_ECHOX", "y"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = app_environment("echo", Some("ALIOT_SETTING_ECHO_SECRET"), vars.clone());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["RUST_LOG", "ALIOT_SETTING_ECHO_PREFIX"]);
        let env = app_environment("publish_test", Some("ALIOT_DEVICE_SECRET"), vars);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["RUST_LOG", "ALIOT_SETTING_PUBLISH_TEST_COUNT"]);
    }

    #[test]
    fn an_app_that_stops_reading_loses_its_pipe_instead_of_blocking_the_kernel() {
        let (queue, frames) = sync_channel(OUTPUT_QUEUE);
        let writer: Writer = Arc::default();
        *writer.queue() = Some(queue);
        let (_tx, rx) = mpsc::channel(1);
        let (_alive, supervisors) = std::sync::mpsc::channel();
        let mut port = HostAppPort {
            inputs: rx,
            writers: vec![writer.clone()],
            buffers: vec![vec![0; MAX_FRAME_LEN].into_boxed_slice()],
            stopping: Arc::default(),
            supervisors,
        };
        for _ in 0..OUTPUT_QUEUE {
            port.respond(0, 5);
        }
        assert!(writer.queue().is_some(), "a full queue is still fine");
        assert!(!writer.evicted.load(Ordering::SeqCst));
        port.respond(0, 5);
        assert!(writer.queue().is_none(), "the next frame closes the pipe");
        assert!(
            writer.evicted.load(Ordering::SeqCst),
            "and the app's run counts as failed"
        );
        assert_eq!(
            frames.try_iter().count(),
            OUTPUT_QUEUE,
            "queued frames were kept, none was lost silently"
        );
        port.respond(0, 5); // no panic, no block once closed
        port.respond(7, 5); // unknown app
        port.respond(0, MAX_FRAME_LEN + 1); // longer than the buffer
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_empty_requests() {
        let request = [4u8, 0, 7, 0, 0, 9];
        let framed = frame(&request);
        assert_eq!(framed.last(), Some(&0));
        assert!(!framed[..framed.len() - 1].contains(&0));
        let mut dst = [0xffu8; 16];
        assert_eq!(unframe(framed.clone(), &mut dst), request.len());
        assert_eq!(dst[..request.len()], request);
        let mut small = [0u8; 3];
        assert_eq!(
            unframe(framed, &mut small),
            0,
            "too long for the lent buffer"
        );
        assert_eq!(
            unframe(vec![5, 1, 0], &mut dst),
            0,
            "code runs past the frame"
        );
    }
}
