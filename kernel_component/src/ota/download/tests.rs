//! The download against a scripted in-memory stream: requests compared with hand-written
//! bytes, answers written by hand as OSS sends them (`x-oss-*` headers, 206 with
//! `Content-Range`, 403 XML when the URL has expired), cut anywhere.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use futures_executor::block_on;
use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::*;
use crate::ota::job::Digest;

const URL: &str = "http://oss.example:8080/ota/fw.bin?Expires=1626969897&OSSAccessKeyId=LTAIkey&Signature=c2lnbmF0dXJl";
const SIGNATURE: &str = "c2lnbmF0dXJl";

fn url() -> Url<'static> {
    Url::parse(URL).unwrap()
}

fn file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + (i >> 8) * 7 + 3) as u8)
        .collect()
}

fn request(from: u32) -> String {
    format!(
        "GET /ota/fw.bin?Expires=1626969897&OSSAccessKeyId=LTAIkey&Signature=c2lnbmF0dXJl HTTP/1.1\r\n\
         Host: oss.example:8080\r\nRange: bytes={from}-\r\nConnection: close\r\n\r\n"
    )
}

/// What OSS sends with an object (trimmed): its headers around the ones that matter.
fn head(status: &str, fields: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: AliyunOSS\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
         Content-Type: application/octet-stream\r\n{fields}Connection: close\r\nAccept-Ranges: bytes\r\n\
         ETag: \"5B3C1A2E053D763E1B002CC607C5A0FE\"\r\nx-oss-request-id: 5C6A5F3A0A1B2C3D4E5F6A7B\r\n\
         x-oss-hash-crc64ecma: 1234567890123456789\r\n\r\n"
    )
}

fn partial(data: &[u8], from: usize) -> Vec<u8> {
    let total = data.len();
    let mut reply = head(
        "206 Partial Content",
        &format!(
            "Content-Length: {}\r\nContent-Range: bytes {from}-{}/{total}\r\n",
            total - from,
            total - 1
        ),
    )
    .into_bytes();
    reply.extend_from_slice(&data[from..]);
    reply
}

fn whole(data: &[u8]) -> Vec<u8> {
    let mut reply = head("200 OK", &format!("Content-Length: {}\r\n", data.len())).into_bytes();
    reply.extend_from_slice(data);
    reply
}

