//! MQTT 5 link: the `rust-mqtt` 0.6 [`Client`], fed whole, checked packets from memory.
//!
//! The link keeps the transport. The client gets a pipe instead (`link/v5/pipe.rs`): it reads
//! from one packet the link loaded and writes into the link's write buffer.
//!
//! - **Receive**: the link reads one whole packet into its receive buffer (`link/reader.rs`:
//!   a few transport reads per packet, not `rust-mqtt`'s one per header byte), checks every
//!   length in it (`link/v5/check.rs`: `rust-mqtt` 0.6 panics or reads past the packet on a
//!   bad user property length), lends the buffer to the pipe and polls the client, which
//!   parses the packet from memory without ever waiting. A bad packet is
//!   [`LinkError::Protocol`] before `rust-mqtt` sees it; nothing after it is consumed.
//! - **Send**: whatever the client writes and flushes leaves in one transport write.
//! - **Borrowed**: [`Incoming::Publish`] borrows topic and payload from the receive buffer.
//!   `rust-mqtt` is shown the PUBLISH without its payload (fixed header rewritten), so it never
//!   copies the payload; it still checks topic, packet identifier and properties.
//!
//! What this adapter adds on top of the client:
//! - **Kernel packet identifiers.** `rust-mqtt` allocates its own pids; a `PidMap`
//!   (`link/pids.rs`) maps each one back to the kernel's so [`Incoming::PubAck`],
//!   [`Incoming::SubAck`] and [`Incoming::UnsubAck`] carry the pid the kernel chose.
//! - **Flow control reported.** When the server's Receive Maximum or the client's own in-flight
//!   tables are full, `rust-mqtt` refuses a packet before writing anything; [`MqttLink::send`]
//!   answers [`Sent::Busy`] and the caller offers it again after the next acknowledgement.
//! - **QoS 1 acknowledged on request.** Every incoming QoS 1 PUBLISH is put in `rust-mqtt`'s
//!   manual acknowledgement mode (`Client::ack_manually_when`); [`MqttLink::acknowledge`]
//!   sends its PUBACK (`Client::manual_acknowledge`). Until then it holds one of the
//!   [`RECEIVE_MAXIMUM`] slots we announce, so a compliant server stops sending QoS 1 when the
//!   kernel stops acknowledging [MQTT-3.3.4-9]. QoS 2 keeps `rust-mqtt`'s automatic exchange.
//! - **Oversized PUBLISH skipped.** We announce Maximum Packet Size = [`MAX_PACKET_LEN`], so a
//!   compliant server never sends a larger packet [MQTT-3.1.2-24]. From one that does, a
//!   PUBLISH is skipped (see [`crate::link`]) and, at QoS 1, answered with PUBACK 0x83
//!   "Implementation specific error" (valid, but not accepted: it completes the exchange
//!   without claiming delivery); at QoS 2 with PUBREC 0x83, which ends that exchange too.
//!   `rust-mqtt` never sees it. Any other packet that large is [`LinkError::TooLarge`] and
//!   the DISCONNECT says 0x95 "Packet too large".
//!
//! Behaviour notes:
//! - Connects with Clean Start and session expiry 0 (the kernel resends and resubscribes) and
//!   allows reason strings on every packet (Request Problem Information).
//! - DUP: `rust-mqtt` only sets DUP through `republish`, which requires the same session. With
//!   Clean Start every connection is a new session, so a resent message goes out with DUP = 0,
//!   which is what MQTT 5 expects for a first delivery attempt in a session.
//! - Incoming QoS 2 (never granted: we subscribe at QoS <= 1) gets QoS 1 delivery semantics:
//!   returned as [`Qos::AtLeastOnce`] without a `pid`; `rust-mqtt` does the
//!   PUBREC/PUBREL/PUBCOMP exchange and suppresses duplicates of it.
//! - A PUBACK with a failure reason code (e.g. 0x87 not authorised) ends that message's
//!   delivery: it is reported as [`Incoming::PubRejected`] (resending would fail again) and logged.
//! - A packet the link refuses (malformed, or too large) ends the link; [`MqttLink::disconnect`]
//!   then tells the server why (DISCONNECT 0x81 or 0x95) [MQTT-4.13.1-1].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::future::Future;
use core::num::NonZero;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, Waker};

use aliot_abi::Qos;
use embedded_io_async::{ErrorKind, Read, Write};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::event::{Event, Publish};
use rust_mqtt::client::options::{
    AckOptions, ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions,
    TopicReference, UnsubscriptionOptions,
};
use rust_mqtt::client::{Client, MqttError};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{
    IdentifiedQoS, MqttBinary, MqttString, PacketIdentifier, QoS, ReasonCode, TopicFilter,
    TopicName,
};

