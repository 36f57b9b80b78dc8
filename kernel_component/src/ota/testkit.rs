//! Fakes for the download tests ([`super::fetcher`], [`super::task`]): a scripted network (answers written by hand as OSS sends them,
//! cut, stalled or refused), a fake clock that jumps to whatever deadline is awaited, and an
//! in-memory update slot.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use md5::{Digest as _, Md5};

use crate::board::{Clock, NetError, Network};
use crate::ota::download::{Sink, SinkError};
use crate::ota::job::{Digest, Job};

pub(crate) const URL: &str = "http://oss.example:8080/ota/fw.bin?Expires=1626969897&Signature=c2ln";
pub(crate) const BUF: usize = 512;

pub(crate) fn file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + (i >> 8) * 7 + 3) as u8)
        .collect()
}

pub(crate) fn job(data: &[u8]) -> Job {
    Job {
        version: "2.0.0".into(),
        size: data.len() as u32,
        url: URL.into(),
        digest: Digest::Md5(Md5::digest(data).into()),
        module: "default".into(),
        diff: false,
    }
}

pub(crate) fn head(status: &str, fields: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: AliyunOSS\r\nContent-Type: application/octet-stream\r\n\
         {fields}Connection: close\r\nx-oss-request-id: 5C6A5F3A0A1B2C3D4E5F6A7B\r\n\r\n"
    )
}

/// 206 for `data[from..]`; returns the reply and the length of its head.
pub(crate) fn partial(data: &[u8], from: usize) -> (Vec<u8>, usize) {
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
    let head_len = reply.len();
    reply.extend_from_slice(&data[from..]);
    (reply, head_len)
}

pub(crate) fn whole(data: &[u8]) -> Vec<u8> {
    let mut reply = head("200 OK", &format!("Content-Length: {}\r\n", data.len())).into_bytes();
    reply.extend_from_slice(data);
    reply
}

pub(crate) fn expired() -> Vec<u8> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                <Message>Request has expired.</Message></Error>";
    let mut reply = head(
        "403 Forbidden",
        &format!(
            "Content-Length: {}\r\nContent-Type: application/xml\r\n",
            body.len()
        ),
    )
    .into_bytes();
    reply.extend_from_slice(body.as_bytes());
    reply
}

/// The fake clock: `sleep_until` jumps the time to its deadline (recording it), so a future
/// that is pending loses every race against it.
#[derive(Clone, Default)]
pub(crate) struct FakeClock {
    pub(crate) now: Rc<Cell<u64>>,
    pub(crate) sleeps: Rc<RefCell<Vec<u64>>>,
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        self.sleeps.borrow_mut().push(deadline_ms);
        if deadline_ms > self.now.get() {
            self.now.set(deadline_ms);
        }
    }
}

/// One scripted answer to a connect.
pub(crate) enum Answer {
    /// The connect fails.
    Refuse,
    /// The connect never completes.
    Hang,
    /// A stream answering 206 for whatever range the request asks of this file.
    Serve(Vec<u8>),
    /// A stream replaying `reply`, `piece` bytes a read, each read taking `ms_per_read`;
    /// after `stall_after` reply bytes it never answers again, otherwise EOF at the end.
    Stream {
        reply: Vec<u8>,
        piece: usize,
        stall_after: Option<usize>,
    },
}

pub(crate) fn answer(reply: Vec<u8>) -> Answer {
    Answer::Stream {
        reply,
        piece: 100,
        stall_after: None,
    }
}

/// `reply` cut (EOF) after `at` bytes.
pub(crate) fn cut(mut reply: Vec<u8>, at: usize) -> Answer {
    reply.truncate(at);
    answer(reply)
}

pub(crate) struct Net {
    pub(crate) answers: VecDeque<Answer>,
    pub(crate) connects: Vec<(String, u16, bool)>,
    /// Each request's text.
    pub(crate) requests: Rc<RefCell<Vec<Vec<u8>>>>,
    /// Reply bytes read by the client, over all streams.
    pub(crate) read: Rc<Cell<usize>>,
    pub(crate) clock: FakeClock,
    pub(crate) ms_per_read: u64,
}

impl Net {
    pub(crate) fn new(clock: &FakeClock, answers: Vec<Answer>) -> Self {
        Self {
            answers: answers.into(),
            connects: Vec::new(),
            requests: Rc::default(),
            read: Rc::default(),
            clock: clock.clone(),
            ms_per_read: 0,
        }
    }

    pub(crate) fn ranges(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| {
                let text = core::str::from_utf8(r).unwrap();
                let line = text.lines().find(|l| l.starts_with("Range: ")).unwrap();
                line["Range: ".len()..].to_string()
            })
            .collect()
    }
}

