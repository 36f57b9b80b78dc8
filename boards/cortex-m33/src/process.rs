//! Running one app to completion: MPU set up for it alone, a fresh stack in its RAM, its
//! syscalls served, and its end (exit or fault) reported to the kernel.
//!
//! Apps run one at a time until they exit or fault (no time slice yet): this is the first
//! slice of the process runtime, enough to prove isolation and the syscall boundary.
//!
//! Not yet handled: an app's floating-point registers are not saved across a switch (s16-s31
//! would be the kernel's to preserve; the kernel does not use FP and the apps here do not
//! either), and there is no SysTick time slice, so a spinning app would starve the kernel.

use core::sync::atomic::Ordering;

use crate::arch::{self, APP_EXC_RETURN, SVCALL, SWITCH_REASON};
use crate::mpu::{Mpu, MpuError};
use crate::region::Region;
use crate::scb::{FaultStatus, Scb};
use crate::syscall::{self, SVC_COMMAND, SVC_EXIT, SyscallError};

/// EXC_RETURN for a fresh app: Secure, standard frame (no FP state), thread mode, PSP.
const FRESH_APP_EXC_RETURN: u32 = 0xFFFF_FFFD;
/// Words in a standard exception frame (r0-r3, r12, lr, pc, xPSR).
const FRAME_WORDS: u32 = 8;
const FRAME_BYTES: u32 = FRAME_WORDS * 4;
/// xPSR with only the Thumb bit set.
const XPSR_THUMB: u32 = 1 << 24;
/// Link register of a fresh app: returning from its entry function faults (never executable).
const NO_RETURN: u32 = 0xFFFF_FFFF;

/// An app whose header passed [`crate::header::AppHeader::check`].
#[derive(Debug, Clone, Copy)]
pub struct App {
    /// Name for the logs.
    pub name: &'static str,
    /// Slot number, given to the app in `Welcome`.
    pub id: u8,
    /// Its flash region (read, execute).
    pub flash: Region,
    /// The RAM it gets (read, write), its stack at the top.
    pub ram: Region,
    /// Thumb entry address.
    pub entry: u32,
}

/// One command an app made, for the kernel's log.
#[derive(Debug, Clone, Copy)]
pub struct SyscallRecord {
    /// r0: buffer address.
    pub ptr: u32,
    /// r1: request length.
    pub len: u32,
    /// r2: buffer capacity.
    pub capacity: u32,
    /// What went back in r0.
    pub result: Result<usize, SyscallError>,
}

/// A fault raised by an app.
#[derive(Debug, Clone, Copy)]
pub struct AppFault {
    /// Exception number (3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault).
    pub exception: u32,
    /// The fault registers.
    pub status: FaultStatus,
    /// Where the app was, when its exception frame lies in its RAM.
    pub pc: Option<u32>,
}

/// How an app's run ended.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// The app called exit with this code.
    Exited(u32),
    /// The app faulted and was ended.
    Faulted(AppFault),
    /// The app was not started: its regions cannot be mapped by the MPU.
    NotStarted(MpuError),
    /// The app was not started: its regions overlap the kernel's RAM.
    OverlapsKernel,
    /// The app's stack pointer left its RAM at a syscall: ended like a fault.
    BadStack(u32),
}

/// The privileged side of the runtime: MPU and fault registers.
pub struct Runtime {
    mpu: Mpu,
    scb: Scb,
    kernel_ram: Region,
}

impl Runtime {
    /// Take the MPU and the SCB fault registers and enable MemManage, BusFault and UsageFault.
    /// `kernel_ram` is the kernel's RAM: no app region may overlap it.
    ///
    /// # Safety
    /// Call once, from privileged thread mode on MSP (the reset state).
    pub unsafe fn take(kernel_ram: Region) -> Runtime {
        // SAFETY: the caller calls this once, so these are the only handles.
        let (mpu, scb) = unsafe { (Mpu::take(), Scb::take()) };
        scb.enable_faults();
        Runtime {
            mpu,
            scb,
            kernel_ram,
        }
    }

    /// Number of MPU regions.
    pub fn mpu_regions(&self) -> u32 {
        self.mpu.regions()
    }

