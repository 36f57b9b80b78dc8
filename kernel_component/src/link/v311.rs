//! MQTT 3.1.1 link: our own client-side packet codec under our own read/write loop.
//!
//! `rust-mqtt` speaks only MQTT 5, and Alibaba's older instances speak only 3.1.1, so this link
//! drives a sans-IO codec itself:
//! - every outgoing packet is encoded into a fixed buffer (`v311/encode.rs`) and leaves in ONE
//!   `write_all`;
//! - incoming packets are read whole into a fixed buffer (`link/reader.rs`) and decoded from
//!   it (`v311/decode.rs`);
//! - [`Incoming::Publish`] borrows topic and payload from that buffer.
//!
//! The codec is written by hand, not taken from `mqttrs` (issue 11: our code in 128 KiB of
//! flash): `mqttrs` took 3.1 KB, much of it for packets a client never receives, and it
//! indexes its input without bounds checks, so it needed a shape check before it to not panic
//! on a truncated packet. Ours handles only what a client sends and receives, checks every
//! index, and calls anything else a protocol error; the DK's builds lost 7.4 to 7.9 KB with
//! `mqttrs` (its strings and panic locations too; `boards/image/src/nrf9160.rs`).
//!
//! The kernel's packet identifiers go on the wire unchanged. Acknowledgements are reported only
//! for identifiers this connection has outstanding, as the MQTT 5 link does (see
//! `link/pids.rs`).
//!
//! Incoming QoS 1 is acknowledged only by [`MqttLink::acknowledge`]. [`MqttLink::send`] never
//! answers [`Sent::Busy`]: MQTT 3.1.1 has no Receive Maximum, and this link keeps no in-flight
//! table that could fill up; the kernel's outbox is the only bound on what is in flight.
//!
//! Incoming QoS 2 (never offered by Alibaba, and never granted since we subscribe at QoS <= 1) is
//! handled with QoS 1 *delivery* semantics but a correct QoS 2 exchange on the wire: PUBREC is
//! written and the message is returned at once as [`Qos::AtLeastOnce`] without a `pid` (it may
//! be delivered again if the server resends it); an incoming PUBREL is answered with PUBCOMP.
//!
//! A PUBLISH larger than the receive buffer is skipped (see [`crate::link`]); one of QoS 1 is
//! answered with PUBACK, one of QoS 2 with PUBREC.

use aliot_abi::Qos;
use embedded_io_async::{Read, Write};

use self::decode::{PubQos, SUBACK_FAILURE};
use self::encode::{Ack, Packet};
use super::pids::{PidKind, PidMap};
use super::reader::{Dropped, Frame, PacketReader};
use super::writer::{MAX_PACKET_LEN, write_packet};
use super::{ConnectParams, Incoming, LinkError, MqttLink, Outgoing, Refusal, Sent};
use crate::link::WipedBuf;

mod decode;
mod encode;

/// Longest filter the link subscribes or unsubscribes: the bound it always had (`mqttrs` held
/// filters in 256-byte strings). The kernel's own filters are at most
/// [`aliot_abi::MAX_TOPIC_LEN`].
const MAX_FILTER_LEN: usize = 256;

/// One MQTT 3.1.1 connection over transport `T` (TCP or TLS stream).
pub struct V311Link<T> {
    io: T,
    /// Encode buffer: one outgoing packet.
    tx: WipedBuf,
    /// Whole incoming packets.
    reader: PacketReader,
    /// Kernel pids outstanding on this connection (wire pid == kernel pid here).
    pids: PidMap,
}

/// Packet types a 3.1.1 server sends: CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP,
/// SUBACK, UNSUBACK, PINGRESP (3.1.1 has no server DISCONNECT).
fn server_packet(first: u8) -> bool {
    matches!(first >> 4, 2..=7 | 9 | 11 | 13)
}