use self::check::{Layout, check};
use self::pipe::{Feed, Pipe};
use super::pids::{PidKind, PidMap};
use super::reader::{Dropped, Frame, PacketReader};
use super::writer::{MAX_PACKET_LEN, write_packet};
use super::{ConnectParams, Incoming, LinkError, MqttLink, Outgoing, Refusal, Sent};

mod check;
mod pipe;

/// Outstanding SUBSCRIBEs (and, separately, UNSUBSCRIBEs) `rust-mqtt` tracks at once.
const SUBSCRIBE_MAXIMUM: usize = 8;
/// Incoming QoS 1/2 publications in flight, announced to the server as Receive Maximum: QoS 1
/// ones not acknowledged yet, QoS 2 ones whose exchange is not complete.
pub const RECEIVE_MAXIMUM: usize = 8;
/// Outgoing QoS 1 publications in flight; beyond that (or the server's Receive Maximum, if
/// lower) [`MqttLink::send`] answers [`Sent::Busy`].
const SEND_MAXIMUM: usize = 16;
/// Subscription identifiers kept per incoming PUBLISH (we set none).
const MAX_SUBSCRIPTION_IDENTIFIERS: usize = 1;
/// User properties kept per packet (extra ones are skipped by `rust-mqtt`, not an error).
const MAX_USER_PROPERTIES: usize = 4;

type Mqtt5Client = Client<
    'static,
    'static,
    Pipe,
    AllocBuffer,
    SUBSCRIBE_MAXIMUM,
    RECEIVE_MAXIMUM,
    SEND_MAXIMUM,
    MAX_SUBSCRIPTION_IDENTIFIERS,
    MAX_USER_PROPERTIES,
    0,
    0,
>;

/// Where the connection stands, to end it the way the client allows (`abort` on a healthy
/// `rust-mqtt` connection panics in debug builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `connect` not called yet.
    Fresh,
    /// Connected, no unrecoverable error.
    Up,
    /// The link refused a packet from the server that `rust-mqtt` never saw: `rust-mqtt` is
    /// healthy and sends DISCONNECT with this reason.
    Refused(ReasonCode),
    /// `rust-mqtt` hit an unrecoverable error; `abort` is due.
    Failed,
    /// Disconnected, aborted, or given up before connecting.
    Closed,
}

/// One MQTT 5 connection over transport `T`.
pub struct V5Link<T> {
    client: Mqtt5Client,
    pipe: Pipe,
    io: T,
    reader: PacketReader,
    state: State,
    pids: PidMap,
    /// Incoming QoS 1 publications waiting for [`MqttLink::acknowledge`] (`rust-mqtt` tracks
    /// them too, but its identifiers cannot be made from a number).
    unacked: [Option<PacketIdentifier>; RECEIVE_MAXIMUM],
    /// Subscriptions the server cannot accept at all, answered locally before reading the
    /// network (kernel pids).
    refused_subs: VecDeque<u16>,
}

/// Every incoming QoS 1 PUBLISH waits for [`MqttLink::acknowledge`]; QoS 2 stays automatic.
fn ack_manually(publish: &Publish<'_, MAX_SUBSCRIPTION_IDENTIFIERS, MAX_USER_PROPERTIES>) -> bool {
    matches!(publish.identified_qos, IdentifiedQoS::AtLeastOnce(_))
}

/// Packet types and flags are checked by `rust-mqtt`; only type 0 is refused while framing.
fn any_packet(first: u8) -> bool {
    first >> 4 != 0
}

impl<T: Read + Write> V5Link<T> {
    /// Wraps a freshly opened transport. Nothing is sent until [`MqttLink::connect`].
    pub fn new(io: T) -> Self {
        // `AllocBuffer` is a zero-sized handle to the global allocator: leaking a box of it
        // allocates nothing and gives the `'static` borrow the client keeps.
        let buffer: &'static mut AllocBuffer = Box::leak(Box::new(AllocBuffer));
        let mut client = Client::new(buffer);
        client.ack_manually_when(&ack_manually);
        Self {
            client,
            pipe: Pipe::new(),
            io,
            reader: PacketReader::new(any_packet),
            state: State::Fresh,
            pids: PidMap::default(),
            unacked: [None; RECEIVE_MAXIMUM],
            refused_subs: VecDeque::new(),
        }
    }

    /// Lets the client send the DISCONNECT it owes after an unrecoverable error (with the
    /// reason it chose, when the server caused the failure). `abort` writes without flushing.
    async fn abort(&mut self) {
        let _ = poll_now(pin!(self.client.abort()));
        self.pipe.flush_all();
        let _ = write_out(&mut self.io, &self.pipe).await;
    }
}

