//! One capturing `log` logger for the whole unit-test binary. `log::set_logger` succeeds once
//! per process, so every test that checks what is (not) logged shares this one rather than
//! installing its own and losing the race to another test.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use std::sync::Mutex;

/// Collects every log line of every test in this binary (tests run in parallel: a test
/// recognises its own lines by what they name).
struct Capture;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{}", record.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Installs the capture at `Trace` (again and again: only the first call installs it). No
/// other logger is ever installed in this binary.
pub(crate) fn install() {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Trace);
}

/// Every line logged so far, by any test.
pub(crate) fn lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
