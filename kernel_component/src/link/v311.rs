//! MQTT 3.1.1 link: the `mqttrs` packet codec under our own read/write loop.
//!
//! `rust-mqtt` speaks only MQTT 5, and Alibaba's older instances speak only 3.1.1, so this link
//! drives a sans-IO codec itself:
//! - every outgoing packet is encoded into a fixed buffer and leaves in ONE `write_all`;
//! - incoming packets are read whole into a fixed buffer (`link/reader.rs`) before `mqttrs`
//!   sees them, after a shape check: `mqttrs` 0.4 indexes without bounds checks and panics on a
//!   truncated packet (`check_shape`);
//! - [`Incoming::Publish`] borrows topic and payload from that buffer.
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
use mqttrs::{
    Connect, ConnectReturnCode, Packet, Pid, Protocol, Publish, QoS, QosPid, Subscribe,
    SubscribeReturnCodes, SubscribeTopic, Unsubscribe,
};

use super::pids::{PidKind, PidMap};
use super::reader::{Dropped, Frame, PacketReader};
use super::writer::{MAX_PACKET_LEN, write_packet};
use super::{ConnectParams, Incoming, LinkError, MqttLink, Outgoing, Refusal, Sent};
use crate::link::WipedBuf;

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

    /// Answers a skipped oversized PUBLISH so the server does not resend it forever.
    async fn answer_dropped(&mut self, dropped: Dropped) -> Result<(), LinkError> {
        let reply = match (dropped.qos, dropped.pid.map(Pid::try_from)) {
            (1, Some(Ok(pid))) => Packet::Puback(pid),
            (2, Some(Ok(pid))) => Packet::Pubrec(pid),
            _ => return Ok(()),
        };
        encode_and_write(&mut self.io, &mut self.tx, &reply).await
    }
}

/// Encodes `packet` into `tx` and writes it with one `write_all`, then flushes.
async fn encode_and_write<T: Write>(
    io: &mut T,
    tx: &mut [u8],
    packet: &Packet<'_>,
) -> Result<(), LinkError> {
    let len = mqttrs::encode_slice(packet, tx).map_err(|e| match e {
        // The only way a well-formed packet fails to encode is not fitting the buffer.
        mqttrs::Error::WriteZero | mqttrs::Error::InvalidLength => LinkError::TooLarge,
        _ => LinkError::Protocol,
    })?;
    write_packet(io, tx.get(..len).ok_or(LinkError::TooLarge)?).await
}

/// Decodes one whole packet into what the runner needs, plus the reply (if any) we owe the
/// server for it. Topic and payload borrow `bytes`.
fn decode<'a>(
    bytes: &'a [u8],
    pids: &mut PidMap,
) -> Result<(Incoming<'a>, Option<Packet<'static>>), LinkError> {
    check_shape(bytes)?;
    let packet = mqttrs::decode_slice(bytes)
        .map_err(|_| LinkError::Protocol)?
        .ok_or(LinkError::Protocol)?;
    Ok(match packet {
        Packet::Publish(p) => {
            let (qos, pid, reply) = match p.qospid {
                QosPid::AtMostOnce => (Qos::AtMostOnce, None, None),
                // Acknowledged by `acknowledge`, when the kernel says so.
                QosPid::AtLeastOnce(pid) => (Qos::AtLeastOnce, Some(pid.get()), None),
                // See the module docs: QoS 1 delivery, QoS 2 exchange.
                QosPid::ExactlyOnce(pid) => (Qos::AtLeastOnce, None, Some(Packet::Pubrec(pid))),
            };
            (
                Incoming::Publish {
                    topic: p.topic_name,
                    payload: p.payload,
                    qos,
                    pid,
                },
                reply,
            )
        }
        Packet::Pubrel(pid) => (Incoming::Other, Some(Packet::Pubcomp(pid))),
        Packet::Puback(pid) => (
            pids.take(pid.get(), PidKind::Publish)
                .map_or(Incoming::Other, Incoming::PubAck),
            None,
        ),
        Packet::Suback(s) => {
            // We subscribe one filter per packet, so exactly one code is expected; be
            // tolerant and judge by the first.
            let granted = matches!(
                s.return_codes.first(),
                Some(SubscribeReturnCodes::Success(_))
            );
            let event = pids
                .take(s.pid.get(), PidKind::Subscribe)
                .map_or(Incoming::Other, |pid| Incoming::SubAck { pid, granted });
            (event, None)
        }
        Packet::Unsuback(pid) => (
            pids.take(pid.get(), PidKind::Unsubscribe)
                .map_or(Incoming::Other, Incoming::UnsubAck),
            None,
        ),
        Packet::Pingresp => (Incoming::PingResp, None),
        // PUBREC/PUBCOMP for QoS 2 we never send: legal-looking, nothing to do.
        Packet::Pubrec(_) | Packet::Pubcomp(_) => (Incoming::Other, None),
        // A second CONNACK, or a client-only packet, from the server.
        _ => return Err(LinkError::Protocol),
    })
}

