//! Instruction counts (valgrind's callgrind), which repeat on a shared machine where wall time
//! does not. The workloads run in a child process, this same executable with the hidden
//! `workload` command (see `main.rs`), under callgrind; the counts come from its output files.
//!
//! * Syscall round trips (row 1.1): counted only inside the round-trip function
//!   (`--toggle-collect`) over `n1` and `n2` calls; the figure is the difference over
//!   `n2 - n1`, so the setup's calls of the same functions cancel out.
//! * Per publish (row 1.4): counted between `measure_start` and `measure_end`
//!   (`--zero-before` / `--dump-before`), which the capsule calls on its kernel thread only
//!   (`--separate-threads=yes`: the app's thread is left out; the emulator runs in this
//!   process, outside callgrind); rumqttc's window is its own publish loop. Thread
//!   interleaving moves the capsule's count by a few per cent: the median of `reps` runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::syscall::Case;

/// Why instruction counts cannot be taken here, if they cannot.
pub fn unavailable() -> Option<String> {
    let ok = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (!ok).then(|| "valgrind not found".to_owned())
}

/// The total of a callgrind output file's `summary:` or `totals:` line.
pub fn total(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// Where the output files go.
pub struct Callgrind {
    out: PathBuf,
    exe: PathBuf,
    runs: u32,
}

impl Callgrind {
    /// Output files in `out` (emptied first); the workloads are this executable's.
    pub fn new(out: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(out);
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("my own executable: {e}"))?;
        Ok(Self {
            out: out.to_path_buf(),
            exe,
            runs: 0,
        })
    }

    /// Runs `workload` under callgrind with `options`; the output file's path prefix.
    fn run(&mut self, options: &[String], workload: &[String]) -> Result<PathBuf, String> {
        self.runs += 1;
        let file = self.out.join(format!("run-{}.out", self.runs));
        let log = self.out.join(format!("run-{}.log", self.runs));
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(format!("--log-file={}", log.display()))
            .args(options)
            .arg(&self.exe)
            .arg("workload")
            .args(workload)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("valgrind: {e}"))?;
        if !status.success() {
            return Err(format!(
                "valgrind {} exited {status}; see {}",
                workload.join(" "),
                log.display()
            ));
        }
        Ok(file)
    }

    /// Instructions of one call of `case` (see the module's doc).
    pub fn syscall(&mut self, case: Case, n1: u32, n2: u32) -> Result<f64, String> {
        let mut counts = Vec::new();
        for n in [n1, n2] {
            let file = self.run(
                &[
                    "--collect-atstart=no".into(),
                    format!("--toggle-collect=*::{}", case.name()),
                ],
                &["syscall".into(), case.name().into(), n.to_string()],
            )?;
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            counts.push(total(&text).ok_or_else(|| format!("no total in {}", file.display()))?);
        }
        let (a, b) = (counts[0] as f64, counts[1] as f64);
        Ok((b - a) / f64::from(n2 - n1))
    }

    /// Instructions per publish of `side` (`capsule` or `rumqttc`) over `n` publishes against
    /// the emulator at `port`; one run.
    pub fn per_publish(&mut self, side: &str, port: u16, n: u32, v5: bool) -> Result<f64, String> {
        let mut options = vec![
            "--zero-before=*::measure_start".to_owned(),
            "--dump-before=*::measure_end".to_owned(),
        ];
        if side == "capsule" {
            options.push("--separate-threads=yes".into());
        }
        let file = self.run(
            &options,
            &[
                side.into(),
                port.to_string(),
                n.to_string(),
                if v5 { "v5" } else { "v311" }.into(),
            ],
        )?;
        // The one dump --dump-before made: `<file>.1`, or `<file>.1-<thread>` per thread.
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let dumps: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map_err(|e| format!("{}: {e}", self.out.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{name}.1")))
            })
            .collect();
        let [dump] = dumps.as_slice() else {
            return Err(format!(
                "expected one dump of {name}, found {}",
                dumps.len()
            ));
        };
        let text = std::fs::read_to_string(dump).map_err(|e| format!("{}: {e}", dump.display()))?;
        let ir = total(&text).ok_or_else(|| format!("no total in {}", dump.display()))?;
        Ok(ir as f64 / f64::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_either_line() {
        let out = "version: 1\ncmd: x\nevents: Ir\nfn=(1) main\n5 10\nsummary: 123456\n";
        assert_eq!(total(out), Some(123_456));
        assert_eq!(total("events: Ir\ntotals: 42\n"), Some(42));
        assert_eq!(total("events: Ir\n"), None);
    }
}
