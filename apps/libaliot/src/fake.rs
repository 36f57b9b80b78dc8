//! A scripted fake kernel for unit-testing apps and this library on the host.
//!
//! The test lists the requests it expects, in order, each with the kernel's answer; the fake
//! compares every incoming request (decoded, so a mismatch prints both sides readably) and
//! panics loudly on anything unscripted. [`FakeKernel::assert_done`] checks that the whole
//! script was used. A virtual clock (see [`FakeKernel::with_clock`]) lets periodic app loops
//! run in tests without sleeping. This is test code: panicking is its way of failing a test.

pub mod logs;

use crate::Syscalls;
use aliot_abi::{ABI_MAJOR, ABI_MINOR, Event, Request, Response, decode_frame};
use std::collections::VecDeque;
use std::vec::Vec;

/// The fake's own transport errors, as an app sees them in
/// [`AppError::Transport`](crate::AppError::Transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeError {
    /// The script said this exchange fails in the transport.
    Scripted,
    /// The scripted response frame is longer than the buffer the app offered.
    ResponseTooLarge {
        /// Length of the scripted frame.
        needed: usize,
        /// Room the app gave for it.
        available: usize,
    },
}

/// What the fake answers to one expected request.
enum Reply {
    /// A COBS frame (terminating zero included), copied as-is: an encoded `Response` or garbage.
    Frame(Vec<u8>),
    /// Fail the exchange with [`FakeError::Scripted`].
    TransportError,
}

/// One scripted exchange.
struct Step {
    /// The expected request, postcard-encoded (compared after decoding).
    request: Vec<u8>,
    reply: Reply,
    /// How far the virtual clock moves while this exchange happens.
    elapsed_ms: u64,
}

/// A kernel that follows a script; implements [`Syscalls`].
pub struct FakeKernel {
    script: VecDeque<Step>,
    clock_ms: Option<u64>,
    served: usize,
}

impl Default for FakeKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKernel {
    /// An empty script and no clock ([`Syscalls::now_ms`] returns `None`).
    pub fn new() -> Self {
        FakeKernel {
            script: VecDeque::new(),
            clock_ms: None,
            served: 0,
        }
    }

    /// An empty script and a virtual clock starting at `start_ms`. The clock moves only when
    /// an exchange is served: by the wait for [`expect_no_event`](Self::expect_no_event), by
    /// what [`after_ms`](Self::after_ms) says, else not at all.
    pub fn with_clock(start_ms: u64) -> Self {
        FakeKernel {
            clock_ms: Some(start_ms),
            ..Self::new()
        }
    }

    /// Expect `request` next and answer it with `response`.
    pub fn expect(&mut self, request: Request<'_>, response: Response<'_>) -> &mut Self {
        let frame = postcard::to_allocvec_cobs(&response)
            .unwrap_or_else(|e| panic!("fake kernel: cannot encode scripted {response:?}: {e}"));
        self.push(request, Reply::Frame(frame), 0)
    }

    /// Expect `request` next and answer it with these exact bytes (e.g. a garbage frame).
    pub fn expect_raw(&mut self, request: Request<'_>, frame: &[u8]) -> &mut Self {
        self.push(request, Reply::Frame(frame.to_vec()), 0)
    }

    /// Expect `request` next and fail the exchange with [`FakeError::Scripted`].
    pub fn expect_transport_error(&mut self, request: Request<'_>) -> &mut Self {
        self.push(request, Reply::TransportError, 0)
    }

    /// Expect the `Hello` of this ABI version and welcome the app as `app_id`.
    pub fn expect_hello(&mut self, app_id: u8) -> &mut Self {
        self.expect(
            Request::Hello {
                major: ABI_MAJOR,
                minor: ABI_MINOR,
            },
            Response::Welcome {
                major: ABI_MAJOR,
                minor: ABI_MINOR,
                app_id,
            },
        )
    }

    /// Expect `WaitEvent { timeout_ms }` and hand out `event` (the clock does not move unless
    /// [`after_ms`](Self::after_ms) follows).
    pub fn expect_event(&mut self, timeout_ms: u32, event: Event<'_>) -> &mut Self {
        self.expect(Request::WaitEvent { timeout_ms }, Response::Event(event))
    }

    /// Expect `WaitEvent { timeout_ms }` and let it time out; the clock moves by `timeout_ms`.
    pub fn expect_no_event(&mut self, timeout_ms: u32) -> &mut Self {
        self.expect(Request::WaitEvent { timeout_ms }, Response::NoEvent)
            .after_ms(u64::from(timeout_ms))
    }

    /// The most recently scripted exchange takes `ms` of virtual time.
    pub fn after_ms(&mut self, ms: u64) -> &mut Self {
        match self.script.back_mut() {
            Some(step) => step.elapsed_ms = ms,
            None => panic!("fake kernel: after_ms() needs a scripted exchange before it"),
        }
        self
    }

    /// Number of scripted exchanges not yet served.
    pub fn remaining(&self) -> usize {
        self.script.len()
    }

    /// Panics unless every scripted exchange was served.
    pub fn assert_done(&self) {
        if let Some(step) = self.script.front() {
            panic!(
                "fake kernel: {} scripted exchange(s) never happened (served {}); next expected: {:?}",
                self.script.len(),
                self.served,
                decode_expected(&step.request)
            );
        }
    }

    fn push(&mut self, request: Request<'_>, reply: Reply, elapsed_ms: u64) -> &mut Self {
        let request = postcard::to_allocvec(&request)
            .unwrap_or_else(|e| panic!("fake kernel: cannot encode scripted {request:?}: {e}"));
        self.script.push_back(Step {
            request,
            reply,
            elapsed_ms,
        });
        self
    }
}

/// Decodes a scripted request; it was encoded by this module, so failure is a bug in the fake.
fn decode_expected(bytes: &[u8]) -> Request<'_> {
    postcard::from_bytes(bytes)
        .unwrap_or_else(|e| panic!("fake kernel: scripted request does not decode: {e}"))
}

impl Syscalls for FakeKernel {
    type Error = FakeError;

    fn exchange(
        &mut self,
        request_frame: &[u8],
        response_buf: &mut [u8],
    ) -> Result<usize, FakeError> {
        let mut frame = request_frame.to_vec();
        let actual: Request<'_> = decode_frame(&mut frame).unwrap_or_else(|e| {
            panic!("fake kernel: request frame does not decode ({e}): {request_frame:02x?}")
        });
        let Some(step) = self.script.pop_front() else {
            panic!(
                "fake kernel: unexpected request {actual:?}: the script is used up after {} exchange(s)",
                self.served
            );
        };
        let expected = decode_expected(&step.request);
        if actual != expected {
            panic!(
                "fake kernel: exchange #{} got an unexpected request\n  expected: {expected:?}\n  actual:   {actual:?}",
                self.served + 1
            );
        }
        self.served += 1;
        if let Some(clock) = self.clock_ms.as_mut() {
            *clock += step.elapsed_ms;
        }
        match step.reply {
            Reply::TransportError => Err(FakeError::Scripted),
            Reply::Frame(bytes) => match response_buf.get_mut(..bytes.len()) {
                Some(dest) => {
                    dest.copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                None => Err(FakeError::ResponseTooLarge {
                    needed: bytes.len(),
                    available: response_buf.len(),
                }),
            },
        }
    }

    fn now_ms(&mut self) -> Option<u64> {
        self.clock_ms
    }
}
