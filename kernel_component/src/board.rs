//! What a board must provide to run the capsule: a network that opens TCP/TLS streams, a
//! clock, randomness, and a port that carries app syscall frames. Everything else (the MQTT
//! session, login, routing) is the same code on every board.

use crate::kernel::AppId;

/// Why a board could not open a stream.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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

/// `host:port`, as a log names an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    /// Host name or IP address.
    pub host: &'a str,
    /// TCP port.
    pub port: u16,
}

impl core::fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Opens byte streams to the platform.
#[allow(async_fn_in_trait)] // boards run single-threaded executors
pub trait Network {
    /// A connected stream; TLS already negotiated when asked for.
    type Stream: embedded_io_async::Read + embedded_io_async::Write;
    /// Connect to `host:port`, with TLS (verifying the server for `host`) when `tls`.
    async fn connect(&mut self, host: &str, port: u16, tls: bool)
    -> Result<Self::Stream, NetError>;
    /// Where [`Network::connect`]`(host, port, ..)` really dials, for logs: a board that
    /// redirects the connection (a simulator's emulator, a test address) names its target.
    fn describe<'a>(&'a self, host: &'a str, port: u16) -> impl core::fmt::Display + 'a {
        Address { host, port }
    }
}

/// Monotonic time.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Milliseconds since an arbitrary start; never goes backwards.
    fn now_ms(&self) -> u64;
    /// Complete at or after `deadline_ms`. Must be cancel-safe.
    async fn sleep_until(&self, deadline_ms: u64);
    /// Milliseconds since 1970-01-01T00:00:00Z now, when the board knows the time itself (a
    /// modem's network time, to the second); `None` (the default) otherwise. The kernel takes it
    /// while it has no time of its own ([`crate::kernel::Kernel::set_wall_time`]).
    fn network_time_ms(&self) -> Option<u64> {
        None
    }
}

/// Randomness for backoff jitter and registration nonces.
pub trait Entropy {
    /// A uniformly random u32.
    fn random_u32(&mut self) -> u32;
}

/// Something an app did, as seen by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppInput {
    /// App `app` made a syscall: its request (postcard, unframed) is in
    /// [`AppPort::buffer`]`(app)[..len]`.
    Syscall {
        /// The caller, as established by the board (apps cannot choose it).
        app: AppId,
        /// Bytes of the request.
        len: usize,
    },
    /// App `app` died or was stopped; its successor will say Hello again.
    Exited(AppId),
}

/// The kernel side of the syscall interface. The port lends each app's syscall buffer (the
/// app's own RAM under the MPU; a pipe buffer on the host): the kernel decodes the request
/// from it and writes the response into it, so no frame is copied or allocated on the way.
#[allow(async_fn_in_trait)]
pub trait AppPort {
    /// The next input from any app. Must be cancel-safe.
    async fn recv(&mut self) -> AppInput;
    /// App `app`'s syscall buffer: holds its request after [`AppInput::Syscall`], and the
    /// response once the kernel wrote it. `None` when the app is gone.
    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]>;
    /// The response to `app`'s syscall is in its buffer, `len` bytes: hand it over.
    fn respond(&mut self, app: AppId, len: usize);
}

/// A board can lend its port to the runner and take it back afterwards (to stop its apps).
impl<P: AppPort + ?Sized> AppPort for &mut P {
    async fn recv(&mut self) -> AppInput {
        (**self).recv().await
    }

    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]> {
        (**self).buffer(app)
    }

    fn respond(&mut self, app: AppId, len: usize) {
        (**self).respond(app, len)
    }
}
