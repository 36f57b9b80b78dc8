//! The CMSDK APB UART of QEMU's `mps2-an505` (Arm CMSDK technical reference, "APB UART"):
//! UART0 carries the network bridge's frames (see `bridge`). Polled, no interrupts: the
//! kernel's executor polls the line whenever it has nothing else to do, and QEMU's character
//! device holds what the board has not read yet (it stops reading its socket), so no byte is
//! lost while the board is busy.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::ReadWrite,
};

register_bitfields![u32,
    /// STATE: buffer flags.
    STATE [
        /// A byte waits in the receive buffer.
        RX_FULL OFFSET(1) NUMBITS(1) [],
        /// The transmit buffer is full.
        TX_FULL OFFSET(0) NUMBITS(1) []
    ],
    /// CTRL: enables.
    CTRL [
        /// Receiver on.
        RX_EN OFFSET(1) NUMBITS(1) [],
        /// Transmitter on.
        TX_EN OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// The UART's registers.
    UartRegisters {
        (0x00 => data: ReadWrite<u32>),
        (0x04 => state: ReadWrite<u32, STATE::Register>),
        (0x08 => ctrl: ReadWrite<u32, CTRL::Register>),
        (0x0C => intstatus: ReadWrite<u32>),
        (0x10 => bauddiv: ReadWrite<u32>),
        (0x14 => @END),
    }
}

/// UART0's Secure alias on the AN505 (the kernel runs Secure; QEMU hw/arm/mps2-tz.c).
const UART0_BASE: usize = 0x5020_0000;
/// Baud divisor: the hardware needs at least 16; QEMU's line runs at the speed of its socket.
const BAUD_DIVISOR: u32 = 16;

/// UART0, polled.
pub struct Uart {
    regs: &'static UartRegisters,
}

impl Uart {
    /// Take UART0 and enable it.
    ///
    /// # Safety
    /// Call once: the handle is the only user of the UART's registers.
    pub unsafe fn take_uart0() -> Uart {
        // SAFETY: UART0_BASE is the AN505's UART0 register block (Secure alias), valid for
        // the program's life; the caller guarantees this is the only handle.
        let regs = unsafe { &*(UART0_BASE as *const UartRegisters) };
        regs.bauddiv.set(BAUD_DIVISOR);
        regs.ctrl.write(CTRL::TX_EN::SET + CTRL::RX_EN::SET);
        Uart { regs }
    }

    /// The next received byte, if one is there.
    pub fn try_read(&self) -> Option<u8> {
        self.regs
            .state
            .is_set(STATE::RX_FULL)
            .then(|| self.regs.data.get() as u8)
    }

    /// Send `bytes`, waiting for room before each.
    pub fn write_all(&self, bytes: &[u8]) {
        for &b in bytes {
            while self.regs.state.is_set(STATE::TX_FULL) {
                core::hint::spin_loop();
            }
            self.regs.data.set(u32::from(b));
        }
    }
}
