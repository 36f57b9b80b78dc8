//! MQTT 3.1.1 link: the `mqttrs` packet codec under our own read/write loop.
//!
//! `rust-mqtt` speaks only MQTT 5, and Alibaba's older instances speak only 3.1.1, so this link
//! drives a sans-IO codec itself:
//! - every outgoing packet is encoded into a fixed buffer and leaves in ONE `write_all`;
//! - incoming bytes collect in a fixed receive buffer; [`MqttLink::ready`] returns once a whole
//!   packet is buffered (cancel-safe: only `read` futures are awaited, and bytes are kept in the
//!   buffer the moment a read completes), [`MqttLink::receive`] decodes and consumes it;
//! - both buffers hold [`MAX_PACKET_LEN`] bytes; a longer incoming packet is
//!   [`LinkError::TooLarge`] as soon as its fixed header is seen.
//!
//! The kernel's packet identifiers go on the wire unchanged. Acknowledgements are reported only
//! for identifiers this connection has outstanding, as the MQTT 5 link does (see
//! `link/pids.rs`).
//!
//! Incoming QoS 2 (never offered by Alibaba, and never granted since we subscribe at QoS <= 1) is
//! handled with QoS 1 *delivery* semantics but a correct QoS 2 exchange on the wire: PUBREC is
//! written and the message is returned at once as [`Qos::AtLeastOnce`] (it may be delivered
//! again if the server resends it); an incoming PUBREL is answered with PUBCOMP.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;

use aliot_abi::Qos;
use embedded_io_async::{Read, Write};
use mqttrs::{
    Connect, ConnectReturnCode, Packet, Pid, Protocol, Publish, QoS, QosPid, Subscribe,
    SubscribeReturnCodes, SubscribeTopic, Unsubscribe,
};

use super::pids::{PidKind, PidMap};
use super::writer::MAX_PACKET_LEN;
use super::{ConnectParams, Incoming, LinkError, MqttLink, Refusal};
use crate::kernel::Outgoing;

/// One MQTT 3.1.1 connection over transport `T` (TCP or TLS stream).
pub struct V311Link<T> {
    io: T,
    /// Encode buffer: one outgoing packet.
    tx: Box<[u8]>,
    /// Receive buffer: `rx[..filled]` are bytes read but not yet consumed.
    rx: Box<[u8]>,
    filled: usize,
    /// Kernel pids outstanding on this connection (wire pid == kernel pid here).
    pids: PidMap,
}

impl<T: Read + Write> V311Link<T> {
    /// Wraps a freshly opened transport. Nothing is sent until [`MqttLink::connect`].
    pub fn new(io: T) -> Self {
        Self {
            io,
            tx: vec![0; MAX_PACKET_LEN].into_boxed_slice(),
            rx: vec![0; MAX_PACKET_LEN].into_boxed_slice(),
            filled: 0,
            pids: PidMap::default(),
        }
    }

    /// Unwraps the transport (bytes buffered but not consumed are dropped).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Encodes `packet` and writes it with one `write_all`, then flushes.
    async fn write_packet(&mut self, packet: &Packet<'_>) -> Result<(), LinkError> {
        let len = mqttrs::encode_slice(packet, &mut self.tx).map_err(|e| match e {
            // The only way a well-formed packet fails to encode is not fitting the buffer.
            mqttrs::Error::WriteZero | mqttrs::Error::InvalidLength => LinkError::TooLarge,
            _ => LinkError::Protocol,
        })?;
        let bytes = self.tx.get(..len).ok_or(LinkError::TooLarge)?;
        self.io
            .write_all(bytes)
            .await
            .map_err(|_| LinkError::Network)?;
        self.io.flush().await.map_err(|_| LinkError::Network)
    }

    /// Length of the complete packet at the start of the receive buffer, if there is one.
    fn buffered_packet(&self) -> Result<Option<usize>, LinkError> {
        frame_len(&self.rx[..self.filled])
    }

    /// Reads until one whole packet is buffered; returns its length. Cancel-safe.
    async fn fill_packet(&mut self) -> Result<usize, LinkError> {
        loop {
            if let Some(len) = self.buffered_packet()? {
                return Ok(len);
            }
            // `frame_len` rejects packets over the buffer size, so there is always room here.
            let free = self.rx.get_mut(self.filled..).ok_or(LinkError::TooLarge)?;
            if free.is_empty() {
                return Err(LinkError::TooLarge);
            }
            let room = free.len();
            let n = self.io.read(free).await.map_err(|_| LinkError::Network)?;
            if n == 0 {
                return Err(LinkError::Network);
            }
            // `min` keeps the count sane even if a transport over-reports.
            self.filled += n.min(room);
        }
    }

    /// Drops the first `len` buffered bytes (one consumed packet).
    fn consume(&mut self, len: usize) {
        let len = len.min(self.filled);
        self.rx.copy_within(len..self.filled, 0);
        self.filled -= len;
    }

