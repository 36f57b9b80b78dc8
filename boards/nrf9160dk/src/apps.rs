//! The kernel's [`AppPort`](aliot_kernel::board::AppPort) on this board: the manifest's apps,
//! each its own image at the top of `[flash.active]` (laid out by
//! `aliot_manifest::nrf9160dk_board`, built by `aliot-image --board nrf9160dk`), run by the
//! shared Cortex-M33 runtime (`boards/cortex-m33`: unprivileged on PSP, the MPU open to the app's
//! own flash and RAM only, syscalls through `svc`, faults ending only the app) behind
//! [`RuntimePort`], the same port the QEMU board's live phase proves end to end.
//!
//! # Apps and the embassy executor
//!
//! The kernel's runner is one async task on embassy's thread-mode executor, privileged on MSP.
//! `RuntimePort::recv` runs one app slice per poll inside that task: the app runs until its
//! syscall, its exit, a fault, or SysTick ending its slice ([`SLICE_MS`]); then the poll returns
//! and the runner's other futures (the modem's sockets, the timers) get their turn. While an app
//! runs, interrupts are taken as usual: the modem's IPC interrupt (priority 0) and embassy-time's
//! RTC1 interrupt preempt the app, run privileged on MSP (the MPU's background map is open to
//! privileged code) and wake their futures, which the executor polls after the slice, so the
//! modem waits at most one slice. The app's registers are stacked on its own PSP stack by the
//! hardware (bounded by PSPLIM), never on the kernel's. SysTick belongs to the runtime (embassy
//! keeps time on RTC1, not SysTick). When every app waits for the kernel (`WaitEvent`), `recv`
//! does not wake itself and the executor sleeps (WFE) until an interrupt; while an app can run
//! or waits for a restart, the CPU stays awake.
//!
//! UNTESTED ON HARDWARE: everything here builds and the runtime and port are proven under QEMU;
//! the nRF9160's own interplay (IPC interrupts during app slices, SysTick at 64 MHz) is not.

use aliot_cortex_m33::header::HeaderError;
use aliot_cortex_m33::policy::{AfterFailure, RestartPolicy, Restarts};
use aliot_cortex_m33::port::{RuntimePort, Slot, Supervisor};
use aliot_cortex_m33::process::{App, Runtime, Stop, SyscallRecord};
use aliot_cortex_m33::region::Region;

use crate::DEVICE;

/// The manifest's app images: `APP_IMAGES`, `APP_COUNT`, `KERNEL_RAM` (build.rs).
mod images {
    include!(concat!(env!("OUT_DIR"), "/app_images.rs"));
}

pub use images::APP_COUNT;

/// The nRF9160's CPU (and so SysTick's processor clock) runs at 64 MHz.
pub const CPU_HZ: u32 = 64_000_000;
/// Length of an app's time slice: also the longest the modem's wake-ups wait for an app.
pub const SLICE_MS: u32 = 10;
/// Slices an app may be preempted in a row without a syscall; the next preemption ends it.
pub const SLICE_BUDGET: u32 = 50;
/// After an abnormal end (or any end, for `restart = "always"`), an app is restarted after
/// 1 s, doubling up to 5 min, at most 10 times; then it stays stopped until the next reset.
const RESTARTS: RestartPolicy = RestartPolicy {
    limit: 10,
    first_delay_ticks: 1000 / SLICE_MS,
    max_delay_ticks: 300_000 / SLICE_MS,
};
/// Entry argument of every app on this board: the publisher image's "run with the manifest's
/// settings" (its 0 and 1 are the QEMU board's test runs).
const RUN_WITH_MANIFEST_SETTINGS: u32 = 2;

/// The RAM no app may touch: the modem's shared memory and the kernel's RAM.
pub fn kernel_ram() -> Region {
    images::KERNEL_RAM
}

/// One slot per manifest app: the app if its image's header passed the runtime's check, else
/// a slot that never runs (an app without an image on this board, such as `echo` today,
/// leaves its flash erased: its header is refused and logged).
pub fn slots() -> [Slot; APP_COUNT] {
    core::array::from_fn(|i| {
        let (name, flash, ram) = images::APP_IMAGES[i];
        // App ids are manifest indices, below 256 (the manifest allows far fewer apps).
        let id = i as u8;
        // SAFETY: `flash` is this app's region of [flash.active], reserved by the layout the
        // kernel was linked with (apps.x checks the kernel ends below it): readable flash
        // nothing writes while the kernel runs.
        match unsafe { App::load(name, id, flash, ram) } {
            Ok((app, h)) => {
                defmt::info!(
                    "app {=str} (slot {=u8}): header ok, ABI {=u16}.{=u16}, stack {=u32} B",
                    name,
                    id,
                    h.abi_major,
                    h.abi_minor,
                    h.stack_size
                );
                let when = DEVICE
                    .apps
                    .get(i)
                    .map_or(aliot_kernel::config::RestartPolicy::Never, |a| a.restart);
                Slot::new(app, when, Restarts::new(RESTARTS))
            }
            Err(e) => {
                log_refused(name, id, &e);
                Slot::refused(App {
                    name,
                    id,
                    flash,
                    ram,
                    entry: 0,
                    stack_size: 0,
                })
            }
        }
    })
}

