//! The syscall backend trait: the one thing a board must provide to run apps.

/// One syscall round trip of raw COBS frames: write one request frame, read one response frame.
///
/// A backend only moves bytes; [`Aliot`](crate::Aliot) encodes, decodes and checks them. The
/// host board implements it over a pipe, a Cortex-M board with an SVC, unit tests with
/// `fake::FakeKernel` (feature `fake`).
pub trait Syscalls {
    /// What goes wrong in the transport itself (pipe closed, frame too long, ...).
    type Error: core::fmt::Debug;

    /// Send `request_frame` (one COBS frame, terminating zero included) and write the
    /// kernel's one response frame into `response_buf`, returning its length.
    fn exchange(
        &mut self,
        request_frame: &[u8],
        response_buf: &mut [u8],
    ) -> Result<usize, Self::Error>;

    /// Monotonic milliseconds since some fixed point, if the backend has a clock.
    ///
    /// The ABI has no clock syscall, yet apps that act periodically while also waiting for
    /// events need to know how long a wait really took. Backends with a local clock (the host
    /// board's `Instant`, a fake kernel's virtual clock) return it; the default `None` makes
    /// apps fall back to counting timed-out waits.
    fn now_ms(&mut self) -> Option<u64> {
        None
    }
}

/// A borrowed backend is a backend, so tests can keep the fake kernel and inspect it after
/// handing `&mut fake` to [`Aliot`](crate::Aliot).
impl<S: Syscalls + ?Sized> Syscalls for &mut S {
    type Error = S::Error;

    fn exchange(
        &mut self,
        request_frame: &[u8],
        response_buf: &mut [u8],
    ) -> Result<usize, Self::Error> {
        (**self).exchange(request_frame, response_buf)
    }

    fn now_ms(&mut self) -> Option<u64> {
        (**self).now_ms()
    }
}
