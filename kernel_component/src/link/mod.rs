//! The MQTT link: one connection's worth of MQTT, in either protocol version, behind one
//! trait so the runner (and therefore every app) sees identical behaviour.
//!
//! - [`v311`]: MQTT 3.1.1 — the `mqttrs` packet codec under our own read/write loop.
//! - [`v5`]: MQTT 5.0 — the `rust-mqtt` client.
//!
//! A link lives for one network connection. Session state that must survive a reconnect
//! (QoS 1 messages in flight, subscriptions) is kept by the [`crate::kernel::Kernel`], not
//! here: both links connect with a clean session, and the kernel resends and resubscribes.
//! Every MQTT packet leaves in exactly one transport write ([`writer::PacketWriter`]):
//! on the modem each write is an IPC call and maybe a radio segment.

use alloc::string::String;
use alloc::vec::Vec;

use aliot_abi::Qos;

use crate::kernel::Outgoing;

mod pids;
pub mod v311;
pub mod v5;
pub mod writer;

/// What the CONNECT carries.
#[derive(Clone, Copy)]
pub struct ConnectParams<'a> {
    /// Full MQTT client id, including Alibaba's `|...|` extension.
    pub client_id: &'a str,
    /// `deviceName&productKey`.
    pub username: &'a str,
    /// Secret. Never log it.
    pub password: &'a str,
    /// Keep-alive in seconds.
    pub keepalive_secs: u16,
}

/// A packet from the platform that the runner cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An application message (already acknowledged by the link when QoS 1).
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// QoS it arrived with (QoS 2 is not offered by the platform; treated as QoS 1).
        qos: Qos,
    },
    /// PUBACK: the platform accepted the QoS 1 message.
    PubAck(u16),
    /// PUBACK with a failure reason (MQTT 5 only, e.g. 0x87 not authorised): the platform
    /// refused the message; resending would fail again.
    PubRejected(u16),
    /// SUBACK for one filter.
    SubAck {
        /// Packet identifier.
        pid: u16,
        /// `false` on a failure return code (3.1.1 0x80, 5.0 >= 0x80).
        granted: bool,
    },
    /// UNSUBACK.
    UnsubAck(u16),
    /// PINGRESP.
    PingResp,
    /// Anything else that is legal but needs no action.
    Other,
}

/// Why the platform refused a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bad user name or password (3.1.1 code 4, 5.0 0x86) — wrong secret or unknown device.
    BadCredentials,
    /// Not authorised (3.1.1 code 5, 5.0 0x87).
    NotAuthorized,
    /// Client identifier rejected (3.1.1 code 2, 5.0 0x85).
    IdentifierRejected,
    /// Server unavailable or busy (3.1.1 code 3, 5.0 0x88/0x89).
    ServerUnavailable,
    /// Any other code, as received.
    Other(u8),
}

/// Why a link operation failed. Any error ends the link; the runner reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The transport failed or the peer closed it.
    Network,
    /// The CONNECT was refused with a CONNACK code.
    Refused(Refusal),
    /// The platform sent something malformed or out of protocol (or DISCONNECT in 5.0).
    Protocol,
    /// The platform closed the session with a DISCONNECT (5.0) carrying this reason code.
    ServerDisconnect(u8),
    /// A packet was too large for the link's buffers.
    TooLarge,
}

/// One MQTT connection. Implemented by [`v311::V311Link`] and [`v5::V5Link`].
///
/// Cancellation: [`MqttLink::ready`] must be cancel-safe (the runner races it against app
/// syscalls and timers and drops it when something else wins). The other methods are
/// awaited to completion.
#[allow(async_fn_in_trait)] // Single-threaded executors on both boards; no Send bound wanted.
pub trait MqttLink {
    /// Send CONNECT and wait for CONNACK (the runner bounds this with a timeout).
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError>;
    /// Write one packet from the kernel's outbox.
    async fn send(&mut self, packet: &Outgoing) -> Result<(), LinkError>;
    /// Write PINGREQ.
    async fn ping(&mut self) -> Result<(), LinkError>;
    /// Wait until an incoming packet has started to arrive. Cancel-safe.
    async fn ready(&mut self) -> Result<(), LinkError>;
    /// Read the packet announced by [`MqttLink::ready`]. QoS 1 PUBLISHes are acknowledged
    /// here (PUBACK written) before they are returned.
    async fn receive(&mut self) -> Result<Incoming, LinkError>;
    /// Send DISCONNECT (best effort) and close.
    async fn disconnect(&mut self);
    /// Keep-alive in force after CONNACK, when the server chose it (MQTT 5 "Server Keep
    /// Alive"); `None` keeps the one we asked for.
    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        None
    }
}

/// RAM the link of `version` holds for its buffers, for the kernel's budget
/// ([`crate::budget::worst_case_ram`]).
pub const fn ram_bytes(version: crate::config::MqttVersion) -> usize {
    match version {
        // Transmit and receive buffers of one packet each.
        crate::config::MqttVersion::V311 => 2 * writer::MAX_PACKET_LEN,
        // The packet writer's buffer and `rust-mqtt`'s receive allocation.
        crate::config::MqttVersion::V5 => 2 * writer::MAX_PACKET_LEN,
    }
}
