//! Whole MQTT packets from the transport into one fixed buffer, for both links.
//!
//! [`PacketReader::ready`] reads into a buffer of [`MAX_PACKET_LEN`] bytes, as many bytes per
//! transport `read` as the transport has (on the modem each read is an IPC call, so never one
//! per byte), until the fixed header and the whole remaining length are buffered. Only then
//! does a decoder see the packet, so no decoder can wait halfway through a packet or read past
//! its end into the next one.
//!
//! - **Cancel-safe.** The only await is the transport's `read`, and what it returned is in the
//!   buffer before anything else happens; a dropped `ready` loses nothing.
//! - **Lent until the next `ready`.** A packet stays at the start of the buffer after
//!   [`PacketReader::consume`] until the next [`PacketReader::ready`], so a link can hand its
//!   topic and payload out as borrowed slices.
//! - **Oversized PUBLISH skipped.** A PUBLISH announcing more than the buffer holds is read and
//!   discarded as it arrives, never buffered; its QoS and packet identifier are picked out on
//!   the way so the link can acknowledge it ([`Frame::Dropped`]). Any other packet type that
//!   large is [`LinkError::TooLarge`] as soon as its fixed header is seen.
//!
//! Written by hand: the framing is a dozen lines, and neither codec offers a reader that is
//! cancel-safe, bounded and skips oversized packets.

use embedded_io_async::Read;

use super::LinkError;
use super::writer::MAX_PACKET_LEN;
use crate::link::WipedBuf;

/// What [`PacketReader::ready`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole packet of this many bytes (fixed header included) starts the buffer.
    Packet(usize),
    /// A PUBLISH larger than the buffer was read and discarded.
    Dropped(Dropped),
}

/// An oversized PUBLISH that was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Its QoS bits (0..=2; 3 is malformed and not acknowledged).
    pub(crate) qos: u8,
    /// Its packet identifier, when its QoS has one (and it is not 0, which is malformed).
    pub(crate) pid: Option<u16>,
    /// Its length on the wire.
    pub(crate) len: usize,
}

/// A fixed header at the start of a buffer.
enum Head {
    /// More bytes needed.
    Partial,
    /// `header_len` bytes of header announcing a packet of `total` bytes.
    Whole {
        first: u8,
        header_len: usize,
        total: usize,
    },
}

/// Parses the fixed header at the start of `buf`; `accept` vets the packet type and flags.
fn head(buf: &[u8], accept: fn(u8) -> bool) -> Result<Head, LinkError> {
    let Some(&first) = buf.first() else {
        return Ok(Head::Partial);
    };
    if !accept(first) {
        return Err(LinkError::Protocol);
    }
    let mut remaining: usize = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(Head::Partial);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let header_len = 2 + i;
            return Ok(Head::Whole {
                first,
                header_len,
                total: header_len + remaining,
            });
        }
    }
    // A fifth length byte is malformed [MQTT-1.5.5].
    Err(LinkError::Protocol)
}

/// An oversized PUBLISH being discarded.
#[derive(Debug)]
struct Skip {
    first: u8,
    header_len: usize,
    total: usize,
    /// Bytes of the packet discarded so far.
    seen: usize,
    /// Topic length field, then packet identifier, as they stream past.
    topic_len: [u8; 2],
    pid: [u8; 2],
}

impl Skip {
    fn qos(&self) -> u8 {
        (self.first >> 1) & 0b11
    }

    /// Bytes of the packet not discarded yet.
    fn left(&self) -> usize {
        self.total.saturating_sub(self.seen)
    }

    /// Discards `chunk`, the next bytes of the packet, keeping the fields it needs.
    fn observe(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            let at = self.seen;
            self.seen += 1;
            let Some(body_at) = at.checked_sub(self.header_len) else {
                continue;
            };
            let topic_len = usize::from(u16::from_be_bytes(self.topic_len));
            match body_at {
                0 => self.topic_len[0] = byte,
                1 => self.topic_len[1] = byte,
                n if n == 2 + topic_len => self.pid[0] = byte,
                n if n == 3 + topic_len => self.pid[1] = byte,
                _ => {}
            }
        }
    }

    fn finish(&self) -> Dropped {
        let qos = self.qos();
        let topic_len = usize::from(u16::from_be_bytes(self.topic_len));
        let has_pid = matches!(qos, 1 | 2) && self.total >= self.header_len + 4 + topic_len;
        Dropped {
            qos,
            pid: Some(u16::from_be_bytes(self.pid)).filter(|pid| has_pid && *pid != 0),
            len: self.total,
        }
    }
}

