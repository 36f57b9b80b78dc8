//! QEMU `mps2-an505` board: the Cortex-M33 process runtime proven end to end.
//!
//! Boots, creates the capsule (aliot-kernel's `Kernel`, configured by the default device
//! manifest at build time, its queues on a heap sized from its worst case) and puts it behind
//! the SVC: every app command that passes the runtime's bounds check is answered by
//! `Kernel::syscall` in the app's own buffer. Checks the three app headers linked into the
//! image (the stale one must be refused and the others still start), runs the well-behaved
//! greeter (subscribes to its granted topic, is refused one it is not granted, publishes QoS 1,
//! which the kernel queues with no network, and sees it pending in `Status`), then the
//! publisher (an app built on its own against aliot-app's SVC backend, loaded by QEMU next to
//! this image) making the same calls through `aliot_app::Aliot`, then supervises the hostile
//! app: each run does one act, and each act must end that run (and only it) the expected way:
//! kernel-address buffer and over-long request refused, then a write to kernel RAM
//! MemManage-faults at the exact address with the kernel's secret intact; a read of the
//! greeter's RAM and executing its own RAM MemManage-fault; spinning forever is preempted by
//! SysTick (the greeter runs while the spinner is suspended) and ended after its slice budget;
//! recursing until the stack overflows raises UsageFault STKOF at PSPLIM; 10 000 syscalls in a
//! row are each answered or refused. After each abnormal end the kernel restarts it with fresh,
//! zeroed RAM (the app checks it finds no trace of its last run) after a doubling delay in
//! ticks, up to a limit; at the limit it says so and leaves it stopped. Then the greeter runs
//! again to show the system survived.
//!
//! Then the live phase ([`live`]): the kernel's own runner takes over, as on the host board,
//! with its network over UART0 to the host's bridge (`aliot-qemu`, which opens the TCP and TLS
//! connection to the emulator; see [`bridge`]). `publish_test` itself (the publisher image,
//! started with its live argument) logs in and publishes numbered QoS 1 messages while the
//! hostile app is restarted through its acts again, this time against the live kernel; every
//! publish, the queued ones of the first phase too, must be acknowledged by the cloud. At the
//! end no app's RAM may hold the DeviceSecret and the kernel heap's peak must stay within the
//! worst case the build printed.
//!
//! One log line per event through semihosting; the exit status is 0 only if every
//! expectation held. Run it through `cargo run -p aliot-host --bin aliot-qemu` from the
//! repository (see README "Under QEMU"): without the bridge the live phase fails.
#![no_std]
#![no_main]

mod apps;
mod bridge;
mod fp_scaffold;
mod heap;
mod live;
mod uart;

use core::sync::atomic::{AtomicU32, Ordering};

use crate::heap::PeakHeap;
use aliot_cortex_m33::header::HeaderError;
use aliot_cortex_m33::policy::{AfterFailure, RestartPolicy, Restarts, slice_reload};
use aliot_cortex_m33::process::{App, Event, Runtime, Stop, SyscallRecord};
use aliot_cortex_m33::region::Region;
use aliot_cortex_m33::syscall::{Capsule, SyscallError};
use aliot_cortex_m33::systick;
use aliot_kernel::config::DeviceConfig;
use aliot_kernel::kernel::Kernel;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

use crate::apps::{HOSTILE_MARKER, greeter_exit, hostile_act, hostile_exit};

/// The manifest, compiled in by `build.rs`: `DEVICE` and `KERNEL_HEAP_BYTES`.
mod generated {
    include!(concat!(env!("OUT_DIR"), "/device_config.rs"));
}

/// The device configuration the kernel serves.
static DEVICE: DeviceConfig = generated::DEVICE;

/// The kernel's heap; it allocates its queues once, in `Kernel::new`, and the link's buffers
/// per connection. Its peak is checked against the build's worst-case figure.
#[global_allocator]
static HEAP: PeakHeap = PeakHeap::empty();

/// The capsule behind the SVC: the kernel, answering in the app's buffer.
struct KernelCapsule {
    kernel: Kernel,
}