/// Polls a client call once. Against the pipe a call only ever waits for input (`connect`
/// waiting for CONNACK); everything else finishes in this one poll.
fn poll_now<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Writes what the client flushed to the transport, in one write.
async fn write_out<T: Write>(io: &mut T, pipe: &Pipe) -> Result<(), LinkError> {
    let bytes = pipe.take_flushed();
    if bytes.is_empty() {
        return Ok(());
    }
    let result = write_packet(io, &bytes).await;
    pipe.give_back(bytes);
    result
}

/// Lends the receive buffer to the pipe with the checked packet of `len` bytes in it. A
/// PUBLISH is shown without its payload (see the module docs).
fn load(pipe: &Pipe, reader: &mut PacketReader, len: usize, layout: &Layout) {
    let bytes = reader.bytes(len);
    let mut head = [0u8; 5];
    let (head_len, range) = match (&layout.publish, bytes.first()) {
        (Some(publish), Some(&first)) => {
            let body = publish.payload.start.saturating_sub(layout.header_len);
            head[0] = first;
            let n = encode_length(body, head.get_mut(1..).unwrap_or_default());
            (1 + n, layout.header_len..publish.payload.start)
        }
        _ => (0, 0..len),
    };
    let feed = Feed::new(
        reader.lend(),
        head.get(..head_len).unwrap_or_default(),
        range,
    );
    pipe.load(feed);
}

/// Encodes a remaining length [MQTT-1.5.5] into `out`; returns the bytes used.
fn encode_length(mut len: usize, out: &mut [u8]) -> usize {
    let mut used = 0;
    for slot in out.iter_mut() {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        *slot = byte;
        used += 1;
        if len == 0 {
            break;
        }
    }
    used
}

/// Runs one client call: polls it, writes out what it wrote, and while it waits for input
/// reads the next whole packet, checks it and loads it. Returns the call's own result.
async fn drive<F: Future, T: Read + Write>(
    mut call: Pin<&mut F>,
    pipe: &Pipe,
    io: &mut T,
    reader: &mut PacketReader,
) -> Result<F::Output, LinkError> {
    let mut polled = poll_now(call.as_mut());
    loop {
        if let Some(buf) = pipe.unload() {
            reader.restore(buf);
        }
        write_out(io, pipe).await?;
        if let Poll::Ready(output) = polled {
            return Ok(output);
        }
        if !pipe.take_starved() {
            log_error!("mqtt5: the client waits for something other than input");
            return Err(LinkError::Protocol);
        }
        let frame = reader.ready(io).await?;
        reader.consume();
        // Only `connect` waits for input: nothing may come before CONNACK (MQTT 5 §3.2).
        let Frame::Packet(len) = frame else {
            return Err(LinkError::Protocol);
        };
        let layout = check(reader.bytes(len))?;
        load(pipe, reader, len, &layout);
        polled = poll_now(call.as_mut());
    }
}

/// Records an error from the client and converts it.
fn fail<const N: usize>(state: &mut State, e: MqttError<'_, N>) -> LinkError {
    if !e.is_recoverable() && matches!(*state, State::Up | State::Refused(_)) {
        *state = State::Failed;
    }
    match e {
        MqttError::Network(ErrorKind::OutOfMemory) => LinkError::TooLarge,
        // The client read past a packet it was fed: it misparsed it.
        MqttError::Network(ErrorKind::InvalidData) => LinkError::Protocol,
        MqttError::Network(_) | MqttError::RecoveryRequired => LinkError::Network,
        MqttError::Alloc
        | MqttError::PacketMaximumLengthExceeded
        | MqttError::ServerMaximumPacketSizeExceeded => LinkError::TooLarge,
        MqttError::Disconnect { reason, .. } => LinkError::ServerDisconnect(reason.value()),
        _ => LinkError::Protocol,
    }
}