/// Why an image was refused, in the log. Plain fields, no `core::fmt`: every byte here counts
/// against our code's 128 KiB.
fn log_refused(name: &str, id: u8, e: &HeaderError) {
    let why = match e {
        HeaderError::TooShort => "too short",
        HeaderError::BadMagic(_) => "no app image (bad magic: erased flash?)",
        HeaderError::AbiMismatch { .. } => "built for another ABI major",
        HeaderError::EntryNotThumb(_) | HeaderError::EntryOutsideFlash(_) => "bad entry",
        HeaderError::BadRamSize { .. } => "RAM size does not fit its region",
        HeaderError::BadStackSize(_) => "bad stack size",
    };
    defmt::warn!(
        "app {=str} (slot {=u8}): not started: {=str}",
        name,
        id,
        why
    );
}

/// The port over the runtime with this board's log.
pub type Port<'a> = RuntimePort<'a, DefmtSupervisor, APP_COUNT>;

/// The port: the apps of [`slots`] on `rt`.
pub fn port(rt: &mut Runtime) -> Port<'_> {
    RuntimePort::new(rt, slots(), DefmtSupervisor)
}

/// Logs the apps' lives as defmt lines.
pub struct DefmtSupervisor;

impl Supervisor for DefmtSupervisor {
    fn argument(&mut self, _app: &App, _run: u32) -> u32 {
        RUN_WITH_MANIFEST_SETTINGS
    }

    fn started(&mut self, app: &App, run: u32) {
        defmt::info!("app {=str}: run {=u32} starts", app.name, run);
    }

    fn refused(&mut self, app: &App, record: &SyscallRecord) {
        if let Err(e) = record.result {
            defmt::warn!(
                "app {=str}: syscall refused: r0 {=i32} (aliot_cortex_m33::syscall::SyscallError)",
                app.name,
                e.to_r0().cast_signed()
            );
        }
    }

    fn stopped(&mut self, app: &App, run: u32, stop: &Stop) {
        let name = app.name;
        match stop {
            Stop::Exited(code) => {
                defmt::info!("app {=str}: run {=u32} exited {=u32}", name, run, code)
            }
            Stop::Faulted(f) => defmt::warn!(
                "app {=str}: run {=u32} faulted: exception {=u32}, CFSR {=u32:#010x}, MMFAR {}, BFAR {}, pc {}",
                name,
                run,
                f.exception,
                f.status.cfsr,
                f.status.mmfar,
                f.status.bfar,
                f.pc
            ),
            Stop::NotStarted(_) => {
                defmt::warn!("app {=str}: not started: regions not MPU-aligned", name)
            }
            Stop::OverlapsKernel => {
                defmt::warn!("app {=str}: not started: overlaps kernel RAM", name)
            }
            Stop::BadStack(sp) => defmt::warn!(
                "app {=str}: stack pointer {=u32:#010x} outside its RAM: ended",
                name,
                sp
            ),
            Stop::SpunTooLong(n) => defmt::warn!(
                "app {=str}: {=u32} slices without a syscall: ended",
                name,
                n
            ),
        }
    }

    fn after_failure(&mut self, app: &App, after: &AfterFailure) {
        match after {
            AfterFailure::Restart {
                attempt,
                delay_ticks,
            } => defmt::info!(
                "app {=str}: restart {=u32} in {=u32} ms",
                app.name,
                attempt,
                delay_ticks.saturating_mul(SLICE_MS)
            ),
            AfterFailure::GiveUp { restarts } => defmt::warn!(
                "app {=str}: left stopped after {=u32} restarts",
                app.name,
                restarts
            ),
        }
    }

    fn undelivered(&mut self, app: &App) {
        defmt::warn!(
            "app {=str}: the kernel's answer did not fit its buffer",
            app.name
        );
    }
}

/// A fault in the kernel itself (not in an app), called by the runtime's fault handlers: log
/// it and reset, so the device comes back instead of hanging. UNTESTED ON HARDWARE.
#[unsafe(no_mangle)]
extern "C" fn aliot_kernel_fault(exception: u32, exc_return: u32) -> ! {
    defmt::error!(
        "KERNEL FAULT: exception {=u32}, EXC_RETURN {=u32:#010x}; resetting",
        exception,
        exc_return
    );
    cortex_m::peripheral::SCB::sys_reset()
}
