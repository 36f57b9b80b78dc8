//! One transport write per MQTT packet.
//!
//! `rust-mqtt` writes a packet as many small `write` calls (fixed header, each property, topic,
//! payload: 7-9 calls per PUBLISH) and then calls `flush`. On the nRF9160 every transport write
//! is an IPC call into the modem and possibly its own radio segment, so [`PacketWriter`] keeps
//! everything written since the last flush in memory and hands it to the transport as ONE
//! `write_all` followed by the transport's own `flush`. Reads pass straight through.
//!
//! Written by hand: no crate provides an `embedded_io_async` buffered writer with flush-as-packet
//! boundary semantics and a hard size cap.

use alloc::vec::Vec;
use core::fmt;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// Largest MQTT packet either link sends or accepts, fixed header included.
///
/// The platform's payload limit for apps is [`aliot_abi::MAX_PAYLOAD_LEN`] (4 KiB) and topics
/// are at most 128 bytes; 8 KiB leaves room for MQTT 5 properties and anything the platform
/// adds, while keeping every buffer bounded on a 256 KiB-RAM device.
pub const MAX_PACKET_LEN: usize = 8 * 1024;

const _: () = assert!(MAX_PACKET_LEN >= aliot_abi::MAX_PAYLOAD_LEN + 512);

/// Error of a [`PacketWriter`]: the transport's own error, or a packet over the size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketWriterError<E> {
    /// The wrapped transport failed.
    Io(E),
    /// More than the cap was written before a flush; the partial packet was discarded and
    /// nothing of it reached the transport.
    TooLarge,
}

impl<E: fmt::Debug> fmt::Display for PacketWriterError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "transport error: {e:?}"),
            Self::TooLarge => f.write_str("packet larger than the write buffer"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for PacketWriterError<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for PacketWriterError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(e) => e.kind(),
            // Distinct kind so a link above can report `LinkError::TooLarge` rather than a
            // network failure.
            Self::TooLarge => ErrorKind::OutOfMemory,
        }
    }
}

/// Buffers every `write` until `flush`, then writes the whole packet with one `write_all` and
/// flushes the transport. Reads pass through unchanged.
pub struct PacketWriter<T> {
    inner: T,
    pending: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl<T> PacketWriter<T> {
    /// Wraps `inner` with the default cap of [`MAX_PACKET_LEN`] bytes per packet.
    pub fn new(inner: T) -> Self {
        Self::with_capacity(inner, MAX_PACKET_LEN)
    }

    /// Wraps `inner`; a packet longer than `cap` bytes fails with
    /// [`PacketWriterError::TooLarge`] instead of growing the buffer.
    pub fn with_capacity(inner: T, cap: usize) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    /// The wrapped transport (e.g. to inspect it in tests).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the transport. Bytes written but not flushed are dropped.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Bytes written since the last flush.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

impl<T: ErrorType> ErrorType for PacketWriter<T> {
    type Error = PacketWriterError<T::Error>;
}

impl<T: Read> Read for PacketWriter<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf).await.map_err(PacketWriterError::Io)
    }
}

impl<T: Write> Write for PacketWriter<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.overflowed || self.pending.len() + buf.len() > self.cap {
            // Drop the partial packet so the next one starts clean; remember the overflow so
            // the rest of this packet's writes fail too instead of producing a torn packet.
            self.pending.clear();
            self.overflowed = true;
            return Err(PacketWriterError::TooLarge);
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        if self.overflowed {
            self.overflowed = false;
            return Err(PacketWriterError::TooLarge);
        }
        if !self.pending.is_empty() {
            let result = self.inner.write_all(&self.pending).await;
            // Keep the allocation for the next packet, but never resend a packet: after a
            // failed write the connection is dead anyway.
            self.pending.clear();
            result.map_err(PacketWriterError::Io)?;
        }
        self.inner.flush().await.map_err(PacketWriterError::Io)
    }
}

/// In-memory transport for the link tests: plays the server's side from a script.
#[cfg(test)]
pub(crate) mod fake {
    use alloc::collections::VecDeque;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use core::future::poll_fn;
    use core::task::Poll;

    use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

    #[derive(Default)]
    struct State {
        to_client: VecDeque<u8>,
        from_client: Vec<u8>,
        write_calls: usize,
        flush_calls: usize,
        closed: bool,
        pend_when_empty: bool,
        read_chunk: Option<usize>,
    }

    /// A cloneable handle: the link owns one clone, the test keeps another.
    #[derive(Clone, Default)]
    pub(crate) struct FakeTransport(Rc<RefCell<State>>);

    impl FakeTransport {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        /// Queue bytes the "server" sends.
        pub(crate) fn push(&self, bytes: &[u8]) {
            self.0.borrow_mut().to_client.extend(bytes.iter().copied());
        }

        /// Everything the client wrote so far; clears the record.
        pub(crate) fn take_written(&self) -> Vec<u8> {
            core::mem::take(&mut self.0.borrow_mut().from_client)
        }

