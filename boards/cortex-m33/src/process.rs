//! Running apps: MPU set up for one app at a time, a fresh stack in its zeroed RAM, its
//! syscalls served, its time slice enforced, and its end (exit, fault, spun too long) reported
//! to the kernel.
//!
//! [`Runtime::start`] makes a [`Process`] (RAM zeroed, so nothing of an earlier run leaks into
//! the next); [`Runtime::resume`] runs it until its slice ends ([`Event::Preempted`]: its
//! context is kept in the `Process` and on its own stack, so it can be resumed after other
//! apps ran) or it stops ([`Event::Stopped`]). An app preempted more than the slice budget
//! allows without a syscall in between is ended ([`Stop::SpunTooLong`], see
//! [`crate::policy::SliceBudget`]). PSPLIM is set to the bottom of the app's stack, so a stack
//! overflow raises UsageFault (STKOF) and ends the app instead of running into whatever lies
//! below its stack.
//!
//! Two ways to serve commands: [`Runtime::resume`] answers them inline through a
//! [`Capsule`] (the slice goes on), while [`Runtime::resume_deferred`] ends the slice at a
//! command ([`Event::Called`]) whose buffer passed the bounds check and was unwrapped in place;
//! the app then waits, stopped, until the kernel writes its answer into
//! [`Process::call_buffer`] and calls [`Runtime::complete`]. The deferred way is how the
//! kernel's runner serves apps: it answers when it gets to it, and a `WaitEvent` only when an
//! event arrives.
//!
//! An app's FP registers are part of its context: s0-s15 and FPSCR in its exception frame
//! (stacked by the hardware when it used the FPU), s16-s31 in the `Process` (saved by
//! `switch_to_user` at every switch); the frame's size follows EXC_RETURN.FType (see
//! [`crate::frame`]), and every frame check covers the whole frame.

use core::sync::atomic::Ordering;

use crate::arch::{self, APP_EXC_RETURN, SVCALL, SWITCH_REASON, SYSTICK};
use crate::fpu::{self, FpuConfig};
use crate::frame::{STANDARD_FRAME_WORDS, frame_bytes};
use crate::header::{AppHeader, HEADER_LEN, HeaderError};
use crate::mpu::{Mpu, MpuError};
use crate::policy::{AfterPreempt, SliceBudget};
use crate::region::Region;
use crate::scb::{FaultStatus, Scb};
use crate::syscall::{self, Capsule, SVC_COMMAND, SVC_EXIT, SyscallError};
use crate::systick::SysTick;

/// EXC_RETURN for a fresh app: Secure, standard frame (no FP state), thread mode, PSP.
const FRESH_APP_EXC_RETURN: u32 = 0xFFFF_FFFD;
/// A fresh app's frame: the standard one (it has no FP state yet).
const FRESH_FRAME_BYTES: u32 = STANDARD_FRAME_WORDS * 4;
/// xPSR with only the Thumb bit set.
const XPSR_THUMB: u32 = 1 << 24;
/// CFSR.UFSR.STKOF: a stack limit violation (ARMv8-M ARM D1.2 CFSR).
const CFSR_STKOF: u32 = 1 << 20;
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
    /// Stack bytes at the top of `ram` (from its checked header); PSPLIM is set to its bottom.
    pub stack_size: u32,
}

impl App {
    /// The app whose image starts at `flash`: its header read from there and checked against
    /// its regions and the kernel's ABI ([`AppHeader::check`]); the header comes back too, for
    /// the board's log. Every Cortex-M33 board loads its apps through this.
    ///
    /// # Safety
    /// `flash` must be readable memory of at least [`HEADER_LEN`] bytes that nothing writes
    /// while the kernel runs (a region the board's layout reserves for this app's image).
    pub unsafe fn load(
        name: &'static str,
        id: u8,
        flash: Region,
        ram: Region,
    ) -> Result<(App, AppHeader), HeaderError> {
        if (flash.len as usize) < HEADER_LEN {
            return Err(HeaderError::TooShort);
        }
        // SAFETY: the caller promises `flash` is readable and unchanging; HEADER_LEN bytes of
        // it are read (checked above to lie inside it).
        let bytes = unsafe { core::slice::from_raw_parts(flash.start as *const u8, HEADER_LEN) };
        let header = AppHeader::parse(bytes)?;
        let ram = header.check(flash, ram)?;
        Ok((
            App {
                name,
                id,
                flash,
                ram,
                entry: header.entry,
                stack_size: header.stack_size,
            },
            header,
        ))
    }

