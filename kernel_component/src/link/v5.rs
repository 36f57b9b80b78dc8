//! MQTT 5 link: the `rust-mqtt` 0.6 [`Client`] over a [`PacketWriter`].
//!
//! What this adapter adds on top of the client:
//! - **Kernel packet identifiers.** `rust-mqtt` allocates its own pids; a `PidMap` (`link/pids.rs`) maps each one
//!   back to the kernel's so [`Incoming::PubAck`], [`Incoming::SubAck`] and
//!   [`Incoming::UnsubAck`] carry the pid the kernel chose.
//! - **Flow control without errors.** When the server's Receive Maximum or the client's own
//!   in-flight tables are full, `rust-mqtt` refuses to send; such packets wait in a bounded
//!   queue (in order, QoS 0 behind them too) and go out as acknowledgements free slots.
//! - **One transport write per packet** via [`PacketWriter`].
//! - **Cancel-safe [`MqttLink::ready`]** = `poll_header`, header kept until
//!   [`MqttLink::receive`] = `poll_body`.
//!
//! Behaviour notes:
//! - Connects with Clean Start and session expiry 0 (the kernel resends and resubscribes),
//!   allows reason strings on every packet (Request Problem Information), and
//!   advertises Maximum Packet Size = [`MAX_PACKET_LEN`]. A compliant server therefore never
//!   sends a larger packet; one that does violates the protocol, which `rust-mqtt` reports
//!   before the body is read: that surfaces as [`LinkError::Protocol`], not `TooLarge`.
//! - DUP: `rust-mqtt` only sets DUP through `republish`, which requires the same session. With
//!   Clean Start every connection is a new session, so a resent message goes out with DUP = 0,
//!   which is what MQTT 5 expects for a first delivery attempt in a session.
//! - Incoming QoS 2 (never granted: we subscribe at QoS <= 1) gets QoS 1 delivery semantics:
//!   returned as [`Qos::AtLeastOnce`]; `rust-mqtt` does the PUBREC/PUBREL/PUBCOMP exchange and
//!   suppresses duplicates of it.
//! - A PUBACK with a failure reason code (e.g. 0x87 not authorised) ends that message's
//!   delivery: it is reported as [`Incoming::PubRejected`] (resending would fail again) and logged.

use alloc::collections::VecDeque;
use alloc::string::ToString;
use core::num::NonZero;

use aliot_abi::Qos;
use embedded_io_async::{ErrorKind, Read, Write};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
    UnsubscriptionOptions,
};
use rust_mqtt::client::{Client, MqttError};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::header::FixedHeader;
use rust_mqtt::types::{IdentifiedQoS, MqttBinary, MqttString, QoS, TopicFilter, TopicName};

use super::pids::{PidKind, PidMap};
use super::writer::{MAX_PACKET_LEN, PacketWriter};
use super::{ConnectParams, Incoming, LinkError, MqttLink, Refusal};
use crate::kernel::Outgoing;

/// Outstanding SUBSCRIBEs (and, separately, UNSUBSCRIBEs) `rust-mqtt` tracks at once.
const SUBSCRIBE_MAXIMUM: usize = 8;
/// Incoming QoS 1/2 publications in flight (acknowledged at once, so few are needed).
const RECEIVE_MAXIMUM: usize = 8;
/// Outgoing QoS 1 publications in flight; more wait in the deferred queue.
const SEND_MAXIMUM: usize = 16;
/// Subscription identifiers kept per incoming PUBLISH (we set none).
const MAX_SUBSCRIPTION_IDENTIFIERS: usize = 1;
/// User properties kept per packet (extra ones are dropped by `rust-mqtt`, not an error).
const MAX_USER_PROPERTIES: usize = 4;
/// Packets waiting for a free in-flight slot. The kernel's own queues are bounded, so this is
/// a safety net: overflowing it ends the link ([`LinkError::Protocol`], logged).
const MAX_DEFERRED: usize = 256;

type Mqtt5Client<'c, T> = Client<
    'static,
    'c,
    PacketWriter<T>,
    AllocBuffer,
    SUBSCRIBE_MAXIMUM,
    RECEIVE_MAXIMUM,
    SEND_MAXIMUM,
    MAX_SUBSCRIPTION_IDENTIFIERS,
    MAX_USER_PROPERTIES,
    0,
    0,
