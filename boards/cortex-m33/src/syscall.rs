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
//! What a request *means* is not decided here: the board hands a [`Capsule`] (on the QEMU
//! board, aliot-kernel's `Kernel`) the request's postcard bytes, unwrapped from their COBS frame
//! in place, and the capsule writes its answer's postcard bytes over them; [`serve_command`]
//! then wraps that answer in a COBS frame, again in place, so the app's buffer is the only
//! buffer. [`Offline`] is a stand-in capsule that needs no kernel (host tests, bring-up).

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

/// The service behind the SVC: answers one request's postcard bytes in place.
pub trait Capsule {
    /// Answer the request `buf[..len]` (postcard bytes) from the app in slot `app_id`: write
    /// the response's postcard bytes at the front of `buf` (the app's own buffer) and return
    /// their length; 0 when the response does not fit `buf`.
    fn serve(&mut self, app_id: u8, buf: &mut [u8], len: usize) -> usize;
}

/// A capsule that needs no kernel: answers `Hello`, `Status` (offline, nothing pending),
/// `WaitEvent` (no event) and `Time` (not known), and `Error(Unsupported)` to what needs the MQTT session.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

impl Offline {
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
            // No kernel, so no wall-clock time learnt.
            Request::Time => Response::Time(None),
            Request::Publish { .. } | Request::Subscribe { .. } | Request::Unsubscribe { .. } => {
                Response::Error(ErrorCode::Unsupported)
            }
        }
    }
}

impl Capsule for Offline {
    fn serve(&mut self, app_id: u8, buf: &mut [u8], len: usize) -> usize {
        let response = match buf.get(..len).map(postcard::from_bytes::<Request<'_>>) {
            Some(Ok(request)) => Self::answer(&request, app_id),
            _ => Response::Error(ErrorCode::Malformed),
        };
        // The request (which borrowed the buffer) is gone; the buffer now takes the answer.
        postcard::to_slice(&response, buf).map_or(0, |s| s.len())
    }
}

/// Serve one command whose buffer already passed [`check_buffer`]: unwrap the COBS frame in
/// `buffer[..len]` in place, let `capsule` answer the postcard bytes in place, and wrap the
/// answer in a COBS frame (terminating zero included) over the buffer; returns its length.
/// A frame that is not valid COBS reaches the capsule as an empty request (which it refuses).
/// The capsule is lent the buffer less the COBS overhead of a buffer-sized answer.
pub fn serve_command(
    buffer: &mut [u8],
    len: usize,
    app_id: u8,
    capsule: &mut dyn Capsule,
) -> Result<usize, SyscallError> {
    let request_len = unwrap_request(buffer, len)?;
    let answer = capsule.serve(app_id, answer_room(buffer), request_len);
    wrap_answer(buffer, answer)
}

/// First half of a command served later (the kernel's runner answers it when it gets to it):
/// unwrap the COBS frame in `buffer[..len]` in place, once; returns the request's postcard
/// length (0 when the frame is not valid COBS, an empty request the kernel refuses).
pub fn unwrap_request(buffer: &mut [u8], len: usize) -> Result<usize, SyscallError> {
    let frame = buffer
        .get_mut(..len)
        .ok_or(SyscallError::LengthExceedsCapacity)?;
    // The decoder stops at the first zero, so the terminator is optional.
    Ok(cobs::decode_in_place(frame).unwrap_or(0))
}

/// The part of `buffer` an answer may fill: the buffer less the framing's worst-case overhead,
/// so whatever the kernel writes can be framed (it never consumes an event that then could
/// not be delivered).
pub fn answer_room(buffer: &mut [u8]) -> &mut [u8] {
    let room = buffer.len().saturating_sub(2 + buffer.len() / 254);
    buffer.get_mut(..room).unwrap_or_default()
}

/// Second half: the answer's postcard bytes are `buffer[..answer_len]` (written into
/// [`answer_room`]); wrap them in a COBS frame in place; returns the frame's length, the
/// app's r0. `answer_len` 0 means the answer did not fit.
pub fn wrap_answer(buffer: &mut [u8], answer_len: usize) -> Result<usize, SyscallError> {
    match answer_len {
        0 => Err(SyscallError::ResponseTooLarge),
        n => encode_in_place(buffer, n).ok_or(SyscallError::ResponseTooLarge),
    }
}

