//! 一型一密 registration over HTTPS (spec §2.2), for pre-registered devices only.
//!
//! One request on a TLS stream the board has already opened to
//! `iot-auth.${RegionId}.aliyuncs.com:443`:
//!
//! ```text
//! POST /auth/register/device HTTP/1.1
//! Host: <host>
//! Content-Type: application/x-www-form-urlencoded
//! Content-Length: <n>
//! Connection: close
//!
//! productKey=<pk>&deviceName=<dn>&random=<r>&sign=<HEX>&signMethod=<alg>
//! ```
//!
//! `sign` = HMAC(alg, ProductSecret, `deviceName<dn>productKey<pk>random<r>`), uppercase hex;
//! the form values are URL-encoded (device names may contain `@`, `:`, `.`), the sign content
//! is not. The answer is HTTP 200 with JSON `{"code":200,"data":{"productKey":..,
//! "deviceName":..,"deviceSecret":..},"message":..}`.
//!
//! # What the answer is taken to mean
//!
//! Success: HTTP 200, `code` 200 (a number or a numeric string; LINKSDK does not look at
//! `code` at all, so an absent `code` is accepted too) and a non-empty string `deviceSecret`,
//! under `data` or, failing that, at the top level (LINKSDK takes the key anywhere). If the
//! object holding the secret names a `productKey` or `deviceName`, it must be ours: an answer
//! for another device is [`RegistrationError::BadReply`].
//!
//! The platform's refusal codes are **UNCONFIRMED** (spec §2.2 only knows the success shape).
//! Refusals are classified by the JSON `code` (or, on a non-200 HTTP status, by the JSON
//! `code` if the body carries one, else by the HTTP status) and, tolerantly, by the message
//! ([`classify_refusal`]):
//!
//! | code / message | error | emulator answer it covers |
//! |---|---|---|
//! | message says "activated" (not "not/un/in/de-activated") or "已激活", any code | [`RegistrationError::AlreadyActivated`] | 403 "… is already activated; reset it …" |
//! | message says "not pre-registered", any code | [`RegistrationError::UnknownDevice`] | 403 (today) or 404 "… is not pre-registered" |
//! | 401 | [`RegistrationError::BadProductSecret`] | 401 "sign check failed" |
//! | 404 whose message names the product and not the device | [`RegistrationError::BadProductSecret`] (unknown ProductKey) | 404 "product … not found" |
//! | other 404 | [`RegistrationError::UnknownDevice`] | |
//! | anything else (e.g. 403 "dynamic registration is off", 460, HTTP 500) | [`RegistrationError::Refused`]`(code)` | |
//!
//! Other failures: the stream failing or closing before the answer is complete is
//! [`RegistrationError::Link`]`(`[`LinkError::Network`]`)` (the transport failed; the
//! stream was already open, so [`RegistrationError::Net`], which names why a stream could not
//! be opened, does not fit). An answer that is not HTTP/1.x, not JSON, too large for `buf`,
//! missing the secret or naming another device is [`RegistrationError::BadReply`]; so is a
//! request that cannot be written (a `host` with spaces or control characters, or a `buf` too
//! small for the request), which the log names. There is no deadline here: the caller races
//! [`register`] against its clock and reports [`RegistrationError::Timeout`].
//!
//! # Buffer
//!
//! Everything lives in the caller's `buf`: first the request, then the response head, then the
//! body (decoded in place). It must hold the request (260 bytes plus the host, plus the
//! ProductKey, DeviceName and random URL-encoded, up to three bytes per character: 326 bytes
//! for spec §6.2 V6 with hmacsha256 to `iot-auth.cn-shanghai.aliyuncs.com`) and the
//! response head with the body (the emulator's is about 250 bytes; the platform's headers are
//! not known). [`RECOMMENDED_BUF_LEN`] (1 KiB) is plenty; a larger answer is
//! [`RegistrationError::BadReply`]. Nothing is read beyond what `buf` can hold, except a few
//! framing bytes to see whether a full buffer was the whole answer.
//!
//! # Secrets
//!
//! The sign (as good as the ProductSecret for registering this device until it is activated)
//! and the received DeviceSecret never reach a log line. `buf`, which holds first the sign and
//! then the secret, is zeroized when [`register`] returns or its future is dropped; the sign's
//! own string is zeroized as soon as it is in `buf`; the secret moves out of the parsed JSON
//! into a [`Secret`] without a copy. What this module cannot clear: the TLS stream's own
//! buffers, and `serde_json`'s scratch buffer, which holds a copy of a string only if it
//! contains escapes (a DeviceSecret is alphanumeric).
//!
//! # Why a hand-written HTTP/1.1 client
//!
//! The plan was `reqwless` 0.14 (its low-level `Request` / `Response::read`). Three findings
//! (checked with a probe crate against 0.14.0) speak against it:
//! * its `FixedLengthBodyReader` subtracts the bytes read from the bytes remaining without
//!   bounding the read by them, so a server sending more than its `Content-Length` makes it
//!   panic ("attempt to subtract with overflow") where overflow checks are on, and wrap
//!   otherwise — untrusted input must not do that;
//! * its in-place chunked `read_to_end` spins forever reading an EOF when the peer closes
//!   inside a chunk;
//! * even with `default-features = false` it depends unconditionally on a second crypto stack
//!   (`p256` with ECDSA/ECDH, `pkcs8`, `rand_chacha`, older `hmac`/`sha2`/`digest`) and on
//!   `embedded-nal-async`: 35 crates besides reqwless that the kernel does not otherwise use.
//!
//! So: the response head is parsed by [`head`] (by hand, for size, accepting what `httparse`,
//! the parser reqwless uses, accepts), form values are encoded by `form_urlencoded`, JSON is
//! read by `serde_json` (no_std + alloc); what is left by hand is writing the request line and
//! headers and the body framing (`Content-Length`, `Transfer-Encoding: chunked`,
//! read-to-close), kept in small functions ([`write_request_head`], [`write_form_body`],
//! [`read_head`], [`read_body`], [`Dechunker`]) for the OTA download (issue 8) to reuse.

