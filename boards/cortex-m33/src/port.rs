//! The kernel's `AppPort` over this runtime, shared by every Cortex-M33 board: the apps run
//! round-robin, one time slice per poll (so the kernel's runner gets a turn between slices and
//! a spinning app cannot starve the network or the other apps); a syscall ends the slice
//! ([`Runtime::resume_deferred`]) and is handed to the runner, whose answer goes back into the
//! app's own buffer ([`Runtime::complete`]), so an app in `WaitEvent` stays stopped until its
//! event or deadline. An app's end is reported to the kernel (`AppInput::Exited`) and its
//! restart decided by its manifest policy (`never`, `on_failure`, `always`) with the
//! runtime's limit and doubling backoff ([`Restarts`]).
//!
//! The executor: `recv` runs at most one slice per poll and returns `Pending` after a
//! preemption, waking itself while an app can run ([`poll_again`]), so an async board (the
//! nRF9160 DK's embassy executor) polls the runner's other futures (network, timers) between
//! slices; interrupts (the modem's IPC, the time driver's RTC) preempt an app at any time
//! and their handlers run privileged on MSP as usual; what they wake is polled at the latest
//! after the slice (SysTick period). When every app waits for the kernel, `recv` does not
//! wake itself and the executor may sleep until an interrupt.
//!
//! What a board wants to see or check (logs, a test's verdict) it gets through [`Supervisor`]
//! callbacks; what an app's entry argument is, too. The port owns no board policy.

use core::future::poll_fn;
use core::task::Poll;

use aliot_kernel::board::{AppInput, AppPort};
use aliot_kernel::config::RestartPolicy as WhenToRestart;
use aliot_kernel::kernel::AppId;

use crate::policy::{AfterFailure, Restarts, SlotState, poll_again};
use crate::process::{App, Event, Process, Runtime, Stop, SyscallRecord};
use crate::systick;

/// What a board sees of its apps' lives; every method has a do-nothing default.
pub trait Supervisor {
    /// The entry argument (r0) of `app`'s run number `run` (1 for the first).
    fn argument(&mut self, _app: &App, _run: u32) -> u32 {
        0
    }
    /// `app`'s run number `run` starts now.
    fn started(&mut self, _app: &App, _run: u32) {}
    /// A command of `app` was refused by the bounds check (it never reaches the kernel).
    fn refused(&mut self, _app: &App, _record: &SyscallRecord) {}
    /// `app` was preempted, `spent` slices in a row without a syscall.
    fn preempted(&mut self, _app: &App, _spent: u32) {}
    /// `app`'s run number `run` ended with `stop`.
    fn stopped(&mut self, _app: &App, _run: u32, _stop: &Stop) {}
    /// After an abnormal end, the policy decided this.
    fn after_failure(&mut self, _app: &App, _after: &AfterFailure) {}
    /// The runner polled the port (once per turn); `all_finished`: no app will run again.
    fn polled(&mut self, _all_finished: bool) {}
    /// The kernel's answer to `app` could not be delivered (it did not fit its buffer).
    fn undelivered(&mut self, _app: &App) {}
}

/// A supervisor that sees nothing.
pub struct Silent;
impl Supervisor for Silent {}

/// One app and its life under the port.
pub struct Slot {
    app: App,
    when: WhenToRestart,
    restarts: Restarts,
    process: Option<Process>,
    runs: u32,
    /// Tick at which the next run may start.
    start_at: u32,
    finished: bool,
}

impl Slot {
    /// `app`, restarted per `when` within `restarts`' limit and backoff; first run at once.
    pub fn new(app: App, when: WhenToRestart, restarts: Restarts) -> Slot {
        Slot {
            app,
            when,
            restarts,
            process: None,
            runs: 0,
            start_at: systick::ticks(),
            finished: false,
        }
    }

    /// `app`, whose image was refused at boot (see [`App::load`]): it never runs. Its slot
    /// keeps the board's slots one per manifest app.
    pub fn refused(app: App) -> Slot {
        Slot {
            finished: true,
            ..Slot::new(
                app,
                WhenToRestart::Never,
                Restarts::new(crate::policy::RestartPolicy {
                    limit: 0,
                    first_delay_ticks: 0,
                    max_delay_ticks: 0,
                }),
            )
        }
    }

    /// Where it stands, for [`poll_again`].
    fn state(&self) -> SlotState {
        match &self.process {
            _ if self.finished => SlotState::Finished,
            None => SlotState::StartPending,
            Some(p) if p.is_called() => SlotState::WaitingForKernel,
            Some(_) => SlotState::Runnable,
        }
    }

    /// The app.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Runs started so far.
    pub fn runs(&self) -> u32 {
        self.runs
    }

    /// It will not run again.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// It is running (or waiting for the kernel's answer).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }
}