impl Capsule for KernelCapsule {
    fn serve(&mut self, app_id: u8, buf: &mut [u8], len: usize) -> usize {
        // Test scaffolding: the greeter's FP registers must survive this (see fp_scaffold).
        fp_scaffold::clobber_fp_registers();
        let now_ms = u64::from(systick::ticks()) * u64::from(SLICE_MS);
        match self.kernel.syscall(app_id, buf, len, now_ms) {
            Some(n) => n,
            // The app is now blocked in `WaitEvent`. This board has no network and does not
            // block apps yet: the wait ends at once, with an event if one is queued.
            None => self.kernel.answer_wait(app_id, buf),
        }
    }
}

/// Kernel data the hostile app tries to overwrite.
pub(crate) static KERNEL_SECRET: AtomicU32 = AtomicU32::new(SECRET);
const SECRET: u32 = 0x5EC2_E700;

/// MemManage's exception number.
const MEMMANAGE: u32 = 4;
/// UsageFault's exception number.
const USAGEFAULT: u32 = 6;
/// CFSR.UFSR.STKOF: a stack limit (PSPLIM) violation.
const STKOF: u32 = 1 << 20;

/// QEMU's mps2-an505 runs the Cortex-M33 (and so SysTick's processor clock) at 20 MHz
/// (AN505 SYSCLK; QEMU hw/arm/mps2-tz.c `sysclk_frq`).
const CPU_HZ: u32 = 20_000_000;
/// Length of an app's time slice.
const SLICE_MS: u32 = 10;
/// Slices an app may be preempted in a row without a syscall; the next preemption ends it.
const SLICE_BUDGET: u32 = 3;
/// The hostile app is restarted after each act until it has done them all (5 restarts after
/// its first run), waiting 1, 2, 4, 8, 16 ticks before the restarts.
const RESTARTS: RestartPolicy = RestartPolicy {
    limit: 5,
    first_delay_ticks: 1,
    max_delay_ticks: 64,
};
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
    pub(crate) static __hostile_ram_start: u8;
    static __hostile_ram_end: u8;
    static __stale_flash_start: u8;
    static __stale_flash_end: u8;
    static __stale_ram_start: u8;
    static __stale_ram_end: u8;
    static __app0_flash_start: u8;
    static __app0_flash_end: u8;
    static __app0_ram_start: u8;
    static __app0_ram_end: u8;
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

