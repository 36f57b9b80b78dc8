//! The ARMv8-M (Cortex-M33) process runtime shared by every Cortex-M33 board.
//!
//! On Linux an app is an OS process; on the chip the same promise ("a faulty or hostile app can
//! crash only itself") has to be kept by this crate: apps run in unprivileged thread mode on
//! the process stack (PSP), the MPU lets them touch only their own flash (read, execute) and
//! RAM (read, write, never execute), they reach the kernel only through `SVC`, and a fault they
//! raise ends them and returns control to the kernel instead of stopping the device. The design
//! follows the Tock kernel's Cortex-M port (`switch_to_user` + SVC handler, register blocks
//! through `tock-registers`).
//!
//! Layout:
//! - [`region`], [`header`], [`mpu`] (encoding), [`syscall`], [`policy`] (time slice and
//!   restart budgets), [`frame`] (exception frame sizes) are pure and unit-tested on the
//!   host: address ranges, the app header checked at boot, the RBAR/RLAR words, and the
//!   syscall boundary (buffer bounds check, decode once, answer in place).
//! - `mpu` (register access), `scb`, `systick`, `fpu`, `process` and the private `arch` module hold the
//!   hardware side; they build only for `target_arch = "arm"`. All `unsafe` of the runtime is
//!   there, each block with its `// SAFETY:` reason.
//! - `port` (feature `kernel-port`): the kernel's `AppPort` over the runtime (apps round-robin, syscalls handed to the
//!   kernel's runner, restarts per the manifest's policy), shared by every Cortex-M33 board.
//!
//! Syscall ABI (see [`syscall`]): `svc 0` = command, with r0 = pointer to the app's buffer,
//! r1 = request length, r2 = buffer capacity; the request is one aliot-abi COBS frame, the
//! answer is written back into the same buffer and its length returned in r0 (a negative r0
//! is a [`syscall::SyscallError`]). `svc 1` = exit, r0 = exit code.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod frame;
pub mod header;
pub mod mpu;
pub mod policy;
pub mod region;
pub mod syscall;

#[cfg(target_arch = "arm")]
mod arch;
#[cfg(target_arch = "arm")]
pub mod fpu;
#[cfg(all(target_arch = "arm", feature = "kernel-port"))]
pub mod port;
#[cfg(target_arch = "arm")]
pub mod process;
#[cfg(target_arch = "arm")]
pub mod scb;
#[cfg(target_arch = "arm")]
pub mod systick;
