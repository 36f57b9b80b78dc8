//! The confinement probe: a hidden mode of the app process that checks, from inside a confined
//! app process, that no route to the DeviceSecret is open.
//!
//! The board starts it exactly as it starts an app (`--confinement-probe` on the board makes
//! every app process a probe), and [`crate::app_process::run`] confines it with the very call
//! that precedes app code; only then does the probe run in place of the app. It prints one
//! line per route to stderr, `probe route <name>: denied (...)`, `LEAK (...)` or
//! `inconclusive (...)`, and one per sanity check that must succeed (`probe check <name>: ok`:
//! the kernel greeting over the pipes, a timed wait in the kernel, the clock, a thread,
//! memory), so a probe that broke early cannot pass for a confined one. It never prints what
//! it read, only how much.
//!
//! What to try comes from the probe's settings (`ALIOT_SETTING_<APP>_PROBE_...` in the
//! board's environment, the documented override channel), since a confined process cannot
//! discover paths or processes on its own:
//! - `probe_file_<label> = PATH`: open and read the file;
//! - `probe_env_<label> = VAR`: the variable must not be in the environment;
//! - `probe_pid_<label> = PID`: `/proc/PID/{environ,cmdline,mem,maps}`, `ptrace` attach,
//!   `process_vm_readv`, `pidfd_getfd` on its descriptors;
//! - `probe_tcp_<label> = HOST:PORT`: a TCP connection (the board's emulator API, say).
//!
//! Always tried: the manifest's own secret source, `/proc/self/environ`, `/proc/self/mem`,
//! executing a program, and every inherited descriptor above stderr.

// Raw descriptors and the pidfd system calls have no safe wrapper.
#![allow(unsafe_code)]

use std::fmt::Write as _;
use std::io::{IoSliceMut, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aliot_app::Aliot;
use aliot_kernel::config::{DeviceConfig, SecretSource};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::app_process::PipeSyscalls;
use crate::confine::Confinement;

/// Highest descriptor number checked for inheritance.
const MAX_FD: i32 = 1023;
/// Descriptors of the board tried with `pidfd_getfd`.
const BOARD_FDS: i32 = 64;
/// Bytes read from anything that opens.
const READ_LIMIT: u64 = 4096;

/// The result of one route.
enum Outcome {
    /// Refused by the system (`EPERM`/`EACCES`), or nothing to find.
    Denied(String),
    /// The route reached the secret or its container.
    Leak(String),
    /// Failed for another reason (a missing file, say): the route was not really tested.
    Inconclusive(String),
}

/// One report line, in a single `write` so that lines of two apps sharing the board's stderr
/// do not interleave.
fn say(app: &str, line: &str) {
    let _ = std::io::stderr().write_all(format!("[app {app}] probe {line}\n").as_bytes());
}

/// Classify a system call error: only a refusal counts as denied.
fn refused(what: &str, e: Errno) -> Outcome {
    match e {
        Errno::EPERM | Errno::EACCES => Outcome::Denied(format!("{what}: {e}")),
        other => Outcome::Inconclusive(format!("{what}: {other}")),
    }
}

fn refused_io(what: &str, e: &std::io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(code) => refused(what, Errno::from_raw(code)),
        None => Outcome::Inconclusive(format!("{what}: {e}")),
    }
}

struct Report {
    app: String,
    routes: usize,
    leaks: usize,
    inconclusive: usize,
    checks: usize,
    failed: usize,
}

impl Report {
    fn route(&mut self, name: &str, outcome: Outcome) {
        self.routes += 1;
        let text = match outcome {
            Outcome::Denied(how) => format!("denied ({how})"),
            Outcome::Leak(what) => {
                self.leaks += 1;
                format!("LEAK ({what})")
            }
            Outcome::Inconclusive(why) => {
                self.inconclusive += 1;
                format!("inconclusive ({why})")
            }
        };
        say(&self.app, &format!("route {name}: {text}"));
    }

    fn check(&mut self, name: &str, result: Result<String, String>) {
        self.checks += 1;
        let text = match result {
            Ok(how) => format!("ok ({how})"),
            Err(why) => {
                self.failed += 1;
                format!("FAILED ({why})")
            }
        };
        say(&self.app, &format!("check {name}: {text}"));
    }
}