/// COBS-encode `buf[..len]` in place, terminating zero included; returns the frame's length,
/// `None` when it does not fit `buf`.
///
/// Written by hand because the `cobs` crate (and postcard) encode from one slice into another:
/// here the bytes are first moved right by the encoding's worst-case overhead, then encoded
/// towards the front; the write position never passes the next byte still to be read (each
/// input byte takes one output byte, and at most one extra code byte per 254, all counted in
/// the shift).
pub fn encode_in_place(buf: &mut [u8], len: usize) -> Option<usize> {
    let shift = 1 + len / 254;
    let end = len.checked_add(shift)?;
    // The frame: at most `shift` code bytes, the data, the terminating zero.
    if end.checked_add(1)? > buf.len() {
        return None;
    }
    buf.copy_within(..len, shift);
    let mut code_at = 0;
    let mut out = 1;
    let mut code: u8 = 1;
    for read in shift..end {
        let byte = *buf.get(read)?;
        if byte == 0 {
            *buf.get_mut(code_at)? = code;
            code_at = out;
            out += 1;
            code = 1;
        } else {
            *buf.get_mut(out)? = byte;
            out += 1;
            code += 1;
            if code == 0xFF {
                *buf.get_mut(code_at)? = code;
                code_at = out;
                out += 1;
                code = 1;
            }
        }
    }
    *buf.get_mut(code_at)? = code;
    *buf.get_mut(out)? = 0;
    Some(out + 1)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

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
        // Hello { major: 2, minor: 2 } (an app of an older minor) = postcard [00 02 02],
        // COBS [01 03 02 02 00].
        buf[..5].copy_from_slice(&[0x01, 0x03, 0x02, 0x02, 0x00]);
        let n = serve_command(&mut buf, 5, 7, &mut Offline).unwrap();
        // Welcome { 2, 3 (the kernel's minor), app_id 7 } = postcard [01 02 03 07],
        // COBS [05 01 02 03 07 00].
        assert_eq!(&buf[..n], &[0x05, 0x01, 0x02, 0x03, 0x07, 0x00]);
    }

    #[test]
    fn hello_of_another_major_is_abi_mismatch() {
        let mut buf = [0u8; 16];
        // Hello { major: 1, minor: 0 } = [00 01 00] -> COBS [01 02 01 01 00].
        buf[..5].copy_from_slice(&[0x01, 0x02, 0x01, 0x01, 0x00]);
        let n = serve_command(&mut buf, 5, 0, &mut Offline).unwrap();
        // Error(AbiMismatch) = [06 01] -> COBS [03 06 01 00].
        assert_eq!(&buf[..n], &[0x03, 0x06, 0x01, 0x00]);
    }

    #[test]
    fn status_is_answered_offline() {
        let mut buf = [0u8; 32];
        // Status = [04] -> COBS [02 04 00].
        buf[..3].copy_from_slice(&[0x02, 0x04, 0x00]);
        let n = serve_command(&mut buf, 3, 0, &mut Offline).unwrap();
        // Status(LinkStatus{false, 0, 0, NotNeeded, Idle}) = [03 00 00 00 00 00] -> COBS
        // [02 03 01 01 01 01 01 00].
        assert_eq!(&buf[..n], &[0x02, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]);
    }

    #[test]
    fn garbage_is_answered_malformed() {
        let mut buf = [0u8; 16];
        buf[..3].copy_from_slice(&[0x02, 0x63, 0x00]); // variant 99
        let n = serve_command(&mut buf, 3, 0, &mut Offline).unwrap();
        // Error(Malformed) = [06 00] -> COBS [02 06 01 00].
        assert_eq!(&buf[..n], &[0x02, 0x06, 0x01, 0x00]);
    }

    #[test]
    fn answer_that_does_not_fit_is_refused() {
        let mut buf = [0x01, 0x03, 0x02, 0x02, 0x00];
        assert_eq!(
            serve_command(&mut buf, 5, 0, &mut Offline),
            Err(SyscallError::ResponseTooLarge)
        );
    }

    #[test]
    fn encode_in_place_matches_hand_built_frames() {
        // [11 00 22 33] -> COBS [02 11 03 22 33] + terminator.
        let mut buf = [0x11, 0x00, 0x22, 0x33, 0xEE, 0xEE];
        assert_eq!(encode_in_place(&mut buf, 4), Some(6));
        assert_eq!(buf, [0x02, 0x11, 0x03, 0x22, 0x33, 0x00]);
        // [00] -> [01 01 00].
        let mut buf = [0x00, 0xEE, 0xEE];
        assert_eq!(encode_in_place(&mut buf, 1), Some(3));
        assert_eq!(buf, [0x01, 0x01, 0x00]);
        // One byte short of room for the terminator.
        let mut buf = [0x11, 0x00, 0x22, 0x33, 0xEE];
        assert_eq!(encode_in_place(&mut buf, 4), None);
    }

    #[test]
    fn encode_in_place_splits_runs_of_254() {
        // 300 non-zero bytes: [FF, 254 bytes, 2F, 46 bytes, 00].
        let mut buf = [0u8; 303];
        for (i, b) in buf.iter_mut().take(300).enumerate() {
            *b = (i % 255 + 1) as u8;
        }
        let data: Vec<u8> = buf[..300].to_vec();
        assert_eq!(encode_in_place(&mut buf, 300), Some(303));
        assert_eq!(buf[0], 0xFF);
        assert_eq!(&buf[1..255], &data[..254]);
        assert_eq!(buf[255], 47);
        assert_eq!(&buf[256..302], &data[254..]);
        assert_eq!(buf[302], 0);
        let mut copy = buf;
        assert_eq!(cobs::decode_in_place(&mut copy[..302]), Ok(300));
        assert_eq!(&copy[..300], &data[..]);
    }

    /// Records the postcard bytes it was handed and answers with fixed bytes.
    struct Echo {
        seen: Vec<u8>,
        answer: &'static [u8],
    }

    impl Capsule for Echo {
        fn serve(&mut self, _app: u8, buf: &mut [u8], len: usize) -> usize {
            self.seen = buf[..len].to_vec();
            buf[..self.answer.len()].copy_from_slice(self.answer);
            self.answer.len()
        }
    }

    #[test]
    fn capsule_sees_unframed_bytes_and_its_answer_is_framed() {
        let mut capsule = Echo {
            seen: Vec::new(),
            answer: &[0x05, 0x00, 0x07],
        };
        // Frame of [04 00 09] without its terminator: [02 04 02 09].
        let mut buf = [0x02, 0x04, 0x02, 0x09, 0xAA, 0xAA];
        let n = serve_command(&mut buf, 4, 0, &mut capsule).unwrap();
        assert_eq!(capsule.seen, [0x04, 0x00, 0x09]);
        // [05 00 07] -> [02 05 02 07 00].
        assert_eq!(&buf[..n], &[0x02, 0x05, 0x02, 0x07, 0x00]);
    }

    #[test]
    fn broken_cobs_reaches_the_capsule_empty() {
        let mut capsule = Echo {
            seen: vec![1],
            answer: &[0x06, 0x00],
        };
        // Code byte 05 promises four more bytes; only one follows.
        let mut buf = [0x05, 0x04, 0x00, 0xAA, 0xAA, 0xAA];
        serve_command(&mut buf, 3, 0, &mut capsule).unwrap();
        assert!(capsule.seen.is_empty());
    }

    /// Fills whatever buffer it is lent and answers with all of it.
    struct Fill {
        lent: usize,
    }

    impl Capsule for Fill {
        fn serve(&mut self, _app: u8, buf: &mut [u8], _len: usize) -> usize {
            self.lent = buf.len();
            buf.fill(0x11);
            buf.len()
        }
    }

    #[test]
    fn the_capsule_is_lent_only_what_can_still_be_framed() {
        let mut capsule = Fill { lent: 0 };
        let mut buf = [0u8; 64];
        buf[..3].copy_from_slice(&[0x02, 0x04, 0x00]);
        // 64 bytes: one code byte and the terminator of a frame of 62 bytes.
        let n = serve_command(&mut buf, 3, 0, &mut capsule).unwrap();
        assert_eq!(capsule.lent, 62);
        assert_eq!(n, 64);
        assert_eq!(buf[0], 63);
        assert!(buf[1..63].iter().all(|&b| b == 0x11));
        assert_eq!(buf[63], 0);
    }
}
