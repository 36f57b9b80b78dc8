//! The firmware download: one HTTP/1.1 range request over a stream the board opened to the
//! job's URL (spec §3 "Download"; spec §7 item 4: weak links cut downloads, so resume).
//!
//! [`fetch`] sends
//!
//! ```text
//! GET <path?query> HTTP/1.1
//! Host: <host[:port]>
//! Range: bytes=<from>-
//! Connection: close
//! ```
//!
//! and streams the body into a [`Sink`] (the update slot, through a [`Hashed`] digest), every
//! byte exactly once and in order, at its file offset, never at or past `total` (the job's
//! `size`). What the answer is taken to mean:
//!
//! | answer | result |
//! |---|---|
//! | 206 with `Content-Range: bytes <from>-<total-1>/<total>` | the bytes from `from` |
//! | 206 with any other or no `Content-Range` | [`DownloadError::BadRange`], nothing written |
//! | 200 | the whole file from 0 (OSS answers so to a Range it ignores): [`Sink::restart`] first when `from` > 0, and [`Fetched::restarted_from_zero`] |
//! | 416 | [`DownloadError::RangeNotSatisfiable`]: fetch again from 0 (from 0 it is `Refused(416)`) |
//! | other 4xx (OSS: 403 `AccessDenied` "Request has expired"; IOTKIT#103: 400) | [`DownloadError::Refused`] (progress -2) |
//! | anything else (3xx, 5xx, other 2xx) | [`DownloadError::Status`] |
//! | `Content-Length` other than the range's length | [`DownloadError::BadLength`], nothing written |
//! | a body (chunked or read to close) going past `total` | [`DownloadError::TooLong`] once `total` is reached; nothing past it is written |
//! | the stream failing or closing before the end | [`DownloadError::Interrupted`]`{ reached }`: the sink holds `0..reached`; fetch again from `reached` (LINKSDK's `DOWNLOAD_STATUS_RENEWAL`) |
//! | a sink error | [`DownloadError::Sink`] (progress -4) |
//!
//! Unlike LINKSDK, chunked bodies are taken (OSS does not send them; a proxy might). With
//! `Content-Length`, bytes after the body are not read. There is no deadline here: the caller
//! races [`fetch`] against its clock, and a future dropped mid-body leaves the sink holding
//! whatever it was handed (the caller resumes from its own count, e.g. [`Hasher::seen`]).
//!
//! Everything lives in the caller's `buf` (first the request, then the response head, then
//! body pieces); nothing is allocated. The request, which carries the URL's signature, is
//! zeroized once sent; nothing here logs the query ([`Url::redacted`]).
//!
//! The HTTP pieces (request head, response head, de-chunking) are the registration client's
//! ([`crate::registration::https`]); only the body is streamed here instead of buffered.
//!
//! The retries, deadlines, the final length and digest check and the progress reports are
//! [`super::fetcher`]'s; the sink is the board's update slot ([`super::slot::UpdateSlot`]).

use core::fmt::Write as _;

use embedded_io_async::{Read, Write};
use zeroize::Zeroize;

use super::digest::Hasher;
use super::url::Url;
use crate::registration::https::{
    Dechunker, Framing, HttpError, ResponseHead, SliceWriter, head, read_head, write_request_head,
};

/// A `buf` size for [`fetch`]: the request (an OSS URL is a few hundred bytes) and an OSS
/// response head (about 600 bytes of `x-oss-*` headers), with room; larger pieces mean fewer
/// sink calls.
pub const RECOMMENDED_BUF_LEN: usize = 2048;

