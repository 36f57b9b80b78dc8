//! SysTick: the kernel's time slice and tick counter.
//!
//! SysTick runs all the time with the period the board asks for (see
//! [`crate::policy::slice_reload`]), clocked from the processor clock (`CLKSOURCE = 1`: on
//! QEMU's mps2-an505 the external reference clock is not the one to rely on, and the
//! processor clock is the one the board knows). Each interrupt adds one to [`ticks`]; if it
//! interrupts an app, the app is preempted: its context stays on its stack and in the
//! kernel's copy of r4-r11, and control returns to the kernel (see the private `arch` module).
//! Before each switch to an app the kernel restarts the count (`SysTick::restart_slice`) so
//! every app gets a whole slice. Registers: ARMv8-M ARM B11.2 (SYST_CSR, SYST_RVR, SYST_CVR,
//! SYST_CALIB) and D1.2 ICSR.PENDSTCLR.

use core::sync::atomic::Ordering;

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite},
};

/// Register fields, named as in the ARMv8-M Architecture Reference Manual.
pub mod fields {
    // tock-registers' macro generates items (`Register`, `SET`, ...) without docs.
    #![allow(missing_docs)]
    use tock_registers::register_bitfields;

    register_bitfields![u32,
        /// SYST_CSR: control and status.
        pub CSR [
            /// The counter reached 0 since the last read.
            COUNTFLAG OFFSET(16) NUMBITS(1) [],
            /// 1: processor clock; 0: external reference clock.
            CLKSOURCE OFFSET(2) NUMBITS(1) [],
            /// Raise the SysTick exception when the count reaches 0.
            TICKINT OFFSET(1) NUMBITS(1) [],
            /// Counter on.
            ENABLE OFFSET(0) NUMBITS(1) []
        ],
        /// SYST_RVR: reload value.
        pub RVR [
            /// Loaded into the counter when it reaches 0.
            RELOAD OFFSET(0) NUMBITS(24) []
        ],
        /// ICSR: interrupt control and state (only the SysTick bit is used).
        pub ICSR [
            /// Write 1: clear a pending SysTick.
            PENDSTCLR OFFSET(25) NUMBITS(1) []
        ]
    ];
}

pub use fields::{CSR, ICSR, RVR};

register_structs! {
    /// SysTick registers at 0xE000_E010.
    pub SysTickRegisters {
        (0x00 => csr: ReadWrite<u32, CSR::Register>),
        (0x04 => rvr: ReadWrite<u32, RVR::Register>),
        (0x08 => cvr: ReadWrite<u32>),
        (0x0C => calib: ReadOnly<u32>),
        (0x10 => @END),
    }
}

/// SysTick interrupts taken since the runtime started it (wraps after 2^32; compare with
/// `wrapping_sub`).
pub fn ticks() -> u32 {
    crate::arch::TICKS.load(Ordering::SeqCst)
}

/// The SysTick timer, owned by the kernel.
pub struct SysTick {
    regs: &'static SysTickRegisters,
    icsr: &'static ReadWrite<u32, ICSR::Register>,
}

impl SysTick {
    const BASE: usize = 0xE000_E010;
    const ICSR: usize = 0xE000_ED04;

    /// Take the SysTick registers.
    ///
    /// # Safety
    /// Call once: the returned value assumes it is the only user of SysTick.
    pub(crate) unsafe fn take() -> SysTick {
        // SAFETY: 0xE000_E010 is the architectural SysTick block and 0xE000_ED04 ICSR (ARMv8-M
        // ARM B11.2, D1.2), always mapped and word aligned; the caller promises no other user.
        // ICSR is written only with PENDSTCLR (its other write-one bits stay 0).
        unsafe {
            SysTick {
                regs: &*(Self::BASE as *const SysTickRegisters),
                icsr: &*(Self::ICSR as *const ReadWrite<u32, ICSR::Register>),
            }
        }
    }

    /// Interrupt every `reload + 1` processor clock cycles, from now on.
    pub(crate) fn start(&self, reload: u32) {
        self.regs.csr.set(0);
        self.regs.rvr.write(RVR::RELOAD.val(reload));
        self.regs.cvr.set(0);
        self.regs
            .csr
            .write(CSR::CLKSOURCE::SET + CSR::TICKINT::SET + CSR::ENABLE::SET);
    }

    /// A whole slice from now: reload the counter and drop a SysTick that is already pending
    /// (it belongs to the kernel's time, not to the app about to run).
    pub(crate) fn restart_slice(&self) {
        self.regs.cvr.set(0);
        self.icsr.write(ICSR::PENDSTCLR::SET);
    }

    /// SYST_CALIB as the implementation reports it (for the boot log).
    pub(crate) fn calibration(&self) -> u32 {
        self.regs.calib.get()
    }
}