use core::fmt;

use embedded_io_async::{Read, Write};
#[cfg(feature = "register-https")]
use serde_json::Value;
use zeroize::Zeroize;

use super::RegistrationError;
use crate::auth::{hmac_hex, register_sign_content, sign_method_name};
use crate::config::SignMethod;
use crate::credentials::Secret;
use crate::link::LinkError;

pub mod head;
#[cfg(test)]
mod tests;

/// The registration path on the `iot-auth` host (spec §2.2).
pub const REGISTER_PATH: &str = "/auth/register/device";

/// A `buf` size for [`register`] that holds any request and any answer seen so far, with room.
pub const RECOMMENDED_BUF_LEN: usize = 1024;

/// Most response header lines [`read_head`] accepts (more is [`HttpError::TooLarge`]).
pub const MAX_HEADERS: usize = 32;

/// Most bytes of chunk extensions per chunk-size line, and of trailers, [`Dechunker`] skips.
pub const MAX_CHUNK_META: u32 = 256;

/// Most hex digits in a chunk-size line (leading zeros included).
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// What one HTTPS registration needs.
#[derive(Clone, Copy)]
pub struct HttpsRequest<'a> {
    /// The `Host` header: the registration host (`iot-auth.${RegionId}.aliyuncs.com`).
    pub host: &'a str,
    /// ProductKey.
    pub product_key: &'a str,
    /// DeviceName (pre-registered in the console).
    pub device_name: &'a str,
    /// Any string; a fresh random value per attempt.
    pub random: &'a str,
    /// HMAC for the sign.
    pub sign_method: SignMethod,
    /// ProductSecret (secret).
    pub product_secret: &'a [u8],
}

#[cfg(feature = "register-https")]
/// Register the device `req` names over `stream` (already connected, TLS negotiated) and
/// return its DeviceSecret. `buf` holds the request and the answer (see the module doc for
/// its size; [`RECOMMENDED_BUF_LEN`] is plenty) and is zeroized before this returns, also
/// when the future is dropped. Errors are classified as the module doc says.
pub async fn register<S: Read + Write>(
    stream: &mut S,
    req: &HttpsRequest<'_>,
    buf: &mut [u8],
) -> Result<Secret, RegistrationError> {
    let wipe = Wipe(buf);
    exchange(stream, req, &mut *wipe.0).await
}

/// Zeroizes the borrowed buffer when dropped, so also when the caller's deadline drops the
/// future mid-exchange.
struct Wipe<'a>(&'a mut [u8]);

