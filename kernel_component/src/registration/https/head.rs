//! An HTTP/1.x response head: the status line and the header lines up to the empty line.
//!
//! By hand, not `httparse`, for size (issue 11: our code within 128 KiB of flash on the nRF9160's
//! 256 KB): `httparse` is about 1.3 KB of code and 512 B of byte maps, much of it for requests and
//! options this client never uses; this is one pass over the bytes with no table and no header
//! array (the headers are walked again when asked for): the DK's OTA build is 1 248 B smaller. It
//! accepts exactly what `httparse` 1.10 does with its default options (a test runs both over a
//! corpus): leading empty lines are skipped; `HTTP/1.0` or `HTTP/1.1`, one space, three digits,
//! then a space and a reason of visible characters, spaces, tabs and bytes >= 0x80, or the line's
//! end at once; header names are RFC 9110 tokens followed directly by `:`; values are any bytes but
//! controls (tab allowed), stripped of spaces and tabs at both ends. A line ends with CRLF or a
//! bare LF (tolerant, as `httparse` is: a server or proxy writing LF alone is answered, not
//! refused); a CR not followed by LF is malformed. Obsolete line folding is refused, as `httparse`
//! refuses it by default. More than [`MAX_HEADERS`] header lines is [`HttpError::TooLarge`];
//! anything else malformed is [`HttpError::Malformed`]. No byte is indexed unchecked: nothing here
//! can panic.

use super::{HttpError, MAX_HEADERS};

/// A complete response head at the start of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    /// The status code (three digits).
    pub status: u16,
    /// The head's length, the empty line included: the body starts here.
    pub len: usize,
    /// The head, and where its header lines start.
    data: &'a [u8],
    headers: usize,
}

impl<'a> Head<'a> {
    /// The header lines in order: `(name, value)`, the value without surrounding spaces and
    /// tabs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + use<'a> {
        let mut lines = Lines {
            data: self.data,
            pos: self.headers,
        };
        core::iter::from_fn(move || match lines.header() {
            Ok(Line::Header(name, value)) => Some((name, value)),
            _ => None,
        })
    }
}

/// Parses the response head at the start of `data`: `None` while it is incomplete (more bytes
/// may complete it), else the head; errors as the module doc says.
pub fn parse(data: &[u8]) -> Result<Option<Head<'_>>, HttpError> {
    let mut lines = Lines { data, pos: 0 };
    // Empty lines before the status line are skipped (RFC 9112 §2.2 allows it for requests).
    loop {
        match lines.byte(0) {
            None => return Ok(None),
            Some(b'\r' | b'\n') => match lines.line_end(lines.pos)? {
                Some((_, next)) => lines.pos = next,
                None => return Ok(None),
            },
            Some(_) => break,
        }
    }
    let mut status: u16 = 0;
    for (i, &want) in b"HTTP/1.x dddx".iter().enumerate() {
        let Some(b) = lines.byte(i) else {
            return Ok(None);
        };
        let ok = match want {
            b'x' if i == 7 => b == b'0' || b == b'1',
            b'd' => {
                status = status * 10 + u16::from(b.wrapping_sub(b'0'));
                b.is_ascii_digit()
            }
            // After the code: a space and the reason, or the line's end.
            b'x' => b == b' ' || b == b'\r' || b == b'\n',
            _ => b == want,
        };
        if !ok {
            return Err(HttpError::Malformed);
        }
    }
    // The reason (or the line's end right after the code).
    let reason = lines.pos + if lines.byte(12) == Some(b' ') { 13 } else { 12 };
    match lines.line_end(reason)? {
        Some((_, next)) => lines.pos = next,
        None => return Ok(None),
    }
    let headers = lines.pos;
    let mut count = 0;
    loop {
        match lines.header()? {
            Line::Header(..) => {
                count += 1;
                if count > MAX_HEADERS {
                    return Err(HttpError::TooLarge);
                }
            }
            Line::End => break,
            Line::Partial => return Ok(None),
        }
    }
    Ok(Some(Head {
        status,
        len: lines.pos,
        data,
        headers,
    }))
}

/// A cursor over the head's lines.
struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
}

/// What [`Lines::header`] found.
enum Line<'a> {
    Header(&'a [u8], &'a [u8]),
    /// The empty line: the head is over.
    End,
    /// The bytes ran out first.
    Partial,
}

impl<'a> Lines<'a> {
    /// The byte `at` past the cursor.
    fn byte(&self, at: usize) -> Option<u8> {
        self.data.get(self.pos.checked_add(at)?).copied()
    }

    /// From `from`, past the field-content bytes (tab, space, visible, >= 0x80) to the line's
    /// end: `(content end, next line's start)`, `None` if the bytes run out first. A control
    /// byte other than the line end, or CR without LF, is malformed.
    fn line_end(&self, from: usize) -> Result<Option<(usize, usize)>, HttpError> {
        let mut at = from;
        loop {
            let Some(&b) = self.data.get(at) else {
                return Ok(None);
            };
            match b {
                b'\n' => return Ok(Some((at, at + 1))),
                b'\r' => {
                    return match self.data.get(at + 1) {
                        None => Ok(None),
                        Some(b'\n') => Ok(Some((at, at + 2))),
                        Some(_) => Err(HttpError::Malformed),
                    };
                }
                b'\t' | b' '..=0x7e | 0x80..=0xff => at += 1,
                _ => return Err(HttpError::Malformed),
            }
        }
    }

    /// The header line at the cursor, or the empty line, and moves past it.
    fn header(&mut self) -> Result<Line<'a>, HttpError> {
        match self.byte(0) {
            None => return Ok(Line::Partial),
            Some(b'\r' | b'\n') => {
                return Ok(match self.line_end(self.pos)? {
                    Some((_, next)) => {
                        self.pos = next;
                        Line::End
                    }
                    None => Line::Partial,
                });
            }
            Some(_) => {}
        }
        let start = self.pos;
        let mut colon = start;
        loop {
            match self.data.get(colon) {
                None => return Ok(Line::Partial),
                Some(b':') if colon > start => break,
                Some(&b) if is_token(b) => colon += 1,
                Some(_) => return Err(HttpError::Malformed),
            }
        }
        let mut value = colon + 1;
        while let Some(b' ' | b'\t') = self.data.get(value) {
            value += 1;
        }
        let Some((mut end, next)) = self.line_end(value)? else {
            return Ok(Line::Partial);
        };
        while end > value && matches!(self.data.get(end - 1), Some(b' ' | b'\t')) {
            end -= 1;
        }
        let name = self.data.get(start..colon).unwrap_or_default();
        let value = self.data.get(value..end).unwrap_or_default();
        self.pos = next;
        Ok(Line::Header(name, value))
    }
}

/// A header name's characters (RFC 9110 §5.6.2 `tchar`).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
