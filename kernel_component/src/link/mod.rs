//! The MQTT link: one connection's worth of MQTT, in either protocol version, behind one
//! trait so the runner (and therefore every app) sees identical behaviour.
//!
//! - [`v311`]: MQTT 3.1.1 — our own client-side packet codec under our own read/write loop.
//! - [`v5`]: MQTT 5.0 — the `rust-mqtt` client, fed whole checked packets from memory.
//!
//! A link lives for one network connection. Session state that must survive a reconnect
//! (QoS 1 messages in flight, subscriptions) is kept by the [`crate::kernel::Kernel`], not
//! here: both links connect with a clean session, and the kernel resends and resubscribes.
//!
//! What both links guarantee:
//! - **Whole packets in, few reads.** Incoming bytes are read into one fixed buffer, as many
//!   per transport `read` as are there, until a whole packet (fixed header + remaining length)
//!   is buffered; only then does a decoder see it. On the modem each read is an IPC call, so
//!   nothing reads a byte at a time, and no decoder can read past a packet.
//! - **Borrowed packets both ways.** [`Outgoing`] borrows from the caller, [`Incoming`] from
//!   the link's receive buffer: no per-packet `Vec` between the kernel and the link.
//! - **One transport write per packet** (on the modem each write is an IPC call and maybe a
//!   radio segment).
//! - **Incoming QoS 1 is acknowledged only when asked** ([`MqttLink::acknowledge`]), so the
//!   kernel can acknowledge what its apps' queues took and let the platform resend the rest.
//! - **Flow control is reported** ([`Sent::Busy`]), never hidden in a queue of the link's own.
//! - **One oversized downlink does not end the session.** A PUBLISH longer than the receive
//!   buffer is read and discarded without being buffered, counted
//!   ([`MqttLink::oversized_dropped`]) and logged. A QoS 1 (or QoS 2) one is acknowledged: it
//!   can never be delivered, and unacknowledged the platform would resend it forever. Any
//!   other packet type that large ends the link with [`LinkError::TooLarge`] (skipping an
//!   acknowledgement would leave the kernel waiting for it forever; a reconnect resends).
//! - **No timeouts inside.** The runner bounds every await with a deadline.
//!
//! # Memory
//!
//! Every buffer is fixed when the link is created and sized by [`MAX_PACKET_LEN`]
//! (8,192 bytes), never by input. The kernel's RAM budget can use [`ram_bytes`]:
//!
//! | link | buffer | bytes |
//! |---|---|---|
//! | 3.1.1 | receive buffer (whole packets) | [`MAX_PACKET_LEN`] |
//! | 3.1.1 | encode buffer (one outgoing packet) | [`MAX_PACKET_LEN`] |
//! | 5 | receive buffer (whole packets) | [`MAX_PACKET_LEN`] |
//! | 5 | write buffer (one outgoing packet, what `rust-mqtt` writes) | [`MAX_PACKET_LEN`] |
//! | 5 | `rust-mqtt`'s `AllocBuffer` copies, per received packet, freed before `receive` returns | at most [`MAX_PACKET_LEN`] |
//! | both | link state (struct without the transport, incl. the outstanding requests' pids and `rust-mqtt`'s session tables for 5) | [`LINK_STATE_BYTES`] at most |
//!
//! The v5 copies: `rust-mqtt` copies the topic and every string property of a packet it
//! parses into heap boxes of exactly their size. The link hands `rust-mqtt` a PUBLISH without
//! its payload (the payload is returned from the link's own buffer), so those copies are the
//! packet minus its payload: at most [`MAX_PACKET_LEN`] in total, all freed before
//! [`MqttLink::receive`] returns. Making them go away entirely would need a bump allocator
//! that is reset per packet, which `rust-mqtt` only offers through `unsafe`.
//!
//! The link state includes the table of requests outstanding on the connection
//! (`link/pids.rs`): fixed, [`crate::budget::MAX_IN_FLIGHT`] entries, no heap.

use aliot_abi::Qos;

use crate::config::MqttVersion;

mod pids;
mod reader;
#[cfg(feature = "mqtt-v311")]
pub mod v311;
#[cfg(feature = "mqtt-v5")]
pub mod v5;
pub mod writer;

pub use writer::MAX_PACKET_LEN;

/// Upper bound of the size of either link's own struct, not counting the transport it wraps
/// (for 5 it includes `rust-mqtt`'s session tables; measured 560 bytes for 5 and 232 for
/// 3.1.1 on a 64-bit host). Tests check it against `size_of`.
pub const LINK_STATE_BYTES: usize = 1024;

/// A link buffer that is wiped when dropped (and when a link lends it on and the borrower
/// drops it): it has held a CONNECT's password, or a registration answer's DeviceSecret or
/// token, which must not stay behind in freed memory.
#[derive(Default)]
pub(crate) struct WipedBuf(alloc::boxed::Box<[u8]>);

impl WipedBuf {
    /// `len` zero bytes.
    pub(crate) fn new(len: usize) -> Self {
        Self(alloc::vec![0; len].into_boxed_slice())
    }
}

impl core::ops::Deref for WipedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl core::ops::DerefMut for WipedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for WipedBuf {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
    }
}

/// Worst-case RAM of a 3.1.1 link: receive and encode buffers plus its state.
pub const V311_RAM_BYTES: usize = 2 * MAX_PACKET_LEN + LINK_STATE_BYTES;

