//! A string in a log line, quoted and escaped without `str`'s `Debug` (issue 11: `str`'s
//! `Debug` escapes with Unicode's grapheme-extend and printable tables, about 3 KB of flash
//! on the nRF9160 DK for a handful of log lines that print identifiers and env names; `str`'s
//! `escape_default` is a further 0.9 KB of iterator adapters).
//!
//! [`Quoted`] writes `"…"`: printable ASCII as it is; `"` and `\` after a backslash; `\n`,
//! `\r`, `\t`; anything else (other control characters, all non-ASCII) as `\u{…}`. So a log
//! line still cannot be broken or forged by the text it shows, and ASCII reads as `{:?}` did.

use core::fmt::{self, Write as _};

/// `{:?}` and `{}` write the string quoted and escaped (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' | '\\' => {
                    f.write_char('\\')?;
                    f.write_char(c)?;
                }
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                ' '..='~' => f.write_char(c)?,
                _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        f.write_char('"')
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn ascii_reads_as_debug_did_and_the_rest_is_escaped() {
        for s in [
            "a1ExamplePk",
            "nrf9160-0004",
            "ALIOT_DEVICE_SECRET",
            "a\"b\\c'd",
            "",
        ] {
            assert_eq!(format!("{:?}", Quoted(s)), format!("{s:?}"));
            assert_eq!(format!("{}", Quoted(s)), format!("{s:?}"));
        }
        assert_eq!(format!("{:?}", Quoted("a\nb\u{1}")), r#""a\nb\u{1}""#);
        assert_eq!(format!("{:?}", Quoted("日")), r#""\u{65e5}""#);
    }
}
