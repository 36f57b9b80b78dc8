//! The FPU settings the process runtime relies on: apps may use it unprivileged, and its state
//! is stacked eagerly, never lazily.
//!
//! cortex-m-rt already grants CP10/CP11 at reset on hard-float targets; the runtime sets them
//! again so it does not depend on the board's startup code. Why lazy stacking is off: see the
//! `arch` module docs (a lazy frame left pending by one context would be taken for another's).

/// CPACR (ARMv8-M ARM D1.2): coprocessor access control.
const CPACR: *mut u32 = 0xE000_ED88 as *mut u32;
/// CPACR.CP10 and CP11 = 0b11: full access, privileged and unprivileged.
const CPACR_FP_FULL: u32 = 0b1111 << 20;
/// FPCCR (ARMv8-M ARM D1.2): floating-point context control.
const FPCCR: *mut u32 = 0xE000_EF34 as *mut u32;
/// FPCCR.ASPEN: an FP instruction sets CONTROL.FPCA, so exception entry saves FP state.
const FPCCR_ASPEN: u32 = 1 << 31;
/// FPCCR.LSPEN: lazy state preservation.
const FPCCR_LSPEN: u32 = 1 << 30;

/// FPU access and context control as the runtime left them (`Runtime::take` configures them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpuConfig {
    /// CPACR.
    pub cpacr: u32,
    /// FPCCR.
    pub fpccr: u32,
}

impl FpuConfig {
    /// Apps may use the FPU, entry saves FP state when in use, and eagerly.
    pub fn is_as_required(&self) -> bool {
        self.cpacr & CPACR_FP_FULL == CPACR_FP_FULL
            && self.fpccr & (FPCCR_ASPEN | FPCCR_LSPEN) == FPCCR_ASPEN
    }
}

/// Give privileged and unprivileged code full FPU access, keep automatic FP state saving on
/// (ASPEN) and turn lazy stacking off (LSPEN); returns the registers as read back.
///
/// # Safety
/// Call from privileged thread mode with no FP state pending (at start-up, before any app ran).
pub(crate) unsafe fn configure() -> FpuConfig {
    // SAFETY: CPACR and FPCCR are architectural SCB/FPU registers (always mapped, word
    // aligned); nothing else writes them; the caller guarantees no lazy FP state is pending, so
    // changing LSPEN loses nothing. The barriers make the settings apply to the next instruction.
    unsafe {
        CPACR.write_volatile(CPACR.read_volatile() | CPACR_FP_FULL);
        let fpccr = FPCCR.read_volatile();
        FPCCR.write_volatile((fpccr | FPCCR_ASPEN) & !FPCCR_LSPEN);
        core::arch::asm!("dsb", "isb", options(nostack, preserves_flags));
        FpuConfig {
            cpacr: CPACR.read_volatile(),
            fpccr: FPCCR.read_volatile(),
        }
    }
}
