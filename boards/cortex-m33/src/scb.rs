//! The System Control Block's fault registers: turning the configurable faults on, and
//! reading (then clearing) what a fault left behind so the kernel can log it.
//!
//! Without `SHCSR.MEMFAULTENA` an MPU violation escalates to HardFault, which says less; with
//! it, MemManage reports the exact address in MMFAR (ARMv8-M ARM B3.2, D1.2.x CFSR/MMFAR).

use tock_registers::{
    interfaces::{ReadWriteable, Readable, Writeable},
    register_structs,
    registers::ReadWrite,
};

/// Register fields, named as in the ARMv8-M Architecture Reference Manual.
pub mod fields {
    // tock-registers' macro generates items (`Register`, `SET`, ...) without docs.
    #![allow(missing_docs)]
    use tock_registers::register_bitfields;

    register_bitfields![u32,
        /// SHCSR: enables of the configurable faults.
        pub SHCSR [
            /// SecureFault enable.
            SECUREFAULTENA OFFSET(19) NUMBITS(1) [],
            /// UsageFault enable.
            USGFAULTENA OFFSET(18) NUMBITS(1) [],
            /// BusFault enable.
            BUSFAULTENA OFFSET(17) NUMBITS(1) [],
            /// MemManage enable.
            MEMFAULTENA OFFSET(16) NUMBITS(1) []
        ],
        /// CFSR: MMFSR (bits 7:0), BFSR (15:8), UFSR (31:16).
        pub CFSR [
            /// MMFAR holds the faulting address.
            MMARVALID OFFSET(7) NUMBITS(1) [],
            /// BFAR holds the faulting address.
            BFARVALID OFFSET(15) NUMBITS(1) []
        ]
    ];
}

pub use fields::{CFSR, SHCSR};

register_structs! {
    /// SCB fault registers from SHCSR (0xE000_ED24) to BFAR (0xE000_ED38).
    pub ScbFaultRegisters {
        (0x00 => shcsr: ReadWrite<u32, SHCSR::Register>),
        (0x04 => cfsr: ReadWrite<u32, CFSR::Register>),
        (0x08 => hfsr: ReadWrite<u32>),
        (0x0C => _dfsr),
        (0x10 => mmfar: ReadWrite<u32>),
        (0x14 => bfar: ReadWrite<u32>),
        (0x18 => @END),
    }
}

/// What a fault left in the SCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultStatus {
    /// CFSR (MMFSR | BFSR << 8 | UFSR << 16).
    pub cfsr: u32,
    /// HFSR.
    pub hfsr: u32,
    /// The faulting data address of a MemManage fault, when MMFAR is valid.
    pub mmfar: Option<u32>,
    /// The faulting address of a precise BusFault, when BFAR is valid.
    pub bfar: Option<u32>,
}

/// The SCB fault registers, owned by the kernel.
pub struct Scb {
    regs: &'static ScbFaultRegisters,
}

impl Scb {
    const BASE: usize = 0xE000_ED24;

    /// Take the SCB fault registers.
    ///
    /// # Safety
    /// Call once: the returned value assumes it is the only user of these registers.
    pub unsafe fn take() -> Scb {
        // SAFETY: 0xE000_ED24 is the architectural SHCSR..BFAR block (ARMv8-M ARM D1.2),
        // always mapped and word aligned; the caller promises there is no other user.
        let regs = unsafe { &*(Self::BASE as *const ScbFaultRegisters) };
        Scb { regs }
    }

    /// Route MPU, bus and usage faults to their own handlers instead of HardFault.
    pub fn enable_faults(&self) {
        self.regs
            .shcsr
            .modify(SHCSR::MEMFAULTENA::SET + SHCSR::BUSFAULTENA::SET + SHCSR::USGFAULTENA::SET);
    }

    /// Read the fault status and clear it (CFSR and HFSR are write-one-to-clear), so the next
    /// fault is reported on its own.
    pub fn take_fault_status(&self) -> FaultStatus {
        let cfsr = self.regs.cfsr.get();
        let hfsr = self.regs.hfsr.get();
        let valid = |bit: u32| cfsr & bit != 0;
        let status = FaultStatus {
            cfsr,
            hfsr,
            mmfar: valid(1 << 7).then(|| self.regs.mmfar.get()),
            bfar: valid(1 << 15).then(|| self.regs.bfar.get()),
        };
        self.regs.cfsr.set(cfsr);
        self.regs.hfsr.set(hfsr);
        status
    }
}