/// Reads whole packets into a buffer of [`MAX_PACKET_LEN`] bytes (see the module docs).
pub(crate) struct PacketReader {
    buf: WipedBuf,
    /// `buf[..filled]` holds bytes read and not yet dropped.
    filled: usize,
    /// The frame [`PacketReader::ready`] found, until [`PacketReader::consume`].
    current: Option<Frame>,
    /// Bytes of a consumed packet still at the start of `buf`, dropped by the next `ready`.
    consumed: usize,
    skip: Option<Skip>,
    /// Packet types and flags this protocol version lets a server send.
    accept: fn(u8) -> bool,
    oversized: u32,
}

impl PacketReader {
    /// A reader for a protocol version whose server packets `accept` recognises from their
    /// first byte (anything else is [`LinkError::Protocol`] as soon as it arrives).
    pub(crate) fn new(accept: fn(u8) -> bool) -> Self {
        Self {
            buf: WipedBuf::new(MAX_PACKET_LEN),
            filled: 0,
            current: None,
            consumed: 0,
            skip: None,
            accept,
            oversized: 0,
        }
    }

    /// Oversized PUBLISH packets skipped so far.
    pub(crate) fn oversized_dropped(&self) -> u32 {
        self.oversized
    }

    /// Bytes of a packet that [`PacketReader::ready`] has not announced yet are buffered, or an
    /// oversized PUBLISH is being skipped: the rest of a packet is awaited. (Bytes of a whole
    /// packet that follow a consumed one count too until the next `ready` finds them.)
    pub(crate) fn partial(&self) -> bool {
        self.current.is_none() && (self.skip.is_some() || self.filled > self.consumed)
    }

    /// Reads until a whole packet is buffered or an oversized PUBLISH has been skipped; returns
    /// the same frame again until [`PacketReader::consume`]. Cancel-safe.
    pub(crate) async fn ready<T: Read>(&mut self, io: &mut T) -> Result<Frame, LinkError> {
        loop {
            if let Some(frame) = self.current {
                return Ok(frame);
            }
            let consumed = core::mem::take(&mut self.consumed);
            self.drop_front(consumed);
            if let Some(mut skip) = self.skip.take() {
                let take = self.filled.min(skip.left());
                skip.observe(self.buf.get(..take).unwrap_or_default());
                self.drop_front(take);
                if skip.left() > 0 {
                    self.skip = Some(skip);
                } else {
                    let dropped = skip.finish();
                    self.oversized = self.oversized.saturating_add(1);
                    log_warn!(
                        "dropped a {}-byte PUBLISH (QoS {}): larger than the {}-byte receive buffer",
                        dropped.len,
                        dropped.qos,
                        MAX_PACKET_LEN
                    );
                    self.current = Some(Frame::Dropped(dropped));
                    continue;
                }
            } else if let Head::Whole {
                first,
                header_len,
                total,
            } = head(self.buf.get(..self.filled).unwrap_or_default(), self.accept)?
            {
                if total <= self.buf.len() {
                    if self.filled >= total {
                        self.current = Some(Frame::Packet(total));
                        continue;
                    }
                } else if first >> 4 == 3 {
                    self.skip = Some(Skip {
                        first,
                        header_len,
                        total,
                        seen: 0,
                        topic_len: [0; 2],
                        pid: [0; 2],
                    });
                    continue;
                } else {
                    log_warn!(
                        "a packet of type {} announces {} bytes, over the {}-byte receive buffer",
                        first >> 4,
                        total,
                        MAX_PACKET_LEN
                    );
                    return Err(LinkError::TooLarge);
                }
            }
            self.read_more(io).await?;
        }
    }

