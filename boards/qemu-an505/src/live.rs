//! The live phase: the kernel's own runner (`aliot_kernel::runner::Runner`, unchanged from
//! the host board) serves the apps while the MQTT session runs over the UART bridge to the
//! host's emulator. `publish_test` (the publisher image, run with its live argument) publishes
//! QoS 1 messages that must all be acknowledged by the cloud, while the hostile app, restarted
//! per the policy, attacks the kernel, spins, overflows its stack and floods the kernel with
//! syscalls. The apps run under the runtime's shared `AppPort`
//! ([`aliot_cortex_m33::port::RuntimePort`]: a syscall ends the slice and goes to the runner,
//! so a `WaitEvent` really blocks the app); [`LiveSupervisor`] logs what happens and checks
//! each of the hostile app's runs.

use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::Poll;

use aliot_cortex_m33::policy::{AfterFailure, Restarts};
use aliot_cortex_m33::port::{RuntimePort, Slot, Supervisor};
use aliot_cortex_m33::process::{App, Runtime, Stop, SyscallRecord};
use aliot_kernel::board::Clock;
use aliot_kernel::config::RestartPolicy as WhenToRestart;
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};
use aliot_kernel::kernel::Kernel;
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

/// Logs the live phase and checks each run of the hostile app.
pub struct LiveSupervisor<'o> {
    hostile: u8,
    greeter: App,
    /// The current hostile run's act and what it showed.
    act: u32,
    log: RunLog,
    hostile_running: bool,
    /// How publish_test's run ended.
    publisher_stop: Option<Stop>,
    /// Turns the runner got (polls of the port: each also polls the network and the timers)
    /// while the hostile app was spinning, between its preemptions.
    turns_while_spinning: u32,
    verdict: Verdict,
    done: &'o Cell<bool>,
}

impl LiveSupervisor<'_> {
    fn is_hostile(&self, app: &App) -> bool {
        app.id == self.hostile
    }
}

impl Supervisor for LiveSupervisor<'_> {
    fn argument(&mut self, app: &App, run: u32) -> u32 {
        if self.is_hostile(app) {
            let act = LIVE_ACTS
                .get(run.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(u32::MAX);
            self.act = act;
            act
        } else {
            PUBLISHER_LIVE
        }
    }

    fn started(&mut self, app: &App, run: u32) {
        if self.is_hostile(app) {
            hprintln!(
                "live: app {} run {} (act: {})",
                app.name,
                run,
                crate::act_name(self.act)
            );
            self.log = RunLog::default();
            self.hostile_running = true;
        }
    }

    fn refused(&mut self, app: &App, r: &SyscallRecord) {
        if !self.is_hostile(app) {
            log_syscall(app.name, r);
            return;
        }
        // Only refused commands come here (the others go to the runner).
        self.log.record(app.name, r);
    }

    fn preempted(&mut self, app: &App, spent: u32) {
        if self.is_hostile(app) {
            self.log.preemptions = self.log.preemptions.saturating_add(1);
            hprintln!(
                "live: app {}: preempted by SysTick ({} since its last syscall)",
                app.name,
                spent
            );
        }
    }

    fn stopped(&mut self, app: &App, _run: u32, stop: &Stop) {
        log_stop(app, stop);
        if !self.is_hostile(app) {
            self.publisher_stop = Some(*stop);
            return;
        }
        self.hostile_running = false;
        let verdict = &mut self.verdict;
        if self.act == hostile_act::FLOOD_LIVE {
            let bad = hostile_act::FLOOD_CALLS / hostile_act::FLOOD_BAD_EVERY;
            hprintln!(
                "live: app {}: {} syscalls refused by the bounds check during its flood; the rest went to the kernel's runner",
                app.name,
                self.log.refused_outside
            );
            verdict.expect(
                matches!(stop, Stop::Exited(crate::apps::hostile_exit::FLOOD_DONE))
                    && self.log.refused_outside == bad,
                "live: Hello, then 10000 syscalls through the runner while the session runs: every kernel-address buffer refused, every other call answered Status",
            );
        } else {
            let mut log = core::mem::take(&mut self.log);
            log.greeter_ran_meanwhile = self.turns_while_spinning > 0;
            check_act(self.act, stop, &log, app, &self.greeter, verdict);
        }
    }

    fn after_failure(&mut self, app: &App, after: &AfterFailure) {
        log_after_failure(app.name, after);
    }

    fn polled(&mut self, all_finished: bool) {
        if self.hostile_running && self.act == hostile_act::SPIN && self.log.preemptions > 0 {
            self.turns_while_spinning = self.turns_while_spinning.saturating_add(1);
        }
        if all_finished {
            self.done.set(true);
        }
    }

    fn undelivered(&mut self, app: &App) {
        hprintln!(
            "live: app {}: the kernel's answer did not fit its buffer",
            app.name
        );
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
    let done = Cell::new(false);
    let supervisor = LiveSupervisor {
        hostile: hostile.id,
        greeter,
        act: u32::MAX,
        log: RunLog::default(),
        hostile_running: false,
        publisher_stop: None,
        turns_while_spinning: 0,
        verdict: Verdict { failed: 0 },
        done: &done,
    };
    // publish_test's end is the phase's outcome: never restarted. The hostile app is
    // restarted after every abnormal end, up to the limit.
    let slots = [
        Slot::new(publisher, WhenToRestart::Never, Restarts::new(RESTARTS)),
        Slot::new(hostile, WhenToRestart::OnFailure, Restarts::new(RESTARTS)),
    ];
    let mut port = RuntimePort::new(rt, slots, supervisor);
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
        if done.get() {
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
    let live = &mut port.supervisor;
    let mut verdict = core::mem::replace(&mut live.verdict, Verdict { failed: 0 });
    let (publisher_stop, turns) = (live.publisher_stop, live.turns_while_spinning);
    verdict.expect(ran.is_ok(), "live: the runner ran and stopped cleanly");
    verdict.expect(
        !timed_out.get(),
        "live: publish_test and the hostile app finished before the deadline (needs the host bridge: run through `aliot-qemu`)",
    );
    let [_, hostile_slot] = port.slots();
    verdict.expect(
        matches!(publisher_stop, Some(Stop::Exited(0))),
        "live: publish_test published its messages and exited 0",
    );
    verdict.expect(
        kernel.pending_publishes() == 0,
        "live: every QoS 1 publish (the offline ones of the first phase too) was acknowledged by the cloud",
    );
    verdict.expect(
        hostile_slot.runs() as usize == LIVE_ACTS.len() && hostile_slot.is_finished(),
        "live: the hostile app was restarted up to its limit (6 runs), then left stopped",
    );
    hprintln!(
        "live: the runner had {} turns (network, timers, other apps) while the hostile app spun",
        turns
    );
    hprintln!(
        "live: bridge frames dropped: {}",
        line.borrow().bad_frames()
    );
    verdict
}
