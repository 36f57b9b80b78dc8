//! The syscall boundary: what the kernel does with the registers an app passes to `SVC`.
//!
//! `svc 0` ([`SVC_COMMAND`]): r0 = address of the app's buffer, r1 = request length,
//! r2 = buffer capacity. The kernel first checks that `[r0, r0 + r2)` lies inside *that app's*
//! RAM ([`check_buffer`]); only then does it touch the buffer. The request is one aliot-abi
//! COBS frame (the framing libaliot already speaks), decoded once, in place; the answer, one
//! aliot-abi COBS frame, is written back into the same buffer and its length returned in r0.
//! A negative r0 is a [`SyscallError`]: the buffer was not touched (or, for
//! [`SyscallError::ResponseTooLarge`], holds nothing meaningful).
//!
//! `svc 1` ([`SVC_EXIT`]): the app is done; r0 = its exit code.
//!
//! This slice answers only what needs no network: `Hello`, `Status` and `WaitEvent`; requests
//! that need the MQTT session are answered `Error(Unsupported)` until the capsule is wired in.

use aliot_abi::{
    ABI_MAJOR, ABI_MINOR, ErrorCode, LinkStatus, OtaStatus, Registration, Request, Response,
};

use crate::region::Region;

/// `svc` immediate of a command (request in, response out).
pub const SVC_COMMAND: u8 = 0;
/// `svc` immediate of exit.
pub const SVC_EXIT: u8 = 1;

/// Why a syscall was refused before any answer could be written; returned as a negative r0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum SyscallError {
    /// `[ptr, ptr + capacity)` is not inside the calling app's RAM.
    BufferOutsideApp = -1,
    /// The request length exceeds the buffer capacity.
    LengthExceedsCapacity = -2,
    /// The answer does not fit the buffer.
    ResponseTooLarge = -3,
    /// Unknown `svc` immediate.
    UnknownCall = -4,
}

impl SyscallError {
    /// The value placed in r0.
    pub fn to_r0(self) -> u32 {
        (self as i32).cast_unsigned()
    }

    /// The error an r0 value stands for, if it is one.
    pub fn from_r0(r0: u32) -> Option<SyscallError> {
        [
            SyscallError::BufferOutsideApp,
            SyscallError::LengthExceedsCapacity,
            SyscallError::ResponseTooLarge,
            SyscallError::UnknownCall,
        ]
        .into_iter()
        .find(|e| e.to_r0() == r0)
    }
}

/// Check a command's registers against the calling app's RAM before the kernel touches the
/// buffer: `[ptr, ptr + capacity)` inside `app_ram`, `len <= capacity`.
pub fn check_buffer(
    ptr: u32,
    len: u32,
    capacity: u32,
    app_ram: Region,
) -> Result<(), SyscallError> {
    if !app_ram.contains_range(ptr, capacity) {
        return Err(SyscallError::BufferOutsideApp);
    }
    if len > capacity {
        return Err(SyscallError::LengthExceedsCapacity);
    }
    Ok(())
}