/// Where the downloaded bytes go (the update slot). Async, as flash writes are on the boards
/// (`embedded-storage-async`); `data` is never empty.
#[allow(async_fn_in_trait)] // single-threaded executors on every board
pub trait Sink {
    /// Forget everything written: the file is coming again from offset 0.
    async fn restart(&mut self) -> Result<(), SinkError>;
    /// `data` is the file from `offset` on; between restarts, offsets grow without gaps,
    /// except that a write cut short (its future dropped by a deadline) may come again at the
    /// same offset, over bytes it may have half written.
    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError>;
    /// The whole file was written and its digest matched: anything the sink still checks
    /// (a differential package's rebuilt image) or still holds.
    async fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Why a [`Sink`] failed.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkError {
    /// Writing (flashing) failed (progress -4).
    Write,
    /// Bytes came out of order (a bug: [`fetch`] hands each byte once, in order).
    OutOfOrder,
    /// A differential package was refused ([`super::delta`]): -3, or -4 for the flash.
    Patch(super::delta::PatchError),
}

/// A [`Sink`] that hashes the bytes once the inner sink took them: a restart resets the
/// hasher, a resume (a second [`fetch`] from where the first stopped) continues it. Hashing
/// after the write keeps the hasher from running ahead of the sink when a deadline drops a
/// write half-way, so `hasher.seen()` is always a safe offset to resume from.
pub struct Hashed<'a, K> {
    /// The file's digest so far.
    pub hasher: &'a mut Hasher,
    /// Where the bytes go.
    pub inner: &'a mut K,
}

impl<K: Sink> Sink for Hashed<'_, K> {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.hasher.reset();
        self.inner.restart().await
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        if offset != self.hasher.seen() {
            return Err(SinkError::OutOfOrder);
        }
        self.inner.write(offset, data).await?;
        self.hasher
            .update_at(offset, data)
            .map_err(|_| SinkError::OutOfOrder)
    }
}

/// A [`fetch`] that reached `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// The server sent the whole file (200) although `from` was > 0: the sink was restarted
    /// and holds the file from 0.
    pub restarted_from_zero: bool,
}

/// Why a [`fetch`] did not reach `total`.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadError {
    /// The stream failed or closed (or a chunked body ended) before `total`: the sink holds
    /// the file's bytes `0..reached`; fetch again from `reached`.
    Interrupted {
        /// Bytes of the file the sink holds.
        reached: u32,
    },
    /// 416 to a Range from > 0: fetch again from 0.
    RangeNotSatisfiable,
    /// A 4xx (an expired URL is 403, or 400): the URL will not serve the file.
    Refused(u16),
    /// A status other than 200, 206 or 4xx.
    Status(u16),
    /// A 206 whose `Content-Range` is missing or is not the range asked for.
    BadRange,
    /// A `Content-Length` other than the range's length.
    BadLength,
    /// The body goes past `total` (what came before `total` was written).
    TooLong,
    /// `from` > `total`.
    BadOffset,
    /// Not HTTP/1.x as read here, a request or head too large for `buf`, bad chunking.
    Http(HttpError),
    /// The sink failed.
    Sink(SinkError),
}

impl DownloadError {
    /// The progress `step` to report when giving up on this error (spec §3): -4 when the
    /// sink failed to write, -2 (download failed) otherwise.
    pub fn step(self) -> i8 {
        match self {
            DownloadError::Sink(SinkError::Write) => -4,
            DownloadError::Sink(SinkError::Patch(e)) => e.step(),
            _ => -2,
        }
    }

    /// The next `from` to fetch again with, if the error says to try again.
    pub fn resume_from(self) -> Option<u32> {
        match self {
            DownloadError::Interrupted { reached } => Some(reached),
            DownloadError::RangeNotSatisfiable => Some(0),
            _ => None,
        }
    }
}

