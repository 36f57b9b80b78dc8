//! The syscall ABI between the privileged capsule and sandboxed apps.
//!
//! Everything that crosses the kernel/app boundary is one of the enums below, encoded with
//! postcard and framed with COBS (a zero byte ends every frame). Apps send a [`Request`];
//! the kernel answers every request with exactly one [`Response`]. Asynchronous happenings
//! (messages, publish results, link changes) are queued per app and handed out as [`Event`]s
//! through [`Request::WaitEvent`], the way Tock apps `yield` for upcalls.
//!
//! The encoding is pinned by golden-byte tests (`tests/golden.rs`): changing a variant's bytes
//! is a deliberate act.
//!
//! # Versioning
//! The contract has a major and a minor version ([`ABI_MAJOR`], [`ABI_MINOR`]), announced in
//! [`Request::Hello`]:
//! - a **major** change alters the bytes of something that exists: the kernel refuses apps of
//!   another major with [`ErrorCode::AbiMismatch`];
//! - a **minor** change only appends: new [`Request`] variants, new [`Event`] variants, new
//!   [`ErrorCode`]s, always at the end of their enum. An app built against an older minor keeps
//!   working: the kernel never sends it an event its minor does not know ([`Event::since_minor`]),
//!   and a request the kernel does not know (an app of a newer minor) is answered
//!   [`ErrorCode::Unsupported`] instead of failing the app. A minor change may also append a
//!   field at the end of [`LinkStatus`]: it is the last thing in its response, and postcard
//!   ignores trailing bytes, so an older app decodes the fields it knows.
//!
//! Minor 1 appended [`LinkStatus::registration`] (一型一密 registration state); minor 2
//! appended [`LinkStatus::ota`] (where a firmware update stands); minor 3 appended
//! [`Request::Time`] and its answer [`Response::Time`] (the wall-clock time the kernel learnt
//! from the platform's NTP service or the cellular network).
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use serde::{Deserialize, Serialize};

/// Major version of this wire contract: apps of another major are refused, so a stale app
/// fails loudly. Version 1 was the spine's single `abi_version`; 2 split it into major.minor.
pub const ABI_MAJOR: u16 = 2;

/// Minor version: what was appended to the contract since the major changed.
pub const ABI_MINOR: u16 = 3;

/// Number of [`Request`] variants this minor knows: a request tagged at or past it is from a
/// newer minor and is answered [`ErrorCode::Unsupported`].
pub const REQUEST_VARIANTS: u8 = 7;

/// Longest topic the platform accepts (Alibaba IoT: 1..=128 characters).
pub const MAX_TOPIC_LEN: usize = 128;

/// Largest payload an app may publish or receive through the syscall interface.
/// Bounded so both sides can size their frame buffers statically.
pub const MAX_PAYLOAD_LEN: usize = 4096;

/// Upper bound of one encoded frame (request, response or event) before COBS framing:
/// payload + topic + enum tags and varints, with headroom.
pub const MAX_FRAME_LEN: usize = MAX_PAYLOAD_LEN + MAX_TOPIC_LEN + 64;

/// Buffer size that always holds one COBS-encoded frame plus its terminating zero.
pub const MAX_COBS_FRAME_LEN: usize = MAX_FRAME_LEN + MAX_FRAME_LEN / 254 + 2;

/// MQTT delivery guarantee. Alibaba IoT supports only QoS 0 and 1, so QoS 2 is not
/// representable at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Qos {
    /// Fire and forget.
    AtMostOnce,
    /// Acknowledged by the platform; resent by the kernel until it is.
    AtLeastOnce,
}