/// Checks the sizes `mqttrs` relies on without checking: its decoders index the buffer
/// directly and would panic on a truncated packet (e.g. a CONNACK with remaining length 0).
/// `packet` is exactly one whole packet, as `link/reader.rs` delimits it.
fn check_shape(packet: &[u8]) -> Result<(), LinkError> {
    let first = *packet.first().ok_or(LinkError::Protocol)?;
    let header_len = 2 + packet
        .iter()
        .skip(1)
        .take_while(|b| **b & 0x80 != 0)
        .count();
    let body = packet.get(header_len..).ok_or(LinkError::Protocol)?;
    let ok = match first >> 4 {
        // CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: exactly two bytes.
        2 | 4..=7 | 11 => body.len() == 2,
        // SUBACK: pid and at least one return code.
        9 => body.len() >= 3,
        13 => body.is_empty(),
        3 => {
            let qos = (first >> 1) & 0b11;
            match body {
                [hi, lo, rest @ ..] => {
                    let topic_len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    let pid_len = if qos == 0 { 0 } else { 2 };
                    qos != 3 && rest.len() >= topic_len + pid_len
                }
                _ => false,
            }
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(LinkError::Protocol) }
}

fn refusal(code: ConnectReturnCode) -> Refusal {
    match code {
        ConnectReturnCode::RefusedIdentifierRejected => Refusal::IdentifierRejected,
        ConnectReturnCode::ServerUnavailable => Refusal::ServerUnavailable,
        ConnectReturnCode::BadUsernamePassword => Refusal::BadCredentials,
        ConnectReturnCode::NotAuthorized => Refusal::NotAuthorized,
        ConnectReturnCode::RefusedProtocolVersion => Refusal::Other(1),
        // Not a refusal; never passed here.
        ConnectReturnCode::Accepted => Refusal::Other(0),
    }
}

fn wire_qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// A kernel pid as an MQTT pid; 0 is not a valid identifier (a kernel bug, not the network's).
fn wire_pid(pid: u16) -> Result<Pid, LinkError> {
    Pid::try_from(pid).map_err(|_| LinkError::Protocol)
}

impl<T: Read + Write> MqttLink for V311Link<T> {
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        let connect = Connect {
            protocol: Protocol::MQTT311,
            keep_alive: params.keepalive_secs,
            client_id: params.client_id,
            // The kernel owns session state and resends/resubscribes itself.
            clean_session: true,
            last_will: None,
            username: Some(params.username),
            password: Some(params.password.as_bytes()),
        };
        encode_and_write(&mut self.io, &mut self.tx, &Packet::Connect(connect)).await?;
        let frame = self.reader.ready(&mut self.io).await?;
        self.reader.consume();
        let Frame::Packet(len) = frame else {
            // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
            return Err(LinkError::Protocol);
        };
        let bytes = self.reader.bytes(len);
        if bytes.first().map(|b| b >> 4) != Some(2) {
            // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
            return Err(LinkError::Protocol);
        }
        check_shape(bytes)?;
        match mqttrs::decode_slice(bytes) {
            Ok(Some(Packet::Connack(c))) if c.code == ConnectReturnCode::Accepted => Ok(()),
            Ok(Some(Packet::Connack(c))) => Err(LinkError::Refused(refusal(c.code))),
            // Return codes 6..=255 are reserved, but a CONNACK with a non-zero code is a
            // refusal whatever the number: keep it for the log.
            Err(mqttrs::Error::InvalidConnectReturnCode(n)) => {
                Err(LinkError::Refused(Refusal::Other(n)))
            }
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
                let qospid = match qos {
                    Qos::AtMostOnce => QosPid::AtMostOnce,
                    Qos::AtLeastOnce => QosPid::AtLeastOnce(wire_pid(pid)?),
                };
                let publish = Publish {
                    // DUP only means something for QoS > 0 and must be 0 for QoS 0 [MQTT-3.3.1-2].
                    dup: dup && qos == Qos::AtLeastOnce,
                    qospid,
                    retain: false,
                    topic_name: topic,
                    payload,
                };
                encode_and_write(&mut self.io, &mut self.tx, &Packet::Publish(publish)).await?;
                if qos == Qos::AtLeastOnce {
                    self.pids.insert(pid, PidKind::Publish, pid);
                }
            }
            Outgoing::Subscribe { pid, filter, qos } => {
                let topic = SubscribeTopic {
                    // mqttrs (no_std) holds filters in a 256-byte string.
                    topic_path: filter.parse().map_err(|_| LinkError::TooLarge)?,
                    qos: wire_qos(qos),
                };
                let subscribe = Subscribe::new(wire_pid(pid)?, core::iter::once(topic).collect());
                encode_and_write(&mut self.io, &mut self.tx, &Packet::Subscribe(subscribe)).await?;
                self.pids.insert(pid, PidKind::Subscribe, pid);
            }
            Outgoing::Unsubscribe { pid, filter } => {
                let filter = filter.parse().map_err(|_| LinkError::TooLarge)?;
                let unsubscribe =
                    Unsubscribe::new(wire_pid(pid)?, core::iter::once(filter).collect());
                encode_and_write(
                    &mut self.io,
                    &mut self.tx,
                    &Packet::Unsubscribe(unsubscribe),
                )
                .await?;
                self.pids.insert(pid, PidKind::Unsubscribe, pid);
            }
        }
        Ok(Sent::Written)
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        encode_and_write(&mut self.io, &mut self.tx, &Packet::Pingreq).await
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
        let (incoming, reply) = decode(self.reader.bytes(len), &mut self.pids)?;
        if let Some(reply) = reply {
            encode_and_write(&mut self.io, &mut self.tx, &reply).await?;
        }
        Ok(incoming)
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        let Ok(pid) = Pid::try_from(pid) else {
            log_warn!("mqtt: asked to acknowledge packet id 0; ignored");
            return Ok(());
        };
        encode_and_write(&mut self.io, &mut self.tx, &Packet::Puback(pid)).await
    }

    async fn disconnect(&mut self) {
        // Best effort: the connection is being dropped either way.
        let _ = encode_and_write(&mut self.io, &mut self.tx, &Packet::Disconnect).await;
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

    /// CONNECT as the spec lays it out, assembled by hand (not with mqttrs) so the test checks
    /// the codec rather than repeating it.
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
        // Truncated CONNACK (remaining length 0) must not reach mqttrs' unchecked indexing.
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
            let (mut link, fake) = connected();
            fake.push(bytes);
            fake.close();
            let r = block_on(async {
                link.ready().await?;
                link.receive().await
            });
            assert_eq!(r, Err(LinkError::Protocol), "{bytes:02x?}");
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
    fn random_input_never_panics() {
        // Deterministic pseudo-random packets with plausible headers, to walk the shape checks
        // and mqttrs' decoders (which index without bounds checks).
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