        pub(crate) fn write_calls(&self) -> usize {
            self.0.borrow().write_calls
        }

        pub(crate) fn flush_calls(&self) -> usize {
            self.0.borrow().flush_calls
        }

        /// The server closes: reads return 0 once the queue is drained.
        pub(crate) fn close(&self) {
            self.0.borrow_mut().closed = true;
        }

        /// When the queue is empty and the peer is open, `read` stays pending (for
        /// cancellation tests driven with `poll_once`). Otherwise it panics, so a test that
        /// forgot to script a reply fails instead of hanging.
        pub(crate) fn pend_when_empty(&self, on: bool) {
            self.0.borrow_mut().pend_when_empty = on;
        }

        /// Deliver at most `n` bytes per `read` call.
        pub(crate) fn read_chunk(&self, n: usize) {
            self.0.borrow_mut().read_chunk = Some(n);
        }
    }

    impl ErrorType for FakeTransport {
        type Error = ErrorKind;
    }

    impl Read for FakeTransport {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            poll_fn(|_| {
                let mut s = self.0.borrow_mut();
                if s.to_client.is_empty() {
                    if s.closed {
                        return Poll::Ready(Ok(0));
                    }
                    assert!(s.pend_when_empty, "fake server: script exhausted");
                    return Poll::Pending;
                }
                let mut n = buf.len().min(s.to_client.len());
                if let Some(chunk) = s.read_chunk {
                    n = n.min(chunk);
                }
                for b in buf.iter_mut().take(n) {
                    *b = s.to_client.pop_front().unwrap_or_default();
                }
                Poll::Ready(Ok(n))
            })
            .await
        }
    }

    impl Write for FakeTransport {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            let mut s = self.0.borrow_mut();
            if s.closed {
                return Err(ErrorKind::BrokenPipe);
            }
            s.write_calls += 1;
            s.from_client.extend_from_slice(buf);
            Ok(buf.len())
        }

        async fn flush(&mut self) -> Result<(), ErrorKind> {
            self.0.borrow_mut().flush_calls += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeTransport;
    use super::*;
    use futures_executor::block_on;

    #[test]
    fn many_writes_become_one_transport_write_per_flush() {
        block_on(async {
            let fake = FakeTransport::new();
            let mut w = PacketWriter::new(fake.clone());
            for part in [&[0x30u8][..], &[0x05], &[0x00, 0x01], b"a", b"hi"] {
                assert_eq!(w.write(part).await, Ok(part.len()));
            }
            assert_eq!(
                fake.write_calls(),
                0,
                "nothing may reach the transport before flush"
            );
            w.flush().await.unwrap();
            assert_eq!(fake.write_calls(), 1);
            assert_eq!(fake.flush_calls(), 1);
            assert_eq!(
                fake.take_written(),
                [0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i']
            );

            w.write_all(&[0xC0, 0x00]).await.unwrap();
            w.flush().await.unwrap();
            assert_eq!(fake.write_calls(), 2);
            assert_eq!(fake.take_written(), [0xC0, 0x00]);
        });
    }

    #[test]
    fn flush_without_data_writes_nothing() {
        block_on(async {
            let fake = FakeTransport::new();
            let mut w = PacketWriter::new(fake.clone());
            w.flush().await.unwrap();
            assert_eq!(fake.write_calls(), 0);
            assert_eq!(fake.flush_calls(), 1);
        });
    }

    #[test]
    fn oversized_packet_is_refused_and_never_reaches_the_wire() {
        block_on(async {
            let fake = FakeTransport::new();
            let mut w = PacketWriter::with_capacity(fake.clone(), 4);
            w.write_all(&[1, 2, 3]).await.unwrap();
            assert_eq!(w.write(&[4, 5]).await, Err(PacketWriterError::TooLarge));
            assert_eq!(w.write(&[6]).await, Err(PacketWriterError::TooLarge));
            assert_eq!(w.flush().await, Err(PacketWriterError::TooLarge));
            assert_eq!(fake.write_calls(), 0);
            // The next packet is unaffected.
            w.write_all(&[7, 8]).await.unwrap();
            w.flush().await.unwrap();
            assert_eq!(fake.take_written(), [7, 8]);
            assert_eq!(
                embedded_io_async::Error::kind(&PacketWriterError::<ErrorKind>::TooLarge),
                ErrorKind::OutOfMemory
            );
        });
    }

    #[test]
    fn reads_pass_through() {
        block_on(async {
            let fake = FakeTransport::new();
            fake.push(&[9, 8, 7]);
            fake.close();
            let mut w = PacketWriter::new(fake.clone());
            let mut buf = [0u8; 8];
            assert_eq!(w.read(&mut buf).await, Ok(3));
            assert_eq!(&buf[..3], &[9, 8, 7]);
            assert_eq!(w.read(&mut buf).await, Ok(0));
        });
    }
}