/// A syscall from an app to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// First call of every app: declares the ABI version it was built against.
    ///
    /// Once greeted, a repeated `Hello` of the same major is answered `Welcome` again and
    /// changes nothing; a `Hello` of another major is refused and leaves the app ungreeted
    /// (every later request is `AbiMismatch` until a matching `Hello`).
    Hello {
        /// The app's [`ABI_MAJOR`].
        major: u16,
        /// The app's [`ABI_MINOR`].
        minor: u16,
    },
    /// Publish `payload` on `topic`. The kernel checks the app's grant before anything
    /// touches the network. `token` is the app's own tag, echoed in [`Event::PublishResult`].
    Publish {
        /// Full topic, e.g. `/a1b2c3/dev1/user/update`.
        topic: &'a str,
        /// Opaque bytes; the kernel never re-encodes them.
        payload: &'a [u8],
        /// Delivery guarantee.
        qos: Qos,
        /// App-chosen tag for the result event.
        token: u32,
    },
    /// Subscribe to a topic filter (`+`/`#` allowed where the grant allows them). The
    /// kernel keeps the subscription across reconnects. The platform's answer comes back as
    /// [`Event::SubscribeResult`] with the same `token`.
    Subscribe {
        /// Topic filter.
        filter: &'a str,
        /// Requested QoS.
        qos: Qos,
        /// App-chosen tag for the result event.
        token: u32,
    },
    /// Drop this app's subscription to `filter`. Other apps' subscriptions are untouched.
    Unsubscribe {
        /// The filter exactly as subscribed.
        filter: &'a str,
    },
    /// Ask for the link state; answered with [`Response::Status`].
    Status,
    /// Take the next queued event, waiting up to `timeout_ms` for one. Answered with
    /// [`Response::Event`] or [`Response::NoEvent`]. `0` polls without waiting.
    WaitEvent {
        /// Longest wait in milliseconds.
        timeout_ms: u32,
    },
    /// Ask for the wall-clock time; answered with [`Response::Time`] (since minor 3).
    Time,
}

/// The kernel's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<'a> {
    /// The request was carried out.
    Ok,
    /// Answer to `Hello`: the kernel's ABI version and this app's slot number.
    Welcome {
        /// The kernel's [`ABI_MAJOR`].
        major: u16,
        /// The kernel's [`ABI_MINOR`].
        minor: u16,
        /// Index of the app in the manifest.
        app_id: u8,
    },
    /// The request passed every check and is queued; its outcome arrives as an event
    /// carrying `token`.
    Accepted {
        /// The token from the request.
        token: u32,
    },
    /// Answer to `Status`.
    Status(LinkStatus),
    /// Answer to `WaitEvent` when an event was queued.
    Event(#[serde(borrow)] Event<'a>),
    /// Answer to `WaitEvent` when the wait timed out.
    NoEvent,
    /// The request was refused; nothing was sent anywhere.
    Error(ErrorCode),
    /// Answer to `Time` (since minor 3): the wall-clock time now, or `None` while the kernel
    /// has not learnt it yet (before the first login's NTP answer on a board without a modem
    /// clock).
    Time(Option<WallClock>),
}

/// The wall-clock time as the kernel knows it: learnt once from a [`TimeSource`], carried
/// forward on the kernel's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallClock {
    /// Milliseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
    pub unix_ms: u64,
    /// Where the kernel learnt it.
    pub source: TimeSource,
    /// How far off it may be, in milliseconds, when it was learnt: half the NTP exchange's
    /// round trip, or the network clock's one-second resolution. The monotonic clock's drift
    /// since then is not included.
    pub accuracy_ms: u32,
}

/// Where the kernel's wall-clock time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeSource {
    /// The platform's NTP service (`/ext/ntp/${pk}/${dn}/request|response`), after a login.
    Platform,
    /// The cellular network's time (NITZ, read from the modem with `AT+CCLK?`).
    Network,
}

/// Link state as an app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The MQTT session is up.
    pub connected: bool,
    /// Number of successful logins since boot (a reconnect counter for apps).
    pub connects: u32,
    /// QoS 1 publishes of this app still waiting for the platform's acknowledgement.
    pub pending_publishes: u16,
    /// Where 一型一密 dynamic registration stands (since minor 1).
    pub registration: Registration,
    /// Where a firmware update (OTA) stands (since minor 2). Apps never see the download URL
    /// or the digest, only this.
    pub ota: OtaStatus,
}

/// Where a firmware update stands, as [`LinkStatus`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtaStatus {
    /// No update in progress.
    Idle,
    /// Downloading into the update slot.
    Downloading {
        /// Percent of the image written, 0..=100.
        percent: u8,
    },
    /// The image is downloaded; its digest and header are being checked.
    Verifying,
    /// A verified image waits for the reboot that swaps it in.
    PendingReboot,
    /// The last update failed with this progress step (spec: -1 upgrade failed, -2 download
    /// failed, -3 verification failed, -4 flash write failed); the running image is unchanged.
    Failed {
        /// The step reported to the platform.
        step: i8,
    },
}

