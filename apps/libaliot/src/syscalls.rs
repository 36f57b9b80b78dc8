//! The syscall backend trait: the one thing a board must provide to run apps.

/// One syscall round trip of raw COBS frames: write one request frame, read one response frame.
///
/// A backend only moves bytes; [`Aliot`](crate::Aliot) encodes, decodes and checks them. The
/// host board implements it over a pipe, a Cortex-M board with an SVC (`Svc`, built for
/// `target_arch = "arm"`, `target_os = "none"`), unit tests with `fake::FakeKernel` (feature
/// `fake`).
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

    /// One round trip in a single buffer: the request frame is `buf[..request_len]`; the
    /// response frame is written somewhere in `buf`, and where is returned.
    ///
    /// [`Aliot`](crate::Aliot) calls this. The default lends [`exchange`](Self::exchange) the
    /// bytes behind the request (the response lands there); a backend whose kernel answers
    /// over the request in the same buffer (the Cortex-M SVC) overrides it to copy nothing.
    fn exchange_in_place(
        &mut self,
        buf: &mut [u8],
        request_len: usize,
    ) -> Result<core::ops::Range<usize>, Self::Error> {
        let at = request_len.min(buf.len());
        let (request_frame, response_buf) = buf.split_at_mut(at);
        let len = self.exchange(request_frame, response_buf)?;
        Ok(at..at.saturating_add(len))
    }

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

    fn exchange_in_place(
        &mut self,
        buf: &mut [u8],
        request_len: usize,
    ) -> Result<core::ops::Range<usize>, Self::Error> {
        (**self).exchange_in_place(buf, request_len)
    }

    fn now_ms(&mut self) -> Option<u64> {
        (**self).now_ms()
    }
}