>;

/// Where the `rust-mqtt` client stands, to call `disconnect`/`abort` only when it allows it
/// (`abort` on a healthy connection panics in debug builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `connect` not called yet.
    Fresh,
    /// Connected, no unrecoverable error.
    Up,
    /// An unrecoverable error occurred; `abort` is due.
    Failed,
    /// Disconnected or aborted.
    Closed,
}

/// Outcome of trying to put one packet on the wire.
enum Sent {
    Done,
    /// The client has no free slot now; retry after an acknowledgement.
    Busy,
}

/// One MQTT 5 connection over transport `T`, borrowing the `rust-mqtt` buffer provider for
/// `'c`.
pub struct V5Link<'c, T: Read + Write> {
    client: Mqtt5Client<'c, T>,
    transport: Option<PacketWriter<T>>,
    state: State,
    /// Fixed header returned by `poll_header`, waiting for `poll_body`.
    header: Option<FixedHeader>,
    pids: PidMap,
    deferred: VecDeque<Outgoing>,
    /// Events produced locally (a SUBSCRIBE the server cannot accept at all) to hand out
    /// before reading the network.
    local: VecDeque<Incoming>,
}

impl<'c, T: Read + Write> V5Link<'c, T> {
    /// Wraps a freshly opened transport. Nothing is sent until [`MqttLink::connect`].
    pub fn new(buffer: &'c mut AllocBuffer, transport: T) -> Self {
        Self {
            client: Client::new(buffer),
            transport: Some(PacketWriter::new(transport)),
            state: State::Fresh,
            header: None,
            pids: PidMap::default(),
            deferred: VecDeque::new(),
            local: VecDeque::new(),
        }
    }

    /// After an unrecoverable error: lets the client send the DISCONNECT it owes (with the
    /// reason it chose, when the server caused the failure). `abort` writes without flushing,
    /// so the packet is flushed out of the [`PacketWriter`] here.
    async fn abort(&mut self) {
        if let Ok(mut transport) = self.client.abort().await {
            let _ = transport.flush().await;
        }
    }

    /// Records an error from the client and converts it.
    fn fail<const N: usize>(&mut self, e: MqttError<'_, N>) -> LinkError {
        if !e.is_recoverable() && self.state == State::Up {
            self.state = State::Failed;
        }
        match e {
            MqttError::Network(ErrorKind::OutOfMemory) => LinkError::TooLarge,
            MqttError::Network(_) | MqttError::RecoveryRequired => LinkError::Network,
            MqttError::Alloc
            | MqttError::PacketMaximumLengthExceeded
            | MqttError::ServerMaximumPacketSizeExceeded => LinkError::TooLarge,
            MqttError::Disconnect { reason, .. } => LinkError::ServerDisconnect(reason.value()),
            _ => LinkError::Protocol,
        }
    }

    /// Sends `packet` unless an earlier one is still waiting (order is kept) or the client is
    /// out of slots, in which case it is queued.
    async fn send_or_defer(&mut self, packet: &Outgoing) -> Result<(), LinkError> {
        if self.deferred.is_empty() && matches!(self.try_send(packet).await?, Sent::Done) {
            return Ok(());
        }
        if self.deferred.len() >= MAX_DEFERRED {
            log::error!("mqtt5: deferred queue full ({MAX_DEFERRED})");
            return Err(LinkError::Protocol);
        }
        self.deferred.push_back(packet.clone());
        Ok(())
    }

    /// Sends deferred packets until the client is busy again.
    async fn drain_deferred(&mut self) -> Result<(), LinkError> {
        while let Some(packet) = self.deferred.pop_front() {
            if let Sent::Busy = self.try_send(&packet).await? {
                self.deferred.push_front(packet);
                break;
            }
        }
        Ok(())
    }