/// Where the device's dynamic registration (一型一密) stands, as [`LinkStatus`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Registration {
    /// 一机一密: the device has its DeviceSecret; nothing to register.
    NotNeeded,
    /// No stored credentials: the kernel is registering with the ProductSecret.
    Registering,
    /// Credentials are stored (registered now or on an earlier boot) and used to log in.
    Registered,
    /// The last attempt failed for this reason; the kernel retries after a backoff.
    Failed(RegistrationFailure),
}

/// Why the last registration attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationFailure {
    /// The device has logged in before (activated) and the platform will not register it
    /// again: reset its registration in the console (ResetThing).
    AlreadyActivated,
    /// The platform refused the signature: wrong ProductSecret.
    BadProductSecret,
    /// The product does not know this device (not pre-registered).
    UnknownDevice,
    /// Refused for another reason.
    Refused,
    /// The platform could not be reached, or the connection broke.
    Network,
    /// No answer in time.
    Timeout,
    /// The answer could not be understood.
    BadReply,
    /// The credentials could not be stored; nothing was used.
    Storage,
}

/// Something that happened, queued for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event<'a> {
    /// The MQTT session is up (after first login or any reconnect).
    Connected,
    /// The MQTT session went down; the kernel reconnects by itself.
    Disconnected {
        /// Why, as far as the kernel knows.
        reason: DisconnectReason,
    },
    /// A message arrived on a topic this app subscribed to.
    Message {
        /// The topic it was published on.
        topic: &'a str,
        /// The payload, byte for byte.
        payload: &'a [u8],
        /// QoS it was delivered with.
        qos: Qos,
    },
    /// Outcome of an earlier [`Request::Publish`].
    PublishResult {
        /// The token from the request.
        token: u32,
        /// `true` once sent (QoS 0) or acknowledged by the platform (QoS 1).
        delivered: bool,
    },
    /// Outcome of an earlier [`Request::Subscribe`]. Also sent, with the token of the
    /// subscribe that made it, when the platform refuses the filter on a re-subscribe after a
    /// reconnect: the subscription is then gone from this app.
    SubscribeResult {
        /// The token from the request.
        token: u32,
        /// `false` when the platform refused the filter.
        granted: bool,
    },
    /// This app's event queue was full and `dropped` events were discarded (oldest kept).
    Overflow {
        /// How many events were lost.
        dropped: u32,
    },
}

/// Why the MQTT session went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisconnectReason {
    /// The network or TLS stream failed or closed.
    Network,
    /// The platform refused the login (wrong secret, unknown device, ...).
    AuthRejected,
    /// The platform closed the session (for example another login of the same device).
    ServerClosed,
    /// No answer to keep-alive pings.
    KeepAliveTimeout,
    /// The platform broke the protocol.
    Protocol,
}

/// Why a request was refused.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame did not decode as a [`Request`].
    Malformed,
    /// `Hello` is missing, or the app's ABI version differs from the kernel's.
    AbiMismatch,
    /// The manifest does not grant this app the topic or filter.
    NotPermitted,
    /// Empty, too long, or badly formed topic or filter.
    InvalidTopic,
    /// Payload longer than [`MAX_PAYLOAD_LEN`].
    PayloadTooLarge,
    /// QoS 0 publish while the link is down (QoS 1 is queued instead).
    NotConnected,
    /// The kernel's outbox or subscription table is full; try again later.
    Busy,
    /// `Unsubscribe` of a filter this app never subscribed.
    NotSubscribed,
    /// A request this kernel does not know (the app was built against a newer minor).
    Unsupported,
}

impl Event<'_> {
    /// The ABI minor that introduced this event; the kernel sends it only to apps that announced
    /// at least this minor. Every event of major 2 exists since minor 0.
    pub fn since_minor(&self) -> u16 {
        match self {
            Event::Connected
            | Event::Disconnected { .. }
            | Event::Message { .. }
            | Event::PublishResult { .. }
            | Event::SubscribeResult { .. }
            | Event::Overflow { .. } => 0,
        }
    }
}

/// Encode any ABI message into a COBS frame (terminating zero included) in `buf`.
///
/// Returns the frame, ready to write to a pipe or shared buffer.
pub fn encode_frame<'b, T: Serialize>(
    msg: &T,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], postcard::Error> {
    postcard::to_slice_cobs(msg, buf)
}

/// Decode one COBS frame (with or without its terminating zero) in place.
///
/// The frame buffer is rewritten by the COBS decoder; borrowed fields of the result point into it.
pub fn decode_frame<'b, T: Deserialize<'b>>(frame: &'b mut [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes_cobs(frame)
}