/// The answer to one decoded request, for the app in slot `app_id`.
fn answer(request: &Request<'_>, app_id: u8) -> Response<'static> {
    match request {
        Request::Hello { major, .. } if *major == ABI_MAJOR => Response::Welcome {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            app_id,
        },
        Request::Hello { .. } => Response::Error(ErrorCode::AbiMismatch),
        Request::Status => Response::Status(LinkStatus {
            connected: false,
            connects: 0,
            pending_publishes: 0,
            registration: Registration::NotNeeded,
            ota: OtaStatus::Idle,
        }),
        Request::WaitEvent { .. } => Response::NoEvent,
        Request::Publish { .. } | Request::Subscribe { .. } | Request::Unsubscribe { .. } => {
            Response::Error(ErrorCode::Unsupported)
        }
    }
}

/// Serve one command whose buffer already passed [`check_buffer`]: decode the request frame in
/// `buffer[..len]` once, then write the response frame over the buffer and return its length.
/// A request that does not decode is answered `Error(Malformed)`.
pub fn serve_command(buffer: &mut [u8], len: usize, app_id: u8) -> Result<usize, SyscallError> {
    let frame = buffer
        .get_mut(..len)
        .ok_or(SyscallError::LengthExceedsCapacity)?;
    let response = match aliot_abi::decode_frame::<Request<'_>>(frame) {
        Ok(request) => answer(&request, app_id),
        Err(_) => Response::Error(ErrorCode::Malformed),
    };
    // The request (which borrowed the buffer) is gone; the buffer now takes the answer.
    aliot_abi::encode_frame(&response, buffer)
        .map(|frame| frame.len())
        .map_err(|_| SyscallError::ResponseTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Region = Region {
        start: 0x3820_0000,
        len: 0x800,
    };

    #[test]
    fn buffer_in_own_ram_is_accepted() {
        assert_eq!(check_buffer(0x3820_0100, 5, 64, RAM), Ok(()));
        assert_eq!(check_buffer(0x3820_07C0, 64, 64, RAM), Ok(()));
    }

    #[test]
    fn kernel_address_is_refused() {
        assert_eq!(
            check_buffer(0x3800_0000, 5, 64, RAM),
            Err(SyscallError::BufferOutsideApp)
        );
    }

    #[test]
    fn buffer_straddling_the_end_is_refused() {
        assert_eq!(
            check_buffer(0x3820_07C1, 5, 64, RAM),
            Err(SyscallError::BufferOutsideApp)
        );
        assert_eq!(
            check_buffer(0x3820_0100, 5, 0xFFFF_FFFF, RAM),
            Err(SyscallError::BufferOutsideApp)
        );
    }

    #[test]
    fn length_over_capacity_is_refused() {
        assert_eq!(
            check_buffer(0x3820_0100, 65, 64, RAM),
            Err(SyscallError::LengthExceedsCapacity)
        );
    }

    #[test]
    fn error_codes_are_negative_r0() {
        assert_eq!(SyscallError::BufferOutsideApp.to_r0(), 0xFFFF_FFFF);
        assert_eq!(SyscallError::UnknownCall.to_r0(), 0xFFFF_FFFC);
        assert_eq!(
            SyscallError::from_r0(0xFFFF_FFFE),
            Some(SyscallError::LengthExceedsCapacity)
        );
        assert_eq!(SyscallError::from_r0(6), None);
    }

    #[test]
    fn hello_is_answered_welcome_in_place() {
        let mut buf = [0xAAu8; 32];
        // Hello { major: 2, minor: 2 } = postcard [00 02 02], COBS [01 03 02 02 00].
        buf[..5].copy_from_slice(&[0x01, 0x03, 0x02, 0x02, 0x00]);
        let n = serve_command(&mut buf, 5, 7).unwrap();
        // Welcome { 2, 2, app_id 7 } = postcard [01 02 02 07], COBS [05 01 02 02 07 00].
        assert_eq!(&buf[..n], &[0x05, 0x01, 0x02, 0x02, 0x07, 0x00]);
    }

    #[test]
    fn hello_of_another_major_is_abi_mismatch() {
        let mut buf = [0u8; 16];
        // Hello { major: 1, minor: 0 } = [00 01 00] -> COBS [01 02 01 01 00].
        buf[..5].copy_from_slice(&[0x01, 0x02, 0x01, 0x01, 0x00]);
        let n = serve_command(&mut buf, 5, 0).unwrap();
        // Error(AbiMismatch) = [06 01] -> COBS [03 06 01 00].
        assert_eq!(&buf[..n], &[0x03, 0x06, 0x01, 0x00]);
    }

    #[test]
    fn status_is_answered_offline() {
        let mut buf = [0u8; 32];
        // Status = [04] -> COBS [02 04 00].
        buf[..3].copy_from_slice(&[0x02, 0x04, 0x00]);
        let n = serve_command(&mut buf, 3, 0).unwrap();
        // Status(LinkStatus{false, 0, 0, NotNeeded, Idle}) = [03 00 00 00 00 00] -> COBS
        // [02 03 01 01 01 01 01 00].
        assert_eq!(&buf[..n], &[0x02, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]);
    }

    #[test]
    fn garbage_is_answered_malformed() {
        let mut buf = [0u8; 16];
        buf[..3].copy_from_slice(&[0x02, 0x63, 0x00]); // variant 99
        let n = serve_command(&mut buf, 3, 0).unwrap();
        // Error(Malformed) = [06 00] -> COBS [02 06 01 00].
        assert_eq!(&buf[..n], &[0x02, 0x06, 0x01, 0x00]);
    }

    #[test]
    fn answer_that_does_not_fit_is_refused() {
        let mut buf = [0x01, 0x03, 0x02, 0x02, 0x00];
        assert_eq!(
            serve_command(&mut buf, 5, 0),
            Err(SyscallError::ResponseTooLarge)
        );
    }
}