    /// Decodes the buffered packet of `len` bytes into what the runner needs, plus the
    /// acknowledgement (if any) we owe the server for it.
    fn decode(&mut self, len: usize) -> Result<(Incoming, Option<Packet<'static>>), LinkError> {
        let bytes = self.rx.get(..len).ok_or(LinkError::Protocol)?;
        check_shape(bytes)?;
        let packet = mqttrs::decode_slice(bytes)
            .map_err(|_| LinkError::Protocol)?
            .ok_or(LinkError::Protocol)?;
        Ok(match packet {
            Packet::Publish(p) => {
                let topic = p.topic_name.to_string();
                let payload = p.payload.to_vec();
                let (qos, reply) = match p.qospid {
                    QosPid::AtMostOnce => (Qos::AtMostOnce, None),
                    QosPid::AtLeastOnce(pid) => (Qos::AtLeastOnce, Some(Packet::Puback(pid))),
                    // See the module docs: QoS 1 delivery, QoS 2 exchange.
                    QosPid::ExactlyOnce(pid) => (Qos::AtLeastOnce, Some(Packet::Pubrec(pid))),
                };
                (
                    Incoming::Publish {
                        topic,
                        payload,
                        qos,
                    },
                    reply,
                )
            }
            Packet::Pubrel(pid) => (Incoming::Other, Some(Packet::Pubcomp(pid))),
            Packet::Puback(pid) => (
                self.pids
                    .take(pid.get(), PidKind::Publish)
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
                let event = self
                    .pids
                    .take(s.pid.get(), PidKind::Subscribe)
                    .map_or(Incoming::Other, |pid| Incoming::SubAck { pid, granted });
                (event, None)
            }
            Packet::Unsuback(pid) => (
                self.pids
                    .take(pid.get(), PidKind::Unsubscribe)
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
}

/// Parses the fixed header at the start of `buf`.
///
/// Returns the total packet length once all of it is buffered, `None` while more bytes are
/// needed, [`LinkError::Protocol`] for an invalid packet type or length encoding and
/// [`LinkError::TooLarge`] as soon as the announced length exceeds [`MAX_PACKET_LEN`] (so an
/// oversized packet never makes us buffer or wait for it).
fn frame_len(buf: &[u8]) -> Result<Option<usize>, LinkError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if !matches!(first >> 4, 2..=7 | 9 | 11 | 13) {
        // Reserved types and packets only a client sends (3.1.1 has no server DISCONNECT).
        return Err(LinkError::Protocol);
    }
    let mut remaining: usize = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 1 + (i + 1) + remaining;
            if total > MAX_PACKET_LEN {
                return Err(LinkError::TooLarge);
            }
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    // A fifth length byte is malformed.
    Err(LinkError::Protocol)
}

/// Checks the sizes `mqttrs` relies on without checking: its decoders index the buffer
/// directly and would panic on a truncated packet (e.g. a CONNACK with remaining length 0).
/// `packet` is exactly one frame as delimited by [`frame_len`].
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
        self.write_packet(&Packet::Connect(connect)).await?;
        let len = self.fill_packet().await?;
        let bytes = self.rx.get(..len).ok_or(LinkError::Protocol)?;
        if bytes.first().map(|b| b >> 4) != Some(2) {
            // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
            return Err(LinkError::Protocol);
        }
        check_shape(bytes)?;
        let result = match mqttrs::decode_slice(bytes) {
            Ok(Some(Packet::Connack(c))) if c.code == ConnectReturnCode::Accepted => Ok(()),
            Ok(Some(Packet::Connack(c))) => Err(LinkError::Refused(refusal(c.code))),
            // Return codes 6..=255 are reserved, but a CONNACK with a non-zero code is a
            // refusal whatever the number: keep it for the log.
            Err(mqttrs::Error::InvalidConnectReturnCode(n)) => {
                Err(LinkError::Refused(Refusal::Other(n)))
            }
            _ => Err(LinkError::Protocol),
        };
        self.consume(len);
        result
    }

    async fn send(&mut self, packet: &Outgoing) -> Result<(), LinkError> {
        match packet {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                qos,
                dup,
            } => {
                let qospid = match qos {
                    Qos::AtMostOnce => QosPid::AtMostOnce,
                    Qos::AtLeastOnce => QosPid::AtLeastOnce(wire_pid(*pid)?),
                };
                let publish = Publish {
                    // DUP only means something for QoS > 0 and must be 0 for QoS 0 [MQTT-3.3.1-2].
                    dup: *dup && *qos == Qos::AtLeastOnce,
                    qospid,
                    retain: false,
                    topic_name: topic,
                    payload,
                };
                self.write_packet(&Packet::Publish(publish)).await?;
                if *qos == Qos::AtLeastOnce {
                    self.pids.insert(*pid, PidKind::Publish, *pid);
                }
            }
            Outgoing::Subscribe { pid, filter, qos } => {
                let topic = SubscribeTopic {
                    // mqttrs (no_std) holds filters in a 256-byte string.
                    topic_path: filter.parse().map_err(|_| LinkError::TooLarge)?,
                    qos: wire_qos(*qos),
                };
                let subscribe = Subscribe::new(wire_pid(*pid)?, core::iter::once(topic).collect());
                self.write_packet(&Packet::Subscribe(subscribe)).await?;
                self.pids.insert(*pid, PidKind::Subscribe, *pid);
            }
            Outgoing::Unsubscribe { pid, filter } => {
                let filter = filter.parse().map_err(|_| LinkError::TooLarge)?;
                let unsubscribe =
                    Unsubscribe::new(wire_pid(*pid)?, core::iter::once(filter).collect());
                self.write_packet(&Packet::Unsubscribe(unsubscribe)).await?;
                self.pids.insert(*pid, PidKind::Unsubscribe, *pid);
            }
        }
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        self.write_packet(&Packet::Pingreq).await
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        self.fill_packet().await.map(|_| ())
    }

