//! QEMU `mps2-an505` board: the Cortex-M33 process runtime proven end to end.
//!
//! Boots, checks the three app headers linked into the image (the stale one must be refused
//! and the others still start), runs the well-behaved greeter, then the hostile app (its
//! kernel-address buffer and over-long request must be refused, its write to kernel RAM must
//! MemManage-fault with the exact address and end only that app, the kernel's secret intact),
//! the hostile app again reading the greeter's RAM and executing its own RAM (each must
//! MemManage-fault), then the greeter again to show the system survived. One log line per event through
//! semihosting; the exit status is 0 only if every expectation held. Run with
//! `cargo run --release` in this directory (see README "Under QEMU").
#![no_std]
#![no_main]

mod apps;

use core::sync::atomic::{AtomicU32, Ordering};

use aliot_cortex_m33::header::{AppHeader, HEADER_LEN, HeaderError};
use aliot_cortex_m33::process::{App, Runtime, Stop, SyscallRecord};
use aliot_cortex_m33::region::Region;
use aliot_cortex_m33::syscall::SyscallError;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

use crate::apps::{greeter_exit, hostile_act};

/// Kernel data the hostile app tries to overwrite.
pub(crate) static KERNEL_SECRET: AtomicU32 = AtomicU32::new(SECRET);
const SECRET: u32 = 0x5EC2_E700;

/// MemManage's exception number.
const MEMMANAGE: u32 = 4;
/// MMFSR.DACCVIOL | MMFSR.MMARVALID: a data access violation with a valid address.
const DACCVIOL_MMARVALID: u32 = 0x82;
/// MMFSR.IACCVIOL: an instruction fetch from a region the app may not execute.
const IACCVIOL: u32 = 0x01;

unsafe extern "C" {
    static __kernel_ram_start: u8;
    static __kernel_ram_end: u8;
    static __greeter_flash_start: u8;
    static __greeter_flash_end: u8;
    pub(crate) static __greeter_ram_start: u8;
    static __greeter_ram_end: u8;
    static __hostile_flash_start: u8;
    static __hostile_flash_end: u8;
    static __hostile_ram_start: u8;
    static __hostile_ram_end: u8;
    static __stale_flash_start: u8;
    static __stale_flash_end: u8;
    static __stale_ram_start: u8;
    static __stale_ram_end: u8;
}

/// A linker-script region from its start and end symbols.
fn region(start: &'static u8, end: &'static u8) -> Region {
    let (s, e) = (start as *const u8 as u32, end as *const u8 as u32);
    Region::from_bounds(s, e).unwrap_or(Region { start: s, len: 0 })
}

/// Counts expectations that failed; the exit status is 0 only if none did.
struct Verdict {
    failed: u32,
}

impl Verdict {
    fn expect(&mut self, ok: bool, what: &str) {
        if ok {
            hprintln!("  ok: {}", what);
        } else {
            self.failed += 1;
            hprintln!("  FAILED: {}", what);
        }
    }
}

/// Read and check the header at the start of `flash`; log the outcome.
fn load(name: &'static str, id: u8, flash: Region, ram: Region) -> Result<App, HeaderError> {
    // SAFETY: `flash` is a region of the image reserved by memory.x (at least 4 KiB, readable
    // memory); the first HEADER_LEN bytes are read, nothing writes flash.
    let bytes = unsafe { core::slice::from_raw_parts(flash.start as *const u8, HEADER_LEN) };
    let outcome = AppHeader::parse(bytes).and_then(|h| h.check(flash, ram).map(|r| (h, r)));
    match outcome {
        Ok((h, ram)) => {
            hprintln!(
                "app {} (slot {}): header ok: ABI {}.{}, entry {:#010x}, stack {} B, RAM {:#010x}+{:#x}",
                name,
                id,
                h.abi_major,
                h.abi_minor,
                h.entry,
                h.stack_size,
                ram.start,
                ram.len
            );
            Ok(App {
                name,
                id,
                flash,
                ram,
                entry: h.entry,
            })
        }
        Err(e) => {
            hprintln!("app {} (slot {}): refused: {}", name, id, e);
            Err(e)
        }
    }
}

fn log_syscall(app: &'static str, r: &SyscallRecord) {
    match r.result {
        Ok(n) => hprintln!(
            "app {}: syscall buf={:#010x} len={} cap={} -> answered, {} B",
            app,
            r.ptr,
            r.len,
            r.capacity,
            n
        ),
        Err(e) => hprintln!(
            "app {}: syscall buf={:#010x} len={} cap={} -> refused: {:?}",
            app,
            r.ptr,
            r.len,
            r.capacity,
            e
        ),
    }
}

fn log_stop(app: &App, stop: &Stop) {
    match stop {
        Stop::Exited(code) => hprintln!("app {}: exited with {}", app.name, code),
        Stop::Faulted(f) => hprintln!(
            "app {}: FAULT exception {} (CFSR {:#010x}, HFSR {:#010x}, MMFAR {:?}, BFAR {:?}, pc {:?}): ended",
            app.name,
            f.exception,
            f.status.cfsr,
            f.status.hfsr,
            f.status.mmfar.map(Hex),
            f.status.bfar.map(Hex),
            f.pc.map(Hex)
        ),
        Stop::NotStarted(e) => hprintln!("app {}: not started: {:?}", app.name, e),
        Stop::OverlapsKernel => hprintln!("app {}: not started: overlaps kernel RAM", app.name),
        Stop::BadStack(sp) => hprintln!(
            "app {}: stack pointer {:#010x} outside its RAM: ended",
            app.name,
            sp
        ),
    }
}

/// Hex formatting for `Option<u32>` in logs.
struct Hex(u32);
impl core::fmt::Debug for Hex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

