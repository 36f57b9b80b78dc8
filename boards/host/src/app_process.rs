//! The app side of the host board: what runs inside an app's own process. It speaks the
//! syscall ABI over its stdin (responses) and stdout (requests) and logs to stderr.

use std::io::{BufRead, BufReader, Read, Stdin, Stdout, Write};
use std::process::ExitCode;
use std::time::Instant;

use aliot_app::{Aliot, AppError, Syscalls};
use aliot_kernel::config::DeviceConfig;

/// A syscall backend over this process's stdin/stdout.
pub struct PipeSyscalls {
    requests: Stdout,
    responses: BufReader<Stdin>,
    started: Instant,
}

/// Why a pipe exchange failed.
#[derive(Debug)]
pub enum PipeError {
    /// The kernel closed the pipe or an I/O error occurred.
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
            .map_err(PipeError::Io)?;
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
            return Err(PipeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
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
pub const LINKED_APPS: &[(&str, AppMain)] =
    &[("publish_test", publish_test::run), ("echo", echo::run)];

/// Settings from the manifest, overridden by `ALIOT_SETTING_<APP>_<KEY>` environment variables
/// (upper case), so tests and experiments need no rebuild.
pub fn settings_for(app: &str, manifest: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = manifest
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let prefix = format!("ALIOT_SETTING_{}_", app.to_uppercase());
    for (name, value) in std::env::vars() {
        let Some(key) = name.strip_prefix(&prefix) else {
            continue;
        };
        let key = key.to_lowercase();
        match settings.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => settings.push((key, value)),
        }
    }
    settings
}

/// Entry point of an app process.
pub fn run(config: &DeviceConfig, name: &str) -> ExitCode {
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
    let mut app = match Aliot::new(PipeSyscalls::new()) {
        Ok(app) => app,
        Err(e) => {
            log::error!("cannot greet the kernel: {e:?}");
            return ExitCode::FAILURE;
        }
    };
    match main(&mut app, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("stopped: {e:?}");
            ExitCode::FAILURE
        }
    }
}
