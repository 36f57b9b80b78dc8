//! The app side of the host board: what runs inside an app's own process. It speaks the
//! syscall ABI over its stdin (responses) and stdout (requests) and logs to stderr.
//!
//! [`run`] confines the process ([`crate::confine`]) before it calls any app code, so an app
//! can reach its pipes and nothing else, the DeviceSecret least of all.

use std::io::{BufRead, BufReader, Read, Stdin, Stdout, Write};
use std::process::ExitCode;
use std::time::Instant;

use aliot_app::{Aliot, AppError, Syscalls};
use aliot_kernel::config::DeviceConfig;

use crate::{confine, probe};

/// A syscall backend over this process's stdin/stdout.
pub struct PipeSyscalls {
    requests: Stdout,
    responses: BufReader<Stdin>,
    started: Instant,
}

/// Why a pipe exchange failed.
#[derive(Debug)]
pub enum PipeError {
    /// The kernel closed the syscall pipe: the board is stopping (or stopped this app). The
    /// app process ends normally.
    Closed,
    /// An I/O error occurred.
    Io(std::io::Error),
    /// The kernel's frame did not fit the buffer.
    FrameTooLong,
}

impl PipeSyscalls {
    /// The backend for the current process.
    pub fn new() -> Self {
        Self {
            requests: std::io::stdout(),
            responses: BufReader::new(std::io::stdin()),
            started: Instant::now(),
        }
    }
}

impl Default for PipeSyscalls {
    fn default() -> Self {
        Self::new()
    }
}

impl Syscalls for PipeSyscalls {
    type Error = PipeError;

    fn exchange(
        &mut self,
        request_frame: &[u8],
        response_buf: &mut [u8],
    ) -> Result<usize, PipeError> {
        let mut out = self.requests.lock();
        out.write_all(request_frame)
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                // The kernel's end of the pipe is gone.
                std::io::ErrorKind::BrokenPipe => PipeError::Closed,
                _ => PipeError::Io(e),
            })?;
        drop(out);
        let mut frame = Vec::with_capacity(64);
        let limit = response_buf.len() as u64;
        let n = self
            .responses
            .by_ref()
            .take(limit)
            .read_until(0, &mut frame)
            .map_err(PipeError::Io)?;
        if n == 0 {
            return Err(PipeError::Closed);
        }
        if frame.last() != Some(&0) {
            return Err(PipeError::FrameTooLong);
        }
        response_buf[..n].copy_from_slice(&frame);
        Ok(n)
    }

    fn now_ms(&mut self) -> Option<u64> {
        Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

type AppMain = fn(&mut Aliot<PipeSyscalls>, &[(&str, &str)]) -> Result<(), AppError<PipeError>>;

/// The apps this board links in, by manifest name.
pub const LINKED_APPS: &[(&str, AppMain)] = &[
    ("publish_test", publish_test::run),
    ("echo", echo::run),
    ("sensor", sensor::run),
];

/// The prefix of the environment variables that override app `app`'s settings.
pub fn setting_prefix(app: &str) -> String {
    format!("ALIOT_SETTING_{}_", app.to_uppercase())
}

/// Settings from the manifest, overridden by `ALIOT_SETTING_<APP>_<KEY>` environment variables
/// (upper case), so tests and experiments need no rebuild. Variables that are not UTF-8 are
/// ignored.
pub fn settings_for(app: &str, manifest: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = manifest
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let prefix = setting_prefix(app);
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        let Some(key) = name.strip_prefix(&prefix) else {
            continue;
        };
        let value = value.to_owned();
        let key = key.to_lowercase();
        match settings.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => settings.push((key, value)),
        }
    }
    settings
}

/// What an app process runs once it is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The app itself.
    App,
    /// The confinement probe instead of the app ([`crate::probe`]; tests only).
    ConfinementProbe,
}

/// Entry point of an app process: find the app, read its settings, confine the process, then
/// run the app (or, for `role` [`Role::ConfinementProbe`], the probe in its place).
pub fn run(config: &DeviceConfig, name: &str, role: Role) -> ExitCode {
    let Some(def) = config.apps.iter().find(|a| a.name == name) else {
        eprintln!("[{name}] not an app of this manifest");
        return ExitCode::FAILURE;
    };
    let Some((_, main)) = LINKED_APPS.iter().find(|(n, _)| *n == name) else {
        eprintln!("[{name}] the manifest names this app but the host board does not link it");
        return ExitCode::FAILURE;
    };
    let owned = settings_for(name, def.settings);
    let settings: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Nothing of the app has run yet; from here on it is confined.
    let confinement = match confine::confine() {
        Ok(confinement) => confinement,
        Err(unconfined) => {
            log::error!("refusing to run: {unconfined}");
            return ExitCode::FAILURE;
        }
    };
    if confinement.seccomp.is_active() && confinement.landlock.is_active() {
        log::info!("confined: {confinement}");
    } else {
        log::warn!("only partly confined: {confinement}");
    }
    if role == Role::ConfinementProbe {
        return probe::run(config, name, &settings, &confinement);
    }
    let mut app = match Aliot::new(PipeSyscalls::new()) {
        Ok(app) => app,
        Err(AppError::Transport(PipeError::Closed)) => return closed(),
        Err(e) => {
            log::error!("cannot greet the kernel: {e:?}");
            return ExitCode::FAILURE;
        }
    };
    match main(&mut app, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(AppError::Transport(PipeError::Closed)) => closed(),
        Err(e) => {
            log::error!("stopped: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// The kernel closed the syscall pipe: that is how the board stops its apps, so the app
/// stops normally. (The board restarts an app it closed for not reading its responses, as
/// its restart policy says for a failure.)
fn closed() -> ExitCode {
    log::info!("the kernel closed the syscall pipe: stopping");
    ExitCode::SUCCESS
}
