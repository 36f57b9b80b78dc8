//! Exception entry and the switch between the kernel and an app (ARMv8-M Mainline, Thumb-2).
//!
//! The kernel runs privileged in thread mode on MSP. To run an app it calls
//! [`switch_to_user`], which loads the app's r4-r11 and executes `svc`; the SVC handler sees
//! the call came from the kernel (EXC_RETURN.SPSEL = 0), sets CONTROL.nPRIV and returns into
//! the app's exception frame on PSP. When the app executes `svc`, or raises MemManage,
//! BusFault, UsageFault or HardFault, the handler sees EXC_RETURN.SPSEL = 1 (thread mode on
//! PSP: an app), records why in [`SWITCH_REASON`] (the IPSR exception number), clears nPRIV
//! and returns to the kernel just after its `svc`, where [`switch_to_user`] saves the app's
//! r4-r11. A fault with SPSEL = 0 is the kernel's own: it goes to the board's
//! `aliot_kernel_fault`. SysTick takes the same trap path when it interrupts an app (reason
//! 15: preempted), so a preempted app's context is saved exactly like at a syscall and it is
//! resumed the same way; when it interrupts the kernel it only counts the tick. This is the Tock kernel's design (arch/cortex-m), written for this
//! crate because no maintained crate offers it on its own.
//!
//! EXC_RETURN values are saved as the hardware produced them (not hard-coded), so the Secure
//! state bits and the frame type (standard or with FP state) are always returned as entered.
//!
//! Floating point (hard-float target, single-precision FPU): the hardware saves s0-s15 and
//! FPSCR in the exception frame of whoever had an FP context (CONTROL.FPCA, which sets
//! EXC_RETURN.FType = 0: a 26-word frame) and restores them on return. s16-s31 are callee-saved
//! by software (AAPCS-VFP), so [`switch_to_user`] keeps the kernel's on MSP around the switch and
//! loads/saves the app's from/to the `Process`. That `vpush` also gives the kernel an FP context,
//! so its own `svc` frame holds its s0-s15 and FPSCR. [`crate::fpu::configure`] turns lazy
//! stacking off (FPCCR.LSPEN = 0): with it on, an app's trap would leave FPCCR.LSPACT set with
//! FPCAR pointing into the app's frame, and a return into another context's extended frame while
//! LSPACT is set does not unstack that frame's s0-s15 (ARMv8-M ARM, exception return), so one
//! context would get the other's registers; eager stacking never leaves lazy state pending.

use core::sync::atomic::AtomicU32;

// `switch_to_user` moves s16-s31 with VFP instructions: the runtime needs the hard-float ABI.
#[cfg(not(target_abi = "eabihf"))]
compile_error!(
    "aliot-cortex-m33 targets thumbv8m.main-none-eabihf (the FPU's s16-s31 are part of an app's context)"
);

/// Exception number that made the last app return to the kernel (11 = SVCall, 15 = SysTick:
/// preempted, 3 = HardFault, 4 = MemManage, 5 = BusFault, 6 = UsageFault).
pub(crate) static SWITCH_REASON: AtomicU32 = AtomicU32::new(0);
/// EXC_RETURN to resume the app with (thread mode, PSP); written by the kernel before a
/// switch and by the trap handler after it.
pub(crate) static APP_EXC_RETURN: AtomicU32 = AtomicU32::new(0);
/// EXC_RETURN to resume the kernel with (thread mode, MSP).
static KERNEL_EXC_RETURN: AtomicU32 = AtomicU32::new(0);

/// SysTick interrupts taken since boot (wraps after 2^32).
pub(crate) static TICKS: AtomicU32 = AtomicU32::new(0);

/// Exception number of SVCall.
pub(crate) const SVCALL: u32 = 11;
/// Exception number of SysTick.
pub(crate) const SYSTICK: u32 = 15;

unsafe extern "C" {
    /// Provided by the board: a fault in the kernel itself (not an app). Must not return.
    fn aliot_kernel_fault(exception: u32, exc_return: u32) -> !;
}

