//! The live phase: the kernel's own runner (`aliot_kernel::runner::Runner`, unchanged from
//! the host board) serves the apps while the MQTT session runs over the UART bridge to the
//! host's emulator. `publish_test` (the publisher image, run with its live argument) publishes
//! QoS 1 messages that must all be acknowledged by the cloud, while the hostile app, restarted
//! per the policy, attacks the kernel, spins, overflows its stack and floods the kernel with
//! syscalls. The runtime ends each app's slice at its syscall ([`Runtime::resume_deferred`]);
//! [`LivePort`] hands the request to the runner as the board's `AppPort` and puts the answer
//! back, so a `WaitEvent` really blocks the app until an event or its deadline.

use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::Poll;

use aliot_cortex_m33::policy::{AfterFailure, Restarts};
use aliot_cortex_m33::process::{App, Event, Process, Runtime, Stop};
use aliot_cortex_m33::syscall::SyscallError;
use aliot_cortex_m33::systick;
use aliot_kernel::board::{AppInput, AppPort, Clock};
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};
use aliot_kernel::kernel::{AppId, Kernel};
use aliot_kernel::runner::{Runner, RunnerOptions};
use cortex_m_semihosting::hprintln;

use crate::apps::hostile_act;
use crate::bridge::{BridgeNetwork, Line, TickClock, TickEntropy};
use crate::{RESTARTS, RunLog, Verdict, check_act, log_after_failure, log_stop, log_syscall};

/// The publisher's entry argument for the live phase: run `publish_test`.
pub const PUBLISHER_LIVE: u32 = 1;
/// The hostile app's acts in the live phase, one per run: the first run and 5 restarts, so
/// the last run reaches the restart limit.
const LIVE_ACTS: [u32; 6] = [
    hostile_act::ATTACK_KERNEL,
    hostile_act::SPIN,
    hostile_act::FLOOD_LIVE,
    hostile_act::OVERFLOW,
    hostile_act::READ_OTHER_APP,
    hostile_act::EXECUTE_RAM,
];
/// The live phase must be over by then (board time), else it fails: no bridge answered.
const LIVE_DEADLINE_MS: u64 = 120_000;

/// One app slot of the live phase.
struct Slot {
    app: App,
    process: Option<Process>,
    /// Runs started.
    runs: usize,
    /// `None` for the publisher: its end is the phase's outcome, never restarted.
    restarts: Option<Restarts>,
    /// Tick at which the next run may start.
    start_at: u32,
    /// No more runs.
    finished: bool,
    /// How its runs ended (the publisher's one run).
    last_stop: Option<Stop>,
    log: RunLog,
}

impl Slot {
    fn new(app: App, restarts: Option<Restarts>) -> Self {
        Self {
            app,
            process: None,
            runs: 0,
            restarts,
            start_at: 0,
            finished: false,
            last_stop: None,
            log: RunLog::default(),
        }
    }

    /// The entry argument of the next run.
    fn argument(&self) -> u32 {
        match self.restarts {
            None => PUBLISHER_LIVE,
            Some(_) => LIVE_ACTS.get(self.runs).copied().unwrap_or(u32::MAX),
        }
    }
}

/// What the live phase saw.
struct Observed {
    /// Turns the runner got (polls of the port: each one also polls the network and the
    /// timers) while the hostile app was spinning, between its preemptions.
    runner_turns_while_spinning: Cell<u32>,
    /// Acts the hostile app did that ended the expected way.
    verdict: RefCell<Verdict>,
    done: Cell<bool>,
}

/// The board's `AppPort` for the live phase: the publisher (slot 0) and the hostile app
/// (slot 1), round-robin, one slice per poll so the runner gets its turn in between.
pub struct LivePort<'a> {
    rt: &'a mut Runtime,
    slots: [Slot; 2],
    next: usize,
    observed: &'a Observed,
    greeter: App,
}

