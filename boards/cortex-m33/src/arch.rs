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

use core::sync::atomic::AtomicU32;

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

/// Run the app whose stack pointer is `psp` and whose r4-r11 are `regs` until it traps back
/// (SVC or fault); returns the app's new PSP and leaves its r4-r11 in `regs`.
///
/// # Safety
/// `psp` must point at a valid exception frame inside the app's RAM, the MPU must map that
/// app, and [`APP_EXC_RETURN`] must hold the app's EXC_RETURN.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch_to_user(psp: u32, regs: *mut [u32; 8]) -> u32 {
    core::arch::naked_asm!(
        // Kernel callee-saved registers (10 words keep MSP 8-byte aligned).
        "push {{r4-r12, lr}}",
        "msr psp, r0",
        "ldmia r1, {{r4-r11}}",
        "svc 0xff",
        // Back from the app: r0-r3 are the kernel's again (unstacked from MSP), r4-r11 the app's.
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