impl Drop for Wipe<'_> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(feature = "register-https")]
async fn exchange<S: Read + Write>(
    stream: &mut S,
    req: &HttpsRequest<'_>,
    buf: &mut [u8],
) -> Result<Secret, RegistrationError> {
    let len = match encode_register_request(req, buf) {
        Ok(len) => len,
        Err(e) => {
            log_error!(
                "HTTPS registration of {}/{}: cannot write the request ({}); buffer {} bytes",
                req.product_key,
                req.device_name,
                crate::logging::Disp(&e),
                buf.len()
            );
            return Err(RegistrationError::BadReply);
        }
    };
    let request = buf.get(..len).ok_or(RegistrationError::BadReply)?;
    stream.write_all(request).await.map_err(|_| network())?;
    stream.flush().await.map_err(|_| network())?;
    // The request holds the sign: gone before anything else is read into `buf`.
    buf.zeroize();

    let head = read_head(stream, buf).await.map_err(from_http)?;
    let body = read_body(stream, buf, &head).await;
    if head.status != 200 {
        return Err(refused_by_status(
            req,
            head.status,
            body.ok().and_then(|n| buf.get(..n)),
        ));
    }
    let len = body.map_err(from_http)?;
    let body = buf.get(..len).ok_or(RegistrationError::BadReply)?;
    let outcome = parse_answer(body, req);
    match &outcome {
        Ok(_) => log_info!(
            "HTTPS registration of {}/{}: DeviceSecret received",
            req.product_key,
            req.device_name
        ),
        Err(RegistrationError::BadReply) => log_warn!(
            "HTTPS registration of {}/{}: the answer (HTTP 200, {} bytes) is not a registration \
             answer for this device",
            req.product_key,
            req.device_name,
            len
        ),
        Err(_) => {} // logged where the refusal was classified
    }
    outcome
}

fn network() -> RegistrationError {
    RegistrationError::Link(LinkError::Network)
}

fn from_http(e: HttpError) -> RegistrationError {
    match e {
        HttpError::Io | HttpError::Closed => network(),
        HttpError::TooLarge | HttpError::Malformed | HttpError::InvalidRequest => {
            RegistrationError::BadReply
        }
    }
}

/// Writes the registration request into `buf`; returns its length. The sign is zeroized once
/// written.
fn encode_register_request(req: &HttpsRequest<'_>, buf: &mut [u8]) -> Result<usize, HttpError> {
    let content = register_sign_content(req.device_name, req.product_key, req.random);
    let mut sign = hmac_hex(req.sign_method, req.product_secret, content.as_bytes());
    let fields = [
        ("productKey", req.product_key),
        ("deviceName", req.device_name),
        ("random", req.random),
        ("sign", sign.as_str()),
        ("signMethod", sign_method_name(req.sign_method)),
    ];
    let result = encode_request(
        buf,
        "POST",
        req.host,
        REGISTER_PATH,
        &[("Content-Type", FORM_CONTENT_TYPE)],
        &fields,
    );
    sign.zeroize();
    result
}

/// The content type of a form body.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Writes a whole request with a form body into `buf` (see [`write_request_head`] for the
/// head); returns its length. [`HttpError::TooLarge`] when `buf` is too small.
pub fn encode_request(
    buf: &mut [u8],
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Result<usize, HttpError> {
    let mut counter = Counter(0);
    write_form_body(&mut counter, form).map_err(|_| HttpError::TooLarge)?;
    let mut w = SliceWriter::new(buf);
    write_request_head(&mut w, method, host, path, headers, Some(counter.0))?;
    write_form_body(&mut w, form).map_err(|_| HttpError::TooLarge)?;
    Ok(w.len())
}

/// Writes an HTTP/1.1 request head: the request line, `Host`, `headers` in order,
/// `Content-Length` when given, `Connection: close` (the board's streams carry one exchange)
/// and the blank line. Refuses ([`HttpError::InvalidRequest`]) a method, host, path or header
/// that would break the framing (spaces where none may be, control characters, non-ASCII);
/// [`HttpError::TooLarge`] when `w` is full.
pub fn write_request_head(
    w: &mut impl fmt::Write,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: Option<usize>,
) -> Result<(), HttpError> {
    let ok = is_token(method)
        && is_token(host)
        && path.starts_with('/')
        && is_token(path)
        && headers
            .iter()
            .all(|(name, value)| is_token(name) && !name.contains(':') && is_field_value(value));
    if !ok {
        return Err(HttpError::InvalidRequest);
    }
    let written = (|| {
        write!(w, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n")?;
        for (name, value) in headers {
            write!(w, "{name}: {value}\r\n")?;
        }
        if let Some(len) = content_length {
            write!(w, "Content-Length: {len}\r\n")?;
        }
        w.write_str("Connection: close\r\n\r\n")
    })();
    written.map_err(|_| HttpError::TooLarge)
}

/// Writes `fields` as an `application/x-www-form-urlencoded` body (`k=v&k=v`, each name and
/// value encoded the WHATWG way, as `form_urlencoded` does: space as `+`, bytes other than
/// `A-Za-z0-9*-._` as `%XX`).
pub fn write_form_body(w: &mut impl fmt::Write, fields: &[(&str, &str)]) -> fmt::Result {
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            w.write_char('&')?;
        }
        for part in form_urlencoded::byte_serialize(name.as_bytes()) {
            w.write_str(part)?;
        }
        w.write_char('=')?;
        for part in form_urlencoded::byte_serialize(value.as_bytes()) {
            w.write_str(part)?;
        }
    }
    Ok(())
}

