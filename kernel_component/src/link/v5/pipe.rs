//! The transport `rust-mqtt` is given: memory on both sides.
//!
//! `rust-mqtt` owns its transport once connected and reads and writes it in small pieces. The
//! MQTT 5 link keeps the real transport for itself and gives the client a [`Pipe`] instead:
//! - **reads** come from the one whole, already checked packet the link loaded ([`Feed`]);
//!   a read past its end fails ([`PipeError::PastPacket`]), so nothing the client does can
//!   reach the next packet. With nothing loaded a read stays pending: only `connect` waits like that
//!   (for CONNACK), and the link loads the packet and polls the client again.
//! - **writes** collect in the write buffer until `flush`; the link then hands everything
//!   flushed to the real transport in one write (see `link/writer.rs`). A packet over
//!   [`MAX_PACKET_LEN`] is refused before any of it is kept.
//!
//! The state is shared with the link through `Rc<RefCell<..>>` and only ever borrowed inside
//! synchronous code (never across an await).
//!
//! Written by hand: it is the glue between `rust-mqtt`'s transport trait and this link.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::ops::Range;
use core::task::Poll;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use crate::link::WipedBuf;
use crate::link::writer::MAX_PACKET_LEN;

/// One packet loaded for the client: `head`, then `buf[range]`.
///
/// `head` lets the link present a packet with a rewritten fixed header (a PUBLISH without its
/// payload) while the rest is read straight from the receive buffer it lent.
pub(super) struct Feed {
    buf: WipedBuf,
    head: [u8; 5],
    head_len: usize,
    range: Range<usize>,
    /// Bytes served so far.
    served: usize,
}

impl Feed {
    /// Serves `head` followed by `buf[range]`. `head` is at most 5 bytes (a fixed header).
    pub(super) fn new(buf: WipedBuf, head: &[u8], range: Range<usize>) -> Self {
        let mut array = [0; 5];
        let head_len = head.len().min(array.len());
        if let (Some(to), Some(from)) = (array.get_mut(..head_len), head.get(..head_len)) {
            to.copy_from_slice(from);
        }
        Self {
            buf,
            head: array,
            head_len,
            range,
            served: 0,
        }
    }

    /// Copies the next bytes into `out`; 0 once everything was served.
    fn read(&mut self, out: &mut [u8]) -> usize {
        if out.is_empty() {
            return 0;
        }
        let head = self.head.get(..self.head_len).unwrap_or_default();
        let rest = self.buf.get(self.range.clone()).unwrap_or_default();
        let next = match self.served.checked_sub(head.len()) {
            None => head.get(self.served..),
            Some(at) => rest.get(at..),
        }
        .unwrap_or_default();
        let n = next.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), next.get(..n)) {
            to.copy_from_slice(from);
        }
        self.served += n;
        n
    }
}

#[derive(Default)]
struct State {
    feed: Option<Feed>,
    /// The client read while nothing was loaded.
    starved: bool,
    /// Bytes written by the client; `out[..flushed]` are complete packets.
    out: Vec<u8>,
    flushed: usize,
    /// The packet being written went over the cap: its remaining writes and its flush fail.
    overflowed: bool,
}

/// What `rust-mqtt` wrote (its CONNECT with the password among it) is wiped with the pipe.
impl Drop for State {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.out);
    }
}

/// `rust-mqtt`'s transport (see the module docs). Clones share one state.
#[derive(Clone, Default)]
pub(super) struct Pipe(Rc<RefCell<State>>);

/// Error of a [`Pipe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PipeError {
    /// A written packet is larger than [`MAX_PACKET_LEN`].
    TooLarge,
    /// The client read past the end of the loaded packet: it misparsed it.
    PastPacket,
}

impl core::fmt::Display for PipeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "packet larger than the write buffer",
            Self::PastPacket => "read past the end of the packet",
        })
    }
}

impl core::error::Error for PipeError {}

impl embedded_io_async::Error for PipeError {
    fn kind(&self) -> ErrorKind {
        // Distinct kinds so the link reports `LinkError::TooLarge` and
        // `LinkError::Protocol`, not a network failure.
        match self {
            Self::TooLarge => ErrorKind::OutOfMemory,
            Self::PastPacket => ErrorKind::InvalidData,
        }
    }
}

impl Pipe {
    /// A pipe whose write buffer holds one packet of [`MAX_PACKET_LEN`] bytes, allocated now
    /// so the link's memory does not depend on the traffic.
    pub(super) fn new() -> Self {
        let pipe = Self::default();
        pipe.0.borrow_mut().out = Vec::with_capacity(MAX_PACKET_LEN);
        pipe
    }

    /// Loads the packet the client reads next.
    pub(super) fn load(&self, feed: Feed) {
        let mut state = self.0.borrow_mut();
        state.feed = Some(feed);
        state.starved = false;
    }

    /// Takes the loaded packet's buffer back.
    pub(super) fn unload(&self) -> Option<WipedBuf> {
        self.0.borrow_mut().feed.take().map(|feed| feed.buf)
    }

    /// Whether the client is waiting for input (and clears the mark).
    pub(super) fn take_starved(&self) -> bool {
        core::mem::take(&mut self.0.borrow_mut().starved)
    }

    /// Marks everything written as complete (`rust-mqtt`'s `abort` writes its DISCONNECT
    /// without flushing).
    pub(super) fn flush_all(&self) {
        let mut state = self.0.borrow_mut();
        state.flushed = state.out.len();
    }