    async fn receive(&mut self) -> Result<Incoming, LinkError> {
        let len = self.fill_packet().await?;
        let decoded = self.decode(len);
        // Consume even a bad packet: the link ends on the error anyway.
        self.consume(len);
        let (incoming, reply) = decoded?;
        if let Some(reply) = reply {
            self.write_packet(&reply).await?;
        }
        Ok(incoming)
    }

    async fn disconnect(&mut self) {
        // Best effort: the connection is being dropped either way.
        let _ = self.write_packet(&Packet::Disconnect).await;
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
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

    fn publish(pid: u16, topic: &str, payload: &[u8], qos: Qos, dup: bool) -> Outgoing {
        Outgoing::Publish {
            pid,
            topic: topic.into(),
            payload: payload.to_vec(),
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
            link.send(&publish(0, "a/b", b"hi", Qos::AtMostOnce, false))
                .await
                .unwrap();
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
            let sub = |pid, filter: &str, qos| Outgoing::Subscribe {
                pid,
                filter: filter.into(),
                qos,
            };
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
                filter: "a/+".into(),
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
            filter,
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
    fn incoming_qos1_publish_is_acknowledged_on_the_wire() {
        let (mut link, fake) = connected();
        fake.push(&publish_bytes(0x32, "x/y", Some(0x2A), b"{\"a\":1}"));
        let got = block_on(async {
            link.ready().await.unwrap();
            link.receive().await
        });
        assert_eq!(
            got,
            Ok(Incoming::Publish {
                topic: "x/y".into(),
                payload: b"{\"a\":1}".to_vec(),
                qos: Qos::AtLeastOnce,
            })
        );
        assert_eq!(fake.take_written(), [0x40, 0x02, 0x00, 0x2A]);
    }

    #[test]
    fn incoming_qos0_publish_is_not_acknowledged() {
        let (mut link, fake) = connected();
        fake.push(&publish_bytes(0x30, "x", None, b""));
        let got = block_on(link.receive());
        assert_eq!(
            got,
            Ok(Incoming::Publish {
                topic: "x".into(),
                payload: Vec::new(),
                qos: Qos::AtMostOnce,
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
                    topic: "q".into(),
                    payload: b"z".to_vec(),
                    qos: Qos::AtLeastOnce,
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
    fn oversized_incoming_packet_is_too_large_from_its_header() {
        let (mut link, fake) = connected();
        // PUBLISH announcing 9000 bytes (varint A8 46); no body is ever sent.
        fake.push(&[0x30, 0xA8, 0x46]);
        fake.pend_when_empty(true);
        assert_eq!(block_on(link.ready()), Err(LinkError::TooLarge));
        // Exactly the limit is accepted (header 1 + 2 length bytes).
        let (mut link, fake) = connected();
        let topic = "t";
        let payload = vec![7u8; MAX_PACKET_LEN - 3 - 2 - topic.len()];
        fake.push(&publish_bytes(0x30, topic, None, &payload));
        match block_on(link.receive()) {
            Ok(Incoming::Publish { payload: got, .. }) => assert_eq!(got, payload),
            other => panic!("unexpected {other:?}"),
        }
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
        // Each poll reads what is there and then waits: cancel it mid-packet, twice.
        assert!(poll_once(link.ready()).is_pending());
        assert!(poll_once(link.ready()).is_pending());
        fake.push(tail);
        assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
        // `ready` again without `receive` keeps the same packet.
        assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
        assert_eq!(
            block_on(link.receive()),
            Ok(Incoming::Publish {
                topic: "a/b".into(),
                payload: b"payload".to_vec(),
                qos: Qos::AtLeastOnce,
            })
        );
        assert_eq!(fake.take_written(), [0x40, 0x02, 0x00, 0x09]);
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
}