/// Fetches the file at `url` (size `total`) from offset `from` over `stream` (already open to
/// `url.host`:`url.port`, TLS when [`Url::tls`]) into `sink`, as the module doc says. With
/// `from == total` nothing is sent. `buf` holds the request and the response head and takes
/// the body in pieces ([`RECOMMENDED_BUF_LEN`]).
pub async fn fetch<S: Read + Write, K: Sink>(
    stream: &mut S,
    url: &Url<'_>,
    from: u32,
    total: u32,
    buf: &mut [u8],
    sink: &mut K,
) -> Result<Fetched, DownloadError> {
    if from > total {
        return Err(DownloadError::BadOffset);
    }
    if from == total {
        return Ok(Fetched {
            restarted_from_zero: false,
        });
    }
    let interrupted = DownloadError::Interrupted { reached: from };
    let len = encode_request(url, from, buf).map_err(DownloadError::Http)?;
    // The request carries the URL's signature: wiped once sent, or if the future is dropped.
    let request = Wipe(
        buf.get_mut(..len)
            .ok_or(DownloadError::Http(HttpError::TooLarge))?,
    );
    let sent = match stream.write_all(request.0).await {
        Ok(()) => stream.flush().await,
        Err(e) => Err(e),
    };
    drop(request);
    sent.map_err(|_| interrupted)?;

    let head = read_head(stream, buf).await.map_err(|e| match e {
        HttpError::Io | HttpError::Closed => interrupted,
        other => DownloadError::Http(other),
    })?;
    let start = check_head(&head, buf, from, total).inspect_err(|e| {
        log_warn!(
            "OTA download from {} (bytes {}-): HTTP {}: {:?}",
            crate::logging::Disp(&url.redacted()),
            from,
            head.status,
            e
        );
    })?;
    let restarted_from_zero = start < from;
    if restarted_from_zero {
        log_info!(
            "OTA download from {}: the server sends the whole file, not from {}",
            crate::logging::Disp(&url.redacted()),
            from
        );
        sink.restart().await.map_err(DownloadError::Sink)?;
    }
    let mut body = Body {
        sink,
        pos: start,
        total,
    };
    body.read(stream, buf, &head).await?;
    Ok(Fetched {
        restarted_from_zero,
    })
}

/// Zeroizes the borrowed bytes when dropped (also when the caller's deadline drops the future).
struct Wipe<'a>(&'a mut [u8]);

impl Drop for Wipe<'_> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Writes the request into `buf`; returns its length.
fn encode_request(url: &Url<'_>, from: u32, buf: &mut [u8]) -> Result<usize, HttpError> {
    let mut range: heapless::String<24> = heapless::String::new();
    write!(range, "bytes={from}-").map_err(|_| HttpError::TooLarge)?;
    let mut w = SliceWriter::new(buf);
    write_request_head(
        &mut w,
        "GET",
        url.authority,
        url.target,
        &[("Range", range.as_str())],
        None,
    )?;
    Ok(w.len())
}

/// Checks the status and headers; returns the offset the body starts at.
fn check_head(
    head: &ResponseHead,
    buf: &[u8],
    from: u32,
    total: u32,
) -> Result<u32, DownloadError> {
    let start = match head.status {
        206 => {
            let text = buf
                .get(..head.head_len)
                .ok_or(DownloadError::Http(HttpError::Malformed))?;
            match content_range(text)? {
                Some(range)
                    if range == (u64::from(from), u64::from(total) - 1, u64::from(total)) =>
                {
                    from
                }
                _ => return Err(DownloadError::BadRange),
            }
        }
        200 => 0,
        416 if from > 0 => return Err(DownloadError::RangeNotSatisfiable),
        status @ 400..=499 => return Err(DownloadError::Refused(status)),
        status => return Err(DownloadError::Status(status)),
    };
    if let Framing::Length(n) = head.framing
        && n != u64::from(total - start)
    {
        return Err(DownloadError::BadLength);
    }
    Ok(start)
}

/// The `Content-Range` of a response head (`bytes first-last/complete`), `None` when absent
/// or not of that form (`*` for the length included). Two are refused ([`DownloadError::BadRange`]).
fn content_range(head: &[u8]) -> Result<Option<(u64, u64, u64)>, DownloadError> {
    let Ok(Some(head)) = head::parse(head) else {
        return Err(DownloadError::Http(HttpError::Malformed));
    };
    let mut found = None;
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case(b"content-range") {
            if found.is_some() {
                return Err(DownloadError::BadRange);
            }
            found = Some(parse_content_range(value));
        }
    }
    Ok(found.flatten())
}

fn parse_content_range(value: &[u8]) -> Option<(u64, u64, u64)> {
    // HTTP's optional whitespace is spaces and tabs: ASCII trims (str's Unicode trim and its
    // tables stay out of the image, issue 11).
    let value = core::str::from_utf8(value).ok()?.trim_ascii();
    let unit = value.get(..6)?;
    if !unit.eq_ignore_ascii_case("bytes ") {
        return None;
    }
    let (first, rest) = value.get(6..)?.trim_ascii_start().split_once('-')?;
    let (last, complete) = rest.split_once('/')?;
    Some((number(first)?, number(last)?, number(complete)?))
}