    /// Takes the complete packets written so far, to write them to the transport; give the
    /// buffer back with [`Pipe::give_back`] to keep its allocation.
    pub(super) fn take_flushed(&self) -> Vec<u8> {
        let mut state = self.0.borrow_mut();
        let flushed = core::mem::take(&mut state.flushed).min(state.out.len());
        if flushed == 0 {
            return Vec::new();
        }
        // Whatever follows the flushed bytes (nothing, in practice) stays for the next flush.
        let rest = state.out.split_off(flushed);
        core::mem::replace(&mut state.out, rest)
    }

    /// Returns a buffer from [`Pipe::take_flushed`], emptied, when it is the bigger one.
    pub(super) fn give_back(&self, mut buf: Vec<u8>) {
        let mut state = self.0.borrow_mut();
        if state.out.is_empty() && buf.capacity() > state.out.capacity() {
            buf.clear();
            state.out = buf;
        }
    }
}

impl ErrorType for Pipe {
    type Error = PipeError;
}

impl Read for Pipe {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, PipeError> {
        // No waker is registered: the only thing that ends the wait is the link loading a
        // packet, after which it polls the client again itself.
        poll_fn(|_| {
            let mut state = self.0.borrow_mut();
            match state.feed.as_mut() {
                Some(feed) => Poll::Ready(match feed.read(out) {
                    0 if !out.is_empty() => Err(PipeError::PastPacket),
                    n => Ok(n),
                }),
                None => {
                    state.starved = true;
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Write for Pipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.0.borrow_mut();
        let flushed = state.flushed.min(state.out.len());
        if state.overflowed || state.out.len() - flushed + buf.len() > MAX_PACKET_LEN {
            // Drop the partial packet so the next one starts clean; remember the overflow so
            // the rest of this packet's writes fail too instead of producing a torn packet.
            state.out.truncate(flushed);
            state.overflowed = true;
            return Err(PipeError::TooLarge);
        }
        state.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), PipeError> {
        let mut state = self.0.borrow_mut();
        if core::mem::take(&mut state.overflowed) {
            return Err(PipeError::TooLarge);
        }
        state.flushed = state.out.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use embassy_futures::poll_once;
    use futures_executor::block_on;

    use super::*;

    #[test]
    fn feed_serves_head_then_range_then_end_of_stream() {
        let mut pipe = Pipe::new();
        let mut buf = WipedBuf::new(5);
        buf.copy_from_slice(&[1, 2, 3, 4, 5]);
        pipe.load(Feed::new(buf, &[9, 8], 1..4));
        block_on(async {
            let mut one = [0u8; 1];
            assert_eq!(pipe.read(&mut one).await, Ok(1));
            assert_eq!(one, [9]);
            let mut many = [0u8; 8];
            assert_eq!(pipe.read(&mut many).await, Ok(1));
            assert_eq!(many[0], 8);
            assert_eq!(pipe.read(&mut many).await, Ok(3));
            assert_eq!(&many[..3], &[2, 3, 4]);
            assert_eq!(pipe.read(&mut []).await, Ok(0));
            assert_eq!(
                pipe.read(&mut many).await,
                Err(PipeError::PastPacket),
                "never past the packet"
            );
        });
        assert_eq!(pipe.unload().as_deref(), Some(&[1u8, 2, 3, 4, 5][..]));
    }

    #[test]
    fn read_with_nothing_loaded_waits_and_says_so() {
        let mut pipe = Pipe::new();
        let mut buf = [0u8; 4];
        assert!(poll_once(pipe.read(&mut buf)).is_pending());
        assert!(pipe.take_starved());
        assert!(!pipe.take_starved());
    }

    #[test]
    fn writes_collect_until_flush_and_leave_together() {
        let mut pipe = Pipe::new();
        block_on(async {
            for part in [&[0x30u8][..], &[0x05], &[0x00, 0x01], b"a", b"hi"] {
                assert_eq!(pipe.write(part).await, Ok(part.len()));
            }
            assert!(pipe.take_flushed().is_empty(), "nothing before flush");
            pipe.flush().await.unwrap();
            pipe.write_all(&[0xC0]).await.unwrap();
            assert_eq!(
                pipe.take_flushed(),
                [0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i'],
                "the unflushed byte stays"
            );
            pipe.flush().await.unwrap();
            assert_eq!(pipe.take_flushed(), [0xC0]);
        });
    }

    #[test]
    fn oversized_packet_is_refused_and_the_next_is_unaffected() {
        let mut pipe = Pipe::new();
        block_on(async {
            pipe.write_all(&[1, 2, 3]).await.unwrap();
            let big = vec![0u8; MAX_PACKET_LEN];
            assert_eq!(pipe.write(&big).await, Err(PipeError::TooLarge));
            assert_eq!(pipe.write(&[6]).await, Err(PipeError::TooLarge));
            assert_eq!(pipe.flush().await, Err(PipeError::TooLarge));
            assert!(pipe.take_flushed().is_empty());
            pipe.write_all(&[7, 8]).await.unwrap();
            pipe.flush().await.unwrap();
            assert_eq!(pipe.take_flushed(), [7, 8]);
        });
        assert_eq!(
            embedded_io_async::Error::kind(&PipeError::TooLarge),
            ErrorKind::OutOfMemory
        );
        assert_eq!(
            embedded_io_async::Error::kind(&PipeError::PastPacket),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn the_write_buffer_is_allocated_once() {
        let mut pipe = Pipe::new();
        block_on(async {
            pipe.write_all(&[0xC0, 0x00]).await.unwrap();
            pipe.flush().await.unwrap();
            let first = pipe.take_flushed();
            assert!(first.capacity() >= MAX_PACKET_LEN);
            let at = first.as_ptr();
            pipe.give_back(first);
            pipe.write_all(&[0xC0, 0x00]).await.unwrap();
            pipe.flush().await.unwrap();
            let second = pipe.take_flushed();
            assert_eq!(second.as_ptr(), at, "same allocation");
        });
    }
}