    async fn try_send(&mut self, packet: &Outgoing) -> Result<Sent, LinkError> {
        let result = match packet {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                qos,
                dup: _, // See the module docs.
            } => {
                let name = MqttString::from_str(topic)
                    .ok()
                    .and_then(TopicName::new)
                    .ok_or(LinkError::Protocol)?;
                let options =
                    PublicationOptions::new(TopicReference::Name(name)).qos(mqtt_qos(*qos));
                match self
                    .client
                    .publish(&options, Bytes::from(payload.as_slice()))
                    .await
                {
                    Ok(Some(wire)) => {
                        self.pids.insert(wire.get().get(), PidKind::Publish, *pid);
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Outgoing::Subscribe { pid, filter, qos } => {
                let filter = MqttString::from_str(filter)
                    .ok()
                    .and_then(TopicFilter::new)
                    .ok_or(LinkError::Protocol)?;
                let options = SubscriptionOptions::new().qos(mqtt_qos(*qos));
                match self.client.subscribe(filter, &options).await {
                    Ok(wire) => {
                        self.pids.insert(wire.get().get(), PidKind::Subscribe, *pid);
                        Ok(())
                    }
                    Err(MqttError::UnsupportedByServer) => {
                        // E.g. a wildcard filter while the server announced no wildcard
                        // support: answer like the server would have, with a failed SUBACK.
                        log::warn!("mqtt5: server cannot accept a subscription (pid {pid})");
                        self.local.push_back(Incoming::SubAck {
                            pid: *pid,
                            granted: false,
                        });
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Outgoing::Unsubscribe { pid, filter } => {
                let filter = MqttString::from_str(filter)
                    .ok()
                    .and_then(TopicFilter::new)
                    .ok_or(LinkError::Protocol)?;
                match self
                    .client
                    .unsubscribe(filter, &UnsubscriptionOptions::new())
                    .await
                {
                    Ok(wire) => {
                        self.pids
                            .insert(wire.get().get(), PidKind::Unsubscribe, *pid);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => Ok(Sent::Done),
            Err(
                MqttError::SendQuotaExceeded
                | MqttError::SessionBuffer
                | MqttError::AllPacketIdentifiersUsed,
            ) => Ok(Sent::Busy),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Converts one client event; `true` in the second field when it freed an in-flight slot.
    fn convert(
        &mut self,
        event: Event<'_, MAX_SUBSCRIPTION_IDENTIFIERS, MAX_USER_PROPERTIES>,
    ) -> Result<(Incoming, bool), LinkError> {
        Ok(match event {
            Event::Pingresp => (Incoming::PingResp, false),
            Event::Publish(p) => {
                let topic = match p.topic {
                    TopicReference::Name(name) | TopicReference::Mapping(name, _) => {
                        MqttString::from(name).as_str().to_string()
                    }
                    // We announce no incoming topic aliases, so `rust-mqtt` rejects them
                    // before this point.
                    TopicReference::Alias(_) => return Err(LinkError::Protocol),
                };
                let qos = match p.identified_qos {
                    IdentifiedQoS::AtMostOnce => Qos::AtMostOnce,
                    IdentifiedQoS::AtLeastOnce(_) | IdentifiedQoS::ExactlyOnce(_) => {
                        Qos::AtLeastOnce
                    }
                };
                let payload = p.message.as_bytes().to_vec();
                (
                    Incoming::Publish {
                        topic,
                        payload,
                        qos,
                    },
                    false,
                )
            }
            Event::PublishAcknowledged(ack) => {
                let wire = ack.packet_identifier.get().get();
                (
                    self.pids
                        .take(wire, PidKind::Publish)
                        .map_or(Incoming::Other, Incoming::PubAck),
                    true,
                )
            }
            Event::PublishRejected(rej) => {
                let wire = rej.packet_identifier.get().get();
                let kernel = self.pids.take(wire, PidKind::Publish);
                log::warn!(
                    "mqtt5: publish rejected by the server, reason 0x{:02x}",
                    rej.reason_code.value()
                );
                (kernel.map_or(Incoming::Other, Incoming::PubRejected), true)
            }
            Event::Suback(s) => {
                let wire = s.packet_identifier.get().get();
                let granted = !s.reason_code.is_erroneous();
                let event = self
                    .pids
                    .take(wire, PidKind::Subscribe)
                    .map_or(Incoming::Other, |pid| Incoming::SubAck { pid, granted });
                (event, true)
            }
            Event::Unsuback(s) => {
                let wire = s.packet_identifier.get().get();
                (
                    self.pids
                        .take(wire, PidKind::Unsubscribe)
                        .map_or(Incoming::Other, Incoming::UnsubAck),
                    true,
                )
            }
            // Duplicates of an incoming QoS 2 message, QoS 2 steps for our side (we never
            // publish QoS 2), stray acknowledgements, AUTH (never negotiated).
            _ => (Incoming::Other, false),
        })
    }
}

fn mqtt_qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// CONNACK reason code (>= 0x80) to the kernel's view.
fn refusal(code: u8) -> Refusal {
    match code {
        0x85 => Refusal::IdentifierRejected,
        0x86 => Refusal::BadCredentials,
        0x87 => Refusal::NotAuthorized,
        0x88 | 0x89 => Refusal::ServerUnavailable,
        other => Refusal::Other(other),
    }
}

impl<T: Read + Write> MqttLink for V5Link<'_, T> {
    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        match self.client.shared_config().keep_alive {
            rust_mqtt::config::KeepAlive::Seconds(s) => Some(s.get()),
            rust_mqtt::config::KeepAlive::Infinite => None,
        }
    }

    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        let transport = self.transport.take().ok_or(LinkError::Network)?;
        let client_id = MqttString::from_str(params.client_id).map_err(|_| LinkError::TooLarge)?;
        let user_name = MqttString::from_str(params.username).map_err(|_| LinkError::TooLarge)?;
        let password =
            MqttBinary::from_slice(params.password.as_bytes()).map_err(|_| LinkError::TooLarge)?;
        let keep_alive =
            NonZero::new(params.keepalive_secs).map_or(KeepAlive::Infinite, KeepAlive::Seconds);
        let max_packet = NonZero::new(MAX_PACKET_LEN as u32).ok_or(LinkError::TooLarge)?;
        let options = ConnectOptions::new()
            .clean_start()
            .keep_alive(keep_alive)
            .maximum_packet_size(max_packet)
            // Let the server add reason strings / user properties to any packet: with this
            // off, `rust-mqtt` treats them as a protocol error (tolerant on input).
            .request_problem_information()
            .user_name(user_name)
            .password(password);
        // From here on the client owns the transport and `abort` may be due.
        self.state = State::Up;
        match self
            .client
            .connect(transport, &options, Some(client_id))
            .await
        {
            Ok(_) => Ok(()),
            Err(MqttError::Disconnect { reason, .. }) => {
                self.state = State::Failed;
                Err(LinkError::Refused(refusal(reason.value())))
            }
            Err(e) => {
                let e = self.fail(e);
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    async fn send(&mut self, packet: &Outgoing) -> Result<(), LinkError> {
        self.send_or_defer(packet).await
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        self.client.ping().await.map_err(|e| self.fail(e))
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        if self.header.is_some() || !self.local.is_empty() {
            return Ok(());
        }
        match self.client.poll_header().await {
            Ok(header) => {
                self.header = Some(header);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn receive(&mut self) -> Result<Incoming, LinkError> {
        if let Some(event) = self.local.pop_front() {
            return Ok(event);
        }
        if self.header.is_none() {
            self.ready().await?;
        }
        let header = self.header.take().ok_or(LinkError::Protocol)?;
        let event = match self.client.poll_body(header).await {
            Ok(event) => event,
            Err(e) => return Err(self.fail(e)),
        };
        let (incoming, freed) = self.convert(event)?;
        if freed {
            self.drain_deferred().await?;
        }
        Ok(incoming)
    }

    async fn disconnect(&mut self) {
        match self.state {
            State::Up => {
                if let Err(e) = self.client.disconnect(&DisconnectOptions::new()).await
                    && !e.is_recoverable()
                {
                    self.abort().await;
                }
            }
            State::Failed => {
                self.abort().await;
            }
            State::Fresh | State::Closed => {}
        }
        self.state = State::Closed;
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

    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        push_len(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// MQTT 5 CONNECT as the spec lays it out, assembled by hand.
    fn connect_bytes(client_id: &str, user: &str, pass: &str, keepalive: u16) -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0b1100_0010];
        body.extend_from_slice(&keepalive.to_be_bytes());
        // Properties: Receive Maximum 8, Maximum Packet Size 8192.
        body.extend_from_slice(&[8, 0x21, 0, RECEIVE_MAXIMUM as u8, 0x27, 0, 0, 0x20, 0x00]);
        for field in [client_id, user, pass] {
            body.extend(string(field));
        }
        packet(0x10, &body)
    }

    const PARAMS: ConnectParams<'static> = ConnectParams {
        client_id: "pk.dn|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|",
        username: "dn&pk",
        password: "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        keepalive_secs: 60,
    };

    /// CONNACK success without properties.
    const CONNACK_OK: [u8; 5] = [0x20, 0x03, 0x00, 0x00, 0x00];

    fn publish(pid: u16, topic: &str, payload: &[u8], qos: Qos) -> Outgoing {
        Outgoing::Publish {
            pid,
            topic: topic.into(),
            payload: payload.to_vec(),
            qos,
            dup: false,
        }
    }

    /// Runs `f` against a link that completed CONNECT with `connack`; the written record is
    /// cleared first.
    fn with_link(
        connack: &[u8],
        f: impl AsyncFnOnce(&mut V5Link<'_, FakeTransport>, &FakeTransport),
    ) {
        let mut buffer = AllocBuffer;
        let fake = FakeTransport::new();
        let mut link = V5Link::new(&mut buffer, fake.clone());
        fake.push(connack);
        block_on(async {
            link.connect(&PARAMS).await.unwrap();
            fake.take_written();
            f(&mut link, &fake).await;
        });
    }

    /// Wire pid of the QoS 1 PUBLISH in `bytes` (one packet, 1-byte remaining length).
    fn publish_pid(bytes: &[u8]) -> u16 {
        let topic_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        u16::from_be_bytes([bytes[4 + topic_len], bytes[5 + topic_len]])
    }

    #[test]
    fn connect_accepted_is_byte_exact_and_one_write() {
        let mut buffer = AllocBuffer;
        let fake = FakeTransport::new();
        let mut link = V5Link::new(&mut buffer, fake.clone());
        fake.push(&CONNACK_OK);
        assert_eq!(block_on(link.connect(&PARAMS)), Ok(()));
        assert_eq!(
            fake.take_written(),
            connect_bytes(PARAMS.client_id, PARAMS.username, PARAMS.password, 60)
        );
        assert_eq!(fake.write_calls(), 1);
        // A second connect on the same link has no transport left.
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Network));
    }

    #[test]
    fn connect_refusals_map_to_refusal() {
        let cases = [
            (0x85, Refusal::IdentifierRejected),
            (0x86, Refusal::BadCredentials),
            (0x87, Refusal::NotAuthorized),
            (0x88, Refusal::ServerUnavailable),
            (0x89, Refusal::ServerUnavailable),
            (0x8A, Refusal::Other(0x8A)),
        ];
        for (code, refusal) in cases {
            let mut buffer = AllocBuffer;
            let fake = FakeTransport::new();
            let mut link = V5Link::new(&mut buffer, fake.clone());
            fake.push(&[0x20, 0x03, 0x00, code, 0x00]);
            let r = block_on(link.connect(&PARAMS));
            assert_eq!(r, Err(LinkError::Refused(refusal)), "code {code:#x}");
            // Closing after a refusal must neither panic nor write anything.
            fake.take_written();
            block_on(link.disconnect());
            assert!(fake.take_written().is_empty());
        }
    }

    #[test]
    fn connect_answered_by_close_or_garbage_fails() {
        let mut buffer = AllocBuffer;
        let fake = FakeTransport::new();
        let mut link = V5Link::new(&mut buffer, fake.clone());
        fake.close();
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Network));
        block_on(link.disconnect());

        let mut buffer = AllocBuffer;
        let fake = FakeTransport::new();
        let mut link = V5Link::new(&mut buffer, fake.clone());
        fake.push(&[0xD0, 0x00]);
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Protocol));
        block_on(link.disconnect());
    }

    #[test]
    fn publish_qos0_and_qos1_map_pids_back_to_the_kernel() {
        with_link(&CONNACK_OK, async |link, fake| {
            link.send(&publish(0, "a/b", b"hi", Qos::AtMostOnce))
                .await
                .unwrap();
            let mut body = string("a/b");
            body.push(0); // no properties
            body.extend_from_slice(b"hi");
            assert_eq!(fake.take_written(), packet(0x30, &body));
            assert_eq!(fake.write_calls(), 2, "one transport write per packet");

            link.send(&publish(0x0107, "a/b", b"x", Qos::AtLeastOnce))
                .await
                .unwrap();
            let wire = fake.take_written();
            let pid = publish_pid(&wire);
            let mut body = string("a/b");
            body.extend_from_slice(&pid.to_be_bytes());
            body.push(0);
            body.push(b'x');
            assert_eq!(wire, packet(0x32, &body));
            assert_eq!(fake.write_calls(), 3);

            // PUBACK (short form, success) for the library's pid -> the kernel's pid.
            let [hi, lo] = pid.to_be_bytes();
            fake.push(&[0x40, 0x02, hi, lo]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Ok(Incoming::PubAck(0x0107)));
            // A second PUBACK for it is stray.
            fake.push(&[0x40, 0x02, hi, lo]);
            assert_eq!(link.receive().await, Ok(Incoming::Other));
        });
    }

    #[test]
    fn rejected_publish_is_reported_as_rejected() {
        with_link(&CONNACK_OK, async |link, fake| {
            link.send(&publish(42, "t", b"", Qos::AtLeastOnce))
                .await
                .unwrap();
            let [hi, lo] = publish_pid(&fake.take_written()).to_be_bytes();
            // PUBACK with reason 0x87 (not authorised) and no properties.
            fake.push(&[0x40, 0x04, hi, lo, 0x87, 0x00]);
            assert_eq!(link.receive().await, Ok(Incoming::PubRejected(42)));
        });
    }

    #[test]
    fn subscribe_success_and_failure_and_unsubscribe() {
        with_link(&CONNACK_OK, async |link, fake| {
            link.send(&Outgoing::Subscribe {
                pid: 500,
                filter: "a/+".into(),
                qos: Qos::AtLeastOnce,
            })
            .await
            .unwrap();
            let wire = fake.take_written();
            let pid1 = u16::from_be_bytes([wire[2], wire[3]]);
            let mut body = pid1.to_be_bytes().to_vec();
            body.push(0);
            body.extend(string("a/+"));
            body.push(0x01); // QoS 1, no flags
            assert_eq!(wire, packet(0x82, &body));

            link.send(&Outgoing::Subscribe {
                pid: 501,
                filter: "b/#".into(),
                qos: Qos::AtMostOnce,
            })
            .await
            .unwrap();
            let wire = fake.take_written();
            let pid2 = u16::from_be_bytes([wire[2], wire[3]]);
            assert_ne!(pid1, pid2);

            // Answer out of order: failure (0x80) for the second, success for the first.
            let [h2, l2] = pid2.to_be_bytes();
            let [h1, l1] = pid1.to_be_bytes();
            fake.push(&[0x90, 0x04, h2, l2, 0x00, 0x80]);
            fake.push(&[0x90, 0x04, h1, l1, 0x00, 0x01]);
            assert_eq!(
                link.receive().await,
                Ok(Incoming::SubAck {
                    pid: 501,
                    granted: false
                })
            );
            assert_eq!(
                link.receive().await,
                Ok(Incoming::SubAck {
                    pid: 500,
                    granted: true
                })
            );

            link.send(&Outgoing::Unsubscribe {
                pid: 502,
                filter: "a/+".into(),
            })
            .await
            .unwrap();
            let wire = fake.take_written();
            let pid3 = u16::from_be_bytes([wire[2], wire[3]]);
            let mut body = pid3.to_be_bytes().to_vec();
            body.push(0);
            body.extend(string("a/+"));
            assert_eq!(wire, packet(0xA2, &body));
            let [h3, l3] = pid3.to_be_bytes();
            fake.push(&[0xB0, 0x04, h3, l3, 0x00, 0x00]);
            assert_eq!(link.receive().await, Ok(Incoming::UnsubAck(502)));
        });
    }

    #[test]
    fn wildcard_subscribe_refused_locally_when_server_has_no_wildcards() {
        // CONNACK with Wildcard Subscription Available = 0.
        with_link(
            &[0x20, 0x05, 0x00, 0x00, 0x02, 0x28, 0x00],
            async |link, fake| {
                link.send(&Outgoing::Subscribe {
                    pid: 9,
                    filter: "a/#".into(),
                    qos: Qos::AtMostOnce,
                })
                .await
                .unwrap();
                assert!(fake.take_written().is_empty());
                fake.pend_when_empty(true);
                assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
                assert_eq!(
                    link.receive().await,
                    Ok(Incoming::SubAck {
                        pid: 9,
                        granted: false
                    })
                );
            },
        );
    }

    #[test]
    fn publishes_beyond_the_server_receive_maximum_wait_in_order() {
        // CONNACK with Receive Maximum = 1.
        with_link(
            &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x01],
            async |link, fake| {
                link.send(&publish(100, "t", b"1", Qos::AtLeastOnce))
                    .await
                    .unwrap();
                let first = publish_pid(&fake.take_written());
                // No quota left: both wait, the QoS 0 one behind the QoS 1 one.
                link.send(&publish(101, "t", b"2", Qos::AtLeastOnce))
                    .await
                    .unwrap();
                link.send(&publish(0, "t", b"3", Qos::AtMostOnce))
                    .await
                    .unwrap();
                assert!(fake.take_written().is_empty());

                let [hi, lo] = first.to_be_bytes();
                fake.push(&[0x40, 0x02, hi, lo]);
                assert_eq!(link.receive().await, Ok(Incoming::PubAck(100)));
                let written = fake.take_written();
                let second = publish_pid(&written);
                let mut body = string("t");
                body.extend_from_slice(&second.to_be_bytes());
                body.extend_from_slice(&[0, b'2']);
                let mut expected = packet(0x32, &body);
                expected.extend(packet(0x30, &[0, 1, b't', 0, b'3']));
                assert_eq!(written, expected);

                let [hi, lo] = second.to_be_bytes();
                fake.push(&[0x40, 0x02, hi, lo]);
                assert_eq!(link.receive().await, Ok(Incoming::PubAck(101)));
            },
        );
    }

    #[test]
    fn incoming_publishes_qos0_qos1_qos2() {
        with_link(&CONNACK_OK, async |link, fake| {
            // QoS 1, pid 0x2A, no properties: PUBACK (reason 0, no properties) goes out.
            let mut body = string("x/y");
            body.extend_from_slice(&[0x00, 0x2A, 0x00]);
            body.extend_from_slice(b"{}");
            fake.push(&packet(0x32, &body));
            link.ready().await.unwrap();
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "x/y".into(),
                    payload: b"{}".to_vec(),
                    qos: Qos::AtLeastOnce,
                })
            );
            assert_eq!(fake.take_written(), [0x40, 0x04, 0x00, 0x2A, 0x00, 0x00]);

            // QoS 0 with a user property (tolerated and ignored): nothing is written.
            let mut body = string("z");
            let mut props = vec![0x26];
            props.extend(string("k"));
            props.extend(string("v"));
            body.push(props.len() as u8);
            body.extend(props);
            body.push(b'!');
            fake.push(&packet(0x30, &body));
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "z".into(),
                    payload: b"!".to_vec(),
                    qos: Qos::AtMostOnce,
                })
            );
            assert!(fake.take_written().is_empty());

            // QoS 2: delivered once as QoS 1, PUBREC written; the duplicate is suppressed.
            let mut body = string("q");
            body.extend_from_slice(&[0x00, 0x07, 0x00, b'z']);
            fake.push(&packet(0x34, &body));
            fake.push(&packet(0x3C, &body)); // DUP resend
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "q".into(),
                    payload: b"z".to_vec(),
                    qos: Qos::AtLeastOnce,
                })
            );
            assert_eq!(link.receive().await, Ok(Incoming::Other));
            let written = fake.take_written();
            assert_eq!(written.first(), Some(&0x50), "PUBREC: {written:02x?}");
        });
    }

    #[test]
    fn ping_and_pingresp() {
        with_link(&CONNACK_OK, async |link, fake| {
            link.ping().await.unwrap();
            assert_eq!(fake.take_written(), [0xC0, 0x00]);
            fake.push(&[0xD0, 0x00]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Ok(Incoming::PingResp));
        });
    }

    #[test]
    fn server_disconnect_carries_its_reason() {
        with_link(&CONNACK_OK, async |link, fake| {
            // DISCONNECT, reason 0x8E (session taken over), no properties.
            fake.push(&[0xE0, 0x02, 0x8E, 0x00]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Err(LinkError::ServerDisconnect(0x8E)));
            link.disconnect().await; // must not panic, nothing to say
            assert!(fake.take_written().is_empty());
        });
    }

    #[test]
    fn graceful_disconnect_writes_disconnect() {
        with_link(&CONNACK_OK, async |link, fake| {
            link.disconnect().await;
            assert_eq!(fake.take_written(), [0xE0, 0x02, 0x00, 0x00]);
        });
    }

    #[test]
    fn peer_close_is_network_error() {
        with_link(&CONNACK_OK, async |link, fake| {
            fake.close();
            assert_eq!(link.ready().await, Err(LinkError::Network));
            link.disconnect().await;
        });
        // Closed in the middle of a packet body.
        with_link(&CONNACK_OK, async |link, fake| {
            fake.push(&[0x30, 0x08, 0x00, 0x01]);
            fake.close();
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Err(LinkError::Network));
            link.disconnect().await;
        });
    }

    #[test]
    fn oversized_incoming_packet_ends_the_link() {
        // Over the advertised Maximum Packet Size: a protocol violation by the server, caught
        // from the fixed header alone (see the module docs for why this is not `TooLarge`).
        with_link(&CONNACK_OK, async |link, fake| {
            fake.push(&[0x30, 0xA8, 0x46]);
            fake.pend_when_empty(true);
            assert_eq!(link.ready().await, Err(LinkError::Protocol));
            link.disconnect().await;
            // The client tells the server why: DISCONNECT with 0x95 (packet too large).
            assert_eq!(fake.take_written(), [0xE0, 0x02, 0x95, 0x00]);
        });
    }

    #[test]
    fn oversized_outgoing_publish_is_too_large() {
        with_link(&CONNACK_OK, async |link, fake| {
            let payload = vec![0u8; MAX_PACKET_LEN];
            let r = link.send(&publish(1, "t", &payload, Qos::AtMostOnce)).await;
            assert_eq!(r, Err(LinkError::TooLarge));
            assert!(fake.take_written().is_empty());
        });
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bytes in [
            &[0x00, 0x00][..],               // reserved packet type
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF], // five length bytes
            &[0x10, 0x00],                   // CONNECT from the server
            &[0x30, 0x03, 0x00, 0x09, b'a'], // topic longer than the packet
        ] {
            with_link(&CONNACK_OK, async |link, fake| {
                fake.push(bytes);
                fake.close();
                let r = match link.ready().await {
                    Ok(()) => link.receive().await,
                    Err(e) => Err(e),
                };
                assert_eq!(r, Err(LinkError::Protocol), "{bytes:02x?}");
                link.disconnect().await;
            });
        }
    }

    #[test]
    fn cancelled_ready_loses_no_bytes() {
        with_link(&CONNACK_OK, async |link, fake| {
            let mut body = string("a/b");
            body.extend_from_slice(&[0x00, 0x09, 0x00]);
            body.extend_from_slice(b"payload");
            let bytes = packet(0x32, &body);
            fake.pend_when_empty(true);
            fake.read_chunk(1);
            fake.push(&bytes[..1]);
            // The header is read a byte at a time; cancel between its bytes.
            assert!(poll_once(link.ready()).is_pending());
            assert!(poll_once(link.ready()).is_pending());
            fake.push(&bytes[1..]);
            assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
            // A second `ready` before `receive` keeps the stored header.
            assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "a/b".into(),
                    payload: b"payload".to_vec(),
                    qos: Qos::AtLeastOnce,
                })
            );
            assert_eq!(fake.take_written(), [0x40, 0x04, 0x00, 0x09, 0x00, 0x00]);
        });
    }
}