    /// Run `app` from its entry with zeroed RAM until it exits or faults; `argument` is its
    /// entry function's first argument (r0); `on_syscall` sees every command it makes.
    pub fn run(
        &mut self,
        app: &App,
        argument: u32,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Stop {
        if app.ram.overlaps(&self.kernel_ram) || app.flash.overlaps(&self.kernel_ram) {
            return Stop::OverlapsKernel;
        }
        if let Err(e) = self.mpu.configure_app(app.flash, app.ram) {
            return Stop::NotStarted(e);
        }
        let Some(stack_top) = u32::try_from(app.ram.end()).ok() else {
            return Stop::NotStarted(MpuError::NotAligned(app.ram));
        };
        let mut psp = stack_top - FRAME_BYTES;
        // SAFETY: `app.ram` passed the header check (inside the app's linker region, which the
        // board checked to be disjoint from kernel RAM, and tested again above); no kernel
        // reference points into it; the app is not running.
        unsafe {
            core::ptr::write_bytes(app.ram.start as *mut u8, 0, app.ram.len as usize);
            let frame = psp as *mut u32;
            for (i, word) in [argument, 0, 0, 0, 0, NO_RETURN, app.entry & !1, XPSR_THUMB]
                .into_iter()
                .enumerate()
            {
                frame.add(i).write_volatile(word);
            }
        }
        let mut regs = [0u32; 8];
        let mut exc_return = FRESH_APP_EXC_RETURN;
        // A fault status left over from before must not be blamed on this app.
        let _ = self.scb.take_fault_status();
        loop {
            APP_EXC_RETURN.store(exc_return, Ordering::SeqCst);
            // SAFETY: `psp` points at an exception frame inside the app's RAM (built above,
            // or pushed by the hardware at its last trap and checked below); the MPU maps this
            // app only; APP_EXC_RETURN holds its EXC_RETURN.
            psp = unsafe { arch::switch_to_user(psp, &mut regs) };
            exc_return = APP_EXC_RETURN.load(Ordering::SeqCst);
            let reason = SWITCH_REASON.load(Ordering::SeqCst);
            let frame_ok = app.ram.contains_range(psp, FRAME_BYTES);
            if reason != SVCALL {
                return Stop::Faulted(AppFault {
                    exception: reason,
                    status: self.scb.take_fault_status(),
                    // SAFETY: the frame lies in the app's RAM (checked), which is readable.
                    pc: frame_ok.then(|| unsafe { (psp as *const u32).add(6).read_volatile() }),
                });
            }
            if !frame_ok {
                return Stop::BadStack(psp);
            }
            let frame = psp as *mut u32;
            // SAFETY: the 8-word frame lies in the app's RAM (checked); the app is stopped.
            let [r0, r1, r2, pc] = unsafe { [0, 1, 2, 6].map(|i| frame.add(i).read_volatile()) };
            let r0_out = match svc_number(app, pc) {
                Some(SVC_EXIT) => return Stop::Exited(r0),
                Some(SVC_COMMAND) => {
                    let result = command(app, r0, r1, r2);
                    on_syscall(&SyscallRecord {
                        ptr: r0,
                        len: r1,
                        capacity: r2,
                        result,
                    });
                    match result {
                        Ok(n) => n as u32,
                        Err(e) => e.to_r0(),
                    }
                }
                _ => SyscallError::UnknownCall.to_r0(),
            };
            // SAFETY: as above.
            unsafe { frame.write_volatile(r0_out) };
        }
    }
}

/// The immediate of the `svc` instruction just before `pc`, if that halfword is the app's code.
fn svc_number(app: &App, pc: u32) -> Option<u8> {
    let at = pc.checked_sub(2)?;
    if !app.flash.contains_range(at, 2) {
        return None;
    }
    // SAFETY: the halfword lies in the app's flash (checked), readable by the kernel; `svc`
    // is a 16-bit Thumb instruction `0xDFnn`, so its low byte is the immediate.
    let insn = unsafe { (at as *const u16).read_volatile() };
    (insn >> 8 == 0xDF).then_some(insn as u8)
}

/// Serve one command: bounds-check the buffer against this app's RAM, then decode and answer.
fn command(app: &App, ptr: u32, len: u32, capacity: u32) -> Result<usize, SyscallError> {
    syscall::check_buffer(ptr, len, capacity, app.ram)?;
    // SAFETY: `[ptr, ptr + capacity)` lies inside this app's RAM (checked just above), which
    // is disjoint from kernel memory; the app is stopped, and no other reference to that memory
    // exists while this slice lives.
    let buffer = unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, capacity as usize) };
    syscall::serve_command(buffer, len as usize, app.id)
}