pub(crate) struct Stream {
    pub(crate) reply: VecDeque<u8>,
    pub(crate) piece: usize,
    pub(crate) stall_after: Option<usize>,
    /// [`Answer::Serve`]: the file, until the request is answered.
    pub(crate) serve: Option<Vec<u8>>,
    pub(crate) consumed: usize,
    pub(crate) request: usize,
    pub(crate) requests: Rc<RefCell<Vec<Vec<u8>>>>,
    pub(crate) read: Rc<Cell<usize>>,
    pub(crate) clock: FakeClock,
    pub(crate) ms_per_read: u64,
}

impl ErrorType for Stream {
    type Error = ErrorKind;
}

impl Read for Stream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if let Some(data) = self.serve.take() {
            let request = String::from_utf8(self.requests.borrow()[self.request].clone()).unwrap();
            let from = request.split("Range: bytes=").nth(1).unwrap();
            let from: usize = from[..from.find('-').unwrap()].parse().unwrap();
            self.reply = partial(&data, from).0.into();
        }
        let left = match self.stall_after {
            Some(at) => at.saturating_sub(self.consumed).min(self.reply.len()),
            None => self.reply.len(),
        };
        if left == 0 && self.stall_after.is_some() {
            core::future::pending::<()>().await;
        }
        let n = self.piece.min(buf.len()).min(left);
        for (dst, src) in buf.iter_mut().zip(self.reply.drain(..n)) {
            *dst = src;
        }
        self.consumed += n;
        self.read.set(self.read.get() + n);
        self.clock.now.set(self.clock.now.get() + self.ms_per_read);
        Ok(n)
    }
}

impl Write for Stream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.requests.borrow_mut()[self.request].extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl Network for Net {
    type Stream = Stream;

    async fn connect(&mut self, host: &str, port: u16, tls: bool) -> Result<Stream, NetError> {
        self.connects.push((host.into(), port, tls));
        match self.answers.pop_front().expect("a connect nobody scripted") {
            Answer::Refuse => Err(NetError::Connect),
            Answer::Hang => core::future::pending().await,
            Answer::Serve(data) => {
                let mut stream = self.stream(Vec::new(), 100, None);
                stream.serve = Some(data);
                Ok(stream)
            }
            Answer::Stream {
                reply,
                piece,
                stall_after,
            } => Ok(self.stream(reply, piece, stall_after)),
        }
    }
}

impl Net {
    pub(crate) fn stream(
        &mut self,
        reply: Vec<u8>,
        piece: usize,
        stall_after: Option<usize>,
    ) -> Stream {
        let mut requests = self.requests.borrow_mut();
        requests.push(Vec::new());
        Stream {
            reply: reply.into(),
            piece,
            stall_after,
            serve: None,
            consumed: 0,
            request: requests.len() - 1,
            requests: self.requests.clone(),
            read: self.read.clone(),
            clock: self.clock.clone(),
            ms_per_read: self.ms_per_read,
        }
    }
}

/// The update slot in memory. A write at an offset below the end (one cancelled before it
/// was acknowledged) overwrites from there.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) data: Vec<u8>,
    pub(crate) restarts: usize,
    /// Bytes handed over, rewrites included.
    pub(crate) received: usize,
    pub(crate) writes: usize,
    pub(crate) fail_at: Option<usize>,
    /// This write (counted from 1) writes half its bytes, then never completes.
    pub(crate) stall_write: Option<usize>,
    /// What [`Sink::finish`] answers.
    pub(crate) finish_error: Option<SinkError>,
    /// [`Sink::finish`] calls.
    pub(crate) finished: usize,
}

impl Sink for Slot {
    async fn restart(&mut self) -> Result<(), SinkError> {
        self.data.clear();
        self.restarts += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SinkError> {
        let offset = offset as usize;
        assert!(offset <= self.data.len(), "a gap at {offset}");
        self.writes += 1;
        if self.fail_at.is_some_and(|at| offset + data.len() > at) {
            return Err(SinkError::Write);
        }
        self.data.truncate(offset);
        if self.stall_write == Some(self.writes) {
            // Half written, then never acknowledged.
            self.stall_write = None;
            self.data.extend_from_slice(&data[..data.len() / 2]);
            core::future::pending::<()>().await;
        }
        self.data.extend_from_slice(data);
        self.received += data.len();
        Ok(())
    }
    async fn finish(&mut self) -> Result<(), SinkError> {
        self.finished += 1;
        self.finish_error.map_or(Ok(()), Err)
    }
}