/// `body` chunked in chunks of `size` bytes, with an extension and a trailer for good measure.
fn chunked(status: &str, fields: &str, body: &[u8], size: usize) -> Vec<u8> {
    let mut reply = head(status, &format!("{fields}Transfer-Encoding: chunked\r\n")).into_bytes();
    for chunk in body.chunks(size) {
        reply.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
        reply.extend_from_slice(chunk);
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
    reply
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cut {
    /// The peer closes.
    Eof,
    /// The stream fails.
    Reset,
}

/// A stream that records what is written and replays `reply` at most `piece` bytes a read,
/// then EOF; or, with `cut`, stops (EOF or error) after that many reply bytes. Reading on and
/// on at EOF is a client bug (a busy loop): it panics.
struct Script {
    reply: VecDeque<u8>,
    piece: usize,
    cut: Option<(usize, Cut)>,
    written: Vec<u8>,
    consumed: usize,
    reads_after_end: usize,
    /// A server that keeps the connection open after the body: reading on would hang.
    open_after_end: bool,
    /// Writes never complete.
    stall_writes: bool,
}

impl Script {
    fn new(reply: &[u8], piece: usize) -> Self {
        Self {
            reply: reply.iter().copied().collect(),
            piece,
            cut: None,
            written: Vec::new(),
            consumed: 0,
            reads_after_end: 0,
            open_after_end: false,
            stall_writes: false,
        }
    }

    fn cut(mut self, at: usize, how: Cut) -> Self {
        self.cut = Some((at, how));
        self
    }
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl Read for Script {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let left = match self.cut {
            Some((at, _)) => at.saturating_sub(self.consumed).min(self.reply.len()),
            None => self.reply.len(),
        };
        if left == 0 {
            assert!(
                !self.open_after_end,
                "read past a complete body (would hang)"
            );
            self.reads_after_end += 1;
            assert!(
                self.reads_after_end < 100,
                "the client keeps reading at EOF"
            );
            return match self.cut {
                Some((_, Cut::Reset)) => Err(ErrorKind::ConnectionReset),
                _ => Ok(0),
            };
        }
        let n = self.piece.min(buf.len()).min(left);
        for (dst, src) in buf.iter_mut().zip(self.reply.drain(..n)) {
            *dst = src;
        }
        self.consumed += n;
        Ok(n)
    }
}

impl Write for Script {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.stall_writes {
            core::future::pending::<()>().await;
        }
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// The update slot: takes bytes only at the next offset, never past `limit`.
struct Slot {
    data: Vec<u8>,
    limit: usize,
    restarts: usize,
    writes: usize,
    fail_at: Option<usize>,
}

impl Slot {
    fn new(limit: usize) -> Self {
        Self {
            data: Vec::new(),
            limit,
            restarts: 0,
            writes: 0,
            fail_at: None,
        }
    }
}

impl Sink for Slot {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.data.clear();
        self.restarts += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        assert!(!data.is_empty(), "empty write");
        if offset as usize != self.data.len() {
            return Err(SinkError::OutOfOrder);
        }
        assert!(
            offset as usize + data.len() <= self.limit,
            "written past total: {offset}+{}",
            data.len()
        );
        if self
            .fail_at
            .is_some_and(|at| at < offset as usize + data.len())
        {
            return Err(SinkError::Write);
        }
        self.data.extend_from_slice(data);
        self.writes += 1;
        Ok(())
    }
}

fn run(
    script: &mut Script,
    from: u32,
    total: usize,
    buf_len: usize,
    slot: &mut impl Sink,
) -> Result<Fetched, DownloadError> {
    let mut buf = vec![0u8; buf_len];
    block_on(fetch(script, &url(), from, total as u32, &mut buf, slot))
}

fn md5_of(data: &[u8]) -> Digest {
    Digest::Md5(Md5::digest(data).into())
}

fn sha256_of(data: &[u8]) -> Digest {
    Digest::Sha256(Sha256::digest(data).into())
}

#[test]
fn a_206_in_small_pieces_from_anywhere() {
    let data = file(3000);
    for from in [0, 1, 299, 1024, 2999] {
        for piece in [1, 7, 100, 4096] {
            for buf_len in [512, RECOMMENDED_BUF_LEN] {
                let mut script = Script::new(&partial(&data, from), piece);
                let mut slot = Slot::new(data.len());
                slot.data.extend_from_slice(&data[..from]);
                let fetched = run(&mut script, from as u32, data.len(), buf_len, &mut slot);
                let case = format!("from {from}, piece {piece}, buf {buf_len}");
                assert_eq!(
                    fetched,
                    Ok(Fetched {
                        restarted_from_zero: false
                    }),
                    "{case}"
                );
                assert_eq!(script.written, request(from as u32).as_bytes(), "{case}");
                assert!(slot.data == data, "{case}");
                assert_eq!(slot.restarts, 0, "{case}");
            }
        }
    }
}

#[test]
fn a_200_is_the_whole_file_and_restarts_the_sink_and_the_hasher() {
    let data = file(2500);
    for digest in [md5_of(&data), sha256_of(&data)] {
        for from in [0usize, 1, 1200] {
            let mut script = Script::new(&whole(&data), 333);
            let mut slot = Slot::new(data.len());
            let mut hasher = Hasher::new(digest);
            // What an earlier, interrupted fetch left.
            slot.data.extend_from_slice(&data[..from]);
            hasher.update_at(0, &data[..from]).unwrap();
            let mut sink = Hashed {
                hasher: &mut hasher,
                inner: &mut slot,
            };
            let fetched = run(&mut script, from as u32, data.len(), 1024, &mut sink);
            assert_eq!(
                fetched,
                Ok(Fetched {
                    restarted_from_zero: from > 0
                }),
                "from {from}"
            );
            assert_eq!(script.written, request(from as u32).as_bytes());
            assert!(slot.data == data, "from {from}");
            assert_eq!(slot.restarts, usize::from(from > 0));
            assert_eq!(hasher.seen(), data.len() as u32);
            assert!(hasher.finish(), "from {from}");
        }
    }
}

#[test]
fn a_206_for_another_range_is_refused_before_anything_is_written() {
    let data = file(1000);
    let body = &data[400..];
    let ranges = [
        "Content-Range: bytes 0-999/1000\r\n",
        "Content-Range: bytes 400-998/1000\r\n",
        "Content-Range: bytes 400-999/1001\r\n",
        "Content-Range: bytes 400-999/*\r\n",
        "Content-Range: bytes */1000\r\n",
        "Content-Range: items 400-999/1000\r\n",
        "Content-Range: bytes 400-999\r\n",
        "Content-Range: bytes -400-999/1000\r\n",
        "Content-Range: bytes 400-999/1000\r\nContent-Range: bytes 400-999/1000\r\n",
        "Content-Range: bytes 400-99999999999999999999999/1000\r\n",
        "",
    ];
    for range in ranges {
        let mut reply = head(
            "206 Partial Content",
            &format!("{range}Content-Length: 600\r\n"),
        )
        .into_bytes();
        reply.extend_from_slice(body);
        let mut slot = Slot::new(data.len());
        slot.data.extend_from_slice(&data[..400]);
        let result = run(
            &mut Script::new(&reply, 64),
            400,
            data.len(),
            1024,
            &mut slot,
        );
        assert_eq!(result, Err(DownloadError::BadRange), "{range:?}");
        assert_eq!(slot.data.len(), 400, "{range:?}");
    }
    // Tolerated spellings of the right range.
    for range in [
        "content-range: BYTES 400-999/1000\r\n",
        "Content-Range:   bytes  400-999/1000  \r\n",
    ] {
        let mut reply = head(
            "206 Partial Content",
            &format!("{range}Content-Length: 600\r\n"),
        )
        .into_bytes();
        reply.extend_from_slice(body);
        let mut slot = Slot::new(data.len());
        slot.data.extend_from_slice(&data[..400]);
        let result = run(
            &mut Script::new(&reply, 64),
            400,
            data.len(),
            1024,
            &mut slot,
        );
        assert!(result.is_ok(), "{range:?}: {result:?}");
        assert!(slot.data == data);
    }
}

/// Cut at many points of the body (and of the head), by EOF or by an error: the first fetch
/// says how far it got, a second from there completes the file, the digest (one hasher across
/// both) matches, and the bytes read off the wire are at most one buffer more than the file.
#[test]
fn a_cut_download_resumes_where_it_stopped() {
    let data = file(5000);
    let total = data.len();
    let buf_len = 1024;
    let first_reply = partial(&data, 0);
    let head_len = first_reply.len() - total;
    for digest in [md5_of(&data), sha256_of(&data)] {
        for how in [Cut::Eof, Cut::Reset] {
            for cut in [0, 1, 100, 1023, 1024, 2500, total - 1] {
                let case = format!("cut at {cut} by {how:?}");
                let mut slot = Slot::new(total);
                let mut hasher = Hasher::new(digest);
                let mut first = Script::new(&first_reply, 300).cut(head_len + cut, how);
                let result = run(
                    &mut first,
                    0,
                    total,
                    buf_len,
                    &mut Hashed {
                        hasher: &mut hasher,
                        inner: &mut slot,
                    },
                );
                assert_eq!(
                    result,
                    Err(DownloadError::Interrupted {
                        reached: cut as u32
                    }),
                    "{case}"
                );
                assert_eq!(result.unwrap_err().resume_from(), Some(cut as u32));
                assert!(slot.data == data[..cut], "{case}");

                let second_reply = partial(&data, cut);
                let mut second = Script::new(&second_reply, 300);
                let result = run(
                    &mut second,
                    cut as u32,
                    total,
                    buf_len,
                    &mut Hashed {
                        hasher: &mut hasher,
                        inner: &mut slot,
                    },
                );
                assert_eq!(
                    result,
                    Ok(Fetched {
                        restarted_from_zero: false
                    }),
                    "{case}"
                );
                assert_eq!(second.written, request(cut as u32).as_bytes(), "{case}");
                assert!(slot.data == data, "{case}");
                assert!(hasher.clone().finish(), "{case}");

                let body_bytes = (first.consumed - head_len)
                    + (second.consumed - (second_reply.len() - (total - cut)));
                assert!(body_bytes <= total + buf_len, "{case}: {body_bytes} bytes");
                assert_eq!(body_bytes, total, "{case}: every byte read once");
            }
        }
    }
}

#[test]
fn a_cut_inside_the_head_is_an_interruption_at_from() {
    let data = file(800);
    let reply = partial(&data, 300);
    for how in [Cut::Eof, Cut::Reset] {
        for cut in [0, 1, 20, 200] {
            let mut slot = Slot::new(data.len());
            slot.data.extend_from_slice(&data[..300]);
            let mut script = Script::new(&reply, 50).cut(cut, how);
            let result = run(&mut script, 300, data.len(), 1024, &mut slot);
            assert_eq!(
                result,
                Err(DownloadError::Interrupted { reached: 300 }),
                "cut at {cut} by {how:?}"
            );
            assert_eq!(slot.data.len(), 300);
        }
    }
}

/// A 200 (the whole file) cut halfway: the sink was restarted and holds the file from 0.
#[test]
fn a_cut_after_a_restart_counts_from_zero() {
    let data = file(3000);
    let reply = whole(&data);
    let head_len = reply.len() - data.len();
    let mut slot = Slot::new(data.len());
    slot.data.extend_from_slice(&data[..2000]);
    let mut script = Script::new(&reply, 256).cut(head_len + 1500, Cut::Reset);
    let result = run(&mut script, 2000, data.len(), 1024, &mut slot);
    assert_eq!(result, Err(DownloadError::Interrupted { reached: 1500 }));
    assert_eq!(slot.restarts, 1);
    assert!(slot.data == data[..1500]);
}

#[test]
fn an_expired_url_is_refused() {
    // What OSS answers once `Expires` has passed.
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>AccessDenied</Code>\n  \
               <Message>Request has expired.</Message>\n  <RequestId>5C6A5F3A0A1B2C3D</RequestId>\n  \
               <HostId>oss.example</HostId>\n  <Expires>2021-07-22T16:04:57.000Z</Expires>\n</Error>\n";
    for status in ["403 Forbidden", "400 Bad Request", "404 Not Found"] {
        let mut reply = head(
            status,
            &format!(
                "Content-Type: application/xml\r\nContent-Length: {}\r\n",
                xml.len()
            ),
        )
        .into_bytes();
        reply.extend_from_slice(xml.as_bytes());
        let mut slot = Slot::new(100);
        let result = run(&mut Script::new(&reply, 64), 0, 100, 1024, &mut slot);
        let code: u16 = status[..3].parse().unwrap();
        assert_eq!(result, Err(DownloadError::Refused(code)), "{status}");
        assert_eq!(result.unwrap_err().step(), -2);
        assert_eq!(result.unwrap_err().resume_from(), None);
        assert!(slot.data.is_empty() && slot.restarts == 0);
    }
}

#[test]
fn other_statuses() {
    let cases = [
        (
            "416 Requested Range Not Satisfiable",
            10,
            DownloadError::RangeNotSatisfiable,
        ),
        (
            "416 Requested Range Not Satisfiable",
            0,
            DownloadError::Refused(416),
        ),
        ("500 Internal Server Error", 10, DownloadError::Status(500)),
        ("503 Service Unavailable", 0, DownloadError::Status(503)),
        ("302 Found", 0, DownloadError::Status(302)),
        ("204 No Content", 0, DownloadError::Status(204)),
    ];
    for (status, from, want) in cases {
        let reply = head(status, "Content-Length: 0\r\n").into_bytes();
        let mut slot = Slot::new(100);
        slot.data.resize(from, 0);
        let result = run(
            &mut Script::new(&reply, 64),
            from as u32,
            100,
            1024,
            &mut slot,
        );
        assert_eq!(result, Err(want), "{status} from {from}");
        assert_eq!(slot.data.len(), from);
    }
    assert_eq!(DownloadError::RangeNotSatisfiable.resume_from(), Some(0));
}

#[test]
fn a_chunked_206_is_taken() {
    let data = file(2000);
    for chunk in [1, 10, 500, 2000] {
        for piece in [1, 13, 4096] {
            let reply = chunked(
                "206 Partial Content",
                "Content-Range: bytes 700-1999/2000\r\n",
                &data[700..],
                chunk,
            );
            let mut slot = Slot::new(data.len());
            slot.data.extend_from_slice(&data[..700]);
            let result = run(
                &mut Script::new(&reply, piece),
                700,
                data.len(),
                512,
                &mut slot,
            );
            assert!(result.is_ok(), "chunk {chunk} piece {piece}: {result:?}");
            assert!(slot.data == data, "chunk {chunk} piece {piece}");
        }
    }
    // Cut inside a chunk, and a chunked body that ends short: both resume.
    let reply = chunked("200 OK", "", &data, 300);
    let head_len = head("200 OK", "Transfer-Encoding: chunked\r\n").len();
    let mut slot = Slot::new(data.len());
    let mut script = Script::new(&reply, 77).cut(head_len + 100, Cut::Eof);
    let result = run(&mut script, 0, data.len(), 512, &mut slot);
    // "12c;ext=1\r\n" (11 bytes) precede the payload.
    assert_eq!(result, Err(DownloadError::Interrupted { reached: 89 }));
    assert!(slot.data == data[..89]);
    let short = chunked("200 OK", "", &data[..1500], 300);
    let mut slot = Slot::new(data.len());
    let result = run(&mut Script::new(&short, 77), 0, data.len(), 512, &mut slot);
    assert_eq!(result, Err(DownloadError::Interrupted { reached: 1500 }));
}

#[test]
fn nothing_is_written_past_total() {
    let data = file(1000);
    let mut longer = data.clone();
    longer.extend_from_slice(b"TRAILING GARBAGE");
    // Read to close, chunked: the body goes on past `total`.
    let mut until_close = head("200 OK", "").into_bytes();
    until_close.extend_from_slice(&longer);
    let chunked_reply = chunked("200 OK", "", &longer, 333);
    for (name, reply) in [("until close", until_close), ("chunked", chunked_reply)] {
        for piece in [1, 100, 4096] {
            let mut slot = Slot::new(data.len());
            let result = run(
                &mut Script::new(&reply, piece),
                0,
                data.len(),
                512,
                &mut slot,
            );
            assert_eq!(result, Err(DownloadError::TooLong), "{name}, piece {piece}");
            assert!(slot.data == data, "{name}: exactly the file was written");
        }
    }
    // Read to close, exactly the file: fine.
    let mut exact = head("200 OK", "").into_bytes();
    exact.extend_from_slice(&data);
    let mut slot = Slot::new(data.len());
    assert!(run(&mut Script::new(&exact, 100), 0, data.len(), 512, &mut slot).is_ok());
    assert!(slot.data == data);
    // A Content-Length other than the range's: refused before anything is written.
    for (status, fields, from) in [
        ("200 OK", "Content-Length: 1001\r\n", 0),
        ("200 OK", "Content-Length: 999\r\n", 0),
        ("200 OK", "Content-Length: 600\r\n", 400),
        (
            "206 Partial Content",
            "Content-Range: bytes 400-999/1000\r\nContent-Length: 1000\r\n",
            400,
        ),
    ] {
        let mut reply = head(status, fields).into_bytes();
        reply.extend_from_slice(&longer);
        let mut slot = Slot::new(data.len());
        slot.data.extend_from_slice(&data[..from]);
        let result = run(
            &mut Script::new(&reply, 100),
            from as u32,
            data.len(),
            512,
            &mut slot,
        );
        assert_eq!(result, Err(DownloadError::BadLength), "{fields:?}");
        assert_eq!((slot.data.len(), slot.restarts), (from, 0), "{fields:?}");
    }
    // With Content-Length, bytes after the body are not the file's.
    let mut reply = whole(&data);
    reply.extend_from_slice(b"GARBAGE");
    let mut slot = Slot::new(data.len());
    assert!(
        run(
            &mut Script::new(&reply, 4096),
            0,
            data.len(),
            2048,
            &mut slot
        )
        .is_ok()
    );
    assert!(slot.data == data);
}

#[test]
fn digest_mismatch_is_seen_across_a_resume() {
    let data = file(4000);
    let mut tampered = data.clone();
    tampered[3000] ^= 1;
    for digest in [md5_of(&data), sha256_of(&data)] {
        for (served_second, want) in [(&data, true), (&tampered, false)] {
            let mut slot = Slot::new(data.len());
            let mut hasher = Hasher::new(digest);
            let first_reply = partial(&data, 0);
            let head_len = first_reply.len() - data.len();
            let mut first = Script::new(&first_reply, 512).cut(head_len + 2000, Cut::Reset);
            let mut sink = Hashed {
                hasher: &mut hasher,
                inner: &mut slot,
            };
            let result = run(&mut first, 0, data.len(), 1024, &mut sink);
            assert_eq!(result, Err(DownloadError::Interrupted { reached: 2000 }));
            let mut second = Script::new(&partial(served_second, 2000), 512);
            assert!(run(&mut second, 2000, data.len(), 1024, &mut sink).is_ok());
            assert_eq!(hasher.seen(), 4000);
            assert_eq!(hasher.finish(), want);
        }
    }
}

#[test]
fn a_sink_failure_stops_the_download() {
    let data = file(2000);
    let mut slot = Slot::new(data.len());
    slot.fail_at = Some(1000);
    let result = run(
        &mut Script::new(&partial(&data, 0), 256),
        0,
        data.len(),
        512,
        &mut slot,
    );
    assert_eq!(result, Err(DownloadError::Sink(SinkError::Write)));
    assert_eq!(result.unwrap_err().step(), -4);
    assert!(slot.data.len() <= 1000);
    // A sink that is not where fetch says (resumed from the wrong offset).
    let mut slot = Slot::new(data.len());
    slot.data.extend_from_slice(&data[..10]);
    let result = run(
        &mut Script::new(&partial(&data, 20), 256),
        20,
        data.len(),
        512,
        &mut slot,
    );
    assert_eq!(result, Err(DownloadError::Sink(SinkError::OutOfOrder)));
}

#[test]
fn edge_offsets_and_small_buffers() {
    let data = file(100);
    let mut slot = Slot::new(100);
    let mut script = Script::new(b"", 1);
    assert_eq!(
        run(&mut script, 100, 100, 512, &mut slot),
        Ok(Fetched {
            restarted_from_zero: false
        })
    );
    assert!(script.written.is_empty(), "nothing to fetch, nothing sent");
    assert_eq!(
        run(&mut Script::new(b"", 1), 101, 100, 512, &mut slot),
        Err(DownloadError::BadOffset)
    );
    // A buffer too small for the request or for the head.
    assert_eq!(
        run(
            &mut Script::new(&partial(&data, 0), 64),
            0,
            100,
            64,
            &mut slot
        ),
        Err(DownloadError::Http(HttpError::TooLarge))
    );
    assert_eq!(
        run(
            &mut Script::new(&partial(&data, 0), 64),
            0,
            100,
            200,
            &mut slot
        ),
        Err(DownloadError::Http(HttpError::TooLarge))
    );
    assert!(slot.data.is_empty());
    // Not HTTP.
    assert_eq!(
        run(
            &mut Script::new(b"SSH-2.0-OpenSSH\r\n\r\n", 64),
            0,
            100,
            512,
            &mut slot
        ),
        Err(DownloadError::Http(HttpError::Malformed))
    );
}

#[test]
fn the_signature_is_neither_logged_nor_left_in_buf() {
    crate::test_log::install();
    let data = file(500);
    // A restart (logged) and a refusal (logged).
    let mut slot = Slot::new(data.len());
    slot.data.extend_from_slice(&data[..10]);
    let mut buf = vec![0u8; 4096];
    let mut script = Script::new(&whole(&data), 4096);
    let url = url();
    assert!(block_on(fetch(&mut script, &url, 10, 500, &mut buf, &mut slot)).is_ok());
    assert!(
        !buf.windows(SIGNATURE.len())
            .any(|w| w == SIGNATURE.as_bytes()),
        "the request is still in buf"
    );
    // A short answer, which overwrites little of the request in buf.
    let reply = b"HTTP/1.1 403 Forbidden\r\n\r\n";
    let mut slot = Slot::new(data.len());
    let mut buf = vec![0u8; 1024];
    assert_eq!(
        block_on(fetch(
            &mut Script::new(reply, 64),
            &url,
            0,
            500,
            &mut buf,
            &mut slot
        )),
        Err(DownloadError::Refused(403))
    );
    assert!(
        !buf.windows(SIGNATURE.len())
            .any(|w| w == SIGNATURE.as_bytes()),
        "the request is still in buf"
    );
    let lines = crate::test_log::lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("oss.example:8080/ota/fw.bin?…")),
        "not logged: {lines:?}"
    );
    for line in &lines {
        assert!(!line.contains(SIGNATURE), "signature logged: {line}");
        assert!(!line.contains("Expires"), "query logged: {line}");
    }
}

