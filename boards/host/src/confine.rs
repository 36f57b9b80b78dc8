//! Confinement of an app process: after [`confine`], the process can use the pipes it was
//! given (stdin for responses, stdout for requests, stderr for its log), memory, time and
//! threads, and nothing else. It cannot open a file (the DeviceSecret file, the provisioned
//! secret in the state directory, `/proc/<board>/environ`, `/proc/<board>/mem`, ...), cannot
//! trace or read the memory of another process, cannot create a socket and cannot execute a
//! program.
//!
//! Why: the board holds the DeviceSecret (from an environment variable, a file or provisioned
//! storage) and an app is third-party code that must never see it. The board already starts
//! apps with an empty environment and `/` as working directory (see `apps.rs`); this module
//! is the part that runs inside the app process, in [`crate::app_process::run`], before any
//! app code:
//!
//! 1. every inherited descriptor above stderr is closed (a careless launcher may have left
//!    one open on a secret file);
//! 2. the process becomes non-dumpable (no other process of the same user may ptrace it or
//!    read its `/proc` files);
//! 3. **Landlock** (`landlock` crate): a ruleset that handles every filesystem and TCP access
//!    right this kernel knows, with no rule allowing any of them, plus the signal and abstract
//!    UNIX socket scopes. The process and its descendants may open no file, connect nowhere,
//!    signal nothing outside, and Landlock's ptrace rule stops it tracing (or reading the
//!    memory of) any process outside its domain, such as the board;
//! 4. **seccomp** (`seccompiler` crate): an allow-list filter. `read` only on fd 0, `write`
//!    only on fds 1 and 2, memory management, futex, clocks and sleeps, signals to itself,
//!    thread creation (`clone` with `CLONE_THREAD`; `clone3`, whose flags a filter cannot
//!    inspect, fails with `ENOSYS` so the C library falls back to `clone`), and exit. Every
//!    other system call fails with `EPERM`: `open`/`openat`/`openat2`, `execve`, `socket`,
//!    `ptrace`, `process_vm_readv`, `pidfd_getfd`, `io_uring_setup` (io_uring would bypass
//!    seccomp), `fork`, `kill`, ... `EPERM` rather than a kill, so that an app (or the
//!    confinement probe) gets an error it can log instead of dying silently.
//!
//! The two mechanisms overlap on purpose: either one alone keeps the secret out of reach. When
//! one is unavailable (an old kernel, a container that forbids it), the other still applies
//! and the reason is logged as a warning; when neither applies, [`confine`] fails and the app
//! does not run.
//!
//! On the machine this was written on (Linux 6.18, x86_64, running as root, the kernel built
//! with `CONFIG_SECCOMP_FILTER=y`, `CONFIG_SECURITY_LANDLOCK=y` and
//! `CONFIG_LSM="landlock,lockdown,yama,..."`; securityfs is not mounted, so
//! `/sys/kernel/security/lsm` cannot be read), both apply: seccomp, and Landlock ABI 7 with
//! every right that ABI knows (the crate calls that "partially enforced" because it asks for
//! the rights of ABIs up to 10). Root does not escape either: seccomp and Landlock ignore
//! capabilities. With either one switched off by hand, the confinement test still passes;
//! with both off, every file, `/proc`, ptrace, pidfd, exec and TCP route is open.
//!
//! The app process is single-threaded when [`confine`] runs (the runtime starts no thread
//! before it), so restricting the calling thread restricts the process; the seccomp filter is
//! installed with `TSYNC` anyway. Both restrictions are inherited by threads the app starts.
//!
//! Written by hand: closing descriptors (`close_range`) and the choice of system calls to
//! allow; the crates do the BPF and Landlock work.

use std::collections::BTreeMap;
use std::fmt;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, Ruleset,
    RulesetAttr, RulesetStatus, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The newest Landlock ABI the `landlock` crate knows; on an older kernel the crate enforces
/// what the kernel supports (best effort) and says so in its status.
const LANDLOCK_ABI: ABI = ABI::V10;

/// What [`confine`] put in place. Its `Display` is the line the app logs at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// Descriptors above stderr were closed.
    pub fds_closed: Layer,
    /// The process is not dumpable.
    pub non_dumpable: Layer,
    /// Landlock: no filesystem or TCP access, signals and abstract sockets scoped.
    pub landlock: Layer,
    /// The seccomp allow-list.
    pub seccomp: Layer,
}