impl<T: Read + Write> V311Link<T> {
    /// Wraps a freshly opened transport. Nothing is sent until [`MqttLink::connect`].
    pub fn new(io: T) -> Self {
        Self {
            io,
            tx: WipedBuf::new(MAX_PACKET_LEN),
            reader: PacketReader::new(server_packet),
            pids: PidMap::default(),
        }
    }

    /// Unwraps the transport (bytes buffered but not consumed are dropped).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// [`encode_and_write`] on this link's transport and encode buffer.
    async fn write(&mut self, packet: &Packet<'_>) -> Result<(), LinkError> {
        encode_and_write(&mut self.io, &mut self.tx, packet).await
    }

    /// Answers a skipped oversized PUBLISH so the server does not resend it forever.
    async fn answer_dropped(&mut self, dropped: Dropped) -> Result<(), LinkError> {
        let ack = match dropped.qos {
            1 => Ack::Puback,
            2 => Ack::Pubrec,
            _ => return Ok(()),
        };
        match dropped.pid {
            Some(pid) if pid != 0 => self.write(&Packet::Ack(ack, pid)).await,
            _ => Ok(()),
        }
    }
}

/// Encodes `packet` into `tx` and writes it with one `write_all`, then flushes.
async fn encode_and_write<T: Write>(
    io: &mut T,
    tx: &mut [u8],
    packet: &Packet<'_>,
) -> Result<(), LinkError> {
    let len = encode::encode(packet, tx)?;
    write_packet(io, tx.get(..len).ok_or(LinkError::TooLarge)?).await
}

/// What the runner needs from one whole incoming packet, plus the reply (if any) we owe the
/// server for it. Topic and payload borrow `bytes`.
fn incoming<'a>(
    bytes: &'a [u8],
    pids: &mut PidMap,
) -> Result<(Incoming<'a>, Option<Packet<'static>>), LinkError> {
    use self::decode::Packet as In;
    Ok(match decode::decode(bytes)? {
        In::Publish {
            topic,
            payload,
            qos,
        } => {
            let (qos, pid, reply) = match qos {
                PubQos::Zero => (Qos::AtMostOnce, None, None),
                // Acknowledged by `acknowledge`, when the kernel says so.
                PubQos::One(pid) => (Qos::AtLeastOnce, Some(pid), None),
                // See the module docs: QoS 1 delivery, QoS 2 exchange.
                PubQos::Two(pid) => (Qos::AtLeastOnce, None, Some(Packet::Ack(Ack::Pubrec, pid))),
            };
            (
                Incoming::Publish {
                    topic,
                    payload,
                    qos,
                    pid,
                },
                reply,
            )
        }
        In::Pubrel(pid) => (Incoming::Other, Some(Packet::Ack(Ack::Pubcomp, pid))),
        In::Puback(pid) => (
            pids.take(pid, PidKind::Publish)
                .map_or(Incoming::Other, Incoming::PubAck),
            None,
        ),
        In::Suback { pid, codes } => {
            // We subscribe one filter per packet, so exactly one code is expected; be
            // tolerant and judge by the first.
            let granted = codes.first().is_some_and(|c| *c != SUBACK_FAILURE);
            let event = pids
                .take(pid, PidKind::Subscribe)
                .map_or(Incoming::Other, |pid| Incoming::SubAck { pid, granted });
            (event, None)
        }
        In::Unsuback(pid) => (
            pids.take(pid, PidKind::Unsubscribe)
                .map_or(Incoming::Other, Incoming::UnsubAck),
            None,
        ),
        In::Pingresp => (Incoming::PingResp, None),
        // PUBREC/PUBCOMP for QoS 2 we never send: legal-looking, nothing to do.
        In::Pubrec(_) | In::Pubcomp(_) => (Incoming::Other, None),
        // A second CONNACK: a server sends one per connection, first [MQTT-3.2.0-1].
        In::Connack(_) => return Err(LinkError::Protocol),
    })
}