/// The kernel's `AppPort` over `N` apps on the runtime.
pub struct RuntimePort<'a, S, const N: usize> {
    rt: &'a mut Runtime,
    slots: [Slot; N],
    next: usize,
    /// The board's observer.
    pub supervisor: S,
}

impl<'a, S: Supervisor, const N: usize> RuntimePort<'a, S, N> {
    /// A port running `slots` on `rt`.
    pub fn new(rt: &'a mut Runtime, slots: [Slot; N], supervisor: S) -> Self {
        Self {
            rt,
            slots,
            next: 0,
            supervisor,
        }
    }

    /// The apps.
    pub fn slots(&self) -> &[Slot; N] {
        &self.slots
    }

    /// No app will run again.
    pub fn all_finished(&self) -> bool {
        self.slots.iter().all(|s| s.finished)
    }

    /// Start slot `i`'s next run if one is due; an app that cannot start ends at once.
    fn start_if_due(&mut self, i: usize) -> Option<AppInput> {
        let now = systick::ticks();
        let slot = self.slots.get_mut(i)?;
        // `start_at` may lie in the past by up to half the tick counter's range.
        let due = now.wrapping_sub(slot.start_at) <= u32::MAX / 2;
        if slot.finished || slot.process.is_some() || !due {
            return None;
        }
        slot.runs = slot.runs.saturating_add(1);
        let argument = self.supervisor.argument(&slot.app, slot.runs);
        self.supervisor.started(&slot.app, slot.runs);
        match self.rt.start(&slot.app, argument) {
            Ok(p) => {
                slot.process = Some(p);
                None
            }
            Err(stop) => Some(self.ended(i, stop)),
        }
    }

    /// Slot `i`'s run ended with `stop`: tell the supervisor, decide on a restart, tell the
    /// kernel.
    fn ended(&mut self, i: usize, stop: Stop) -> AppInput {
        let Some(slot) = self.slots.get_mut(i) else {
            return AppInput::Exited(0);
        };
        slot.process = None;
        self.supervisor.stopped(&slot.app, slot.runs, &stop);
        let restart = match slot.when {
            WhenToRestart::Never => false,
            WhenToRestart::OnFailure => !stop.is_success(),
            WhenToRestart::Always => true,
        };
        if restart {
            let after = slot.restarts.on_failure();
            self.supervisor.after_failure(&slot.app, &after);
            match after {
                AfterFailure::Restart { delay_ticks, .. } => {
                    slot.start_at = systick::ticks().wrapping_add(delay_ticks);
                }
                AfterFailure::GiveUp { .. } => slot.finished = true,
            }
        } else {
            slot.finished = true;
        }
        AppInput::Exited(slot.app.id)
    }

    /// Run one slice of the next runnable app; what it did, if the kernel must hear of it.
    fn step(&mut self) -> Option<AppInput> {
        for k in 0..N {
            let i = (self.next + k) % N;
            if let Some(input) = self.start_if_due(i) {
                return Some(input);
            }
            let Self {
                rt,
                slots,
                supervisor,
                next,
            } = self;
            let Some(slot) = slots.get_mut(i) else {
                continue;
            };
            let Some(process) = slot.process.as_mut() else {
                continue;
            };
            if process.is_called() {
                continue; // waiting for the kernel's answer
            }
            *next = i + 1;
            let app = slot.app;
            let event = rt.resume_deferred(process, &mut |r| supervisor.refused(&app, r));
            match event {
                Event::Called { request_len } => {
                    return Some(AppInput::Syscall {
                        app: app.id,
                        len: request_len,
                    });
                }
                Event::Preempted { spent } => {
                    supervisor.preempted(&app, spent);
                    return None;
                }
                Event::Stopped(stop) => return Some(self.ended(i, stop)),
            }
        }
        None
    }
}

impl<S: Supervisor, const N: usize> AppPort for RuntimePort<'_, S, N> {
    async fn recv(&mut self) -> AppInput {
        poll_fn(|cx| {
            let all_finished = self.all_finished();
            self.supervisor.polled(all_finished);
            if let Some(input) = self.step() {
                return Poll::Ready(input);
            }
            // Polled again at once while an app can run or is due to start (one slice per
            // poll, the runner's turn between); when every app waits for the kernel, the
            // executor may sleep: the runner polls the port again after each answer.
            if poll_again(self.slots.iter().map(Slot::state)) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]> {
        self.slots
            .iter_mut()
            .find(|s| s.app.id == app)?
            .process
            .as_mut()?
            .call_buffer()
    }

    fn respond(&mut self, app: AppId, len: usize) {
        let Self {
            rt,
            slots,
            supervisor,
            ..
        } = self;
        let Some(slot) = slots.iter_mut().find(|s| s.app.id == app) else {
            return;
        };
        let Some(process) = slot.process.as_mut() else {
            return;
        };
        if let Some(Err(_)) = rt.complete(process, len) {
            supervisor.undelivered(&slot.app);
        }
    }
}
