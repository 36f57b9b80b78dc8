//! The kernel's log lines: through `log` (the host and QEMU boards, whose logger formats the
//! text on the device) or, with the `defmt` feature, through defmt (the nRF9160 DK).
//!
//! # Why two backends
//!
//! Issue 11 (our code within 128 KiB of flash): with `log`, every line's text and its
//! `core::fmt` argument tables are in flash, about 17 KB of the DK's OTA build. defmt keeps the
//! text in the ELF's `.defmt` section, which is not flashed: the device sends an index and the
//! arguments, and the host (probe-rs) prints the line. A board picks defmt by enabling the
//! feature; nothing else changes.
//!
//! # Writing a line
//!
//! The macros ([`log_info!`], [`log_warn!`], [`log_error!`], [`log_debug!`]) take what both
//! backends accept: a literal with positional `{}` and `{:?}` only (no inline `{name}`), and
//! arguments that are `defmt::Format` for defmt and, for `log`, `Display` (`{}`: integers,
//! `bool`, `&str`) or `Debug` (`{:?}`: the kernel's error enums, which derive `defmt::Format`
//! with the feature). A type whose text is made on the device (a redacted URL, a quoted
//! identifier) goes in [`Disp`], which defmt shows by its `Display`.

use core::fmt;

/// A log line at `info` level (see the module doc for what it accepts).
macro_rules! log_info {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)+);
        #[cfg(not(feature = "defmt"))]
        ::log::info!($($arg)+);
    }};
}

/// A log line at `warn` level (see the module doc for what it accepts).
macro_rules! log_warn {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)+);
        #[cfg(not(feature = "defmt"))]
        ::log::warn!($($arg)+);
    }};
}

/// A log line at `error` level (see the module doc for what it accepts).
macro_rules! log_error {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)+);
        #[cfg(not(feature = "defmt"))]
        ::log::error!($($arg)+);
    }};
}

/// A log line at `debug` level (see the module doc for what it accepts).
macro_rules! log_debug {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)+);
        #[cfg(not(feature = "defmt"))]
        ::log::debug!($($arg)+);
    }};
}

/// What an error of a board's trait must be for the kernel's log lines to show it with `{}`:
/// `Display`, and with the `defmt` feature also `defmt::Format` (which defmt shows instead, so
/// the `Display` text need not be in the device's flash).
#[cfg(not(feature = "defmt"))]
pub trait Loggable: fmt::Display {}
#[cfg(not(feature = "defmt"))]
impl<T: fmt::Display + ?Sized> Loggable for T {}
/// What an error of a board's trait must be for the kernel's log lines to show it with `{}`:
/// `Display`, and with the `defmt` feature also `defmt::Format` (which defmt shows instead, so
/// the `Display` text need not be in the device's flash).
#[cfg(feature = "defmt")]
pub trait Loggable: fmt::Display + defmt::Format {}
#[cfg(feature = "defmt")]
impl<T: fmt::Display + defmt::Format + ?Sized> Loggable for T {}

/// Shows a value by its `Display` impl: for types with no `defmt::Format` whose text is
/// made on the device (a redacted URL, a quoted identifier, an error's message).
pub(crate) struct Disp<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Disp<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

#[cfg(feature = "defmt")]
impl<T: fmt::Display + ?Sized> defmt::Format for Disp<'_, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    struct Word;

    impl fmt::Display for Word {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("word")
        }
    }

    #[test]
    fn disp_shows_what_display_shows() {
        assert_eq!(format!("{}", Disp(&Word)), "word");
    }

    #[test]
    fn the_macros_reach_the_log_crate() {
        crate::test_log::install();
        log_info!("logging test: one {} two {:?}", 1, Some(2));
        log_warn!("logging test: three {}", Disp(&Word));
        let lines = crate::test_log::lines();
        for want in [
            "logging test: one 1 two Some(2)",
            "logging test: three word",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want} not in {lines:?}");
        }
    }
}