/// A CONNACK's return code (section 3.2.2.3): 0 accepts, anything else refuses, and the server
/// closes the connection [MQTT-3.2.2-5]. 6..=255 are reserved, but a refusal whatever the
/// number: kept for the log.
fn connack(code: u8) -> Result<(), LinkError> {
    Err(LinkError::Refused(match code {
        0 => return Ok(()),
        2 => Refusal::IdentifierRejected,
        3 => Refusal::ServerUnavailable,
        4 => Refusal::BadCredentials,
        5 => Refusal::NotAuthorized,
        n => Refusal::Other(n),
    }))
}

/// A filter within [`MAX_FILTER_LEN`].
fn bounded(filter: &str) -> Result<&str, LinkError> {
    if filter.len() > MAX_FILTER_LEN {
        Err(LinkError::TooLarge)
    } else {
        Ok(filter)
    }
}

impl<T: Read + Write> MqttLink for V311Link<T> {
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        self.write(&Packet::Connect {
            client_id: params.client_id,
            username: params.username,
            password: params.password.as_bytes(),
            keep_alive: params.keepalive_secs,
        })
        .await?;
        let frame = self.reader.ready(&mut self.io).await?;
        self.reader.consume();
        let Frame::Packet(len) = frame else {
            // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
            return Err(LinkError::Protocol);
        };
        match decode::decode(self.reader.bytes(len))? {
            decode::Packet::Connack(code) => connack(code),
            // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
            _ => Err(LinkError::Protocol),
        }
    }

    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError> {
        match *packet {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                qos,
                dup,
            } => {
                self.write(&Packet::Publish {
                    topic,
                    payload,
                    qos,
                    pid,
                    dup,
                })
                .await?;
                if qos == Qos::AtLeastOnce {
                    self.pids.insert(pid, PidKind::Publish, pid);
                }
            }
            Outgoing::Subscribe { pid, filter, qos } => {
                let filters = [(bounded(filter)?, qos)];
                self.write(&Packet::Subscribe {
                    pid,
                    filters: &filters,
                })
                .await?;
                self.pids.insert(pid, PidKind::Subscribe, pid);
            }
            Outgoing::Unsubscribe { pid, filter } => {
                let filters = [bounded(filter)?];
                self.write(&Packet::Unsubscribe {
                    pid,
                    filters: &filters,
                })
                .await?;
                self.pids.insert(pid, PidKind::Unsubscribe, pid);
            }
        }
        Ok(Sent::Written)
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        self.write(&Packet::Pingreq).await
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        self.reader.ready(&mut self.io).await.map(|_| ())
    }

    fn partial(&self) -> bool {
        self.reader.partial()
    }

    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError> {
        let frame = self.reader.ready(&mut self.io).await?;
        // Consumed even when bad: the link ends on the error anyway.
        self.reader.consume();
        let len = match frame {
            Frame::Packet(len) => len,
            Frame::Dropped(dropped) => {
                self.answer_dropped(dropped).await?;
                return Ok(Incoming::Other);
            }
        };
        let (incoming, reply) = incoming(self.reader.bytes(len), &mut self.pids)?;
        if let Some(reply) = reply {
            encode_and_write(&mut self.io, &mut self.tx, &reply).await?;
        }
        Ok(incoming)
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        if pid == 0 {
            log_warn!("mqtt: asked to acknowledge packet id 0; ignored");
            return Ok(());
        }
        self.write(&Packet::Ack(Ack::Puback, pid)).await
    }

    async fn disconnect(&mut self) {
        // Best effort: the connection is being dropped either way.
        let _ = self.write(&Packet::Disconnect).await;
    }

    fn oversized_dropped(&self) -> u32 {
        self.reader.oversized_dropped()
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::task::Poll;

    use embassy_futures::poll_once;
    use futures_executor::block_on;

    use super::*;
    use crate::link::writer::fake::FakeTransport;

    /// CONNECT as the spec lays it out, assembled here so the test checks the codec rather
    /// than repeating it.
    fn connect_bytes(client_id: &str, user: &str, pass: &str, keepalive: u16) -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0b1100_0010];
        body.extend_from_slice(&keepalive.to_be_bytes());
        for field in [client_id, user, pass] {
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field.as_bytes());
        }
        let mut out = vec![0x10];
        push_len(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    }

    fn push_len(out: &mut Vec<u8>, mut len: usize) {
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
    }

    /// A PUBLISH from the server, assembled by hand.
    fn publish_bytes(first: u8, topic: &str, pid: Option<u16>, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if let Some(pid) = pid {
            body.extend_from_slice(&pid.to_be_bytes());
        }
        body.extend_from_slice(payload);
        let mut out = vec![first];
        push_len(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    }

    const PARAMS: ConnectParams<'static> = ConnectParams {
        client_id: "c1",
        username: "dn&pk",
        password: "secret",
        keepalive_secs: 60,
    };

    /// A link that has completed CONNECT/CONNACK; the written record is cleared.
    fn connected() -> (V311Link<FakeTransport>, FakeTransport) {
        let fake = FakeTransport::new();
        let mut link = V311Link::new(fake.clone());
        fake.push(&[0x20, 0x02, 0x00, 0x00]);
        block_on(link.connect(&PARAMS)).unwrap();
        fake.take_written();
        (link, fake)
    }

    fn publish<'a>(
        pid: u16,
        topic: &'a str,
        payload: &'a [u8],
        qos: Qos,
        dup: bool,
    ) -> Outgoing<'a> {
        Outgoing::Publish {
            pid,
            topic,
            payload,
            qos,
            dup,
        }
    }

    #[test]
    fn connect_accepted_is_one_write_with_clean_session() {
        let fake = FakeTransport::new();
        let mut link = V311Link::new(fake.clone());
        fake.push(&[0x20, 0x02, 0x00, 0x00]);
        assert_eq!(block_on(link.connect(&PARAMS)), Ok(()));
        assert_eq!(
            fake.take_written(),
            connect_bytes("c1", "dn&pk", "secret", 60)
        );
        assert_eq!(fake.write_calls(), 1);
    }

    #[test]
    fn alibaba_length_client_id_is_encoded_whole() {
        let client_id =
            "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|";
        let username = "example1&a1X2bEnP82z";
        let password = "B8CE8F1D706DD3C61D13BFD9855DEF7E321B785084CA9C93F0169A2B46785DD2";
        let mut long_id = String::from(client_id);
        long_id.push_str(&"x".repeat(60)); // well past 128 characters
        for id in [client_id, long_id.as_str()] {
            let fake = FakeTransport::new();
            let mut link = V311Link::new(fake.clone());
            fake.push(&[0x20, 0x02, 0x00, 0x00]);
            let params = ConnectParams {
                client_id: id,
                username,
                password,
                keepalive_secs: 300,
            };
            assert_eq!(block_on(link.connect(&params)), Ok(()));
            assert_eq!(
                fake.take_written(),
                connect_bytes(id, username, password, 300)
            );
        }
    }

    #[test]
    fn connect_refusals_map_to_refusal() {
        let cases = [
            (1, Refusal::Other(1)),
            (2, Refusal::IdentifierRejected),
            (3, Refusal::ServerUnavailable),
            (4, Refusal::BadCredentials),
            (5, Refusal::NotAuthorized),
            (9, Refusal::Other(9)),
        ];
        for (code, refusal) in cases {
            let fake = FakeTransport::new();
            let mut link = V311Link::new(fake.clone());
            fake.push(&[0x20, 0x02, 0x00, code]);
            assert_eq!(
                block_on(link.connect(&PARAMS)),
                Err(LinkError::Refused(refusal)),
                "code {code}"
            );
        }
    }

    #[test]
    fn connect_without_connack_fails() {
        // Server closes instead of answering.
        let fake = FakeTransport::new();
        let mut link = V311Link::new(fake.clone());
        fake.close();
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Network));
        // Server answers with something else first.
        let fake = FakeTransport::new();
        let mut link = V311Link::new(fake.clone());
        fake.push(&[0xD0, 0x00]);
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Protocol));
        // Truncated CONNACK (remaining length 0).
        let fake = FakeTransport::new();
        let mut link = V311Link::new(fake.clone());
        fake.push(&[0x20, 0x00]);
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Protocol));
    }

    #[test]
    fn publish_qos0_and_qos1_with_puback_mapping() {
        let (mut link, fake) = connected();
        block_on(async {
            assert_eq!(
                link.send(&publish(0, "a/b", b"hi", Qos::AtMostOnce, false))
                    .await,
                Ok(Sent::Written)
            );
            assert_eq!(
                fake.take_written(),
                [0x30, 0x07, 0, 3, b'a', b'/', b'b', b'h', b'i']
            );
            assert_eq!(
                fake.write_calls(),
                2,
                "one write per packet (CONNECT + PUBLISH)"
            );

            link.send(&publish(0x0107, "a/b", b"x", Qos::AtLeastOnce, true))
                .await
                .unwrap();
            // DUP (0x08) and QoS 1 (0x02), kernel pid on the wire.
            assert_eq!(
                fake.take_written(),
                [0x3A, 0x08, 0, 3, b'a', b'/', b'b', 0x01, 0x07, b'x']
            );
            assert_eq!(fake.write_calls(), 3);

            // An acknowledgement for something never sent is not reported as a PubAck.
            fake.push(&[0x40, 0x02, 0x00, 0x09]);
            fake.push(&[0x40, 0x02, 0x01, 0x07]);
            fake.push(&[0x40, 0x02, 0x01, 0x07]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Ok(Incoming::Other));
            assert_eq!(link.receive().await, Ok(Incoming::PubAck(0x0107)));
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Other),
                "acknowledged once only"
            );
        });
    }

    #[test]
    fn dup_is_never_set_on_qos0() {
        let (mut link, fake) = connected();
        block_on(link.send(&publish(0, "t", b"", Qos::AtMostOnce, true))).unwrap();
        assert_eq!(fake.take_written(), [0x30, 0x03, 0, 1, b't']);
    }

    #[test]
    fn subscribe_success_and_failure_and_unsubscribe() {
        let (mut link, fake) = connected();
        block_on(async {
            let sub = |pid, filter, qos| Outgoing::Subscribe { pid, filter, qos };
            link.send(&sub(5, "a/+", Qos::AtLeastOnce)).await.unwrap();
            assert_eq!(
                fake.take_written(),
                [0x82, 0x08, 0, 5, 0, 3, b'a', b'/', b'+', 1]
            );
            link.send(&sub(6, "b/#", Qos::AtMostOnce)).await.unwrap();
            assert_eq!(
                fake.take_written(),
                [0x82, 0x08, 0, 6, 0, 3, b'b', b'/', b'#', 0]
            );

            fake.push(&[0x90, 0x03, 0x00, 0x05, 0x01]);
            fake.push(&[0x90, 0x03, 0x00, 0x06, 0x80]);
            assert_eq!(
                link.receive().await,
                Ok(Incoming::SubAck {
                    pid: 5,
                    granted: true
                })
            );
            assert_eq!(
                link.receive().await,
                Ok(Incoming::SubAck {
                    pid: 6,
                    granted: false
                })
            );

            link.send(&Outgoing::Unsubscribe {
                pid: 7,
                filter: "a/+",
            })
            .await
            .unwrap();
            assert_eq!(
                fake.take_written(),
                [0xA2, 0x07, 0, 7, 0, 3, b'a', b'/', b'+']
            );
            fake.push(&[0xB0, 0x02, 0x00, 0x07]);
            assert_eq!(link.receive().await, Ok(Incoming::UnsubAck(7)));
        });
    }

    #[test]
    fn overlong_filter_is_too_large_not_a_panic() {
        let (mut link, fake) = connected();
        let filter = "a".repeat(300);
        let r = block_on(link.send(&Outgoing::Subscribe {
            pid: 1,
            filter: &filter,
            qos: Qos::AtMostOnce,
        }));
        assert_eq!(r, Err(LinkError::TooLarge));
        assert!(fake.take_written().is_empty());
    }

    #[test]
    fn oversized_outgoing_publish_is_too_large() {
        let (mut link, fake) = connected();
        let payload = vec![0u8; MAX_PACKET_LEN];
        let r = block_on(link.send(&publish(1, "t", &payload, Qos::AtLeastOnce, false)));
        assert_eq!(r, Err(LinkError::TooLarge));
        assert!(fake.take_written().is_empty());
    }

    #[test]
    fn incoming_qos1_publish_is_acknowledged_only_when_asked() {
        let (mut link, fake) = connected();
        fake.push(&publish_bytes(0x32, "x/y", Some(0x2A), b"{\"a\":1}"));
        block_on(async {
            link.ready().await.unwrap();
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "x/y",
                    payload: b"{\"a\":1}",
                    qos: Qos::AtLeastOnce,
                    pid: Some(0x2A),
                })
            );
            assert!(fake.take_written().is_empty(), "no PUBACK inside receive");
            link.acknowledge(0x2A).await.unwrap();
            assert_eq!(fake.take_written(), [0x40, 0x02, 0x00, 0x2A]);
            assert_eq!(fake.write_calls(), 2, "CONNECT + PUBACK");
            // Packet id 0 (a caller bug) writes nothing and keeps the link.
            assert_eq!(link.acknowledge(0).await, Ok(()));
            assert!(fake.take_written().is_empty());
        });
    }

    #[test]
    fn incoming_qos0_publish_is_not_acknowledged() {
        let (mut link, fake) = connected();
        fake.push(&publish_bytes(0x30, "x", None, b""));
        let got = block_on(link.receive());
        assert_eq!(
            got,
            Ok(Incoming::Publish {
                topic: "x",
                payload: b"",
                qos: Qos::AtMostOnce,
                pid: None,
            })
        );
        assert!(fake.take_written().is_empty());
    }

    #[test]
    fn incoming_qos2_is_delivered_as_qos1_with_the_qos2_exchange() {
        let (mut link, fake) = connected();
        fake.push(&publish_bytes(0x34, "q", Some(3), b"z"));
        fake.push(&[0x62, 0x02, 0x00, 0x03]);
        block_on(async {
            let got = link.receive().await.unwrap();
            assert_eq!(
                got,
                Incoming::Publish {
                    topic: "q",
                    payload: b"z",
                    qos: Qos::AtLeastOnce,
                    pid: None,
                }
            );
            assert_eq!(fake.take_written(), [0x50, 0x02, 0x00, 0x03], "PUBREC");
            assert_eq!(link.receive().await, Ok(Incoming::Other));
            assert_eq!(fake.take_written(), [0x70, 0x02, 0x00, 0x03], "PUBCOMP");
        });
    }

    #[test]
    fn ping_and_pingresp() {
        let (mut link, fake) = connected();
        block_on(async {
            link.ping().await.unwrap();
            assert_eq!(fake.take_written(), [0xC0, 0x00]);
            fake.push(&[0xD0, 0x00]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Ok(Incoming::PingResp));
        });
    }

    #[test]
    fn disconnect_writes_disconnect() {
        let (mut link, fake) = connected();
        block_on(link.disconnect());
        assert_eq!(fake.take_written(), [0xE0, 0x00]);
    }

    #[test]
    fn peer_close_is_network_error() {
        let (mut link, fake) = connected();
        fake.close();
        assert_eq!(block_on(link.ready()), Err(LinkError::Network));
        // Closed in the middle of a packet.
        let (mut link, fake) = connected();
        fake.push(&[0x30, 0x05, 0x00]);
        fake.close();
        assert_eq!(block_on(link.ready()), Err(LinkError::Network));
        // Writes after the close fail too.
        assert_eq!(block_on(link.ping()), Err(LinkError::Network));
    }

    #[test]
    fn oversized_incoming_non_publish_is_too_large_from_its_header() {
        let (mut link, fake) = connected();
        // SUBACK announcing 9000 bytes (varint A8 46); no body is ever sent.
        fake.push(&[0x90, 0xA8, 0x46]);
        fake.pend_when_empty(true);
        assert_eq!(block_on(link.ready()), Err(LinkError::TooLarge));
    }

    #[test]
    fn publish_of_exactly_the_buffer_size_is_received() {
        // Header 1 + 2 length bytes.
        let (mut link, fake) = connected();
        let topic = "t";
        let payload = vec![7u8; MAX_PACKET_LEN - 3 - 2 - topic.len()];
        fake.push(&publish_bytes(0x30, topic, None, &payload));
        match block_on(link.receive()) {
            Ok(Incoming::Publish { payload: got, .. }) => assert_eq!(got, &payload[..]),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(link.oversized_dropped(), 0);
    }

    #[test]
    fn oversized_publish_is_skipped_acknowledged_and_the_session_goes_on() {
        let payload = vec![7u8; MAX_PACKET_LEN];
        for (first, pid, answer) in [
            (0x30u8, None, &[][..]),
            (0x32, Some(0x0102u16), &[0x40u8, 0x02, 0x01, 0x02][..]),
            (0x34, Some(0x0304), &[0x50, 0x02, 0x03, 0x04][..]),
        ] {
            let (mut link, fake) = connected();
            fake.push(&publish_bytes(first, "big", pid, &payload));
            fake.push(&publish_bytes(0x30, "next", None, b"ok"));
            block_on(async {
                link.ready().await.unwrap();
                assert_eq!(link.receive().await, Ok(Incoming::Other));
                assert_eq!(fake.take_written(), answer, "QoS {}", (first >> 1) & 3);
                assert_eq!(link.oversized_dropped(), 1);
                assert_eq!(
                    link.receive().await,
                    Ok(Incoming::Publish {
                        topic: "next",
                        payload: b"ok",
                        qos: Qos::AtMostOnce,
                        pid: None,
                    })
                );
            });
        }
    }

    #[test]
    fn a_whole_packet_takes_one_read() {
        let (mut link, fake) = connected();
        let reads = fake.read_calls();
        fake.push(&publish_bytes(0x32, "a/b", Some(1), &[5u8; 2000]));
        assert!(matches!(
            block_on(link.receive()),
            Ok(Incoming::Publish { .. })
        ));
        assert_eq!(fake.read_calls() - reads, 1);
    }

    /// Receives `bytes` from the server on a connected link and checks that the link ends with
    /// a protocol error; returns the fake transport to check what was written.
    fn protocol_error_on(bytes: &[u8]) -> FakeTransport {
        let (mut link, fake) = connected();
        fake.push(bytes);
        fake.close();
        let r = block_on(async {
            link.ready().await?;
            link.receive().await
        });
        assert_eq!(r, Err(LinkError::Protocol), "{bytes:02x?}");
        fake
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let cases: [&[u8]; 8] = [
            &[0x00, 0x00],                         // reserved type 0
            &[0xF0, 0x00],                         // reserved type 15
            &[0x10, 0x00],                         // CONNECT from the server
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], // five length bytes
            &[0x30, 0x04, 0x00, 0x09, b'a', b'b'], // topic longer than the packet
            &[0x32, 0x03, 0x00, 0x01, b'a'],       // QoS 1 publish without pid
            &[0x36, 0x03, 0x00, 0x01, b'a'],       // QoS 3
            &[0x40, 0x01, 0x00],                   // short PUBACK
        ];
        for bytes in cases {
            protocol_error_on(bytes);
        }
        // Invalid UTF-8 topic, a second CONNACK, a zero pid.
        let cases: [&[u8]; 3] = [
            &[0x30, 0x03, 0x00, 0x01, 0xFF],
            &[0x20, 0x02, 0x00, 0x00],
            &[0x40, 0x02, 0x00, 0x00],
        ];
        for bytes in cases {
            let (mut link, fake) = connected();
            fake.push(bytes);
            assert_eq!(
                block_on(link.receive()),
                Err(LinkError::Protocol),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn suback_is_judged_by_its_first_code_however_many_follow() {
        let (mut link, fake) = connected();
        block_on(async {
            let sub = |pid| Outgoing::Subscribe {
                pid,
                filter: "a",
                qos: Qos::AtLeastOnce,
            };
            link.send(&sub(5)).await.unwrap();
            link.send(&sub(6)).await.unwrap();
            fake.push(&[0x90, 0x08, 0x00, 0x05, 0x80, 1, 1, 1, 1, 1]);
            fake.push(&[0x90, 0x04, 0x00, 0x06, 0x02, 0x80]);
            let got = link.receive().await;
            assert_eq!(
                got,
                Ok(Incoming::SubAck {
                    pid: 5,
                    granted: false
                })
            );
            let got = link.receive().await;
            assert_eq!(
                got,
                Ok(Incoming::SubAck {
                    pid: 6,
                    granted: true
                })
            );
        });
    }

    #[test]
    fn bad_flags_and_reserved_codes_are_protocol_errors() {
        let cases: [&[u8]; 4] = [
            &[0x60, 0x02, 0x00, 0x01],       // PUBREL without its 0010 flags
            &[0x41, 0x02, 0x00, 0x01],       // PUBACK with flags
            &[0x90, 0x03, 0x00, 0x01, 0x03], // SUBACK with a reserved return code
            &[0xD0, 0x01, 0x00],             // PINGRESP with a body
        ];
        for bytes in cases {
            let fake = protocol_error_on(bytes);
            assert!(fake.take_written().is_empty(), "{bytes:02x?}: no reply");
        }
    }

    #[test]
    fn random_input_never_panics() {
        // Deterministic pseudo-random packets with plausible headers, to walk every decoder.
        let mut seed: u32 = 0x1234_5678;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..3000 {
            let (mut link, fake) = connected();
            let kind = [2u8, 3, 4, 5, 6, 7, 9, 11, 13][next() as usize % 9];
            let len = next() as usize % 12;
            let mut bytes = vec![(kind << 4) | (next() as u8 & 0x0F), len as u8];
            bytes.extend((0..len).map(|_| next() as u8));
            fake.push(&bytes);
            fake.close();
            let _ = block_on(link.receive());
        }
    }

    #[test]
    fn cancelled_ready_loses_no_bytes() {
        let (mut link, fake) = connected();
        let packet = publish_bytes(0x32, "a/b", Some(9), b"payload");
        let (head, tail) = packet.split_at(5);
        fake.pend_when_empty(true);
        fake.read_chunk(2);
        fake.push(head);
        assert!(!link.partial());
        // Each poll reads what is there and then waits: cancel it mid-packet, twice.
        assert!(poll_once(link.ready()).is_pending());
        assert!(poll_once(link.ready()).is_pending());
        assert!(link.partial(), "half a packet is buffered");
        fake.push(tail);
        assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
        assert!(!link.partial());
        // `ready` again without `receive` keeps the same packet.
        assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
        assert_eq!(
            block_on(link.receive()),
            Ok(Incoming::Publish {
                topic: "a/b",
                payload: b"payload",
                qos: Qos::AtLeastOnce,
                pid: Some(9),
            })
        );
        assert!(fake.take_written().is_empty());
    }

    #[test]
    fn back_to_back_packets_in_one_read_are_kept() {
        let (mut link, fake) = connected();
        let mut bytes = vec![0xD0, 0x00];
        bytes.extend(publish_bytes(0x30, "t", None, b"1"));
        bytes.extend([0xD0, 0x00]);
        fake.push(&bytes);
        block_on(async {
            assert_eq!(link.receive().await, Ok(Incoming::PingResp));
            assert!(matches!(link.receive().await, Ok(Incoming::Publish { .. })));
            assert_eq!(link.receive().await, Ok(Incoming::PingResp));
        });
    }

    #[test]
    fn link_state_fits_its_budget() {
        let size = core::mem::size_of::<V311Link<FakeTransport>>();
        assert!(size <= crate::link::LINK_STATE_BYTES, "{size} bytes");
    }
}