/// Run the probe in the (already confined) app process `app`.
pub fn run(
    config: &DeviceConfig,
    app: &str,
    settings: &[(&str, &str)],
    confinement: &Confinement,
) -> ExitCode {
    let mut report = Report {
        app: app.to_owned(),
        routes: 0,
        leaks: 0,
        inconclusive: 0,
        checks: 0,
        failed: 0,
    };
    say(app, &format!("confinement: {confinement}"));

    checks(&mut report);

    let mut names: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    names.sort();
    say(app, &format!("environment names: {}", names.join(" ")));

    match config.secret {
        SecretSource::File(path) => report.route("manifest-secret-file", read_file(path)),
        SecretSource::Env(var) => report.route("manifest-secret-env", env_var(var)),
        SecretSource::Provisioned => {}
    }
    report.route("proc-self-environ", read_file("/proc/self/environ"));
    report.route("proc-self-mem", read_file("/proc/self/mem"));
    report.route("exec", exec());
    report.route("inherited-fds", inherited_fds());

    for (key, value) in settings {
        if let Some(label) = key.strip_prefix("probe_file_") {
            report.route(&format!("file:{label}"), read_file(value));
        } else if let Some(label) = key.strip_prefix("probe_env_") {
            report.route(&format!("env:{label}"), env_var(value));
        } else if let Some(label) = key.strip_prefix("probe_tcp_") {
            report.route(&format!("tcp:{label}"), tcp(value));
        } else if let Some(label) = key.strip_prefix("probe_pid_") {
            let Ok(pid) = value.parse::<i32>() else {
                report.route(
                    &format!("pid:{label}"),
                    Outcome::Inconclusive(format!("{value:?} is not a pid")),
                );
                continue;
            };
            for file in ["environ", "cmdline", "mem", "maps"] {
                report.route(
                    &format!("pid:{label}:{file}"),
                    read_file(&format!("/proc/{pid}/{file}")),
                );
            }
            report.route(&format!("pid:{label}:ptrace"), ptrace(pid));
            report.route(
                &format!("pid:{label}:process_vm_readv"),
                process_vm_readv(pid),
            );
            report.route(&format!("pid:{label}:pidfd_getfd"), pidfd_getfd(pid));
        }
    }

    say(
        app,
        &format!(
            "done: {} routes, {} leaks, {} inconclusive; {} checks, {} failed",
            report.routes, report.leaks, report.inconclusive, report.checks, report.failed
        ),
    );
    if report.leaks == 0 && report.inconclusive == 0 && report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What an app legitimately does must still work under the confinement.
fn checks(report: &mut Report) {
    match Aliot::new(PipeSyscalls::new()) {
        Ok(mut kernel) => {
            report.check(
                "kernel-greeting",
                Ok("Hello answered over the pipes".into()),
            );
            let started = Instant::now();
            let waited = kernel.next_event(30).map_err(|e| format!("{e:?}"));
            report.check(
                "kernel-wait",
                waited.map(|event| {
                    format!(
                        "{} after {} ms",
                        if event.is_some() { "event" } else { "no event" },
                        started.elapsed().as_millis()
                    )
                }),
            );
        }
        Err(e) => report.check("kernel-greeting", Err(format!("{e:?}"))),
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    let slept = started.elapsed();
    report.check(
        "clock-and-sleep",
        if slept >= Duration::from_millis(5) {
            Ok(format!("slept {} us", slept.as_micros()))
        } else {
            Err(format!("slept only {} us", slept.as_micros()))
        },
    );
    let thread = std::thread::Builder::new()
        .name("probe".into())
        .spawn(|| (1..=10u32).sum::<u32>())
        .map_err(|e| format!("spawn: {e}"))
        .and_then(|handle| handle.join().map_err(|_| "the thread panicked".to_owned()));
    report.check(
        "thread",
        match thread {
            Ok(55) => Ok("spawned and joined".into()),
            Ok(other) => Err(format!("wrong result {other}")),
            Err(e) => Err(e),
        },
    );
    let block = vec![1u8; 32 << 20];
    let sum: usize = block.iter().step_by(4096).map(|b| usize::from(*b)).sum();
    report.check(
        "memory",
        if sum == block.len() / 4096 {
            Ok("32 MiB allocated".into())
        } else {
            Err("bad memory".into())
        },
    );
}

fn read_file(path: &str) -> Outcome {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return refused_io("open", &e),
    };
    let mut bytes = Vec::new();
    match Read::by_ref(&mut file)
        .take(READ_LIMIT)
        .read_to_end(&mut bytes)
    {
        Ok(n) => Outcome::Leak(format!("opened and read {n} bytes")),
        Err(e) => Outcome::Leak(format!("opened (read failed: {e})")),
    }
}

fn env_var(var: &str) -> Outcome {
    match std::env::var_os(var) {
        Some(value) => Outcome::Leak(format!("{var} is set ({} bytes)", value.len())),
        None => Outcome::Denied(format!("{var} is not in the environment")),
    }
}

fn exec() -> Outcome {
    match std::process::Command::new("/bin/cat")
        .arg("/proc/self/environ")
        .output()
    {
        Ok(out) => Outcome::Leak(format!(
            "ran /bin/cat ({} bytes of output)",
            out.stdout.len()
        )),
        Err(e) => refused_io("spawn /bin/cat", &e),
    }
}

fn inherited_fds() -> Outcome {
    let mut open = String::new();
    let mut buf = [0u8; 64];
    for fd in 3..=MAX_FD {
        // SAFETY: `buf` is valid for its length; reading a descriptor this process may not
        // own is the point of the probe, and it is closed right after.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let read_errno = Errno::last();
        // SAFETY: closing a descriptor that nothing in this process uses (the app runtime
        // holds only 0, 1 and 2); EBADF when it was not open.
        let closed = unsafe { libc::close(fd) } == 0;
        if closed || n >= 0 {
            let what = if n >= 0 {
                format!("read {n} bytes")
            } else {
                format!("read: {read_errno}")
            };
            let _ = write!(open, " fd {fd} open ({what});");
        }
    }
    if open.is_empty() {
        Outcome::Denied(format!("no descriptor open in 3..={MAX_FD}"))
    } else {
        Outcome::Leak(open.trim().to_owned())
    }
}

fn tcp(addr: &str) -> Outcome {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return Outcome::Inconclusive(format!("{addr:?} is not HOST:PORT"));
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => Outcome::Leak(format!("connected to {addr}")),
        Err(e) => refused_io("connect", &e),
    }
}