    /// The current frame is dealt with. A packet's bytes stay readable with
    /// [`PacketReader::bytes`] until the next [`PacketReader::ready`].
    pub(crate) fn consume(&mut self) {
        if let Some(Frame::Packet(len)) = self.current.take() {
            self.consumed = len;
        }
    }

    /// The first `len` buffered bytes (a packet [`Frame::Packet`] announced); empty if the
    /// buffer is lent out.
    pub(crate) fn bytes(&self, len: usize) -> &[u8] {
        self.buf.get(..len).unwrap_or_default()
    }

    /// Lends the buffer (for the MQTT 5 link to feed `rust-mqtt` from it without a copy);
    /// nothing may be read until [`PacketReader::restore`].
    pub(crate) fn lend(&mut self) -> WipedBuf {
        core::mem::take(&mut self.buf)
    }

    /// Takes back the buffer [`PacketReader::lend`] handed out.
    pub(crate) fn restore(&mut self, buf: WipedBuf) {
        self.buf = buf;
    }

    fn drop_front(&mut self, len: usize) {
        let len = len.min(self.filled);
        if len > 0 {
            self.buf.copy_within(len..self.filled, 0);
            self.filled -= len;
        }
    }

    async fn read_more<T: Read>(&mut self, io: &mut T) -> Result<(), LinkError> {
        // Room is always left: a packet that fits is complete before the buffer is full, and a
        // skipped one is drained from the buffer before each read.
        let free = self
            .buf
            .get_mut(self.filled..)
            .filter(|free| !free.is_empty())
            .ok_or(LinkError::TooLarge)?;
        let room = free.len();
        let n = io.read(free).await.map_err(|_| LinkError::Network)?;
        if n == 0 {
            return Err(LinkError::Network);
        }
        // `min` keeps the count sane even if a transport over-reports.
        self.filled += n.min(room);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;
    use core::task::Poll;

    use embassy_futures::poll_once;
    use futures_executor::block_on;

    use super::*;
    use crate::link::writer::fake::FakeTransport;

    fn any(first: u8) -> bool {
        first >> 4 != 0
    }

    /// A packet of `first` with a `body` of the given bytes, length encoded by hand.
    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let mut len = body.len();
        loop {
            let mut byte = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }

    /// A PUBLISH body: topic, optional pid, then `payload_len` bytes of 0xAB.
    fn publish_body(topic: &str, pid: Option<u16>, payload_len: usize) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        if let Some(pid) = pid {
            body.extend_from_slice(&pid.to_be_bytes());
        }
        body.resize(body.len() + payload_len, 0xAB);
        body
    }

