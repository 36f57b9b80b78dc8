//! The Cortex-M backend: syscalls through `svc`, answered in the app's own frame buffer.
//!
//! The MPU board's runtime (boards/cortex-m33, `syscall` module) defines the calls:
//! `svc 0` with r0 = address of the buffer, r1 = request length, r2 = buffer capacity; the
//! kernel checks the buffer lies in the calling app's RAM, answers one COBS frame over the
//! request in the same buffer and returns its length in r0, or a negative r0 when it refused
//! the call before touching the buffer. `svc 1` ends the app with r0 as its exit code.
//!
//! Only the two `svc` instructions need `unsafe` (inline assembly): this module is the one
//! place in the app library that has it, and only on `target_arch = "arm"`, `target_os =
//! "none"`; the host build has no SVC backend.
#![allow(unsafe_code)]

/// Why an `svc 0` produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcError {
    /// The kernel refused the call before touching the buffer: r0 as the runtime's negative
    /// code (-1 buffer outside the app's RAM, -2 length over capacity, -3 answer too large
    /// for the buffer, -4 unknown call).
    Refused(i32),
    /// The request frame does not fit the buffer lent for the answer.
    RequestTooLong,
    /// The kernel claimed an answer longer than the buffer.
    BadLength(u32),
    /// The buffer is longer than a register can describe.
    BufferTooLong,
}

/// The result of `svc 0` in r0, for a buffer of `capacity` bytes.
#[cfg_attr(not(all(target_arch = "arm", target_os = "none")), allow(dead_code))]
pub(crate) fn result_from_r0(r0: u32, capacity: usize) -> Result<usize, SvcError> {
    let signed = r0.cast_signed();
    if signed < 0 {
        return Err(SvcError::Refused(signed));
    }
    match usize::try_from(r0) {
        Ok(len) if len <= capacity => Ok(len),
        _ => Err(SvcError::BadLength(r0)),
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
pub use arm::{Svc, exit};

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod arm {
    use core::ops::Range;

    use super::{SvcError, result_from_r0};
    use crate::Syscalls;

    /// Syscalls through `svc 0` (see the [module docs](super)); stateless, so any number of
    /// them may exist.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Svc;

    impl Svc {
        /// The SVC backend.
        pub const fn new() -> Svc {
            Svc
        }
    }

    /// `svc 0` on `buf`, whose first `len` bytes are the request frame.
    fn command(buf: &mut [u8], len: usize) -> Result<usize, SvcError> {
        let capacity = u32::try_from(buf.len()).map_err(|_| SvcError::BufferTooLong)?;
        let len = u32::try_from(len).map_err(|_| SvcError::RequestTooLong)?;
        let r0: u32;
        // SAFETY: the kernel reads `len` and writes at most `capacity` bytes at `buf`, which
        // this exclusive borrow covers, and only after checking they are this app's RAM; it
        // preserves every register but r0 and does not touch this app's stack.
        unsafe {
            core::arch::asm!(
                "svc 0",
                inlateout("r0") buf.as_mut_ptr() as u32 => r0,
                in("r1") len,
                in("r2") capacity,
                options(nostack),
            );
        }
        result_from_r0(r0, buf.len())
    }

    impl Syscalls for Svc {
        type Error = SvcError;

        /// Copies the request to the front of `response_buf` and answers there; prefer
        /// [`Syscalls::exchange_in_place`], which [`Aliot`](crate::Aliot) uses and copies
        /// nothing.
        fn exchange(
            &mut self,
            request_frame: &[u8],
            response_buf: &mut [u8],
        ) -> Result<usize, SvcError> {
            response_buf
                .get_mut(..request_frame.len())
                .ok_or(SvcError::RequestTooLong)?
                .copy_from_slice(request_frame);
            command(response_buf, request_frame.len())
        }

        fn exchange_in_place(
            &mut self,
            buf: &mut [u8],
            request_len: usize,
        ) -> Result<Range<usize>, SvcError> {
            command(buf, request_len).map(|len| 0..len)
        }
    }

    /// `svc 1`: ends this app with `code`; the kernel never returns to it.
    pub fn exit(code: u32) -> ! {
        // SAFETY: the kernel ends the app at `svc 1` and never resumes it.
        unsafe { core::arch::asm!("svc 1", in("r0") code, options(noreturn, nostack)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_r0_is_a_refusal() {
        assert_eq!(result_from_r0(0xFFFF_FFFF, 64), Err(SvcError::Refused(-1)));
        assert_eq!(result_from_r0(0xFFFF_FFFC, 64), Err(SvcError::Refused(-4)));
    }

    #[test]
    fn answer_length_is_checked_against_the_buffer() {
        assert_eq!(result_from_r0(6, 64), Ok(6));
        assert_eq!(result_from_r0(64, 64), Ok(64));
        assert_eq!(result_from_r0(65, 64), Err(SvcError::BadLength(65)));
        assert_eq!(
            result_from_r0(0x7FFF_FFFF, 64),
            Err(SvcError::BadLength(0x7FFF_FFFF))
        );
    }
}