/// Decimal digits only (no sign, no spaces), up to u64.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The body being streamed into the sink.
struct Body<'k, K> {
    sink: &'k mut K,
    /// The file offset of the next byte.
    pos: u32,
    total: u32,
}

impl<K: Sink> Body<'_, K> {
    fn interrupted(&self) -> DownloadError {
        DownloadError::Interrupted { reached: self.pos }
    }

    /// Hands `data` (the next body bytes) to the sink; past `total` is [`DownloadError::TooLong`]
    /// after what fits was handed on.
    async fn deliver(&mut self, data: &[u8]) -> Result<(), DownloadError> {
        let room = usize::try_from(self.total - self.pos).unwrap_or(usize::MAX);
        let (fits, over) = data.split_at(data.len().min(room));
        if !fits.is_empty() {
            self.sink
                .write(self.pos, fits)
                .await
                .map_err(DownloadError::Sink)?;
            // fits.len() <= total - pos, so this neither overflows nor truncates.
            self.pos += u32::try_from(fits.len()).unwrap_or(0);
        }
        if over.is_empty() {
            Ok(())
        } else {
            Err(DownloadError::TooLong)
        }
    }

    async fn read<S: Read>(
        &mut self,
        stream: &mut S,
        buf: &mut [u8],
        head: &ResponseHead,
    ) -> Result<(), DownloadError> {
        let first = buf
            .get_mut(head.head_len..head.filled)
            .ok_or(DownloadError::Http(HttpError::Malformed))?;
        match head.framing {
            // The announced length is `total - start` (checked): the body ends at `total`.
            Framing::Length(_) => {
                let mut piece: &[u8] = first;
                loop {
                    let room = usize::try_from(self.total - self.pos).unwrap_or(usize::MAX);
                    self.deliver(piece.get(..room).unwrap_or(piece)).await?;
                    if self.pos == self.total {
                        return Ok(());
                    }
                    let n = self.read_more(stream, buf).await?;
                    piece = buf.get(..n).unwrap_or_default();
                }
            }
            Framing::UntilClose => {
                self.deliver(first).await?;
                loop {
                    let n = self.read_some(stream, buf).await?;
                    if n == 0 {
                        return if self.pos == self.total {
                            Ok(())
                        } else {
                            Err(self.interrupted())
                        };
                    }
                    self.deliver(buf.get(..n).unwrap_or_default()).await?;
                }
            }
            Framing::Chunked => {
                let mut dechunker = Dechunker::new();
                let mut piece = first;
                loop {
                    let out = dechunker.decode(piece).map_err(DownloadError::Http)?;
                    self.deliver(piece.get(..out).unwrap_or_default()).await?;
                    if dechunker.is_done() {
                        return if self.pos == self.total {
                            Ok(())
                        } else {
                            Err(self.interrupted())
                        };
                    }
                    let n = self.read_more(stream, buf).await?;
                    piece = buf.get_mut(..n).unwrap_or_default();
                }
            }
        }
    }

    /// Reads the next body bytes into `buf`: at least one, else an interruption (EOF included).
    async fn read_more<S: Read>(
        &self,
        stream: &mut S,
        buf: &mut [u8],
    ) -> Result<usize, DownloadError> {
        match self.read_some(stream, buf).await? {
            0 => Err(self.interrupted()),
            n => Ok(n),
        }
    }

    /// Reads the next body bytes into `buf` (`Ok(0)` at EOF, or if `buf` is empty); a stream
    /// error is an interruption.
    async fn read_some<S: Read>(
        &self,
        stream: &mut S,
        buf: &mut [u8],
    ) -> Result<usize, DownloadError> {
        match stream.read(buf).await {
            Ok(n) => Ok(n.min(buf.len())),
            Err(_) => Err(self.interrupted()),
        }
    }
}

#[cfg(test)]
mod tests;