/// The outcome of one protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// In force; the text says how (e.g. the Landlock ABI).
    Active(String),
    /// Not in force; the text says why.
    Unavailable(String),
}

impl Layer {
    /// In force.
    pub fn is_active(&self) -> bool {
        !matches!(self, Layer::Unavailable(_))
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Active(how) => write!(f, "on ({how})"),
            Layer::Unavailable(why) => write!(f, "OFF ({why})"),
        }
    }
}

impl fmt::Display for Confinement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seccomp={}; landlock={}; fds={}; non-dumpable={}",
            self.seccomp, self.landlock, self.fds_closed, self.non_dumpable
        )
    }
}

/// Neither seccomp nor Landlock could be applied: the app must not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfined(pub Box<Confinement>);

impl fmt::Display for Unconfined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "neither seccomp nor Landlock could be applied, so nothing stops this process \
             reading the device secret: {}",
            self.0
        )
    }
}

/// Confine the calling process (see the module doc). Irreversible. Call it once, from the
/// app process's only thread, before any app code runs.
pub fn confine() -> Result<Confinement, Unconfined> {
    let confinement = Confinement {
        fds_closed: close_inherited_fds(),
        non_dumpable: match nix::sys::prctl::set_dumpable(false) {
            Ok(()) => Layer::Active("prctl".into()),
            Err(e) => Layer::Unavailable(format!("PR_SET_DUMPABLE: {e}")),
        },
        // Landlock first: once the seccomp filter is in, its system calls are refused.
        landlock: landlock(),
        seccomp: seccomp(),
    };
    if confinement.landlock.is_active() || confinement.seccomp.is_active() {
        Ok(confinement)
    } else {
        Err(Unconfined(Box::new(confinement)))
    }
}

// `close_range` has no safe wrapper.
#[allow(unsafe_code)]
fn close_inherited_fds() -> Layer {
    // SAFETY: close_range only closes descriptors; this runs before any app code, on the only
    // thread, and nothing in this process owns a descriptor above 2 (std opens none at start).
    // The raw system call (Linux 5.9): glibc has a wrapper only since 2.34, musl none.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0) };
    if rc == 0 {
        Layer::Active("close_range(3..)".into())
    } else {
        Layer::Unavailable(format!("close_range: {}", std::io::Error::last_os_error()))
    }
}

fn landlock() -> Layer {
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.handle_access(AccessNet::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.scope(Scope::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.create());
    // No rule is added: every handled access is denied everywhere.
    let status = match created.and_then(|r| r.restrict_self()) {
        Ok(status) => status,
        Err(e) => return Layer::Unavailable(format!("Landlock: {e}")),
    };
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("ABI {}", effective_abi as i32),
        LandlockStatus::NotEnabled => "not enabled in this kernel".to_owned(),
        LandlockStatus::NotImplemented => "not built into this kernel".to_owned(),
    };
    match status.ruleset {
        RulesetStatus::FullyEnforced => Layer::Active(format!("{abi}, fully enforced")),
        // Every right this kernel knows is handled; the newer ones it lacks (the crate knows
        // ABIs up to 10) cannot be, and reading a file has been one since ABI 1.
        RulesetStatus::PartiallyEnforced => {
            Layer::Active(format!("{abi}, every right this kernel knows"))
        }
        RulesetStatus::NotEnforced => Layer::Unavailable(abi),
    }
}

fn seccomp() -> Layer {
    let (no_clone3, allow_list) = match filters() {
        Ok(programs) => programs,
        Err(e) => return Layer::Unavailable(format!("cannot build the filter: {e}")),
    };
    // Installing a filter needs `prctl` and `seccomp`, which the allow-list refuses: it goes
    // last. Of two filters that both return an errno the kernel keeps the newest one's, so
    // the allow-list lists `clone3` and the older filter still turns it into `ENOSYS`.
    for program in [&no_clone3, &allow_list] {
        if let Err(e) = seccompiler::apply_filter_all_threads(program) {
            return Layer::Unavailable(format!("cannot install the filter: {e}"));
        }
    }
    Layer::Active(format!(
        "{} system calls allowed, the rest EPERM",
        allowed_syscalls().len()
    ))
}

/// Argument conditions that must all hold: (argument index, comparison, value).
type Conditions = Vec<(u8, SeccompCmpOp, u64)>;