    /// The stack's lowest address, if the stack fits the app's RAM.
    fn stack_bottom(&self) -> Option<u32> {
        let bottom = self.ram.end().checked_sub(u64::from(self.stack_size))?;
        (bottom >= u64::from(self.ram.start))
            .then(|| u32::try_from(bottom).ok())
            .flatten()
    }
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
    /// The app was preempted this many slices in a row without making a syscall: ended.
    SpunTooLong(u32),
}

impl Stop {
    /// The app ended normally: it exited with code 0. Anything else is a failure, which a
    /// restart policy may answer with a restart.
    pub fn is_success(&self) -> bool {
        matches!(self, Stop::Exited(0))
    }
}

/// What happened when the kernel resumed a process.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// Its time slice ran out; it can be resumed. `spent`: slices in a row without a syscall.
    Preempted {
        /// Slices used up since its last syscall.
        spent: u32,
    },
    /// It stopped and will not run again.
    Stopped(Stop),
    /// ([`Runtime::resume_deferred`] only) It made a command, now in
    /// [`Process::call_buffer`]`[..request_len]` (postcard bytes); it waits for
    /// [`Runtime::complete`].
    Called {
        /// Bytes of the request.
        request_len: usize,
    },
}

/// A command waiting for its answer: the buffer the app passed (bounds-checked).
#[derive(Debug, Clone, Copy)]
struct Call {
    ptr: u32,
    capacity: u32,
    request_len: usize,
}

/// How a slice serves commands.
enum Serve<'a> {
    /// Answer each through the capsule, then go on with the slice.
    Inline(&'a mut dyn Capsule),
    /// End the slice at the first command that passes the bounds check.
    Deferred,
}

/// An app that was started: its saved context between slices.
#[derive(Debug)]
pub struct Process {
    app: App,
    psp: u32,
    regs: [u32; 8],
    fp_regs: [u32; 16],
    exc_return: u32,
    stack_bottom: u32,
    budget: SliceBudget,
    syscalls: u32,
    stopped: Option<Stop>,
    call: Option<Call>,
}

impl Process {
    /// The app it runs.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Syscalls it made in this run (saturating).
    pub fn syscalls(&self) -> u32 {
        self.syscalls
    }

    /// `true` while a deferred command waits for [`Runtime::complete`].
    pub fn is_called(&self) -> bool {
        self.call.is_some()
    }

    /// The buffer of the command waiting for its answer: the request's postcard bytes at the
    /// front; the answer goes over them. It is the app's buffer less the framing's worst-case
    /// overhead (see [`syscall::answer_room`]). `None` when no command waits.
    pub fn call_buffer(&mut self) -> Option<&mut [u8]> {
        let call = self.call?;
        // SAFETY: `[ptr, ptr + capacity)` passed `check_buffer` against this app's RAM, which
        // is disjoint from kernel memory; the app is stopped until `complete`, and the borrow
        // of `self` keeps a second slice of it from being made meanwhile.
        let buffer =
            unsafe { core::slice::from_raw_parts_mut(call.ptr as *mut u8, call.capacity as usize) };
        Some(syscall::answer_room(buffer))
    }
}

/// The privileged side of the runtime: MPU, fault registers and SysTick.
pub struct Runtime {
    mpu: Mpu,
    scb: Scb,
    systick: SysTick,
    kernel_ram: Region,
    slice_budget: u32,
    fpu: FpuConfig,
}

impl Runtime {
    /// Take the MPU, the SCB fault registers and SysTick; enable MemManage, BusFault and
    /// UsageFault; let apps use the FPU (its state stacked eagerly, see [`crate::fpu`]); start
    /// SysTick with `slice_reload` (see [`crate::policy::slice_reload`]).
    /// `kernel_ram` is the kernel's RAM: no app region may overlap it. An app may be
    /// preempted `slice_budget` times in a row without a syscall; the next preemption ends it.
    ///
    /// # Safety
    /// Call once, from privileged thread mode on MSP (the reset state).
    pub unsafe fn take(kernel_ram: Region, slice_reload: u32, slice_budget: u32) -> Runtime {
        // SAFETY: the caller calls this once, so these are the only handles.
        let (mpu, scb, systick) = unsafe { (Mpu::take(), Scb::take(), SysTick::take()) };
        scb.enable_faults();
        // SAFETY: privileged thread mode at start-up: no app ran, no FP state is pending.
        let fpu = unsafe { fpu::configure() };
        systick.start(slice_reload);
        Runtime {
            mpu,
            scb,
            systick,
            kernel_ram,
            slice_budget,
            fpu,
        }
    }

    /// Number of MPU regions.
    pub fn mpu_regions(&self) -> u32 {
        self.mpu.regions()
    }

    /// CPACR and FPCCR as configured for apps (see [`FpuConfig::is_as_required`]).
    pub fn fpu_config(&self) -> FpuConfig {
        self.fpu
    }