/// With `Content-Length` or chunking the body's end is known: nothing is read after it, so a
/// server that keeps the connection open (despite `Connection: close`) does not hold the
/// download up.
#[test]
fn nothing_is_read_after_a_framed_body() {
    let data = file(1500);
    for piece in [1, 100, 4096] {
        for reply in [
            partial(&data, 0),
            whole(&data),
            chunked("200 OK", "", &data, 400),
        ] {
            let mut script = Script::new(&reply, piece);
            script.open_after_end = true;
            let mut slot = Slot::new(data.len());
            assert!(run(&mut script, 0, data.len(), 512, &mut slot).is_ok());
            assert!(slot.data == data);
        }
    }
}

/// The caller's deadline drops the future while the request is being sent: the signature is
/// wiped from `buf` all the same.
#[test]
fn the_request_is_wiped_when_the_future_is_dropped() {
    let url = url();
    let mut buf = vec![0u8; 1024];
    let mut script = Script::new(b"", 1);
    script.stall_writes = true;
    let mut slot = Slot::new(100);
    {
        let mut fut = core::pin::pin!(fetch(&mut script, &url, 0, 100, &mut buf, &mut slot));
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    assert!(
        !buf.windows(SIGNATURE.len())
            .any(|w| w == SIGNATURE.as_bytes()),
        "the request is still in buf"
    );
}

/// Offsets near `u32::MAX`: the request and the range check neither overflow nor truncate.
#[test]
fn offsets_near_the_top_of_u32() {
    struct Tail(Vec<(u32, Vec<u8>)>);
    impl Sink for Tail {
        async fn restart(&mut self) -> Result<(), SinkError> {
            Err(SinkError::Write)
        }
        async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
            self.0.push((offset, data.to_vec()));
            Ok(())
        }
    }
    let total = u32::MAX;
    let from = total - 3;
    let mut reply = head(
        "206 Partial Content",
        "Content-Length: 3\r\nContent-Range: bytes 4294967292-4294967294/4294967295\r\n",
    )
    .into_bytes();
    reply.extend_from_slice(b"xyzEXTRA");
    let mut script = Script::new(&reply, 2);
    let mut tail = Tail(Vec::new());
    let mut buf = vec![0u8; 1024];
    let result = block_on(fetch(&mut script, &url(), from, total, &mut buf, &mut tail));
    assert_eq!(
        result,
        Ok(Fetched {
            restarted_from_zero: false
        })
    );
    assert_eq!(script.written, request(from).as_bytes());
    let written: Vec<u8> = tail.0.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(written, b"xyz");
    assert_eq!(tail.0.first().map(|w| w.0), Some(from));
    // The same range one past the end of what u32 can say is another range.
    let mut reply = head(
        "206 Partial Content",
        "Content-Range: bytes 4294967292-4294967295/4294967296\r\n",
    )
    .into_bytes();
    reply.extend_from_slice(b"xyzw");
    let result = block_on(fetch(
        &mut Script::new(&reply, 64),
        &url(),
        from,
        total,
        &mut buf,
        &mut tail,
    ));
    assert_eq!(result, Err(DownloadError::BadRange));
}