/// Records that the link refused a packet from the server (see [`State::Refused`]).
fn refuse(state: &mut State, e: LinkError) -> LinkError {
    if *state == State::Up {
        match e {
            LinkError::Protocol => *state = State::Refused(ReasonCode::MalformedPacket),
            LinkError::TooLarge => *state = State::Refused(ReasonCode::PacketTooLarge),
            _ => {}
        }
    }
    e
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

/// Length on the wire of a packet with this remaining length.
fn wire_len(remaining: usize) -> usize {
    let length_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + length_bytes + remaining
}

/// Length on the wire of what `send` would write for `packet` (we add no properties).
fn outgoing_len(packet: &Outgoing<'_>) -> usize {
    match *packet {
        Outgoing::Publish {
            topic,
            payload,
            qos,
            ..
        } => {
            let pid = if qos == Qos::AtMostOnce { 0 } else { 2 };
            wire_len(2 + topic.len() + pid + 1 + payload.len())
        }
        // Packet identifier, properties, filter, subscription options.
        Outgoing::Subscribe { filter, .. } => wire_len(2 + 1 + 2 + filter.len() + 1),
        Outgoing::Unsubscribe { filter, .. } => wire_len(2 + 1 + 2 + filter.len()),
    }
}

/// The Incoming for one client event; a PUBLISH's topic and payload come from `packet`, the
/// checked packet the event was parsed from.
fn convert<'a>(
    event: Event<'_, MAX_SUBSCRIPTION_IDENTIFIERS, MAX_USER_PROPERTIES>,
    packet: &'a [u8],
    layout: &Layout,
    pids: &mut PidMap,
    unacked: &mut [Option<PacketIdentifier>],
) -> Result<Incoming<'a>, LinkError> {
    Ok(match event {
        Event::Pingresp => Incoming::PingResp,
        Event::Publish(p) => {
            let publish = layout.publish.as_ref().ok_or(LinkError::Protocol)?;
            let topic = packet
                .get(publish.topic.clone())
                .and_then(|t| core::str::from_utf8(t).ok())
                .ok_or(LinkError::Protocol)?;
            let payload = packet
                .get(publish.payload.clone())
                .ok_or(LinkError::Protocol)?;
            let (qos, pid) = match p.identified_qos {
                IdentifiedQoS::AtMostOnce => (Qos::AtMostOnce, None),
                IdentifiedQoS::AtLeastOnce(id) => {
                    // A resend of one still unacknowledged keeps its slot.
                    if !unacked.contains(&Some(id)) {
                        // `rust-mqtt` enforces RECEIVE_MAXIMUM, so a slot is free.
                        let slot = unacked
                            .iter_mut()
                            .find(|s| s.is_none())
                            .ok_or(LinkError::Protocol)?;
                        *slot = Some(id);
                    }
                    (Qos::AtLeastOnce, Some(id.get().get()))
                }
                IdentifiedQoS::ExactlyOnce(_) => (Qos::AtLeastOnce, None),
            };
            Incoming::Publish {
                topic,
                payload,
                qos,
                pid,
            }
        }
        Event::PublishAcknowledged(ack) => pids
            .take(ack.packet_identifier.get().get(), PidKind::Publish)
            .map_or(Incoming::Other, Incoming::PubAck),
        Event::PublishRejected(rej) => {
            let kernel = pids.take(rej.packet_identifier.get().get(), PidKind::Publish);
            log_warn!(
                "mqtt5: publish rejected by the server, reason 0x{:02x}",
                rej.reason_code.value()
            );
            kernel.map_or(Incoming::Other, Incoming::PubRejected)
        }
        Event::Suback(s) => {
            let granted = !s.reason_code.is_erroneous();
            pids.take(s.packet_identifier.get().get(), PidKind::Subscribe)
                .map_or(Incoming::Other, |pid| Incoming::SubAck { pid, granted })
        }
        Event::Unsuback(s) => pids
            .take(s.packet_identifier.get().get(), PidKind::Unsubscribe)
            .map_or(Incoming::Other, Incoming::UnsubAck),
        // Duplicates of an incoming QoS 2 message, QoS 2 steps for our side (we never
        // publish QoS 2), stray acknowledgements, AUTH (never negotiated).
        _ => Incoming::Other,
    })
}