    /// SYST_CALIB as the implementation reports it.
    pub fn systick_calibration(&self) -> u32 {
        self.systick.calibration()
    }

    /// Prepare `app` to run from its entry with zeroed RAM and a fresh stack; `argument` is
    /// its entry function's first argument (r0). Nothing runs until [`Runtime::resume`].
    pub fn start(&mut self, app: &App, argument: u32) -> Result<Process, Stop> {
        if app.ram.overlaps(&self.kernel_ram) || app.flash.overlaps(&self.kernel_ram) {
            return Err(Stop::OverlapsKernel);
        }
        // Checked here once; `resume` maps the same regions again before each slice.
        self.mpu
            .configure_app(app.flash, app.ram)
            .map_err(Stop::NotStarted)?;
        let (Some(stack_top), Some(stack_bottom)) =
            (u32::try_from(app.ram.end()).ok(), app.stack_bottom())
        else {
            return Err(Stop::NotStarted(MpuError::NotAligned(app.ram)));
        };
        let psp = stack_top - FRESH_FRAME_BYTES;
        // SAFETY: `app.ram` passed the header check (inside the app's linker region, which the
        // board checked to be disjoint from kernel RAM, and tested again above); no kernel
        // reference points into it; the app is not running (a `Process` of an earlier run of
        // it is never resumed again by the board, and zeroing is what it must not see anyway).
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
        // A fault status left over from before must not be blamed on this app.
        let _ = self.scb.take_fault_status();
        Ok(Process {
            app: *app,
            psp,
            regs: [0; 8],
            fp_regs: [0; 16],
            exc_return: FRESH_APP_EXC_RETURN,
            stack_bottom,
            budget: SliceBudget::new(self.slice_budget),
            syscalls: 0,
            stopped: None,
            call: None,
        })
    }