/// Run the app whose stack pointer is `psp`, whose r4-r11 are `regs` and whose s16-s31 are
/// `fp_regs` until it traps back (SVC, SysTick or fault); returns the app's new PSP and leaves
/// its r4-r11 in `regs` and its s16-s31 in `fp_regs`.
///
/// The app's s16-s31 are saved and loaded at every switch, whether or not it uses FP: a fixed
/// 16-word copy each way (two instructions) costs less than a branch on EXC_RETURN.FType is
/// worth, and an app never sees a value it did not write there itself (they start zeroed).
/// s0-s15 are zeroed before the switch: an app with FP state in its frame gets its own back
/// from the frame; one without starts its FP use with zeros, not with the kernel's or another
/// app's values.
///
/// # Safety
/// `psp` must point at a valid exception frame inside the app's RAM, the MPU must map that
/// app, [`APP_EXC_RETURN`] must hold the app's EXC_RETURN, the FPU must be configured by
/// [`crate::fpu::configure`].
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch_to_user(
    psp: u32,
    regs: *mut [u32; 8],
    fp_regs: *mut [u32; 16],
) -> u32 {
    core::arch::naked_asm!(
        // A naked function's body is assembled without the target's FPU features: name the
        // Cortex-M33's single-precision FPv5 so the VFP instructions below assemble.
        ".fpu fpv5-sp-d16",
        // Kernel callee-saved registers (10 + 16 words keep MSP 8-byte aligned).
        "push {{r4-r12, lr}}",
        "vpush {{s16-s31}}",
        "msr psp, r0",
        "ldmia r1, {{r4-r11}}",
        "vldmia r2, {{s16-s31}}",
        "movs r3, #0",
        "vmov s0, s1, r3, r3",
        "vmov s2, s3, r3, r3",
        "vmov s4, s5, r3, r3",
        "vmov s6, s7, r3, r3",
        "vmov s8, s9, r3, r3",
        "vmov s10, s11, r3, r3",
        "vmov s12, s13, r3, r3",
        "vmov s14, s15, r3, r3",
        "svc 0xff",
        // Back from the app: r0-r3, s0-s15 and FPSCR are the kernel's again (unstacked from
        // MSP), r4-r11 and s16-s31 the app's.
        "vstmia r2, {{s16-s31}}",
        "vpop {{s16-s31}}",
        "stmia r1, {{r4-r11}}",
        "mrs r0, psp",
        "pop {{r4-r12, pc}}",
    )
}

/// SVCall: from the kernel, enter the app; from an app, trap to the kernel.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn SVCall() {
    core::arch::naked_asm!(
        "tst lr, #4",
        "bne {trap}",
        "movw r0, :lower16:{kernel_exc}",
        "movt r0, :upper16:{kernel_exc}",
        "str lr, [r0]",
        "mrs r0, control",
        "orr r0, r0, #1", // nPRIV: thread mode unprivileged
        "msr control, r0",
        "isb",
        "movw r0, :lower16:{app_exc}",
        "movt r0, :upper16:{app_exc}",
        "ldr lr, [r0]",
        "bx lr",
        trap = sym app_trap,
        kernel_exc = sym KERNEL_EXC_RETURN,
        app_exc = sym APP_EXC_RETURN,
    )
}

/// Return from an app's exception to the kernel, recording the exception number.
#[unsafe(naked)]
unsafe extern "C" fn app_trap() {
    core::arch::naked_asm!(
        "movw r0, :lower16:{app_exc}",
        "movt r0, :upper16:{app_exc}",
        "str lr, [r0]",
        "mrs r1, ipsr",
        "movw r0, :lower16:{reason}",
        "movt r0, :upper16:{reason}",
        "str r1, [r0]",
        "mrs r0, control",
        "bic r0, r0, #1", // back to privileged thread mode
        "msr control, r0",
        "isb",
        "movw r0, :lower16:{kernel_exc}",
        "movt r0, :upper16:{kernel_exc}",
        "ldr lr, [r0]",
        "bx lr",
        app_exc = sym APP_EXC_RETURN,
        reason = sym SWITCH_REASON,
        kernel_exc = sym KERNEL_EXC_RETURN,
    )
}

/// SysTick: count the tick; if it interrupted an app, preempt it (trap to the kernel exactly
/// like an SVC would, so its context is saved and it can be resumed); if it interrupted the
/// kernel, just return. r0-r3 are free: the hardware stacked them.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn SysTick() {
    core::arch::naked_asm!(
        "movw r0, :lower16:{ticks}",
        "movt r0, :upper16:{ticks}",
        "ldr r1, [r0]",
        "adds r1, r1, #1",
        "str r1, [r0]",
        "tst lr, #4",
        "bne {trap}",
        "bx lr",
        ticks = sym TICKS,
        trap = sym app_trap,
    )
}

/// Set PSPLIM: a push by the app below `limit` raises UsageFault (UFSR.STKOF) instead of
/// writing under its stack (ARMv8-M ARM B3.5.2, stack limit checks).
///
/// # Safety
/// Call from privileged thread mode before switching to the app whose stack bottom `limit` is.
pub(crate) unsafe fn set_psplim(limit: u32) {
    // SAFETY: PSPLIM only bounds the process stack, which the kernel does not use.
    unsafe { core::arch::asm!("msr psplim, {}", "isb", in(reg) limit, options(nostack)) };
}

/// Body shared by the fault handlers: an app's fault ends the app, the kernel's goes to the board.
macro_rules! fault_handler {
    ($name:ident) => {
        /// Fault entry: see the module docs.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "tst lr, #4",
                "bne {trap}",
                "mrs r0, ipsr",
                "mov r1, lr",
                "b {kernel_fault}",
                trap = sym app_trap,
                kernel_fault = sym aliot_kernel_fault,
            )
        }
    };
}

fault_handler!(MemoryManagement);
fault_handler!(BusFault);
fault_handler!(UsageFault);
fault_handler!(HardFault);