/// Visible ASCII, no spaces: method, host, path, header name.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Visible ASCII and inner spaces/tabs: a header value.
fn is_field_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
}

/// A [`fmt::Write`] into a byte slice that fails, rather than grows, when full.
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Counts what would be written (for `Content-Length` before the body is written).
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.checked_add(s.len()).ok_or(fmt::Error)?;
        Ok(())
    }
}

/// Why an HTTP exchange failed.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The stream reported an error.
    Io,
    /// The peer closed the stream before the response was complete.
    Closed,
    /// The response head or body does not fit the buffer (or the request does not).
    TooLarge,
    /// The response is not HTTP/1.x as this client reads it.
    Malformed,
    /// The request cannot be written: a method, host, path or header with characters that
    /// would break the request's framing.
    InvalidRequest,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::Io => "stream error",
            HttpError::Closed => "stream closed before the response was complete",
            HttpError::TooLarge => "does not fit the buffer",
            HttpError::Malformed => "malformed HTTP response",
            HttpError::InvalidRequest => "host, path or header not writable in a request",
        })
    }
}

/// How the end of a response body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the stream.
    UntilClose,
}

/// A parsed response head. The bytes after it that were read with it are
/// `buf[head_len..filled]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// How the body ends.
    pub framing: Framing,
    /// Length of the head in `buf`.
    pub head_len: usize,
    /// Bytes of `buf` filled from the stream.
    pub filled: usize,
}

/// Reads from `stream` into `buf` until a whole response head is there, and parses it.
/// Reads at most `buf.len()` bytes: a head that does not fit is [`HttpError::TooLarge`].
pub async fn read_head<S: Read>(stream: &mut S, buf: &mut [u8]) -> Result<ResponseHead, HttpError> {
    let mut filled = 0;
    loop {
        let space = match buf.get_mut(filled..) {
            Some(space) if !space.is_empty() => space,
            _ => return Err(HttpError::TooLarge),
        };
        let n = read_some(stream, space).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        filled += n;
        let data = buf.get(..filled).ok_or(HttpError::TooLarge)?;
        if let Some((status, framing, head_len)) = parse_head(data)? {
            return Ok(ResponseHead {
                status,
                framing,
                head_len,
                filled,
            });
        }
    }
}

/// `stream.read`, with the count clamped to `dst` (a stream returning more is not trusted).
async fn read_some<S: Read>(stream: &mut S, dst: &mut [u8]) -> Result<usize, HttpError> {
    let n = stream.read(dst).await.map_err(|_| HttpError::Io)?;
    Ok(n.min(dst.len()))
}

/// Parses a response head at the start of `data` ([`head::parse`]): `None` while
/// incomplete, else the status, the body framing and the head's length.
fn parse_head(data: &[u8]) -> Result<Option<(u16, Framing, usize)>, HttpError> {
    let Some(head) = head::parse(data)? else {
        return Ok(None);
    };
    let framing = if head.status == 204 || head.status == 304 {
        Framing::Length(0)
    } else {
        framing(head.headers())?
    };
    Ok(Some((head.status, framing, head.len)))
}

