//! One transport write per MQTT packet, and the packet size both links are built around.
//!
//! On the nRF9160 every transport write is an IPC call into the modem and possibly its own
//! radio segment. Both links therefore assemble each packet in memory first (3.1.1: its codec
//! encodes into a fixed buffer; 5: `rust-mqtt` writes into the link's write buffer, see
//! `link/v5/pipe.rs`) and hand it to the transport with `write_packet`: one `write_all`,
//! then the transport's own `flush`.

use embedded_io_async::Write;

use super::LinkError;

/// Largest MQTT packet either link sends or accepts, fixed header included.
///
/// The platform's payload limit for apps is [`aliot_abi::MAX_PAYLOAD_LEN`] (4 KiB) and topics
/// are at most 128 bytes; 8 KiB leaves room for MQTT 5 properties and anything the platform
/// adds, while keeping every buffer bounded on a 256 KiB-RAM device.
pub const MAX_PACKET_LEN: usize = 8 * 1024;

const _: () = assert!(MAX_PACKET_LEN >= aliot_abi::MAX_PAYLOAD_LEN + 512);

/// Writes one whole packet with one `write_all`, then flushes the transport.
pub(crate) async fn write_packet<T: Write>(io: &mut T, packet: &[u8]) -> Result<(), LinkError> {
    io.write_all(packet).await.map_err(|_| LinkError::Network)?;
    io.flush().await.map_err(|_| LinkError::Network)
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
        read_calls: usize,
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

        /// `read` calls that returned data or end of stream (not the ones left pending).
        pub(crate) fn read_calls(&self) -> usize {
            self.0.borrow().read_calls
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
                        s.read_calls += 1;
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
                s.read_calls += 1;
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
    use futures_executor::block_on;

    use super::fake::FakeTransport;
    use super::*;

    #[test]
    fn a_packet_is_one_write_and_one_flush() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        block_on(write_packet(&mut io, &[0x30, 0x03, 0x00, 0x01, b't'])).unwrap();
        assert_eq!(fake.write_calls(), 1);
        assert_eq!(fake.flush_calls(), 1);
        assert_eq!(fake.take_written(), [0x30, 0x03, 0x00, 0x01, b't']);
        fake.close();
        assert_eq!(
            block_on(write_packet(&mut io, &[0xC0, 0x00])),
            Err(LinkError::Network)
        );
    }
}