fn ptrace(pid: i32) -> Outcome {
    let pid = Pid::from_raw(pid);
    match nix::sys::ptrace::attach(pid) {
        Ok(()) => {
            let _ = nix::sys::ptrace::detach(pid, None);
            Outcome::Leak("attached".into())
        }
        Err(e) => refused("PTRACE_ATTACH", e),
    }
}

fn process_vm_readv(pid: i32) -> Outcome {
    let mut buf = [0u8; 16];
    // Any address will do: a refusal comes before the address is looked at, and EFAULT
    // would mean the permission check passed.
    let remote = nix::sys::uio::RemoteIoVec {
        base: buf.as_ptr() as usize,
        len: buf.len(),
    };
    match nix::sys::uio::process_vm_readv(
        Pid::from_raw(pid),
        &mut [IoSliceMut::new(&mut buf)],
        &[remote],
    ) {
        Ok(n) => Outcome::Leak(format!("read {n} bytes of its memory")),
        Err(Errno::EFAULT) => Outcome::Leak(
            "permitted (EFAULT only because the probe cannot know a mapped address)".into(),
        ),
        Err(e) => refused("process_vm_readv", e),
    }
}

fn pidfd_getfd(pid: i32) -> Outcome {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return refused("pidfd_open", Errno::last());
    }
    // The permission check comes before the descriptor lookup, so the first error tells.
    let mut first: Option<Errno> = None;
    let mut got = Vec::new();
    for fd in 0..BOARD_FDS {
        // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags, and returns a
        // new descriptor or -1.
        let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
        if copy >= 0 {
            got.push(fd);
            // SAFETY: `copy` is the descriptor pidfd_getfd just created for this process.
            unsafe { libc::close(copy as i32) };
        } else {
            first = first.or(Some(Errno::last()));
        }
    }
    // SAFETY: `pidfd` is the descriptor pidfd_open created above.
    unsafe { libc::close(pidfd as i32) };
    if got.is_empty() {
        refused("pidfd_getfd", first.unwrap_or(Errno::UnknownErrno))
    } else {
        Outcome::Leak(format!("copied the board's descriptors {got:?}"))
    }
}
