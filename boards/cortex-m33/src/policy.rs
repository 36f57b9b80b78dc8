//! The kernel's scheduling budgets, kept pure so their arithmetic is tested on the host.
//!
//! - [`slice_reload`]: the SysTick reload value for a time slice of so many milliseconds at a
//!   given clock (SysTick counts 24 bits, so a slice too long for the clock is refused rather
//!   than silently truncated).
//! - [`SliceBudget`]: how many consecutive slices an app may be preempted without making a
//!   syscall before it is ended as "spun too long". A syscall shows the app is making progress
//!   and refills the budget.
//! - [`RestartPolicy`] / [`Restarts`]: an app that ends abnormally is restarted up to a limit,
//!   each time after a delay (in ticks) that doubles, then left stopped. Exponential backoff
//!   keeps a crash-looping app from eating the CPU; the limit keeps it from doing so forever.
//!
//! - [`poll_again`]: whether the kernel's port must be polled again at once (an app can run)
//!   or may let the executor sleep until the kernel's runner has news (every app waits for
//!   the kernel or has ended).
//!
//! Every counter here saturates: nothing an app does can make one wrap.

/// SysTick's counter is 24 bits wide (ARMv8-M ARM B11.1 SYST_RVR.RELOAD).
pub const SYSTICK_MAX_RELOAD: u32 = 0x00FF_FFFF;

/// SYST_RVR value for an interrupt every `ms` milliseconds of a `clock_hz` clock: the counter
/// counts RELOAD..=0, so the period is RELOAD + 1 cycles. `None` when the period is zero or
/// does not fit 24 bits.
pub fn slice_reload(clock_hz: u32, ms: u32) -> Option<u32> {
    let cycles = u64::from(clock_hz) * u64::from(ms) / 1000;
    let reload = cycles.checked_sub(1)?;
    if reload == 0 || reload > u64::from(SYSTICK_MAX_RELOAD) {
        return None;
    }
    u32::try_from(reload).ok()
}

/// Consecutive slices an app may use up without a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceBudget {
    limit: u32,
    spent: u32,
}

/// What the kernel does with an app that was just preempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPreempt {
    /// Resume it later; `spent` slices in a row without a syscall so far.
    Resume {
        /// Slices used up since its last syscall.
        spent: u32,
    },
    /// The budget is used up: end the app.
    SpunTooLong {
        /// Slices used up since its last syscall.
        spent: u32,
    },
}

impl SliceBudget {
    /// An app may be preempted `limit` times in a row without a syscall; the next preemption
    /// ends it. A limit of 0 ends an app at its first preemption without a syscall.
    pub fn new(limit: u32) -> SliceBudget {
        SliceBudget { limit, spent: 0 }
    }

    /// The app made a syscall: it is making progress, the budget is full again.
    pub fn on_syscall(&mut self) {
        self.spent = 0;
    }

    /// The app's slice ran out.
    pub fn on_preempt(&mut self) -> AfterPreempt {
        self.spent = self.spent.saturating_add(1);
        if self.spent > self.limit {
            AfterPreempt::SpunTooLong { spent: self.spent }
        } else {
            AfterPreempt::Resume { spent: self.spent }
        }
    }
}

/// Restart limit and backoff for apps that end abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed after the first run.
    pub limit: u32,
    /// Delay before the first restart, in ticks; doubled for each further restart.
    pub first_delay_ticks: u32,
    /// No delay exceeds this many ticks.
    pub max_delay_ticks: u32,
}

/// What the kernel does with an app that just ended abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Start it again, fresh, once `delay_ticks` ticks have passed.
    Restart {
        /// 1 for the first restart.
        attempt: u32,
        /// Ticks to wait first.
        delay_ticks: u32,
    },
    /// The limit is reached: leave it stopped.
    GiveUp {
        /// Restarts it had.
        restarts: u32,
    },
}

/// One app's restart history under a [`RestartPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarts {
    policy: RestartPolicy,
    done: u32,
}

impl Restarts {
    /// No restarts yet.
    pub fn new(policy: RestartPolicy) -> Restarts {
        Restarts { policy, done: 0 }
    }

    /// Restarts done so far.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// The app ended abnormally: restart it (and after how long), or give up.
    pub fn on_failure(&mut self) -> AfterFailure {
        if self.done >= self.policy.limit {
            return AfterFailure::GiveUp {
                restarts: self.done,
            };
        }
        let delay_ticks = backoff(self.policy, self.done);
        self.done = self.done.saturating_add(1);
        AfterFailure::Restart {
            attempt: self.done,
            delay_ticks,
        }
    }
}

/// `first_delay_ticks * 2^previous`, capped at `max_delay_ticks` (no overflow for any input).
fn backoff(policy: RestartPolicy, previous: u32) -> u32 {
    let factor = 1u64.checked_shl(previous).unwrap_or(u64::MAX);
    let delay = u64::from(policy.first_delay_ticks).saturating_mul(factor);
    u32::try_from(delay.min(u64::from(policy.max_delay_ticks))).unwrap_or(policy.max_delay_ticks)
}