/// Read and check the header at the start of `flash` (the runtime's [`App::load`]); log the
/// outcome.
fn load(name: &'static str, id: u8, flash: Region, ram: Region) -> Result<App, HeaderError> {
    // SAFETY: `flash` is a region of the image reserved by memory.x (at least 4 KiB, readable
    // memory); nothing writes flash.
    match unsafe { App::load(name, id, flash, ram) } {
        Ok((app, h)) => {
            hprintln!(
                "app {} (slot {}): header ok: ABI {}.{}, entry {:#010x}, stack {} B, RAM {:#010x}+{:#x}",
                name,
                id,
                h.abi_major,
                h.abi_minor,
                h.entry,
                h.stack_size,
                app.ram.start,
                app.ram.len
            );
            Ok(app)
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
        Stop::SpunTooLong(slices) => hprintln!(
            "app {}: preempted {} slices in a row without a syscall: spun too long, ended",
            app.name,
            slices
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

/// Syscalls the greeter makes: Hello, two Subscribes, Publish, Status.
const GREETER_CALLS: u32 = 5;

fn run_greeter(
    rt: &mut Runtime,
    capsule: &mut KernelCapsule,
    greeter: &App,
    verdict: &mut Verdict,
    round: &str,
) {
    hprintln!("running app {} ({})", greeter.name, round);
    let mut answered = 0;
    let pending_before = capsule.kernel.pending_publishes();
    let stop = rt.run(greeter, 0, capsule, &mut |r| {
        log_syscall(greeter.name, r);
        answered += u32::from(r.result.is_ok());
    });
    log_stop(greeter, &stop);
    let get = DEVICE
        .topics
        .iter()
        .find(|t| t.name == "get")
        .map(|t| t.topic);
    let ceshi = DEVICE
        .topics
        .iter()
        .find(|t| t.name == "ceshi")
        .map(|t| t.topic);
    let filters = || capsule.kernel.session_filters();
    let subscribed_get = get.is_some_and(|g| filters().any(|f| f == g));
    let subscribed_ceshi = ceshi.is_some_and(|c| filters().any(|f| f == c));
    hprintln!(
        "kernel: {} QoS 1 publish(es) pending, session filters {}",
        capsule.kernel.pending_publishes(),
        filters().count()
    );
    verdict.expect(
        answered == GREETER_CALLS,
        "greeter's Hello, Subscribe x2, Publish and Status were answered by the kernel",
    );
    verdict.expect(
        matches!(stop, Stop::Exited(greeter_exit::OK)),
        "greeter found every answer correct (Welcome; Accepted for `get`; NotPermitted for `ceshi`; publish Accepted; Status offline with 1 pending) and exited 0",
    );
    verdict.expect(
        capsule.kernel.pending_publishes() == pending_before + 1,
        "kernel queued the greeter's QoS 1 publish (offline: held until acknowledged)",
    );
    verdict.expect(
        subscribed_get && !subscribed_ceshi,
        "kernel's session holds the granted `get` filter, not the refused `ceshi`",
    );
    // The process is gone: the kernel forgets its session (its accepted publish stays queued).
    capsule.kernel.app_exited(greeter.id);
}

/// Load and run the publisher, the app built on its own against aliot-app (slot 0 like the
/// greeter, `publish_test` in the manifest; never running at the same time as it): it must
/// find every kernel answer right and exit 0, and the kernel must hold its publish.
fn run_publisher(
    rt: &mut Runtime,
    capsule: &mut KernelCapsule,
    (flash, ram): (Region, Region),
    verdict: &mut Verdict,
) -> Option<App> {
    let loaded = load("publisher", 0, flash, ram);
    verdict.expect(
        loaded.is_ok(),
        "publisher (built on its own, loaded by QEMU next to the kernel) has a valid header",
    );
    let Ok(publisher) = loaded else { return None };
    hprintln!("running app {} (aliot-app over svc)", publisher.name);
    let pending_before = capsule.kernel.pending_publishes();
    let mut answered = 0;
    let stop = rt.run(&publisher, 0, capsule, &mut |r| {
        log_syscall(publisher.name, r);
        answered += u32::from(r.result.is_ok());
    });
    log_stop(&publisher, &stop);
    verdict.expect(
        matches!(stop, Stop::Exited(0)),
        "publisher (aliot-app over svc) found every answer right (Welcome; get Accepted; ceshi NotPermitted; publish Accepted; Status 1 pending; no event) and exited 0",
    );
    verdict.expect(
        answered == 6 && capsule.kernel.pending_publishes() == pending_before + 1,
        "kernel answered its 6 calls and queued its QoS 1 publish",
    );
    capsule.kernel.app_exited(publisher.id);
    Some(publisher)
}

#[entry]
fn main() -> ! {
    hprintln!("aliot kernel on QEMU mps2-an505 (Cortex-M33): booting");
    // SAFETY: called once, first thing, before anything allocates.
    unsafe {
        embedded_alloc::init!(HEAP, generated::KERNEL_HEAP_BYTES);
    }
    let mut capsule = KernelCapsule {
        kernel: Kernel::new(&DEVICE),
    };
    hprintln!(
        "kernel: {} app(s) in the manifest; heap {} B (the kernel's worst case + slack), {} B used after boot",
        DEVICE.apps.len(),
        generated::KERNEL_HEAP_BYTES,
        HEAP.used()
    );
    // SAFETY: the linker script defines these symbols; only their addresses are used.
    let (kernel_ram, publisher_regions, apps) = unsafe {
        (
            region(&__kernel_ram_start, &__kernel_ram_end),
            (
                region(&__app0_flash_start, &__app0_flash_end),
                region(&__app0_ram_start, &__app0_ram_end),
            ),
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
    let Some(reload) = slice_reload(CPU_HZ, SLICE_MS) else {
        hprintln!("KERNEL: a {} ms slice does not fit SysTick", SLICE_MS);
        finish(&Verdict { failed: 1 });
    };
    // SAFETY: called once, at reset, privileged on MSP.
    let mut rt = unsafe { Runtime::take(kernel_ram, reload, SLICE_BUDGET) };
    hprintln!(
        "MPU: {} regions; kernel RAM {:#010x}+{:#x}",
        rt.mpu_regions(),
        kernel_ram.start,
        kernel_ram.len
    );
    hprintln!(
        "SysTick: {} ms slices (reload {} at {} Hz, SYST_CALIB {:#010x}); {} slices without a syscall allowed",
        SLICE_MS,
        reload,
        CPU_HZ,
        rt.systick_calibration(),
        SLICE_BUDGET
    );
    let mut verdict = Verdict { failed: 0 };
    let fpu = rt.fpu_config();
    hprintln!("FPU: CPACR {:#010x}, FPCCR {:#010x}", fpu.cpacr, fpu.fpccr);
    verdict.expect(
        fpu.is_as_required(),
        "FPU usable by apps (CPACR CP10/CP11 full access), FP state stacked eagerly (FPCCR ASPEN=1, LSPEN=0)",
    );

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

    run_greeter(&mut rt, &mut capsule, &greeter, &mut verdict, "first run");

    let publisher = run_publisher(&mut rt, &mut capsule, publisher_regions, &mut verdict);

    supervise_hostile(&mut rt, &mut capsule, &hostile, &greeter, &mut verdict);

    run_greeter(
        &mut rt,
        &mut capsule,
        &greeter,
        &mut verdict,
        "after the hostile app was left stopped",
    );

    if let Some(publisher) = publisher {
        // SAFETY: called once; UART0 is used by nothing else.
        let line = core::cell::RefCell::new(bridge::Line::new(unsafe { uart::Uart::take_uart0() }));
        let live = live::run(
            &mut capsule.kernel,
            &mut rt,
            &line,
            generated::DEVICE_SECRET,
            publisher,
            hostile,
            greeter,
        );
        verdict.failed += live.failed;
        sweep_for_secret(&[greeter, hostile, publisher], &mut verdict);
    }
    let peak = HEAP.peak();
    hprintln!(
        "kernel heap: peak {} B; the build's worst case {} B (+ the {} B login secret)",
        peak,
        generated::KERNEL_WORST_CASE_BYTES,
        generated::DEVICE_SECRET.len()
    );
    verdict.expect(
        peak <= generated::KERNEL_WORST_CASE_BYTES + generated::DEVICE_SECRET.len(),
        "the kernel's RAM use stayed within the figure the build printed",
    );
    finish(&verdict)
}

/// No app's RAM holds the DeviceSecret (nor did the kernel hand it to any app).
fn sweep_for_secret(apps: &[App], verdict: &mut Verdict) {
    let secret = generated::DEVICE_SECRET;
    let mut found = 0;
    for app in apps {
        // SAFETY: each app's RAM region is reserved for it by memory.x, readable by the
        // privileged kernel; no app runs now.
        let ram = unsafe {
            core::slice::from_raw_parts(app.ram.start as *const u8, app.ram.len as usize)
        };
        if !secret.is_empty() && ram.windows(secret.len()).any(|w| w == secret) {
            hprintln!("app {}: its RAM holds the DeviceSecret", app.name);
            found += 1;
        }
    }
    hprintln!(
        "secret sweep: the {} B DeviceSecret searched in the RAM of {} apps",
        secret.len(),
        apps.len()
    );
    verdict.expect(
        !secret.is_empty() && found == 0,
        "no app's RAM holds the DeviceSecret",
    );
}

/// Wait until `n` more SysTick ticks have passed (the kernel has nothing else to do).
fn wait_ticks(n: u32) -> u32 {
    let start = systick::ticks();
    while systick::ticks().wrapping_sub(start) < n {
        cortex_m::asm::wfi();
    }
    systick::ticks().wrapping_sub(start)
}

/// The name of a hostile act, for the log.
fn act_name(act: u32) -> &'static str {
    match act {
        hostile_act::ATTACK_KERNEL => "attack the kernel",
        hostile_act::READ_OTHER_APP => "read the greeter's RAM",
        hostile_act::EXECUTE_RAM => "execute its own RAM",
        hostile_act::SPIN => "spin forever",
        hostile_act::OVERFLOW => "overflow its stack",
        hostile_act::FLOOD => "flood the kernel with syscalls",
        hostile_act::FLOOD_LIVE => "flood the kernel's runner with syscalls",
        _ => "unknown",
    }
}

/// What one run of the hostile app showed.
#[derive(Default)]
struct RunLog {
    calls: u32,
    answered: u32,
    refusals: [Option<SyscallError>; 2],
    refused_outside: u32,
    preemptions: u32,
    greeter_ran_meanwhile: bool,
}

impl RunLog {
    /// Count one command of `app` (logging the first few: a flood makes 10 000) and keep the
    /// first two outcomes.
    fn record(&mut self, app: &'static str, r: &SyscallRecord) {
        if self.calls < 3 {
            log_syscall(app, r);
        }
        if let Some(slot) = self.refusals.get_mut(self.calls as usize) {
            *slot = r.result.err();
        }
        self.calls = self.calls.saturating_add(1);
        match r.result {
            Ok(_) => self.answered = self.answered.saturating_add(1),
            Err(SyscallError::BufferOutsideApp) => {
                self.refused_outside = self.refused_outside.saturating_add(1)
            }
            Err(_) => {}
        }
    }
}

/// Run the hostile app under the restart policy: run `k` does act `k`; each run must end
/// the way its act says, and after the last act the kernel must stop restarting it.
fn supervise_hostile(
    rt: &mut Runtime,
    capsule: &mut KernelCapsule,
    hostile: &App,
    greeter: &App,
    verdict: &mut Verdict,
) {
    let mut restarts = Restarts::new(RESTARTS);
    let mut act = 0;
    let mut runs = 0;
    let gave_up = loop {
        hprintln!(
            "running app {} (run {}, act: {})",
            hostile.name,
            runs + 1,
            act_name(act)
        );
        runs += 1;
        let mut log = RunLog::default();
        let stop = match rt.start(hostile, act) {
            Err(stop) => stop,
            Ok(mut process) => loop {
                let event = rt.resume(&mut process, capsule, &mut |r| log.record(hostile.name, r));
                match event {
                    Event::Stopped(stop) => break stop,
                    // `resume` answers commands inline: never `Called`.
                    Event::Called { .. } => continue,
                    Event::Preempted { spent } => {
                        log.preemptions += 1;
                        hprintln!(
                            "app {}: preempted by SysTick (preemption {} since its last syscall), context saved",
                            hostile.name,
                            spent
                        );
                        if act == hostile_act::SPIN && !log.greeter_ran_meanwhile {
                            log.greeter_ran_meanwhile = true;
                            run_greeter(
                                rt,
                                capsule,
                                greeter,
                                verdict,
                                "while the spinner is preempted",
                            );
                        }
                    }
                }
            },
        };
        log_stop(hostile, &stop);
        capsule.kernel.app_exited(hostile.id);
        if log.calls > 3 {
            hprintln!(
                "app {}: {} syscalls this run: {} answered, {} refused (buffer outside the app)",
                hostile.name,
                log.calls,
                log.answered,
                log.refused_outside
            );
        }
        check_act(act, &stop, &log, hostile, greeter, verdict);
        if stop.is_success() {
            break false;
        }
        let after = restarts.on_failure();
        log_after_failure(hostile.name, &after);
        match after {
            AfterFailure::Restart {
                attempt,
                delay_ticks,
            } => {
                let waited = wait_ticks(delay_ticks);
                verdict.expect(
                    waited >= delay_ticks
                        && delay_ticks == RESTARTS.first_delay_ticks << (attempt - 1),
                    "restart delayed by the backoff (doubling ticks)",
                );
                act += 1;
            }
            AfterFailure::GiveUp { .. } => break true,
        }
    };
    verdict.expect(
        gave_up && runs == RESTARTS.limit + 1 && act == hostile_act::FLOOD,
        "restarts stopped at the limit (6 runs: the first and 5 restarts), after the last act",
    );
}

/// Log what the restart policy decided after an app's abnormal end.
fn log_after_failure(name: &str, after: &AfterFailure) {
    match after {
        AfterFailure::Restart {
            attempt,
            delay_ticks,
        } => hprintln!(
            "app {}: ended abnormally; restart {}/{} in {} tick(s)",
            name,
            attempt,
            RESTARTS.limit,
            delay_ticks
        ),
        AfterFailure::GiveUp { restarts } => hprintln!(
            "app {}: ended abnormally after {} restart(s): restart limit reached, left stopped",
            name,
            restarts
        ),
    }
}

/// Check that run `act` of the hostile app ended the way that act must.
fn check_act(
    act: u32,
    stop: &Stop,
    log: &RunLog,
    hostile: &App,
    greeter: &App,
    verdict: &mut Verdict,
) {
    match act {
        hostile_act::ATTACK_KERNEL => {
            verdict.expect(
                log.refusals[0] == Some(SyscallError::BufferOutsideApp),
                "syscall with a kernel-RAM buffer refused (BufferOutsideApp)",
            );
            verdict.expect(
                log.refusals[1] == Some(SyscallError::LengthExceedsCapacity),
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
        }
        hostile_act::READ_OTHER_APP => verdict.expect(
            matches!(stop, Stop::Faulted(f) if f.exception == MEMMANAGE
                && f.status.cfsr & 0xFF == DACCVIOL_MMARVALID
                && f.status.mmfar == Some(greeter.ram.start)),
            "read of another app's RAM raised MemManage (DACCVIOL) at that address and ended the app \
             (and it found its RAM zeroed after the restart)",
        ),
        hostile_act::EXECUTE_RAM => verdict.expect(
            matches!(stop, Stop::Faulted(f) if f.exception == MEMMANAGE
                && f.status.cfsr & 0xFF == IACCVIOL
                && f.pc.is_some_and(|pc| hostile.ram.contains_range(pc, 2))),
            "executing its own RAM raised MemManage (IACCVIOL: RAM is never executable) and ended the app",
        ),
        hostile_act::SPIN => {
            verdict.expect(
                log.preemptions == SLICE_BUDGET
                    && matches!(stop, Stop::SpunTooLong(n) if *n == SLICE_BUDGET + 1),
                "spinner preempted by SysTick, resumed with r1-r12 intact, and ended after its slice budget (spun too long)",
            );
            verdict.expect(
                log.greeter_ran_meanwhile,
                "the other app ran (and was answered) while the spinner was preempted",
            );
        }
        hostile_act::OVERFLOW => {
            // SAFETY: the app is stopped; its RAM is readable by the kernel (privileged).
            let bottom = unsafe { (hostile.ram.start as *const u32).read_volatile() };
            verdict.expect(
                matches!(stop, Stop::Faulted(f) if f.exception == USAGEFAULT
                    && f.status.cfsr & STKOF != 0),
                "stack overflow raised UsageFault (STKOF, PSPLIM) and ended the app",
            );
            verdict.expect(
                bottom == HOSTILE_MARKER,
                "the overflow stopped at its stack's bottom (its data below untouched)",
            );
        }
        hostile_act::FLOOD => {
            // Its Hello, then the flood.
            let bad = hostile_act::FLOOD_CALLS / hostile_act::FLOOD_BAD_EVERY;
            verdict.expect(
                log.calls == 1 + hostile_act::FLOOD_CALLS
                    && log.refused_outside == bad
                    && log.answered == 1 + hostile_act::FLOOD_CALLS - bad,
                "Hello, then a flood of 10000 syscalls: each answered by the kernel (or refused, kernel-address buffers)",
            );
            verdict.expect(
                matches!(stop, Stop::Exited(hostile_exit::FLOOD_DONE)),
                "flooding app saw the right answer to every call",
            );
        }
        _ => verdict.expect(false, "known hostile act"),
    }
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