    #[test]
    fn a_packet_in_one_read_takes_one_read() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        let bytes = packet(0x30, &publish_body("a/b", None, 1000));
        fake.push(&bytes);
        assert_eq!(
            block_on(reader.ready(&mut io)),
            Ok(Frame::Packet(bytes.len()))
        );
        assert_eq!(fake.read_calls(), 1);
        assert_eq!(reader.bytes(bytes.len()), &bytes[..]);
    }

    #[test]
    fn back_to_back_packets_stay_until_consumed() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        let mut bytes = vec![0xD0, 0x00];
        bytes.extend(packet(0x30, &publish_body("t", None, 2)));
        fake.push(&bytes);
        block_on(async {
            assert_eq!(reader.ready(&mut io).await, Ok(Frame::Packet(2)));
            // Not consumed: the same packet again, no read.
            assert_eq!(reader.ready(&mut io).await, Ok(Frame::Packet(2)));
            reader.consume();
            // Still readable until the next `ready`.
            assert_eq!(reader.bytes(2), [0xD0, 0x00]);
            assert_eq!(reader.ready(&mut io).await, Ok(Frame::Packet(7)));
            assert_eq!(reader.bytes(7), &bytes[2..]);
        });
        assert_eq!(fake.read_calls(), 1);
    }

    #[test]
    fn oversized_publish_is_skipped_and_the_next_packet_is_read() {
        for (first, pid, topic_len) in [
            (0x30u8, None, 3usize),
            (0x32, Some(0x0102u16), 3),
            (0x34, Some(0x0A0B), 300),
        ] {
            let fake = FakeTransport::new();
            let mut io = fake.clone();
            let mut reader = PacketReader::new(any);
            let topic = "t".repeat(topic_len);
            let big = packet(first, &publish_body(&topic, pid, MAX_PACKET_LEN));
            fake.push(&big);
            fake.push(&[0xD0, 0x00]);
            // Small reads, so the skip spans many of them.
            fake.read_chunk(1000);
            block_on(async {
                assert_eq!(
                    reader.ready(&mut io).await,
                    Ok(Frame::Dropped(Dropped {
                        qos: (first >> 1) & 3,
                        pid,
                        len: big.len(),
                    }))
                );
                reader.consume();
                assert_eq!(reader.ready(&mut io).await, Ok(Frame::Packet(2)));
                assert_eq!(reader.bytes(2), [0xD0, 0x00]);
            });
            assert_eq!(reader.oversized_dropped(), 1);
        }
    }

    #[test]
    fn skipping_survives_cancellation() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        let big = packet(0x32, &publish_body("a", Some(7), MAX_PACKET_LEN));
        fake.pend_when_empty(true);
        let (head, tail) = big.split_at(4000);
        fake.push(head);
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        fake.push(tail);
        fake.push(&[0xD0, 0x00]);
        assert_eq!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Ok(Frame::Dropped(Dropped {
                qos: 1,
                pid: Some(7),
                len: big.len()
            })))
        );
    }

    #[test]
    fn oversized_non_publish_is_too_large_from_its_header() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        // SUBACK announcing 9000 bytes (varint A8 46); no body is ever sent.
        fake.push(&[0x90, 0xA8, 0x46]);
        fake.pend_when_empty(true);
        assert_eq!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Err(LinkError::TooLarge))
        );
    }

    #[test]
    fn refused_type_and_overlong_length_are_protocol_errors() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        fake.push(&[0x00]);
        fake.pend_when_empty(true);
        assert_eq!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Err(LinkError::Protocol))
        );
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        fake.push(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        assert_eq!(block_on(reader.ready(&mut io)), Err(LinkError::Protocol));
    }

    #[test]
    fn partial_is_set_from_the_first_byte_until_the_packet_is_whole() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        fake.pend_when_empty(true);
        assert!(!reader.partial(), "nothing buffered");
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        assert!(!reader.partial(), "nothing arrived");
        let bytes = packet(0x30, &publish_body("a/b", None, 10));
        fake.push(&bytes[..1]);
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        assert!(reader.partial(), "one byte of a packet");
        fake.push(&bytes[1..bytes.len() - 1]);
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        assert!(reader.partial(), "all but the last byte");
        // The last byte, and the first byte of the next packet.
        fake.push(&bytes[bytes.len() - 1..]);
        fake.push(&[0xD0]);
        assert_eq!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Ok(Frame::Packet(bytes.len())))
        );
        assert!(!reader.partial(), "a whole packet is announced");
        reader.consume();
        assert!(reader.partial(), "the next packet has begun");
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        fake.push(&[0x00]);
        assert_eq!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Ok(Frame::Packet(2)))
        );
        reader.consume();
        assert!(!reader.partial(), "consumed, nothing after it");
    }

    #[test]
    fn skipping_an_oversized_publish_is_partial_until_its_end() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        let big = packet(0x30, &publish_body("a", None, MAX_PACKET_LEN));
        fake.pend_when_empty(true);
        fake.push(&big[..4000]);
        assert!(poll_once(reader.ready(&mut io)).is_pending());
        assert!(reader.partial());
        fake.push(&big[4000..]);
        assert!(matches!(
            poll_once(reader.ready(&mut io)),
            Poll::Ready(Ok(Frame::Dropped(_)))
        ));
        assert!(!reader.partial());
    }

    #[test]
    fn truncated_stream_is_a_network_error() {
        let fake = FakeTransport::new();
        let mut io = fake.clone();
        let mut reader = PacketReader::new(any);
        fake.push(&[0x30, 0x05, 0x00]);
        fake.close();
        assert_eq!(block_on(reader.ready(&mut io)), Err(LinkError::Network));
    }
}
