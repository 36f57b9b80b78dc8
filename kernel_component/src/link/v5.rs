//! MQTT 5 link: the `rust-mqtt` 0.6 [`Client`] over a [`PacketWriter`].
//!
//! What this adapter adds on top of the client:
//! - **Kernel packet identifiers.** `rust-mqtt` allocates its own pids; [`PidMap`] maps each one
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
//! - Connects with Clean Start and session expiry 0 (the kernel resends and resubscribes), and
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
//!   delivery: it is reported as [`Incoming::PubAck`] (resending would fail again) and logged.

use alloc::collections::{BTreeMap, VecDeque};
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

use super::writer::{MAX_PACKET_LEN, PacketWriter};
use super::{ConnectParams, Incoming, LinkError, MqttLink, Refusal};
use crate::kernel::Outgoing;

/// Which request a packet identifier belongs to (pids are shared by all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidKind {
    /// A QoS 1 PUBLISH awaiting PUBACK.
    Publish,
    /// A SUBSCRIBE awaiting SUBACK.
    Subscribe,
    /// An UNSUBSCRIBE awaiting UNSUBACK.
    Unsubscribe,
}

/// Wire pid -> kernel pid for the requests outstanding on one connection.
///
/// Shared by both links so they report acknowledgements identically: only for requests sent
/// on this connection, once each, with the kernel's pid. Bounded by the MQTT pid space, and in
/// practice by the kernel's own outbox and subscription caps.
#[derive(Debug, Default)]
pub(crate) struct PidMap {
    map: BTreeMap<u16, (PidKind, u16)>,
}

impl PidMap {
    /// Remembers that `wire` was sent for the kernel's `kernel` pid.
    pub(crate) fn insert(&mut self, wire: u16, kind: PidKind, kernel: u16) {
        self.map.insert(wire, (kind, kernel));
    }

    /// The kernel pid for an acknowledgement of `kind` carrying `wire`, forgetting it; `None`
    /// for an identifier not outstanding (or outstanding for a different kind of request).
    pub(crate) fn take(&mut self, wire: u16, kind: PidKind) -> Option<u16> {
        match self.map.get(&wire) {
            Some((k, _)) if *k == kind => self.map.remove(&wire).map(|(_, kernel)| kernel),
            _ => None,
        }
    }
}

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
        if self.deferred.is_empty() {
            if let Sent::Done = self.try_send(packet).await? {
                return Ok(());
            }
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
                (kernel.map_or(Incoming::Other, Incoming::PubAck), true)
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
                if let Err(e) = self.client.disconnect(&DisconnectOptions::new()).await {
                    if !e.is_recoverable() {
                        let _ = self.client.abort().await;
                    }
                }
            }
            State::Failed => {
                // Sends the DISCONNECT with the reason the client chose, if the server caused
                // the failure.
                let _ = self.client.abort().await;
            }
            State::Fresh | State::Closed => {}
        }
        self.state = State::Closed;
    }
}