/// The body framing the headers announce (names compared case-insensitively). The last
/// transfer coding must be `chunked` if there is one (anything else has no knowable end);
/// `Transfer-Encoding` wins over `Content-Length`; differing `Content-Length`s are refused.
fn framing<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<Framing, HttpError> {
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let value = core::str::from_utf8(value).map_err(|_| HttpError::Malformed)?;
            // HTTP's optional whitespace is spaces and tabs: ASCII trims (str's Unicode trim
            // and its tables stay out of the image, issue 11).
            if let Some(last) = value
                .rsplit(',')
                .map(str::trim_ascii)
                .find(|c| !c.is_empty())
            {
                chunked = Some(last.eq_ignore_ascii_case("chunked"));
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let value = core::str::from_utf8(value)
                .map_err(|_| HttpError::Malformed)?
                .trim_ascii();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::Malformed);
            }
            // All digits, so the only failure left is overflow: larger than any buffer.
            let n = value.parse::<u64>().map_err(|_| HttpError::TooLarge)?;
            if length.is_some_and(|prev| prev != n) {
                return Err(HttpError::Malformed);
            }
            length = Some(n);
        }
    }
    match (chunked, length) {
        (Some(true), _) => Ok(Framing::Chunked),
        (Some(false), _) => Err(HttpError::Malformed),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::UntilClose),
    }
}