impl<T: Read + Write> MqttLink for V5Link<T> {
    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        match self.client.shared_config().keep_alive {
            KeepAlive::Seconds(s) => Some(s.get()),
            KeepAlive::Infinite => None,
        }
    }

    fn oversized_dropped(&self) -> u32 {
        self.reader.oversized_dropped()
    }

    fn partial(&self) -> bool {
        self.reader.partial()
    }

    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        if self.state != State::Fresh {
            // One connection per link.
            return Err(LinkError::Network);
        }
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
        // Until CONNACK, any failure leaves nothing to say.
        self.state = State::Closed;
        let Self {
            client,
            pipe,
            io,
            reader,
            ..
        } = self;
        let call = pin!(client.connect(pipe.clone(), &options, Some(client_id)));
        match drive(call, pipe, io, reader).await? {
            Ok(_) => {
                self.state = State::Up;
                Ok(())
            }
            Err(MqttError::Disconnect { reason, .. }) => {
                self.state = State::Failed;
                Err(LinkError::Refused(refusal(reason.value())))
            }
            Err(e) => {
                self.state = State::Failed;
                Err(fail(&mut self.state, e))
            }
        }
    }

    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError> {
        if outgoing_len(packet) > MAX_PACKET_LEN {
            // Refused before `rust-mqtt` sees it: an over-long write would break its
            // connection, and a QoS 1 one would already hold an in-flight slot.
            return Err(LinkError::TooLarge);
        }
        let Self {
            client,
            pipe,
            io,
            reader,
            state,
            pids,
            refused_subs,
            ..
        } = self;
        let result = match *packet {
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
                    PublicationOptions::new(TopicReference::Name(name)).qos(mqtt_qos(qos));
                let call = pin!(client.publish(&options, Bytes::from(payload)));
                drive(call, pipe, io, reader)
                    .await?
                    .map(|wire| wire.map(|w| (w, PidKind::Publish, pid)))
            }
            Outgoing::Subscribe { pid, filter, qos } => {
                let filter = MqttString::from_str(filter)
                    .ok()
                    .and_then(TopicFilter::new)
                    .ok_or(LinkError::Protocol)?;
                let options = SubscriptionOptions::new().qos(mqtt_qos(qos));
                let call = pin!(client.subscribe(filter, &options));
                match drive(call, pipe, io, reader).await? {
                    Ok(wire) => Ok(Some((wire, PidKind::Subscribe, pid))),
                    Err(MqttError::UnsupportedByServer) => {
                        // E.g. a wildcard filter while the server announced no wildcard
                        // support: answer like the server would have, with a failed SUBACK.
                        log_warn!("mqtt5: server cannot accept a subscription (pid {})", pid);
                        refused_subs.push_back(pid);
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            Outgoing::Unsubscribe { pid, filter } => {
                let filter = MqttString::from_str(filter)
                    .ok()
                    .and_then(TopicFilter::new)
                    .ok_or(LinkError::Protocol)?;
                let options = UnsubscriptionOptions::new();
                let call = pin!(client.unsubscribe(filter, &options));
                drive(call, pipe, io, reader)
                    .await?
                    .map(|wire| Some((wire, PidKind::Unsubscribe, pid)))
            }
        };
        match result {
            Ok(record) => {
                if let Some((wire, kind, kernel)) = record {
                    pids.insert(wire.get().get(), kind, kernel);
                }
                Ok(Sent::Written)
            }
            // Refused before anything was written (see the module docs).
            Err(
                MqttError::SendQuotaExceeded
                | MqttError::SessionBuffer
                | MqttError::AllPacketIdentifiersUsed,
            ) => Ok(Sent::Busy),
            Err(e) => Err(fail(state, e)),
        }
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        let Self {
            client,
            pipe,
            io,
            reader,
            state,
            ..
        } = self;
        drive(pin!(client.ping()), pipe, io, reader)
            .await?
            .map_err(|e| fail(state, e))
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        if !self.refused_subs.is_empty() {
            return Ok(());
        }
        match self.reader.ready(&mut self.io).await {
            Ok(_) => Ok(()),
            Err(e) => Err(refuse(&mut self.state, e)),
        }
    }

    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError> {
        if let Some(pid) = self.refused_subs.pop_front() {
            return Ok(Incoming::SubAck {
                pid,
                granted: false,
            });
        }
        let Self {
            client,
            pipe,
            io,
            reader,
            state,
            pids,
            unacked,
            ..
        } = self;
        let frame = reader.ready(io).await.map_err(|e| refuse(state, e))?;
        reader.consume();
        let len = match frame {
            Frame::Packet(len) => len,
            Frame::Dropped(dropped) => {
                answer_dropped(io, dropped).await?;
                return Ok(Incoming::Other);
            }
        };
        let layout = check(reader.bytes(len)).map_err(|e| refuse(state, e))?;
        load(pipe, reader, len, &layout);
        let event = drive(pin!(client.poll()), pipe, io, reader)
            .await?
            .map_err(|e| fail(state, e))?;
        convert(event, reader.bytes(len), &layout, pids, unacked)
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        let Some(id) = self
            .unacked
            .iter_mut()
            .find(|slot| slot.is_some_and(|id| id.get().get() == pid))
            .and_then(Option::take)
        else {
            log_warn!(
                "mqtt5: asked to acknowledge packet id {}, which is not waiting",
                pid
            );
            return Ok(());
        };
        let Self {
            client,
            pipe,
            io,
            reader,
            state,
            ..
        } = self;
        let options = AckOptions::new();
        let call = pin!(client.manual_acknowledge(id, ReasonCode::Success, &options));
        match drive(call, pipe, io, reader).await? {
            Ok(()) => Ok(()),
            Err(e) => Err(fail(state, e)),
        }
    }

    async fn disconnect(&mut self) {
        let reason = match self.state {
            State::Up => ReasonCode::Success,
            State::Refused(reason) => reason,
            State::Failed => {
                self.abort().await;
                self.state = State::Closed;
                return;
            }
            State::Fresh | State::Closed => return,
        };
        self.state = State::Closed;
        let options = DisconnectOptions::new().reason_code(reason);
        let failed = {
            let Self {
                client,
                pipe,
                io,
                reader,
                ..
            } = &mut *self;
            let call = pin!(client.disconnect(&options));
            matches!(drive(call, pipe, io, reader).await, Ok(Err(e)) if !e.is_recoverable())
        };
        if failed {
            self.abort().await;
        }
    }
}

/// Answers a skipped oversized PUBLISH (see the module docs) straight on the transport:
/// `rust-mqtt` never saw it, so its session has nothing to update.
async fn answer_dropped<T: Write>(io: &mut T, dropped: Dropped) -> Result<(), LinkError> {
    let Some([hi, lo]) = dropped.pid.map(u16::to_be_bytes) else {
        return Ok(());
    };
    // Packet identifier, reason code 0x83, no properties.
    let reply = match dropped.qos {
        1 => [0x40, 0x03, hi, lo, 0x83],
        2 => [0x50, 0x03, hi, lo, 0x83],
        _ => return Ok(()),
    };
    write_packet(io, &reply).await
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

    fn publish<'a>(pid: u16, topic: &'a str, payload: &'a [u8], qos: Qos) -> Outgoing<'a> {
        Outgoing::Publish {
            pid,
            topic,
            payload,
            qos,
            dup: false,
        }
    }

    /// Runs `f` against a link that completed CONNECT with `connack`; the written record is
    /// cleared first.
    fn with_link(connack: &[u8], f: impl AsyncFnOnce(&mut V5Link<FakeTransport>, &FakeTransport)) {
        let fake = FakeTransport::new();
        let mut link = V5Link::new(fake.clone());
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
        let fake = FakeTransport::new();
        let mut link = V5Link::new(fake.clone());
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
            let fake = FakeTransport::new();
            let mut link = V5Link::new(fake.clone());
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
        let fake = FakeTransport::new();
        let mut link = V5Link::new(fake.clone());
        fake.close();
        assert_eq!(block_on(link.connect(&PARAMS)), Err(LinkError::Network));
        block_on(link.disconnect());

        let fake = FakeTransport::new();
        let mut link = V5Link::new(fake.clone());
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
                filter: "a/+",
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
                filter: "b/#",
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
                filter: "a/+",
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
                    filter: "a/#",
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
    fn publishes_beyond_the_server_receive_maximum_are_busy_not_written() {
        // CONNACK with Receive Maximum = 1.
        with_link(
            &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x01],
            async |link, fake| {
                let one = publish(100, "t", b"1", Qos::AtLeastOnce);
                let two = publish(101, "t", b"2", Qos::AtLeastOnce);
                assert_eq!(link.send(&one).await, Ok(Sent::Written));
                let first = publish_pid(&fake.take_written());
                // No quota left: nothing is written, and the caller hears so.
                assert_eq!(link.send(&two).await, Ok(Sent::Busy));
                assert!(fake.take_written().is_empty());
                assert_eq!(fake.write_calls(), 2, "CONNECT + the first PUBLISH");
                // QoS 0 is not subject to the Receive Maximum.
                assert_eq!(
                    link.send(&publish(0, "t", b"3", Qos::AtMostOnce)).await,
                    Ok(Sent::Written)
                );
                assert_eq!(fake.take_written(), packet(0x30, &[0, 1, b't', 0, b'3']));

                let [hi, lo] = first.to_be_bytes();
                fake.push(&[0x40, 0x02, hi, lo]);
                assert_eq!(link.receive().await, Ok(Incoming::PubAck(100)));
                // The slot is free again: offered again, it goes out.
                assert_eq!(link.send(&two).await, Ok(Sent::Written));
                let written = fake.take_written();
                let second = publish_pid(&written);
                let mut body = string("t");
                body.extend_from_slice(&second.to_be_bytes());
                body.extend_from_slice(&[0, b'2']);
                assert_eq!(written, packet(0x32, &body));
                let [hi, lo] = second.to_be_bytes();
                fake.push(&[0x40, 0x02, hi, lo]);
                assert_eq!(link.receive().await, Ok(Incoming::PubAck(101)));
            },
        );
    }

    #[test]
    fn subscriptions_beyond_the_client_table_are_busy() {
        with_link(&CONNACK_OK, async |link, fake| {
            let filters: Vec<_> = (0..=SUBSCRIBE_MAXIMUM)
                .map(|i| alloc::format!("f/{i}"))
                .collect();
            for (i, filter) in filters.iter().enumerate() {
                let sent = link
                    .send(&Outgoing::Subscribe {
                        pid: 1 + i as u16,
                        filter,
                        qos: Qos::AtMostOnce,
                    })
                    .await;
                let expected = if i < SUBSCRIBE_MAXIMUM {
                    Sent::Written
                } else {
                    Sent::Busy
                };
                assert_eq!(sent, Ok(expected), "subscription {i}");
            }
            let written = fake.take_written();
            assert_eq!(
                written.iter().filter(|b| **b == 0x82).count(),
                SUBSCRIBE_MAXIMUM,
                "{written:02x?}"
            );
        });
    }

    #[test]
    fn incoming_publishes_qos0_qos1_qos2() {
        with_link(&CONNACK_OK, async |link, fake| {
            // QoS 1, pid 0x2A, no properties: nothing is written until `acknowledge`.
            let mut body = string("x/y");
            body.extend_from_slice(&[0x00, 0x2A, 0x00]);
            body.extend_from_slice(b"{}");
            fake.push(&packet(0x32, &body));
            link.ready().await.unwrap();
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "x/y",
                    payload: b"{}",
                    qos: Qos::AtLeastOnce,
                    pid: Some(0x2A),
                })
            );
            assert!(fake.take_written().is_empty(), "no PUBACK inside receive");
            link.acknowledge(0x2A).await.unwrap();
            // Success, no properties.
            assert_eq!(fake.take_written(), [0x40, 0x04, 0x00, 0x2A, 0x00, 0x00]);
            // Twice, or for an id never received: nothing written, the link goes on.
            assert_eq!(link.acknowledge(0x2A).await, Ok(()));
            assert_eq!(link.acknowledge(0x77).await, Ok(()));
            assert!(fake.take_written().is_empty());

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
                    topic: "z",
                    payload: b"!",
                    qos: Qos::AtMostOnce,
                    pid: None,
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
                    topic: "q",
                    payload: b"z",
                    qos: Qos::AtLeastOnce,
                    pid: None,
                })
            );
            assert_eq!(link.receive().await, Ok(Incoming::Other));
            let written = fake.take_written();
            assert_eq!(written.first(), Some(&0x50), "PUBREC: {written:02x?}");
        });
    }

    #[test]
    fn unacknowledged_qos1_fills_the_receive_maximum_we_announced() {
        with_link(&CONNACK_OK, async |link, fake| {
            // RECEIVE_MAXIMUM messages left unacknowledged are within what we announced ...
            for pid in 1..=RECEIVE_MAXIMUM as u16 {
                let mut body = string("t");
                body.extend_from_slice(&pid.to_be_bytes());
                body.push(0);
                fake.push(&packet(0x32, &body));
                assert!(matches!(
                    link.receive().await,
                    Ok(Incoming::Publish { pid: Some(p), .. }) if p == pid
                ));
            }
            // ... one more is the server's protocol error; `rust-mqtt` says 0x97 (quota
            // exceeded) in its DISCONNECT.
            let mut body = string("t");
            body.extend_from_slice(&[0x00, 0x63, 0x00]);
            fake.push(&packet(0x32, &body));
            assert_eq!(link.receive().await, Err(LinkError::Protocol));
            link.disconnect().await;
            assert_eq!(fake.take_written(), [0xE0, 0x02, 0x97, 0x00]);
        });
        // Acknowledged ones free their slot.
        with_link(&CONNACK_OK, async |link, fake| {
            for pid in 1..=2 * RECEIVE_MAXIMUM as u16 {
                let mut body = string("t");
                body.extend_from_slice(&pid.to_be_bytes());
                body.push(0);
                fake.push(&packet(0x32, &body));
                assert!(matches!(
                    link.receive().await,
                    Ok(Incoming::Publish { pid: Some(_), .. })
                ));
                link.acknowledge(pid).await.unwrap();
            }
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
            assert_eq!(link.ready().await, Err(LinkError::Network));
            assert_eq!(link.receive().await, Err(LinkError::Network));
            link.disconnect().await;
        });
    }

    #[test]
    fn oversized_non_publish_ends_the_link_with_packet_too_large() {
        // A SUBACK over the buffer, caught from the fixed header alone: skipping it would
        // leave the subscription waiting forever.
        with_link(&CONNACK_OK, async |link, fake| {
            fake.push(&[0x90, 0xA8, 0x46]);
            fake.pend_when_empty(true);
            assert_eq!(link.ready().await, Err(LinkError::TooLarge));
            link.disconnect().await;
            // The server is told why: DISCONNECT with 0x95 (packet too large).
            assert_eq!(fake.take_written(), [0xE0, 0x02, 0x95, 0x00]);
        });
    }

    #[test]
    fn oversized_publish_is_skipped_acknowledged_and_the_session_goes_on() {
        let payload = vec![7u8; MAX_PACKET_LEN];
        for (first, pid, answer) in [
            (0x30u8, None, &[][..]),
            (0x32, Some(0x0102u16), &[0x40u8, 0x03, 0x01, 0x02, 0x83][..]),
            (0x34, Some(0x0304), &[0x50, 0x03, 0x03, 0x04, 0x83][..]),
        ] {
            with_link(&CONNACK_OK, async |link, fake| {
                let mut body = string("big");
                if let Some(pid) = pid {
                    body.extend_from_slice(&pid.to_be_bytes());
                }
                body.push(0);
                body.extend_from_slice(&payload);
                fake.push(&packet(first, &body));
                let mut next = string("next");
                next.extend_from_slice(&[0, b'o', b'k']);
                fake.push(&packet(0x30, &next));
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
    fn user_property_past_the_packet_is_refused_before_rust_mqtt_reads_it() {
        // rust-mqtt 0.6 `BodyReader::skip` underflows on this (five user properties, the
        // last claiming a 255-byte name with 3 bytes left): a debug build panics, a release
        // build reads past the packet and swallows the next ones. The PINGRESP after it must
        // be left alone.
        with_link(&CONNACK_OK, async |link, fake| {
            fake.push(&[
                0x30, 0x1d, 0x00, 0x01, 0x74, 0x19, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00,
                0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00,
                0xff, 0x00, 0x00,
            ]);
            fake.push(&[0xD0, 0x00]);
            link.ready().await.unwrap();
            assert_eq!(link.receive().await, Err(LinkError::Protocol));
            // Nothing after the bad packet was consumed, and `rust-mqtt` is unharmed.
            assert_eq!(link.receive().await, Ok(Incoming::PingResp));
            link.disconnect().await;
            // DISCONNECT 0x81 (malformed packet) [MQTT-4.13.1-1].
            assert_eq!(fake.take_written(), [0xE0, 0x02, 0x81, 0x00]);
        });
    }

    #[test]
    fn a_whole_packet_takes_one_read() {
        with_link(&CONNACK_OK, async |link, fake| {
            let reads = fake.read_calls();
            let mut body = string("a/b");
            body.extend_from_slice(&[0x00, 0x05, 0x00]);
            body.extend_from_slice(&[9u8; 2000]);
            fake.push(&packet(0x32, &body));
            assert!(matches!(link.receive().await, Ok(Incoming::Publish { .. })));
            assert_eq!(fake.read_calls() - reads, 1, "one read, not one per byte");
        });
    }

    #[test]
    fn link_state_fits_its_budget() {
        assert!(
            core::mem::size_of::<V5Link<FakeTransport>>() <= crate::link::LINK_STATE_BYTES,
            "{} bytes",
            core::mem::size_of::<V5Link<FakeTransport>>()
        );
    }

    #[test]
    fn oversized_outgoing_publish_is_too_large() {
        with_link(&CONNACK_OK, async |link, fake| {
            let payload = vec![0u8; MAX_PACKET_LEN];
            for qos in [Qos::AtMostOnce, Qos::AtLeastOnce] {
                let r = link.send(&publish(1, "t", &payload, qos)).await;
                assert_eq!(r, Err(LinkError::TooLarge));
                assert!(fake.take_written().is_empty());
            }
            // The link is still usable (a refused packet never reached `rust-mqtt`).
            let fits = &payload[..MAX_PACKET_LEN - 9];
            assert_eq!(
                link.send(&publish(2, "t", fits, Qos::AtLeastOnce)).await,
                Ok(Sent::Written)
            );
            assert_eq!(fake.take_written().len(), MAX_PACKET_LEN);
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
            assert!(!link.partial());
            // Delivered a byte at a time; cancel between bytes.
            assert!(poll_once(link.ready()).is_pending());
            assert!(poll_once(link.ready()).is_pending());
            assert!(link.partial(), "one byte of a packet is buffered");
            fake.push(&bytes[1..]);
            assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
            assert!(!link.partial());
            // A second `ready` before `receive` keeps the stored header.
            assert_eq!(poll_once(link.ready()), Poll::Ready(Ok(())));
            assert_eq!(
                link.receive().await,
                Ok(Incoming::Publish {
                    topic: "a/b",
                    payload: b"payload",
                    qos: Qos::AtLeastOnce,
                    pid: Some(9),
                })
            );
            assert!(fake.take_written().is_empty());
        });
    }
}