/// A sink whose first write fails, as a flash write cut short would.
struct FailsOnce {
    failed: bool,
    took: Vec<u8>,
}

impl Sink for FailsOnce {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.took.clear();
        Ok(())
    }

    async fn write(&mut self, _offset: u32, data: &[u8]) -> Result<(), SinkError> {
        if !self.failed {
            self.failed = true;
            return Err(SinkError::Write);
        }
        self.took.extend_from_slice(data);
        Ok(())
    }
}

#[test]
fn hashed_counts_only_what_the_sink_took() {
    let mut hasher = crate::ota::digest::Hasher::new(crate::ota::job::Digest::Md5([0; 16]));
    let mut inner = FailsOnce {
        failed: false,
        took: Vec::new(),
    };
    let mut sink = Hashed {
        hasher: &mut hasher,
        inner: &mut inner,
    };
    block_on(async {
        assert_eq!(sink.write(0, b"abc").await, Err(SinkError::Write));
        // The failed bytes were not hashed: the same offset may come again.
        assert_eq!(sink.write(0, b"abc").await, Ok(()));
        assert_eq!(sink.write(5, b"x").await, Err(SinkError::OutOfOrder));
    });
    assert_eq!(hasher.seen(), 3);
    assert_eq!(inner.took, b"abc");
}
