//! Display raw payload bytes as text without allocating.

use core::fmt;

/// Shows bytes as UTF-8, replacing invalid sequences with U+FFFD, like
/// `String::from_utf8_lossy` but without `alloc` (apps are `no_std`).
#[derive(Debug, Clone, Copy)]
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Lossy;
    use std::format;

    #[test]
    fn valid_utf8_is_shown_as_is() {
        assert_eq!(format!("{}", Lossy("温度 21°C".as_bytes())), "温度 21°C");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(
            format!("{}", Lossy(b"ok\xff\xfeend")),
            "ok\u{FFFD}\u{FFFD}end"
        );
    }
}
