//! [`Aliot`]: typed syscalls on top of a raw frame backend.

use crate::{AppError, Syscalls};
use aliot_abi::{
    ABI_MAJOR, ABI_MINOR, Event, LinkStatus, MAX_COBS_FRAME_LEN, Qos, Request, Response, WallClock,
    decode_frame, encode_frame,
};

/// Room kept beside a full-size frame for the small frame on the other side of the exchange.
///
/// Requests and responses are never both large: a big `Publish` is answered by a few bytes
/// (`Accepted`/`Error`), and a big `Event` answers a few-byte `WaitEvent`. So one buffer of
/// one full frame plus this headroom holds the request at its front and the response behind it.
/// The largest small frame (`Welcome`, `Status`, `Accepted`, `Error`, `WaitEvent`) is under
/// 20 bytes COBS-encoded.
const SMALL_FRAME_HEADROOM: usize = 32;

/// Size of the single frame buffer an [`Aliot`] owns.
pub const FRAME_BUF_LEN: usize = MAX_COBS_FRAME_LEN + SMALL_FRAME_HEADROOM;

/// An app's connection to the kernel.
///
/// Every request gets exactly one response; a response that does not answer the request is
/// [`AppError::UnexpectedResponse`]. Publish and subscribe tokens are allocated here.
pub struct Aliot<S: Syscalls> {
    sys: S,
    app_id: u8,
    pub(crate) next_token: u32,
    /// Sum of timed-out waits: the clock of last resort when the backend has none.
    waited_ms: u64,
    buf: [u8; FRAME_BUF_LEN],
}