/// Worst-case RAM of an MQTT 5 link: receive and write buffers, `rust-mqtt`'s transient copies
/// of one received packet and the link's state (see the module docs).
pub const V5_RAM_BYTES: usize = 3 * MAX_PACKET_LEN + LINK_STATE_BYTES;

/// Worst-case RAM of the link for `version` (see the module docs for what it counts).
pub const fn ram_bytes(version: MqttVersion) -> usize {
    match version {
        MqttVersion::V311 => V311_RAM_BYTES,
        MqttVersion::V5 => V5_RAM_BYTES,
    }
}

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

/// A packet the kernel wants written, borrowed from the kernel's own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// PUBLISH. `pid` is 0 for QoS 0.
    Publish {
        /// Packet identifier (QoS 1) or 0.
        pid: u16,
        /// Topic.
        topic: &'a str,
        /// Payload.
        payload: &'a [u8],
        /// QoS.
        qos: Qos,
        /// Set when this message was written before on an earlier connection.
        dup: bool,
    },
    /// SUBSCRIBE of one filter.
    Subscribe {
        /// Packet identifier.
        pid: u16,
        /// Filter.
        filter: &'a str,
        /// Requested QoS.
        qos: Qos,
    },
    /// UNSUBSCRIBE of one filter.
    Unsubscribe {
        /// Packet identifier.
        pid: u16,
        /// Filter.
        filter: &'a str,
    },
}

/// What [`MqttLink::send`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The packet was written (or, for a subscription the server announced it cannot accept,
    /// answered locally with a failed [`Incoming::SubAck`]).
    Written,
    /// Nothing was written: the link cannot take this packet now (MQTT 5: the server's Receive
    /// Maximum or `rust-mqtt`'s in-flight tables are full). Offer it again after the next
    /// acknowledgement arrives; packets behind it should wait too, to keep their order.
    Busy,
}

/// A packet from the platform that the runner cares about. Borrows the link's receive buffer
/// until the next call on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// An application message.
    Publish {
        /// Topic.
        topic: &'a str,
        /// Payload.
        payload: &'a [u8],
        /// QoS it arrived with (QoS 2 is not offered by the platform; treated as QoS 1).
        qos: Qos,
        /// `Some(packet id)` for a QoS 1 message that is not acknowledged yet: pass it to
        /// [`MqttLink::acknowledge`] once the message is taken care of. `None` for QoS 0 and
        /// for QoS 2, whose exchange the link completes itself.
        pid: Option<u16>,
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
    /// Anything else that is legal but needs no action (including a dropped oversized
    /// PUBLISH, see [`MqttLink::oversized_dropped`]).
    Other,
}

/// Why the platform refused a CONNECT.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The transport failed or the peer closed it.
    Network,
    /// The CONNECT was refused with a CONNACK code.
    Refused(Refusal),
    /// The platform sent something malformed or out of protocol.
    Protocol,
    /// The platform closed the session with a DISCONNECT (5.0) carrying this reason code.
    ServerDisconnect(u8),
    /// A packet was too large for the link's buffers.
    TooLarge,
}

/// One MQTT connection. Implemented by `v311::V311Link` and `v5::V5Link` (features
/// `mqtt-v311` and `mqtt-v5`).
///
/// Cancellation: [`MqttLink::ready`] is cancel-safe (the runner races it against app
/// syscalls and timers and drops it when something else wins). The other methods may be
/// cancelled by the runner's deadline, after which the link is dropped, never used again.
#[allow(async_fn_in_trait)] // Single-threaded executors on both boards; no Send bound wanted.
pub trait MqttLink {
    /// Send CONNECT and wait for CONNACK.
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError>;
    /// Write one packet from the kernel's outbox, or report that the link cannot take it now.
    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError>;
    /// Write PINGREQ.
    async fn ping(&mut self) -> Result<(), LinkError>;
    /// Wait until a whole incoming packet is buffered. Cancel-safe.
    async fn ready(&mut self) -> Result<(), LinkError>;
    /// Bytes of an incoming packet are buffered but [`MqttLink::ready`] has not completed for
    /// it yet (its rest has not arrived, or an oversized PUBLISH is still being skipped). The
    /// runner notices the change after a pending `ready`, times the rest of the packet and ends
    /// the session when it stalls.
    fn partial(&self) -> bool;
    /// Read the packet announced by [`MqttLink::ready`] (waits for one if there is none).
    /// Nothing is acknowledged for a QoS 1 PUBLISH: see [`MqttLink::acknowledge`].
    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError>;
    /// Write the PUBACK for the QoS 1 message [`Incoming::Publish`] reported with this `pid`.
    /// Not acknowledging leaves it to the platform to resend (MQTT 5: it also holds one of the
    /// link's Receive Maximum slots until the connection ends).
    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError>;
    /// Send DISCONNECT (best effort) and close.
    async fn disconnect(&mut self);
    /// Keep-alive in force after CONNACK, when the server chose it (MQTT 5 "Server Keep
    /// Alive"); `None` keeps the one we asked for.
    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        None
    }
    /// PUBLISH packets dropped on this connection for being larger than the receive buffer.
    fn oversized_dropped(&self) -> u32 {
        0
    }
}
