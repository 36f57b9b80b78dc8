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
//! [`super::v5::PidMap`]).
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

use super::v5::{PidKind, PidMap};
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
mod tests {}