/// Where one app stands, as far as the kernel's port is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// It will not run again.
    Finished,
    /// It waits for the kernel's answer to its syscall (a `WaitEvent` may wait long).
    WaitingForKernel,
    /// It can run a slice now (started, preempted, or answered).
    Runnable,
    /// Its (re)start is due now or after a backoff counted in SysTick ticks.
    StartPending,
}

/// Whether the port must be polled again at once: some app can run, or one's start is
/// pending (its backoff is counted in SysTick ticks, which only a running CPU counts, so the
/// port keeps the CPU awake until it is due). When every app waits for the kernel or has
/// ended, the port may let the executor sleep: only the kernel's runner can wake an app (by
/// answering it), and it polls the port again after every answer.
pub fn poll_again(states: impl IntoIterator<Item = SlotState>) -> bool {
    states
        .into_iter()
        .any(|s| matches!(s, SlotState::Runnable | SlotState::StartPending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_for_ten_ms_at_twenty_mhz() {
        // 20 MHz * 10 ms = 200 000 cycles; the counter counts 199 999..=0.
        assert_eq!(slice_reload(20_000_000, 10), Some(199_999));
        assert_eq!(slice_reload(25_000_000, 1), Some(24_999));
    }

    #[test]
    fn reload_that_does_not_fit_24_bits_is_refused() {
        // 20 MHz * 1 s = 20 000 000 cycles > 2^24.
        assert_eq!(slice_reload(20_000_000, 1000), None);
        // Exactly 2^24 cycles is the longest period: RELOAD = 0xFF_FFFF; one more is refused.
        assert_eq!(slice_reload(16_777_216, 1000), Some(SYSTICK_MAX_RELOAD));
        assert_eq!(slice_reload(16_777_217, 1000), None);
        assert_eq!(slice_reload(u32::MAX, u32::MAX), None);
    }

    #[test]
    fn zero_period_is_refused() {
        assert_eq!(slice_reload(0, 10), None);
        assert_eq!(slice_reload(20_000_000, 0), None);
        assert_eq!(slice_reload(1000, 1), None); // one cycle: RELOAD 0 never interrupts
    }

    #[test]
    fn budget_ends_the_app_after_limit_slices_without_syscall() {
        let mut b = SliceBudget::new(3);
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: 1 });
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: 2 });
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: 3 });
        assert_eq!(b.on_preempt(), AfterPreempt::SpunTooLong { spent: 4 });
    }

    #[test]
    fn the_port_sleeps_only_when_no_app_can_run() {
        use SlotState::*;
        assert!(!poll_again([]));
        assert!(!poll_again([Finished, WaitingForKernel, Finished]));
        assert!(poll_again([WaitingForKernel, Runnable]));
        assert!(poll_again([Finished, StartPending]));
    }

    #[test]
    fn a_syscall_refills_the_budget() {
        let mut b = SliceBudget::new(2);
        b.on_preempt();
        b.on_preempt();
        b.on_syscall();
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: 1 });
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: 2 });
        assert_eq!(b.on_preempt(), AfterPreempt::SpunTooLong { spent: 3 });
    }

    #[test]
    fn budget_counter_saturates() {
        let mut b = SliceBudget {
            limit: u32::MAX,
            spent: u32::MAX - 1,
        };
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: u32::MAX });
        assert_eq!(b.on_preempt(), AfterPreempt::Resume { spent: u32::MAX });
    }

    const POLICY: RestartPolicy = RestartPolicy {
        limit: 3,
        first_delay_ticks: 2,
        max_delay_ticks: 100,
    };

    #[test]
    fn restarts_back_off_then_stop_at_the_limit() {
        let mut r = Restarts::new(POLICY);
        assert_eq!(
            r.on_failure(),
            AfterFailure::Restart {
                attempt: 1,
                delay_ticks: 2
            }
        );
        assert_eq!(
            r.on_failure(),
            AfterFailure::Restart {
                attempt: 2,
                delay_ticks: 4
            }
        );
        assert_eq!(
            r.on_failure(),
            AfterFailure::Restart {
                attempt: 3,
                delay_ticks: 8
            }
        );
        assert_eq!(r.on_failure(), AfterFailure::GiveUp { restarts: 3 });
        assert_eq!(r.on_failure(), AfterFailure::GiveUp { restarts: 3 });
        assert_eq!(r.done(), 3);
    }

    #[test]
    fn zero_limit_never_restarts() {
        let mut r = Restarts::new(RestartPolicy { limit: 0, ..POLICY });
        assert_eq!(r.on_failure(), AfterFailure::GiveUp { restarts: 0 });
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        assert_eq!(backoff(POLICY, 5), 64);
        assert_eq!(backoff(POLICY, 6), 100);
        assert_eq!(backoff(POLICY, 63), 100);
        assert_eq!(backoff(POLICY, 64), 100);
        assert_eq!(backoff(POLICY, u32::MAX), 100);
        let huge = RestartPolicy {
            limit: u32::MAX,
            first_delay_ticks: u32::MAX,
            max_delay_ticks: u32::MAX,
        };
        assert_eq!(backoff(huge, 40), u32::MAX);
    }
}
