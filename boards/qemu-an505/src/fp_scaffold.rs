//! Test scaffolding of this board: while it serves a syscall, the kernel writes its own values
//! into every FP register (s0-s31) and FPSCR's flags, so the greeter's FP check (see `apps`)
//! fails unless the runtime keeps an app's FP context apart from whatever runs between two of
//! its traps.
//!
//! s0-s15 are declared clobbered (caller-saved). s16-s31 are deliberately not: declared, the
//! compiler would save and restore them around this block, and a runtime that leaves the app's
//! s16-s31 in the registers while the kernel runs would go unseen. Undeclared, the block stands
//! for another context writing them (another app, or kernel code keeping values in s16-s31
//! across `switch_to_user`). That breaks the AAPCS for this kernel's callers, which is harmless
//! only because no code in this kernel keeps a value in an FP register: its image holds no VFP
//! instruction besides the runtime's `switch_to_user` and this block (checked with
//! `llvm-objdump -d`). Not for a real board.

use core::arch::asm;

use crate::apps::fp_pattern;

/// Seed of the scaffold's pattern: every register gets a value other than the greeter's.
const SCAFFOLD_FP_SEED: u32 = 0xBB67_AE85;
/// FPSCR the scaffold leaves: Z and C, the DZC and UFC flags (control bits as at reset).
const SCAFFOLD_FPSCR: u32 = 0x6000_0000 | 0b1010;

/// Overwrite s0-s31 and FPSCR with the scaffold's values.
pub(crate) fn clobber_fp_registers() {
    let mut words = [0u32; 32];
    for (n, word) in (0..).zip(words.iter_mut()) {
        *word = fp_pattern(SCAFFOLD_FP_SEED, n);
    }
    // SAFETY: reads the 32 words of `words`; writes FP registers only (see the module docs for
    // s16-s31 and FPSCR).
    unsafe {
        asm!(
            "vldmia {p}, {{s0-s31}}",
            "vmsr fpscr, {f}",
            p = in(reg) words.as_ptr(),
            f = in(reg) SCAFFOLD_FPSCR,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options(nostack, readonly, preserves_flags),
        );
    }
}