/// Allowed system calls, each with the alternatives of argument conditions of which one must
/// hold (none listed: any arguments).
fn allowed_syscalls() -> Vec<(i64, Vec<Conditions>)> {
    use SeccompCmpOp::{Eq, MaskedEq};
    let any = Vec::new;
    let pid = u64::from(std::process::id());
    let thread = libc::CLONE_THREAD as u64;
    vec![
        // The pipes: responses on stdin, requests on stdout, the log on stderr.
        (libc::SYS_read, vec![vec![(0, Eq, 0)]]),
        (libc::SYS_readv, vec![vec![(0, Eq, 0)]]),
        (libc::SYS_write, vec![vec![(0, Eq, 1)], vec![(0, Eq, 2)]]),
        (libc::SYS_writev, vec![vec![(0, Eq, 1)], vec![(0, Eq, 2)]]),
        (libc::SYS_close, any()),
        // Memory.
        (libc::SYS_brk, any()),
        (libc::SYS_mmap, any()),
        (libc::SYS_munmap, any()),
        (libc::SYS_mremap, any()),
        (libc::SYS_mprotect, any()),
        (libc::SYS_madvise, any()),
        // Locks, time, randomness.
        (libc::SYS_futex, any()),
        (libc::SYS_clock_gettime, any()),
        (libc::SYS_clock_getres, any()),
        (libc::SYS_clock_nanosleep, any()),
        (libc::SYS_nanosleep, any()),
        (libc::SYS_gettimeofday, any()),
        (libc::SYS_sched_yield, any()),
        (libc::SYS_getrandom, any()),
        // Signals to itself only (abort raises SIGABRT with tgkill).
        (libc::SYS_rt_sigaction, any()),
        (libc::SYS_rt_sigprocmask, any()),
        (libc::SYS_rt_sigreturn, any()),
        (libc::SYS_sigaltstack, any()),
        (libc::SYS_restart_syscall, any()),
        (libc::SYS_getpid, any()),
        (libc::SYS_gettid, any()),
        (libc::SYS_tgkill, vec![vec![(0, Eq, pid)]]),
        // Threads (not processes: CLONE_THREAD must be set).
        (libc::SYS_clone, vec![vec![(0, MaskedEq(thread), thread)]]),
        // Turned into ENOSYS by the other filter (see `seccomp`), so threads use `clone`.
        (libc::SYS_clone3, any()),
        (libc::SYS_set_robust_list, any()),
        (libc::SYS_rseq, any()),
        (libc::SYS_sched_getaffinity, any()),
        // The end.
        (libc::SYS_exit, any()),
        (libc::SYS_exit_group, any()),
    ]
}

/// The filter that turns `clone3` into `ENOSYS`, and the allow-list. A filter cannot read
/// `clone3`'s flags (they are behind a pointer); with `ENOSYS` the C library falls back to
/// `clone`, whose flags the allow-list checks.
fn filters() -> Result<(BpfProgram, BpfProgram), seccompiler::BackendError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (syscall, alternatives) in allowed_syscalls() {
        let mut syscall_rules = Vec::new();
        for conditions in alternatives {
            let conditions = conditions
                .into_iter()
                .map(|(arg, op, value)| {
                    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            syscall_rules.push(SeccompRule::new(conditions)?);
        }
        rules.insert(syscall, syscall_rules);
    }
    let allow_list = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    Ok((no_clone3.try_into()?, allow_list.try_into()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_this_machine() {
        let (no_clone3, allow_list) = filters().expect("filters build");
        assert!(!no_clone3.is_empty() && !allow_list.is_empty());
    }

    #[test]
    fn nothing_that_reaches_a_secret_is_allowed() {
        let allowed: Vec<i64> = allowed_syscalls().iter().map(|(nr, _)| *nr).collect();
        for denied in [
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_open_by_handle_at,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_pidfd_open,
            libc::SYS_pidfd_getfd,
            libc::SYS_io_uring_setup,
            libc::SYS_kill,
            libc::SYS_seccomp,
            libc::SYS_landlock_restrict_self,
            libc::SYS_prctl,
        ] {
            assert!(
                !allowed.contains(&denied),
                "system call {denied} is allowed"
            );
        }
    }

    #[test]
    fn the_refusal_says_which_mechanism_is_off() {
        let off = |why: &str| Layer::Unavailable(why.into());
        let line = Unconfined(Box::new(Confinement {
            fds_closed: Layer::Active("x".into()),
            non_dumpable: Layer::Active("x".into()),
            landlock: off("no"),
            seccomp: off("no"),
        }))
        .to_string();
        assert!(line.contains("seccomp=OFF"), "{line}");
    }
}