impl<S: Syscalls> Aliot<S> {
    /// Greets the kernel with this library's ABI version and checks its `Welcome`.
    pub fn new(sys: S) -> Result<Self, AppError<S::Error>> {
        let mut app = Aliot {
            sys,
            app_id: 0,
            next_token: 1,
            waited_ms: 0,
            buf: [0; FRAME_BUF_LEN],
        };
        let hello = Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        };
        match app.call(&hello)? {
            Response::Welcome { major, app_id, .. } => {
                // A kernel of a newer minor serves this app as it is (see the ABI's versioning).
                if major != ABI_MAJOR {
                    return Err(AppError::AbiMismatch { kernel: major });
                }
                app.app_id = app_id;
                Ok(app)
            }
            _ => Err(AppError::UnexpectedResponse),
        }
    }

    /// This app's slot number (its index in the manifest), as the kernel told it.
    pub fn app_id(&self) -> u8 {
        self.app_id
    }

    /// Publishes `payload` on `topic`; returns the token its [`Event::PublishResult`] will carry.
    ///
    /// The kernel checks the grant, topic and payload size before anything touches the network
    /// and answers a violation with [`AppError::Kernel`].
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: Qos,
    ) -> Result<u32, AppError<S::Error>> {
        let token = self.take_token();
        let request = Request::Publish {
            topic,
            payload,
            qos,
            token,
        };
        expect_accepted(self.call(&request)?, token)
    }

    /// Subscribes to `filter`; returns the token its [`Event::SubscribeResult`] will carry.
    pub fn subscribe(&mut self, filter: &str, qos: Qos) -> Result<u32, AppError<S::Error>> {
        let token = self.take_token();
        let request = Request::Subscribe { filter, qos, token };
        expect_accepted(self.call(&request)?, token)
    }

    /// Drops this app's subscription to `filter` (exactly as subscribed).
    pub fn unsubscribe(&mut self, filter: &str) -> Result<(), AppError<S::Error>> {
        match self.call(&Request::Unsubscribe { filter })? {
            Response::Ok => Ok(()),
            _ => Err(AppError::UnexpectedResponse),
        }
    }

    /// The link state as the kernel sees it.
    pub fn status(&mut self) -> Result<LinkStatus, AppError<S::Error>> {
        match self.call(&Request::Status)? {
            Response::Status(status) => Ok(status),
            _ => Err(AppError::UnexpectedResponse),
        }
    }

    /// The wall-clock time (UTC) now, as the kernel learnt it from the platform's NTP service or
    /// the cellular network, with its source and accuracy; `None` until the kernel has learnt
    /// it (on a board without a modem clock, until the first login's NTP answer). A kernel
    /// older than ABI minor 3 answers [`AppError::Kernel`]`(`[`ErrorCode::Unsupported`]`)`.
    ///
    /// [`ErrorCode::Unsupported`]: aliot_abi::ErrorCode::Unsupported
    pub fn time(&mut self) -> Result<Option<WallClock>, AppError<S::Error>> {
        match self.call(&Request::Time)? {
            Response::Time(time) => Ok(time),
            _ => Err(AppError::UnexpectedResponse),
        }
    }

    /// Waits up to `timeout_ms` for this app's next event; `None` when the wait timed out.
    ///
    /// The event borrows this connection's frame buffer: copy what you need before the next call.
    pub fn next_event(&mut self, timeout_ms: u32) -> Result<Option<Event<'_>>, AppError<S::Error>> {
        let waited_ms = &mut self.waited_ms;
        match Self::round_trip(
            &mut self.sys,
            &mut self.buf,
            &Request::WaitEvent { timeout_ms },
        )? {
            Response::Event(event) => Ok(Some(event)),
            Response::NoEvent => {
                *waited_ms = waited_ms.saturating_add(u64::from(timeout_ms));
                Ok(None)
            }
            _ => Err(AppError::UnexpectedResponse),
        }
    }

    /// Monotonic milliseconds for scheduling periodic work between [`next_event`](Self::next_event)s.
    ///
    /// The backend's clock when it has one ([`Syscalls::now_ms`]); otherwise the sum of all
    /// timed-out waits, so a wait that an event ended early counts as no time at all (periodic
    /// work then runs late while events keep arriving, never early).
    pub fn now_ms(&mut self) -> u64 {
        self.sys.now_ms().unwrap_or(self.waited_ms)
    }

    /// The backend, e.g. to inspect a fake kernel in a test.
    pub fn syscalls(&mut self) -> &mut S {
        &mut self.sys
    }

    /// Hands the backend back, ending the connection.
    pub fn into_syscalls(self) -> S {
        self.sys
    }

    /// Next token; wraps around after `u32::MAX` (tokens only need to be unique among the
    /// few requests in flight).
    fn take_token(&mut self) -> u32 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        token
    }

    /// One round trip: encode `request` at the front of the buffer, let the backend write the
    /// response behind it (or over it: [`Syscalls::exchange_in_place`]), decode the response
    /// in place. A kernel `Error` becomes
    /// [`AppError::Kernel`] here, for every request alike.
    fn call(&mut self, request: &Request<'_>) -> Result<Response<'_>, AppError<S::Error>> {
        Self::round_trip(&mut self.sys, &mut self.buf, request)
    }

    /// [`call`](Self::call) on split borrows, so `next_event` can update its clock while the
    /// event still borrows the buffer.
    fn round_trip<'b>(
        sys: &mut S,
        buf: &'b mut [u8; FRAME_BUF_LEN],
        request: &Request<'_>,
    ) -> Result<Response<'b>, AppError<S::Error>> {
        let request_len = encode_frame(request, buf)
            .map_err(|_| AppError::Encode)?
            .len();
        let response = sys
            .exchange_in_place(buf, request_len)
            .map_err(AppError::Transport)?;
        // A backend claiming bytes outside the buffer is as broken as a garbage frame.
        let response_frame = buf.get_mut(response).ok_or(AppError::Decode)?;
        match decode_frame::<Response<'_>>(response_frame) {
            Ok(Response::Error(code)) => Err(AppError::Kernel(code)),
            Ok(response) => Ok(response),
            Err(_) => Err(AppError::Decode),
        }
    }
}

/// The answer to `Publish`/`Subscribe` must accept exactly the token that was sent.
fn expect_accepted<E>(response: Response<'_>, token: u32) -> Result<u32, AppError<E>> {
    match response {
        Response::Accepted { token: echoed } if echoed == token => Ok(token),
        _ => Err(AppError::UnexpectedResponse),
    }
}
