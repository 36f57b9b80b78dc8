//! Captures `log` records per test thread, so tests can assert on what an app logged.
//!
//! Written by hand because the need is tiny: a global logger that appends each record to a
//! thread-local list. Tests run on parallel threads and each sees only its own records.

use std::cell::RefCell;
use std::format;
use std::string::String;
use std::thread_local;
use std::vec::Vec;

thread_local! {
    static RECORDS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct ThreadLogger;

impl log::Log for ThreadLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        RECORDS.with(|records| records.borrow_mut().push(line));
    }

    fn flush(&self) {}
}

static LOGGER: ThreadLogger = ThreadLogger;

/// Installs the capturing logger (once per process) and clears this thread's records.
///
/// If another logger was installed first, nothing is captured and assertions on [`take`] fail.
pub fn capture() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    RECORDS.with(|records| records.borrow_mut().clear());
}

/// Takes the records logged on this thread since [`capture`], as `"LEVEL message"` lines.
pub fn take() -> Vec<String> {
    RECORDS.with(|records| records.take())
}