    /// Run `process` for one time slice (serving its syscalls, which do not end the slice)
    /// until SysTick preempts it or it stops; `capsule` answers its commands (after their
    /// buffers passed the bounds check) and `on_syscall` sees every command it makes.
    pub fn resume(
        &mut self,
        process: &mut Process,
        capsule: &mut dyn Capsule,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Event {
        self.resume_with(process, Serve::Inline(capsule), on_syscall)
    }

    /// Run `process` for one time slice, like [`Runtime::resume`], but end the slice at its
    /// first command that passes the bounds check: [`Event::Called`]; the process then waits
    /// until [`Runtime::complete`] (resuming it before that returns the same event again).
    /// Commands refused by the bounds check are answered at once and seen by `on_syscall`.
    pub fn resume_deferred(
        &mut self,
        process: &mut Process,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Event {
        if let Some(call) = process.call {
            return Event::Called {
                request_len: call.request_len,
            };
        }
        self.resume_with(process, Serve::Deferred, on_syscall)
    }

    /// Answer `process`'s waiting command: its answer's postcard bytes are
    /// [`Process::call_buffer`]`[..answer_len]` (0: it did not fit); they are framed in place
    /// and the frame's length (or the error) goes back to the app in r0. Returns what the app
    /// got, `None` when no command was waiting.
    pub fn complete(
        &mut self,
        process: &mut Process,
        answer_len: usize,
    ) -> Option<Result<usize, SyscallError>> {
        let call = process.call.take()?;
        // SAFETY: as in `Process::call_buffer`: checked against the app's RAM, app stopped.
        let buffer =
            unsafe { core::slice::from_raw_parts_mut(call.ptr as *mut u8, call.capacity as usize) };
        let result = syscall::wrap_answer(buffer, answer_len);
        let r0 = match result {
            Ok(n) => n as u32,
            Err(e) => e.to_r0(),
        };
        // SAFETY: the app's exception frame at `psp` lies in its RAM (checked when it trapped);
        // the app is stopped.
        unsafe { (process.psp as *mut u32).write_volatile(r0) };
        Some(result)
    }

    fn resume_with(
        &mut self,
        process: &mut Process,
        serve: Serve<'_>,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Event {
        if let Some(stop) = process.stopped {
            return Event::Stopped(stop);
        }
        let event = self.slice(process, serve, on_syscall);
        if let Event::Stopped(stop) = event {
            process.stopped = Some(stop);
        }
        event
    }

    /// Start `app` and resume it until it stops; preemptions are resumed at once.
    pub fn run(
        &mut self,
        app: &App,
        argument: u32,
        capsule: &mut dyn Capsule,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Stop {
        let mut process = match self.start(app, argument) {
            Ok(p) => p,
            Err(stop) => return stop,
        };
        loop {
            if let Event::Stopped(stop) = self.resume(&mut process, capsule, on_syscall) {
                return stop;
            }
        }
    }

    fn slice(
        &mut self,
        p: &mut Process,
        mut serve: Serve<'_>,
        on_syscall: &mut dyn FnMut(&SyscallRecord),
    ) -> Event {
        let app = p.app;
        if let Err(e) = self.mpu.configure_app(app.flash, app.ram) {
            return Event::Stopped(Stop::NotStarted(e));
        }
        // SAFETY: privileged thread mode; `stack_bottom` is this app's stack bottom.
        unsafe { arch::set_psplim(p.stack_bottom) };
        self.systick.restart_slice();
        loop {
            APP_EXC_RETURN.store(p.exc_return, Ordering::SeqCst);
            // SAFETY: `p.psp` points at an exception frame inside the app's RAM (built by
            // `start`, or pushed by the hardware at its last trap and checked below); the MPU
            // maps this app only; APP_EXC_RETURN holds its EXC_RETURN; `take` configured the FPU.
            p.psp = unsafe { arch::switch_to_user(p.psp, &mut p.regs, &mut p.fp_regs) };
            p.exc_return = APP_EXC_RETURN.load(Ordering::SeqCst);
            let reason = SWITCH_REASON.load(Ordering::SeqCst);
            // The whole frame, 26 words when it holds FP state: the kernel reads r0-r2 and pc
            // from it, and the hardware unstacks all of it when the app resumes.
            let frame_ok = app.ram.contains_range(p.psp, frame_bytes(p.exc_return));
            if reason == SYSTICK && frame_ok {
                return match p.budget.on_preempt() {
                    AfterPreempt::Resume { spent } => Event::Preempted { spent },
                    AfterPreempt::SpunTooLong { spent } => Event::Stopped(Stop::SpunTooLong(spent)),
                };
            }
            if reason != SVCALL && reason != SYSTICK {
                let status = self.scb.take_fault_status();
                // After a stack limit violation the hardware may not have written the frame
                // (it stops at PSPLIM), so there is no pc to report.
                let frame_written = frame_ok && status.cfsr & CFSR_STKOF == 0;
                return Event::Stopped(Stop::Faulted(AppFault {
                    exception: reason,
                    status,
                    // SAFETY: the frame lies in the app's RAM (checked), which is readable.
                    pc: frame_written
                        .then(|| unsafe { (p.psp as *const u32).add(6).read_volatile() }),
                }));
            }
            if !frame_ok {
                return Event::Stopped(Stop::BadStack(p.psp));
            }
            p.budget.on_syscall();
            p.syscalls = p.syscalls.saturating_add(1);
            let frame = p.psp as *mut u32;
            // SAFETY: the frame (8 or 26 words, r0-r2 and pc at the same offsets in both) lies
            // in the app's RAM (checked); the app is stopped.
            let [r0, r1, r2, pc] = unsafe { [0, 1, 2, 6].map(|i| frame.add(i).read_volatile()) };
            let r0_out = match svc_number(&app, pc) {
                Some(SVC_EXIT) => return Event::Stopped(Stop::Exited(r0)),
                Some(SVC_COMMAND) => {
                    let result = match &mut serve {
                        Serve::Inline(capsule) => command(&app, r0, r1, r2, *capsule),
                        Serve::Deferred => match defer(&app, r0, r1, r2) {
                            Ok(call) => {
                                p.call = Some(call);
                                return Event::Called {
                                    request_len: call.request_len,
                                };
                            }
                            Err(e) => Err(e),
                        },
                    };
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

/// Take one command to be answered later: bounds-check the buffer against this app's RAM,
/// then unwrap its frame in place.
fn defer(app: &App, ptr: u32, len: u32, capacity: u32) -> Result<Call, SyscallError> {
    syscall::check_buffer(ptr, len, capacity, app.ram)?;
    // SAFETY: as in `command`: checked to lie inside this app's RAM; the app is stopped.
    let buffer = unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, capacity as usize) };
    let request_len = syscall::unwrap_request(buffer, len as usize)?;
    Ok(Call {
        ptr,
        capacity,
        request_len,
    })
}

/// Serve one command: bounds-check the buffer against this app's RAM, then let `capsule`
/// answer it in that buffer.
fn command(
    app: &App,
    ptr: u32,
    len: u32,
    capacity: u32,
    capsule: &mut dyn Capsule,
) -> Result<usize, SyscallError> {
    syscall::check_buffer(ptr, len, capacity, app.ram)?;
    // SAFETY: `[ptr, ptr + capacity)` lies inside this app's RAM (checked just above), which
    // is disjoint from kernel memory; the app is stopped, and no other reference to that memory
    // exists while this slice lives.
    let buffer = unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, capacity as usize) };
    syscall::serve_command(buffer, len as usize, app.id, capsule)
}
