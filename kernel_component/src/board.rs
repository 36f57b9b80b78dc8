//! What a board must provide to run the capsule: a network that opens TCP/TLS streams, a
//! clock, randomness, and a port that carries app syscall frames. Everything else (the MQTT
//! session, login, routing) is the same code on every board.

use alloc::vec::Vec;

use crate::kernel::AppId;

/// Why a board could not open a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// Name resolution failed.
    Dns,
    /// TCP connect failed or timed out.
    Connect,
    /// The TLS handshake failed (certificate, protocol version, ...).
    Tls,
    /// The modem or network is not available.
    Unavailable,
}

/// Opens byte streams to the platform.
#[allow(async_fn_in_trait)] // boards run single-threaded executors
pub trait Network {
    /// A connected stream; TLS already negotiated when asked for.
    type Stream: embedded_io_async::Read + embedded_io_async::Write;
    /// Connect to `host:port`, with TLS (verifying the server for `host`) when `tls`.
    async fn connect(&mut self, host: &str, port: u16, tls: bool)
    -> Result<Self::Stream, NetError>;
}

/// Monotonic time.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Milliseconds since an arbitrary start; never goes backwards.
    fn now_ms(&self) -> u64;
    /// Complete at or after `deadline_ms`. Must be cancel-safe.
    async fn sleep_until(&self, deadline_ms: u64);
}

/// Randomness for backoff jitter and registration nonces.
pub trait Entropy {
    /// A uniformly random u32.
    fn random_u32(&mut self) -> u32;
}

/// Something an app did, as seen by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppInput {
    /// One COBS frame (a request) from app `app`.
    Frame {
        /// The sender, as established by the board (apps cannot choose it).
        app: AppId,
        /// The frame, terminating zero optional.
        frame: Vec<u8>,
    },
    /// App `app` died or was stopped; its successor will say Hello again.
    Exited(AppId),
}

/// The kernel side of the syscall interface.
#[allow(async_fn_in_trait)]
pub trait AppPort {
    /// The next input from any app. Must be cancel-safe.
    async fn recv(&mut self) -> AppInput;
    /// Deliver a response frame to `app` (dropped if the app is gone).
    fn send(&mut self, app: AppId, frame: &[u8]);
}