fn run_greeter(rt: &mut Runtime, greeter: &App, verdict: &mut Verdict, round: &str) {
    hprintln!("running app {} ({})", greeter.name, round);
    let mut answered = 0;
    let stop = rt.run(greeter, 0, &mut |r| {
        log_syscall(greeter.name, r);
        answered += u32::from(r.result.is_ok());
    });
    log_stop(greeter, &stop);
    verdict.expect(answered == 2, "greeter's Hello and Status were answered");
    verdict.expect(
        matches!(stop, Stop::Exited(greeter_exit::OK)),
        "greeter found both answers correct and exited 0",
    );
}

#[entry]
fn main() -> ! {
    hprintln!("aliot kernel on QEMU mps2-an505 (Cortex-M33): booting");
    // SAFETY: the linker script defines these symbols; only their addresses are used.
    let (kernel_ram, apps) = unsafe {
        (
            region(&__kernel_ram_start, &__kernel_ram_end),
            [
                (
                    "greeter",
                    region(&__greeter_flash_start, &__greeter_flash_end),
                    region(&__greeter_ram_start, &__greeter_ram_end),
                ),
                (
                    "hostile",
                    region(&__hostile_flash_start, &__hostile_flash_end),
                    region(&__hostile_ram_start, &__hostile_ram_end),
                ),
                (
                    "stale",
                    region(&__stale_flash_start, &__stale_flash_end),
                    region(&__stale_ram_start, &__stale_ram_end),
                ),
            ],
        )
    };
    // SAFETY: called once, at reset, privileged on MSP.
    let mut rt = unsafe { Runtime::take(kernel_ram) };
    hprintln!(
        "MPU: {} regions; kernel RAM {:#010x}+{:#x}",
        rt.mpu_regions(),
        kernel_ram.start,
        kernel_ram.len
    );
    let mut verdict = Verdict { failed: 0 };

    let [greeter, hostile, stale] = [0u8, 1, 2].map(|id| {
        let (name, flash, ram) = apps[usize::from(id)];
        load(name, id, flash, ram)
    });
    verdict.expect(
        matches!(stale, Err(HeaderError::AbiMismatch { major: 1, .. })),
        "stale app (ABI 1.x) refused, the others still start",
    );
    let (Ok(greeter), Ok(hostile)) = (greeter, hostile) else {
        verdict.expect(false, "greeter and hostile headers accepted");
        finish(&verdict);
    };

    run_greeter(&mut rt, &greeter, &mut verdict, "first run");

    hprintln!("running app {} (act: attack the kernel)", hostile.name);
    let mut refusals = [None; 2];
    let mut calls = 0;
    let stop = rt.run(&hostile, hostile_act::ATTACK_KERNEL, &mut |r| {
        log_syscall(hostile.name, r);
        if let Some(slot) = refusals.get_mut(calls) {
            *slot = r.result.err();
        }
        calls += 1;
    });
    log_stop(&hostile, &stop);
    verdict.expect(
        refusals[0] == Some(SyscallError::BufferOutsideApp),
        "syscall with a kernel-RAM buffer refused (BufferOutsideApp)",
    );
    verdict.expect(
        refusals[1] == Some(SyscallError::LengthExceedsCapacity),
        "syscall with length > capacity refused (LengthExceedsCapacity)",
    );
    let secret_addr = KERNEL_SECRET.as_ptr() as u32;
    verdict.expect(
        matches!(stop, Stop::Faulted(f) if f.exception == MEMMANAGE
            && f.status.cfsr & 0xFF == DACCVIOL_MMARVALID
            && f.status.mmfar == Some(secret_addr)),
        "write to kernel RAM raised MemManage (DACCVIOL) at the secret's address and ended the app",
    );
    verdict.expect(
        KERNEL_SECRET.load(Ordering::SeqCst) == SECRET,
        "kernel secret unchanged",
    );

    hprintln!("running app {} (act: read the greeter's RAM)", hostile.name);
    let stop = rt.run(&hostile, hostile_act::READ_OTHER_APP, &mut |r| {
        log_syscall(hostile.name, r)
    });
    log_stop(&hostile, &stop);
    verdict.expect(
        matches!(stop, Stop::Faulted(f) if f.exception == MEMMANAGE
            && f.status.cfsr & 0xFF == DACCVIOL_MMARVALID
            && f.status.mmfar == Some(greeter.ram.start)),
        "read of another app's RAM raised MemManage (DACCVIOL) at that address and ended the app",
    );

    hprintln!("running app {} (act: execute its own RAM)", hostile.name);
    let stop = rt.run(&hostile, hostile_act::EXECUTE_RAM, &mut |r| {
        log_syscall(hostile.name, r)
    });
    log_stop(&hostile, &stop);
    verdict.expect(
        matches!(stop, Stop::Faulted(f) if f.exception == MEMMANAGE
            && f.status.cfsr & 0xFF == IACCVIOL
            && f.pc.is_some_and(|pc| hostile.ram.contains_range(pc, 2))),
        "executing its own RAM raised MemManage (IACCVIOL: RAM is never executable) and ended the app",
    );

    run_greeter(
        &mut rt,
        &greeter,
        &mut verdict,
        "after the hostile app was ended",
    );
    finish(&verdict)
}

fn finish(verdict: &Verdict) -> ! {
    if verdict.failed == 0 {
        hprintln!("PASS: every expectation held");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("FAIL: {} expectation(s) failed", verdict.failed);
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// A fault in the kernel itself (not in an app): log it and fail the run.
#[unsafe(no_mangle)]
extern "C" fn aliot_kernel_fault(exception: u32, exc_return: u32) -> ! {
    hprintln!(
        "KERNEL FAULT: exception {}, EXC_RETURN {:#010x}",
        exception,
        exc_return
    );
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("KERNEL PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