impl LivePort<'_> {
    fn slot(&mut self, app: AppId) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.app.id == app)
    }

    /// Start slot `i`'s next run if one is due.
    fn start_if_due(&mut self, i: usize) -> Option<AppInput> {
        let now = systick::ticks();
        let slot = self.slots.get_mut(i)?;
        if slot.finished || slot.process.is_some() || now.wrapping_sub(slot.start_at) > u32::MAX / 2
        {
            return None;
        }
        let argument = slot.argument();
        slot.runs += 1;
        slot.log = RunLog::default();
        if slot.restarts.is_some() {
            hprintln!(
                "live: app {} run {} (act: {})",
                slot.app.name,
                slot.runs,
                crate::act_name(argument)
            );
        }
        match self.rt.start(&slot.app, argument) {
            Ok(p) => {
                slot.process = Some(p);
                None
            }
            Err(stop) => Some(self.ended(i, stop)),
        }
    }

    /// Slot `i`'s run ended with `stop`: check it, decide on a restart, tell the kernel.
    fn ended(&mut self, i: usize, stop: Stop) -> AppInput {
        let greeter = self.greeter;
        let Some(slot) = self.slots.get_mut(i) else {
            return AppInput::Exited(0);
        };
        slot.process = None;
        log_stop(&slot.app, &stop);
        slot.last_stop = Some(stop);
        let id = slot.app.id;
        let Some(restarts) = slot.restarts.as_mut() else {
            slot.finished = true;
            return AppInput::Exited(id);
        };
        let act = LIVE_ACTS.get(slot.runs - 1).copied().unwrap_or(u32::MAX);
        {
            let mut verdict = self.observed.verdict.borrow_mut();
            if act == hostile_act::FLOOD_LIVE {
                let bad = hostile_act::FLOOD_CALLS / hostile_act::FLOOD_BAD_EVERY;
                hprintln!(
                    "live: app {}: {} syscalls refused by the bounds check during its flood; the rest went to the kernel's runner",
                    slot.app.name,
                    slot.log.refused_outside
                );
                verdict.expect(
                    matches!(stop, Stop::Exited(crate::apps::hostile_exit::FLOOD_DONE))
                        && slot.log.refused_outside == bad,
                    "live: Hello, then 10000 syscalls through the runner while the session runs: every kernel-address buffer refused, every other call answered Status",
                );
            } else {
                let mut log = core::mem::take(&mut slot.log);
                log.greeter_ran_meanwhile = self.observed.runner_turns_while_spinning.get() > 0;
                check_act(act, &stop, &log, &slot.app, &greeter, &mut verdict);
            }
        }
        let after = restarts.on_failure();
        log_after_failure(slot.app.name, &after);
        match after {
            AfterFailure::Restart { delay_ticks, .. } => {
                slot.start_at = systick::ticks().wrapping_add(delay_ticks);
            }
            AfterFailure::GiveUp { .. } => slot.finished = true,
        }
        AppInput::Exited(id)
    }

    /// Run one slice of the next runnable app; what it did, if the kernel must hear of it.
    fn step(&mut self) -> Option<AppInput> {
        for k in 0..self.slots.len() {
            let i = (self.next + k) % self.slots.len();
            if let Some(input) = self.start_if_due(i) {
                return Some(input);
            }
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            let Some(process) = slot.process.as_mut() else {
                continue;
            };
            if process.is_called() {
                continue; // waiting for the kernel's answer
            }
            self.next = i + 1;
            let (name, log) = (slot.app.name, &mut slot.log);
            let event = self.rt.resume_deferred(process, &mut |r| {
                // Only refused commands come here (the others go to the runner).
                if log.calls < 3 {
                    log_syscall(name, r);
                }
                if let Some(entry) = log.refusals.get_mut(log.calls as usize) {
                    *entry = r.result.err();
                }
                log.calls = log.calls.saturating_add(1);
                if r.result == Err(SyscallError::BufferOutsideApp) {
                    log.refused_outside = log.refused_outside.saturating_add(1);
                }
            });
            match event {
                Event::Called { request_len } => {
                    return Some(AppInput::Syscall {
                        app: slot.app.id,
                        len: request_len,
                    });
                }
                Event::Preempted { spent } => {
                    slot.log.preemptions = slot.log.preemptions.saturating_add(1);
                    if slot.restarts.is_some() {
                        hprintln!(
                            "live: app {}: preempted by SysTick ({} since its last syscall)",
                            slot.app.name,
                            spent
                        );
                    }
                    return None;
                }
                Event::Stopped(stop) => return Some(self.ended(i, stop)),
            }
        }
        None
    }

    /// The hostile app is in its spinning run and was preempted at least once.
    fn spinning(&self) -> bool {
        self.slots.get(1).is_some_and(|s| {
            s.process.is_some()
                && s.log.preemptions > 0
                && LIVE_ACTS.get(s.runs.wrapping_sub(1)) == Some(&hostile_act::SPIN)
        })
    }

    fn all_finished(&self) -> bool {
        self.slots.iter().all(|s| s.finished)
    }
}

