//! The size of the exception frame the hardware stacks on an app's PSP, from the EXC_RETURN it
//! produced, so the kernel checks the whole frame lies in the app's RAM before reading it.
//!
//! An app that used the FPU (CONTROL.FPCA = 1) traps with an extended frame (EXC_RETURN.FType =
//! 0): r0-r3, r12, lr, pc, xPSR, then s0-s15, FPSCR and a reserved word (ARMv8-M ARM B3.19,
//! stack frames). The extra s16-s31 words of FPCCR.TS = 1 and the additional state context of
//! a Secure-to-Non-secure exception do not occur here (TS stays 0, the handlers run in the
//! app's security state). Word offsets of r0-r3 and pc are the same in both frames. A padding
//! word above the frame (xPSR bit 9) is never read by the kernel, so it is not counted.

/// EXC_RETURN.FType: 1 = standard frame, 0 = extended frame with FP state.
pub const EXC_RETURN_FTYPE: u32 = 1 << 4;
/// Words in a standard frame: r0-r3, r12, lr, pc, xPSR.
pub const STANDARD_FRAME_WORDS: u32 = 8;
/// Words in an extended frame: the standard frame, s0-s15, FPSCR, reserved.
pub const EXTENDED_FRAME_WORDS: u32 = STANDARD_FRAME_WORDS + 16 + 2;

/// Bytes of the frame an exception with this EXC_RETURN stacked.
pub fn frame_bytes(exc_return: u32) -> u32 {
    let words = if exc_return & EXC_RETURN_FTYPE == 0 {
        EXTENDED_FRAME_WORDS
    } else {
        STANDARD_FRAME_WORDS
    };
    words * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_extended_frames() {
        // Secure, thread mode, PSP: standard frame, then with FP state.
        assert_eq!(frame_bytes(0xFFFF_FFFD), 32);
        assert_eq!(frame_bytes(0xFFFF_FFED), 104);
        // Non-secure variants (ES = 0, S = 0) differ only in other bits.
        assert_eq!(frame_bytes(0xFFFF_FFBC), 32);
        assert_eq!(frame_bytes(0xFFFF_FFAC), 104);
    }
}