/// Reads the body of the response `head` describes into `buf` (which holds what
/// [`read_head`] read) and returns its length: the body is then `buf[..len]`, de-chunked.
/// A body larger than `buf` is [`HttpError::TooLarge`], found without reading more than a few
/// bytes past a full `buf`; bytes after the body's end are ignored.
pub async fn read_body<S: Read>(
    stream: &mut S,
    buf: &mut [u8],
    head: &ResponseHead,
) -> Result<usize, HttpError> {
    if head.head_len > head.filled || head.filled > buf.len() {
        return Err(HttpError::Malformed);
    }
    buf.copy_within(head.head_len..head.filled, 0);
    let have = head.filled - head.head_len;
    match head.framing {
        Framing::Length(n) => {
            let want = usize::try_from(n)
                .ok()
                .filter(|&want| want <= buf.len())
                .ok_or(HttpError::TooLarge)?;
            let mut have = have.min(want);
            while let Some(dst) = buf.get_mut(have..want).filter(|d| !d.is_empty()) {
                let n = read_some(stream, dst).await?;
                if n == 0 {
                    return Err(HttpError::Closed);
                }
                have += n;
            }
            Ok(want)
        }
        Framing::UntilClose => {
            let mut have = have;
            loop {
                match buf.get_mut(have..).filter(|d| !d.is_empty()) {
                    Some(dst) => {
                        let n = read_some(stream, dst).await?;
                        if n == 0 {
                            return Ok(have);
                        }
                        have += n;
                    }
                    None => {
                        // Full: the answer fits only if the stream ends here.
                        let mut probe = [0u8; 1];
                        return match read_some(stream, &mut probe).await? {
                            0 => Ok(have),
                            _ => Err(HttpError::TooLarge),
                        };
                    }
                }
            }
        }
        Framing::Chunked => {
            let mut dechunker = Dechunker::new();
            let mut out = dechunker.decode(buf.get_mut(..have).ok_or(HttpError::Malformed)?)?;
            while !dechunker.is_done() {
                match buf.get_mut(out..).filter(|d| !d.is_empty()) {
                    Some(dst) => {
                        let n = read_some(stream, dst).await?;
                        if n == 0 {
                            return Err(HttpError::Closed);
                        }
                        out += dechunker.decode(dst.get_mut(..n).ok_or(HttpError::Malformed)?)?;
                    }
                    None => {
                        // Full: only framing (the last chunk, trailers) may follow. Bounded:
                        // every chunk but the last adds payload, and the rest is capped.
                        let mut scratch = [0u8; 16];
                        let n = read_some(stream, &mut scratch).await?;
                        if n == 0 {
                            return Err(HttpError::Closed);
                        }
                        let seg = scratch.get_mut(..n).ok_or(HttpError::Malformed)?;
                        if dechunker.decode(seg)? > 0 {
                            return Err(HttpError::TooLarge);
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Decodes `Transfer-Encoding: chunked` (RFC 9112 §7.1) in place, as the bytes arrive in
/// pieces of any size. Chunk extensions and trailers are skipped, at most
/// [`MAX_CHUNK_META`] bytes each; bare `\n` line ends are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dechunker {
    state: Chunk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the chunk-size hex digits.
    Size { value: u64, digits: u8 },
    /// Skipping a chunk extension (`;name=value`).
    Ext { value: u64, seen: u32 },
    /// After the `\r` of a chunk-size line.
    SizeLf { value: u64 },
    /// Inside chunk data: bytes left.
    Data(u64),
    /// After chunk data: expecting `\r\n`.
    DataCr,
    /// After chunk data and `\r`.
    DataLf,
    /// After the last (zero) chunk: trailer lines until an empty one.
    Trailer { line: u32, total: u32 },
    /// The body is complete; anything after it is ignored.
    Done,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    /// Before the first chunk-size line.
    pub fn new() -> Self {
        Self {
            state: Chunk::Size {
                value: 0,
                digits: 0,
            },
        }
    }

    /// The last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Consumes all of `data` (the next bytes of the chunked body) and moves the payload they
    /// carry to the front of `data`; returns the payload's length.
    pub fn decode(&mut self, data: &mut [u8]) -> Result<usize, HttpError> {
        let mut read = 0;
        let mut out = 0;
        while read < data.len() {
            if let Chunk::Data(left) = self.state {
                let avail = data.len() - read;
                let n = usize::try_from(left).map_or(avail, |left| left.min(avail));
                // out <= read, so the payload only ever moves towards the front.
                data.copy_within(read..read + n, out);
                read += n;
                out += n;
                let left = left - n as u64;
                self.state = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            let Some(&byte) = data.get(read) else { break };
            read += 1;
            self.state = self.step(byte)?;
        }
        Ok(out)
    }

    /// One framing byte (any state but `Data`, which [`Dechunker::decode`] copies in bulk).
    fn step(&self, byte: u8) -> Result<Chunk, HttpError> {
        let malformed = Err(HttpError::Malformed);
        match self.state {
            Chunk::Size { value, digits } => match (byte, digits) {
                (b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F', _) => {
                    let digit = u64::from(hex_value(byte));
                    let digits = digits + 1;
                    if digits > MAX_CHUNK_SIZE_DIGITS {
                        return malformed;
                    }
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(digit))
                        .ok_or(HttpError::Malformed)?;
                    Ok(Chunk::Size { value, digits })
                }
                (_, 0) => malformed,
                (b';' | b' ' | b'\t', _) => Ok(Chunk::Ext { value, seen: 0 }),
                (b'\r', _) => Ok(Chunk::SizeLf { value }),
                (b'\n', _) => Ok(after_size(value)),
                _ => malformed,
            },
            Chunk::Ext { value, seen } => match byte {
                b'\r' => Ok(Chunk::SizeLf { value }),
                b'\n' => Ok(after_size(value)),
                _ if seen < MAX_CHUNK_META => Ok(Chunk::Ext {
                    value,
                    seen: seen + 1,
                }),
                _ => Err(HttpError::TooLarge),
            },
            Chunk::SizeLf { value } => match byte {
                b'\n' => Ok(after_size(value)),
                _ => malformed,
            },
            Chunk::Data(_) => malformed,
            Chunk::DataCr => match byte {
                b'\r' => Ok(Chunk::DataLf),
                b'\n' => Ok(Dechunker::new().state),
                _ => malformed,
            },
            Chunk::DataLf => match byte {
                b'\n' => Ok(Dechunker::new().state),
                _ => malformed,
            },
            Chunk::Trailer { line, total } => match byte {
                b'\n' if line == 0 => Ok(Chunk::Done),
                b'\n' => Ok(Chunk::Trailer { line: 0, total }),
                b'\r' => Ok(Chunk::Trailer { line, total }),
                _ if total < MAX_CHUNK_META => Ok(Chunk::Trailer {
                    line: line + 1,
                    total: total + 1,
                }),
                _ => Err(HttpError::TooLarge),
            },
            Chunk::Done => Ok(Chunk::Done),
        }
    }
}

fn after_size(value: u64) -> Chunk {
    if value == 0 {
        Chunk::Trailer { line: 0, total: 0 }
    } else {
        Chunk::Data(value)
    }
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    }
}

#[cfg(feature = "register-https")]
/// The answer's `code`: absent, a number or a numeric string that fits a u32, or neither
/// (`Some(Err(()))`).
fn answer_code(answer: &Value) -> Option<Result<u32, ()>> {
    let code = answer.get("code")?;
    let n = match code {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    Some(n.and_then(|n| u32::try_from(n).ok()).ok_or(()))
}

#[cfg(feature = "register-https")]
/// Reads an HTTP 200 answer: the secret, or why not.
fn parse_answer(body: &[u8], req: &HttpsRequest<'_>) -> Result<Secret, RegistrationError> {
    let mut answer: Value =
        serde_json::from_slice(body).map_err(|_| RegistrationError::BadReply)?;
    // The secret moves out first, into a Secret, so it is zeroized on every path below.
    let in_data = answer
        .get("data")
        .and_then(|data| data.get("deviceSecret"))
        .is_some();
    let holder = if in_data {
        answer.get_mut("data")
    } else {
        Some(&mut answer)
    };
    let secret = match holder
        .and_then(Value::as_object_mut)
        .and_then(|holder| holder.remove("deviceSecret"))
    {
        Some(Value::String(secret)) => Some(Secret::from(secret)),
        _ => None,
    };
    match answer_code(&answer) {
        None | Some(Ok(200)) => {}
        Some(Ok(code)) => {
            let message = answer.get("message").and_then(Value::as_str);
            return Err(refused(req, 200, code, message));
        }
        Some(Err(())) => return Err(RegistrationError::BadReply),
    }
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(RegistrationError::BadReply)?;
    let holder = if in_data {
        answer.get("data")
    } else {
        Some(&answer)
    };
    for (key, ours) in [
        ("productKey", req.product_key),
        ("deviceName", req.device_name),
    ] {
        match holder.and_then(|holder| holder.get(key)) {
            None => {}
            Some(Value::String(theirs)) if theirs == ours => {}
            Some(_) => return Err(RegistrationError::BadReply),
        }
    }
    Ok(secret)
}

#[cfg(feature = "register-https")]
/// A non-200 HTTP answer: classified by the JSON `code` and `message` the body may carry,
/// else by the HTTP status.
fn refused_by_status(
    req: &HttpsRequest<'_>,
    status: u16,
    body: Option<&[u8]>,
) -> RegistrationError {
    let answer = body.and_then(|body| serde_json::from_slice::<Value>(body).ok());
    let code = answer
        .as_ref()
        .and_then(answer_code)
        .and_then(Result::ok)
        .filter(|&code| code != 200)
        .unwrap_or(u32::from(status));
    let message = answer
        .as_ref()
        .and_then(|a| a.get("message"))
        .and_then(Value::as_str);
    refused(req, status, code, message)
}

fn refused(
    req: &HttpsRequest<'_>,
    status: u16,
    code: u32,
    message: Option<&str>,
) -> RegistrationError {
    let error = classify_refusal(code, message);
    log_warn!(
        "HTTPS registration of {}/{} refused: HTTP {}, code {}, message {:?}: {:?}",
        req.product_key,
        req.device_name,
        status,
        code,
        message.unwrap_or(""),
        error
    );
    error
}

/// Classifies a refusal by its `code` and `message` as the module doc's table says (the
/// platform's codes are UNCONFIRMED; the messages are matched ASCII-case-insensitively).
pub fn classify_refusal(code: u32, message: Option<&str>) -> RegistrationError {
    let message = message.unwrap_or("");
    if says_already_activated(message) {
        RegistrationError::AlreadyActivated
    } else if contains_ci(message, "not pre-registered")
        || contains_ci(message, "not preregistered")
    {
        RegistrationError::UnknownDevice
    } else {
        match code {
            401 => RegistrationError::BadProductSecret,
            404 if contains_ci(message, "product") && !contains_ci(message, "device") => {
                RegistrationError::BadProductSecret
            }
            404 => RegistrationError::UnknownDevice,
            other => RegistrationError::Refused(other),
        }
    }
}

/// "已激活", or "activated" not preceded by "not ", "un", "in" or "de".
fn says_already_activated(message: &str) -> bool {
    if message.contains("已激活") {
        return true;
    }
    let bytes = message.as_bytes();
    let needle = b"activated";
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(needle))
        .any(|(at, _)| {
            let before = bytes.get(..at).unwrap_or_default();
            !["not ", "un", "in", "de"]
                .iter()
                .any(|negation| ends_with_ci(before, negation.as_bytes()))
        })
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    // `windows(0)` would panic; the empty needle is everywhere.
    needle.is_empty()
        || haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn ends_with_ci(haystack: &[u8], suffix: &[u8]) -> bool {
    haystack.len() >= suffix.len()
        && haystack
            .get(haystack.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}
