//! The members of one JSON object, without `serde_json` (issue 11: on the nRF9160 DK,
//! `serde_json` with its number tables, float parsing and error messages cost 13-18 KB of
//! flash; registration over MQTT reads five string fields with this, the OTA job parser
//! ([`crate::ota::job`]) a handful of strings and numbers in one nested object).
//!
//! Strict where it matters to the caller and no more: the text must be one JSON object
//! (whitespace around it allowed) whose members are separated properly; a member's value may
//! be a string, a number or literal (checked for its characters only: the caller reads the
//! ones it uses), or a nested object or array (skipped with its strings, brackets balanced).
//! Strings are returned as written, without unescaping: [`Member::Escaped`] tells the caller
//! a value had a `\`, and [`unescape`] reads it when the caller needs its text.

use alloc::string::String;

/// One member's value, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// A string without escapes (its text).
    Str(&'a str),
    /// A string with at least one escape: its text as written, between the quotes (read it
    /// with [`unescape`]).
    Escaped(&'a str),
    /// `null`.
    Null,
    /// An object: its text, braces included (read it with [`members`]).
    Object(&'a str),
    /// A number, `true` or `false`: its text as written (its characters are those of a JSON
    /// number or literal; its syntax is the caller's to check).
    Literal(&'a str),
    /// An array (skipped).
    Array,
}

/// Calls `member(key, value)` for every top-level member of the object `text`, in order;
/// `Err(())` when `text` is not one JSON object or `member` refuses one (`Err`).
pub fn members<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, Member<'a>) -> Result<(), ()>,
) -> Result<(), ()> {
    let mut r = Reader { text, pos: 0 };
    r.skip_ws();
    r.expect(b'{')?;
    r.skip_ws();
    if r.peek() == Some(b'}') {
        r.pos += 1;
    } else {
        loop {
            r.skip_ws();
            let (key, _) = r.string()?;
            r.skip_ws();
            r.expect(b':')?;
            r.skip_ws();
            let value = r.value()?;
            member(key, value)?;
            r.skip_ws();
            match r.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(()),
            }
        }
    }
    r.skip_ws();
    if r.pos == text.len() { Ok(()) } else { Err(()) }
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), ()> {
        if self.next() == Some(want) {
            Ok(())
        } else {
            Err(())
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A string at the cursor: its text between the quotes, and whether it has escapes.
    fn string(&mut self) -> Result<(&'a str, bool), ()> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.next().ok_or(())? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.next().ok_or(())?;
                }
                c if c < 0x20 => return Err(()),
                _ => {}
            }
        }
        // Both ends sit next to an ASCII quote, so they are char boundaries.
        let s = self.text.get(start..self.pos - 1).ok_or(())?;
        Ok((s, escaped))
    }

    fn value(&mut self) -> Result<Member<'a>, ()> {
        match self.peek().ok_or(())? {
            b'"' => match self.string()? {
                (s, true) => Ok(Member::Escaped(s)),
                (s, false) => Ok(Member::Str(s)),
            },
            open @ (b'{' | b'[') => {
                let start = self.pos;
                self.nested()?;
                match open {
                    b'{' => Ok(Member::Object(self.text.get(start..self.pos).ok_or(())?)),
                    _ => Ok(Member::Array),
                }
            }
            _ => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'a'..=b'z' | b'+' | b'-' | b'.' | b'E')
                ) {
                    self.pos += 1;
                }
                match self.text.get(start..self.pos).ok_or(())? {
                    "" => Err(()),
                    "null" => Ok(Member::Null),
                    literal => Ok(Member::Literal(literal)),
                }
            }
        }
    }

    /// An object or array at the cursor, skipped: its brackets must balance (strings inside
    /// are skipped whole, so a bracket in a string does not count).
    fn nested(&mut self) -> Result<(), ()> {
        let mut depth = 0u32;
        loop {
            match self.peek().ok_or(())? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1).ok_or(())?;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }
}

/// The text of a string written with escapes (what [`Member::Escaped`] holds), as JSON
/// defines them: `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t` and `\uXXXX` (a UTF-16
/// surrogate pair for characters beyond the BMP). `None` for any other escape or a lone
/// surrogate, which `serde_json` refuses too.
pub fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            c @ ('"' | '\\' | '/') => c,
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let unit = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate: its low half must follow as the next escape.
                    if (chars.next(), chars.next()) != (Some('\\'), Some('u')) {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                // A lone low surrogate is not a char.
                char::from_u32(code)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Four hex digits of a `\u` escape.
fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
    let mut unit = 0;
    for _ in 0..4 {
        unit = unit * 16 + chars.next()?.to_digit(16)?;
    }
    Some(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn all(text: &str) -> Result<Vec<(&str, Member<'_>)>, ()> {
        let mut out = Vec::new();
        members(text, |k, v| {
            out.push((k, v));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_string_members_and_skips_the_rest() {
        assert_eq!(
            all(
                r#" { "a" : "x", "n": -1.5E3, "o": {"b": ["}", {"c": "]"}]}, "z": null, "e": "q\"r", "t": true, "a": [1, {"x": 2}] } "#
            ),
            Ok(alloc::vec![
                ("a", Member::Str("x")),
                ("n", Member::Literal("-1.5E3")),
                ("o", Member::Object(r#"{"b": ["}", {"c": "]"}]}"#)),
                ("z", Member::Null),
                ("e", Member::Escaped(r#"q\"r"#)),
                ("t", Member::Literal("true")),
                ("a", Member::Array),
            ])
        );
        assert_eq!(all("{}"), Ok(Vec::new()));
        assert_eq!(
            all(r#"{"k":"日本"}"#),
            Ok(alloc::vec![("k", Member::Str("日本"))])
        );
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            "",
            "not json",
            "[]",
            r#""s""#,
            r#"{"a":"x""#,
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"{"a":}"#,
            r#"{"a":"x"} {}"#,
            r#"{"a":{"b":1}"#,
            r#"{"a":[1,2}"#.trim_end_matches('}'),
            r#"{"a":"unterminated}"#,
            "{\"a\":\"control\u{1}\"}",
            r#"{a:"x"}"#,
        ] {
            assert_eq!(all(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn the_caller_can_refuse_a_member() {
        let refused = members(r#"{"a":"x","b":"y"}"#, |k, _| {
            if k == "b" { Err(()) } else { Ok(()) }
        });
        assert_eq!(refused, Err(()));
    }

    #[test]
    fn unescape_reads_every_json_escape_as_serde_json_does() {
        for raw in [
            r#"a\"b"#,
            r#"\\ \/ \b \f \n \r \t"#,
            r#"https:\/\/h\/f?a=1\u0026b=2"#,
            r#"\u00e9\u65e5\uD83D\uDE00 \ud83d\ude00"#,
            "plain",
        ] {
            let want: String = serde_json::from_str(&alloc::format!("\"{raw}\"")).unwrap();
            assert_eq!(unescape(raw).as_deref(), Some(want.as_str()), "{raw}");
        }
        for bad in [
            r#"\x"#,
            r#"\"#,
            r#"\u12"#,
            r#"\u12g4"#,
            r#"\uD83D"#,
            r#"\uD83Dx"#,
            r#"\uD83D\u0041"#,
            r#"\uDE00"#,
            r#"\U0041"#,
        ] {
            assert!(serde_json::from_str::<String>(&alloc::format!("\"{bad}\"")).is_err());
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }
}