impl AppPort for LivePort<'_> {
    async fn recv(&mut self) -> AppInput {
        poll_fn(|cx| {
            if self.spinning() {
                let turns = &self.observed.runner_turns_while_spinning;
                turns.set(turns.get().saturating_add(1));
            }
            if let Some(input) = self.step() {
                return Poll::Ready(input);
            }
            if self.all_finished() {
                self.observed.done.set(true);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]> {
        self.slot(app)?.process.as_mut()?.call_buffer()
    }

    fn respond(&mut self, app: AppId, len: usize) {
        let Self { rt, slots, .. } = self;
        let Some(slot) = slots.iter_mut().find(|s| s.app.id == app) else {
            return;
        };
        let Some(process) = slot.process.as_mut() else {
            return;
        };
        if let Some(Err(e)) = rt.complete(process, len) {
            hprintln!("live: app {}: answer not delivered: {:?}", slot.app.name, e);
        }
    }
}

/// Run the live phase; returns its verdict.
#[allow(clippy::too_many_arguments)]
pub fn run(
    kernel: &mut Kernel,
    rt: &mut Runtime,
    line: &RefCell<Line>,
    secret: &[u8],
    publisher: App,
    hostile: App,
    greeter: App,
) -> Verdict {
    let observed = Observed {
        runner_turns_while_spinning: Cell::new(0),
        verdict: RefCell::new(Verdict { failed: 0 }),
        done: Cell::new(false),
    };
    let port = LivePort {
        rt,
        slots: [
            Slot::new(publisher, None),
            Slot::new(hostile, Some(Restarts::new(RESTARTS))),
        ],
        next: 0,
        observed: &observed,
        greeter,
    };
    let mut port = port;
    let credentials = match DeviceSecretLogin::new(Secret::new(secret.to_vec())) {
        Ok(c) => c,
        Err(e) => {
            hprintln!("live: no login possible: {:?}", e);
            let mut v = Verdict { failed: 0 };
            v.expect(false, "live: the device secret makes a login");
            return v;
        }
    };
    let deadline = TickClock.now_ms() + LIVE_DEADLINE_MS;
    let timed_out = Cell::new(false);
    let stop = poll_fn(|cx| {
        if observed.done.get() {
            return Poll::Ready(());
        }
        if TickClock.now_ms() >= deadline {
            timed_out.set(true);
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    });
    hprintln!("live: the kernel's runner takes over: MQTT over the UART bridge");
    let ran = {
        let mut runner = Runner::new(
            kernel,
            BridgeNetwork::new(line),
            TickClock,
            TickEntropy::new(),
            &mut port,
            credentials,
            RunnerOptions::default(),
        );
        embassy_futures::block_on(runner.run_until(stop))
    };
    let mut verdict = observed.verdict.replace(Verdict { failed: 0 });
    verdict.expect(ran.is_ok(), "live: the runner ran and stopped cleanly");
    verdict.expect(
        !timed_out.get(),
        "live: publish_test and the hostile app finished before the deadline (needs the host bridge: run through `aliot-qemu`)",
    );
    let [publisher_slot, hostile_slot] = &port.slots;
    verdict.expect(
        matches!(publisher_slot.last_stop, Some(Stop::Exited(0))),
        "live: publish_test published its messages and exited 0",
    );
    verdict.expect(
        kernel.pending_publishes() == 0,
        "live: every QoS 1 publish (the offline ones of the first phase too) was acknowledged by the cloud",
    );
    verdict.expect(
        hostile_slot.runs == LIVE_ACTS.len() && hostile_slot.finished,
        "live: the hostile app was restarted up to its limit (6 runs), then left stopped",
    );
    hprintln!(
        "live: the runner had {} turns (network, timers, other apps) while the hostile app spun",
        observed.runner_turns_while_spinning.get()
    );
    hprintln!(
        "live: bridge frames dropped: {}",
        line.borrow().bad_frames()
    );
    verdict
}
