//! The string members of one JSON object, without `serde_json` (issue 11: on the nRF9160 DK,
//! registration over MQTT is the only user of JSON, and `serde_json` with its number tables
//! and error messages cost about 13 KB of flash for five string fields).
//!
//! Strict where it matters to the caller and no more: the text must be one JSON object
//! (whitespace around it allowed) whose members are separated properly; a member's value may
//! be a string, a number or literal (checked for its characters only), or a nested object or
//! array (skipped with its strings, brackets balanced). Strings are returned as written,
//! without unescaping: [`Member::Escaped`] tells the caller a value had a `\`.

/// One member's value, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// A string without escapes (its text).
    Str(&'a str),
    /// A string with at least one escape (not unescaped here).
    Escaped,
    /// `null`.
    Null,
    /// Anything else: a number, `true`/`false`, an object or an array.
    Other,
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
                (_, true) => Ok(Member::Escaped),
                (s, false) => Ok(Member::Str(s)),
            },
            b'{' | b'[' => {
                self.nested()?;
                Ok(Member::Other)
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
                    _ => Ok(Member::Other),
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
                r#" { "a" : "x", "n": -1.5E3, "o": {"b": ["}", {"c": "]"}]}, "z": null, "e": "q\"r", "t": true } "#
            ),
            Ok(alloc::vec![
                ("a", Member::Str("x")),
                ("n", Member::Other),
                ("o", Member::Other),
                ("z", Member::Null),
                ("e", Member::Escaped),
                ("t", Member::Other),
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
}
