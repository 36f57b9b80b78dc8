//! `aliot-qemu`: one command that runs the QEMU `mps2-an505` board against the built-in
//! Alibaba IoT emulator, the QEMU board's network going through the UART bridge.
//!
//! Why a host program: QEMU has no modem, so the board's `Network` speaks the
//! `aliot-uart-bridge` protocol on its first UART, which QEMU connects to a socket here;
//! [`crate::bridge::relay`] opens the connections with the host board's own network, with
//! the same redirects to the emulator as the host board's supervisor makes (the manifest's
//! MQTT endpoint, and its HTTPS registration endpoint when the emulator serves it) and the same
//! TLS trust (the emulator's CA), so the device's TLS is terminated here.
//!
//! The manifest is the one compiled into this binary; the QEMU images are built from the same
//! `ALIOT_MANIFEST` (passed through to their builds), so both agree on the endpoint and topics.
//!
//! The verdict: QEMU's exit status (the board's, through semihosting) and, with
//! `--expect-publishes N`, at least N publishes on the manifest's `update` topic received by
//! the emulator. QEMU is killed at the time limit, when this program is stopped (SIGINT,
//! SIGTERM) or dies (parent-death signal).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use aliot_emulator::{Emulator, EmulatorConfig, LoginRecord, Uplink};
use aliot_kernel::config::DeviceConfig;
use clap::Parser;
use tokio::net::TcpListener;

use crate::bridge::{self, RelayOptions};
use crate::net::{self, HostNetwork};

/// Where the image builder writes the QEMU image and its map (relative to the repository).
const IMAGE_DIR: &str = "target/qemu-image";
/// The one image QEMU boots (the builder's Intel HEX: kernel and apps, vector table included).
const IMAGE_FILE: &str = "aliot-qemu-an505.hex";
/// How long QEMU may take to connect its UART to the bridge.
const ACCEPT_DEADLINE: Duration = Duration::from_secs(30);
/// Longest payload excerpt in the summary, in characters.
const EXCERPT: usize = 60;

/// Command line of `aliot-qemu`.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Run the QEMU mps2-an505 board against the built-in Alibaba IoT emulator, its network through the UART bridge"
)]
struct QemuArgs {
    /// Do not build the image first (aliot-image: the kernel and each app built for
    /// thumbv8m.main-none-eabihf, linked at their manifest regions, one Intel HEX and a map in
    /// target/qemu-image); boot the one already there.
    #[arg(long)]
    no_build: bool,
    /// Boot this Intel HEX (or ELF) image instead of target/qemu-image's.
    #[arg(long, value_name = "FILE", conflicts_with = "no_build")]
    image: Option<PathBuf>,
    /// Kill QEMU and fail after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    timeout_secs: u64,
    /// Fail unless at least N publishes on the manifest's `update` topic reached the emulator.
    #[arg(long, value_name = "N")]
    expect_publishes: Option<usize>,
    /// With --expect-publishes N: the update payloads that start with PREFIX must be PREFIX1
    /// to PREFIXN, each once, in that order (publish_test's numbered payload, `{n}`), so none
    /// was lost, repeated or reordered on the way.
    #[arg(long, value_name = "PREFIX", requires = "expect_publishes")]
    expect_numbered: Option<String>,
    /// CA certificate (PEM) to trust for TLS instead of the manifest's choice.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The QEMU program.
    #[arg(long, value_name = "PROGRAM", default_value = "qemu-system-arm")]
    qemu: PathBuf,
}

/// The `aliot-qemu` binary's entry point, with the manifest compiled in.
pub fn main() -> ExitCode {
    crate::init_logging(None);
    let args = QemuArgs::parse();
    let (passed, line) = match run(&crate::generated::DEVICE, &args) {
        Ok(outcome) => outcome,
        Err(message) => (false, message),
    };
    println!(
        "aliot-qemu: {} {line}",
        if passed { "PASS:" } else { "FAIL:" }
    );
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `boards/`.
fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The repository's root.
fn repository() -> PathBuf {
    boards_dir()
        .parent()
        .map_or_else(|| PathBuf::from("../.."), Path::to_path_buf)
}

/// The image to boot: `given`, or the image builder's, built first unless `no_build`.
fn image(given: Option<&Path>, no_build: bool) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let out = repository().join(IMAGE_DIR);
    if !no_build {
        let manifest = aliot_manifest::manifest_path_from_env();
        log::info!("building the image for {}", manifest.display());
        let built = aliot_image::build_qemu_image(&manifest, &out).map_err(|e| e.to_string())?;
        print!("{}", built.map_text);
        return Ok(built.hex);
    }
    let path = out.join(IMAGE_FILE);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no image at {} (build it with `cargo run -p aliot-image -- --out {IMAGE_DIR}`, or drop --no-build)",
            path.display()
        ))
    }
}

/// The emulator (when the manifest asks for it) and the network the bridge dials with,
/// redirected as the host board's supervisor redirects its firmware.
fn network(
    config: &DeviceConfig,
    ca: Option<&Path>,
) -> Result<(Option<Emulator>, HostNetwork), String> {
    if !config.endpoint.emulator {
        let ca = ca
            .map(Path::to_path_buf)
            .or(config.tls.ca_file.map(PathBuf::from));
        let tls = net::tls_config(ca.as_deref())?;
        return Ok((None, HostNetwork::new(tls, None)));
    }
    let emulator = Emulator::start(EmulatorConfig::demo())
        .map_err(|e| format!("cannot start the built-in emulator: {e}"))?;
    log::info!(
        "built-in Alibaba IoT emulator: MQTT {} TLS {} HTTP {} (CA {})",
        emulator.mqtt_addr(),
        emulator.tls_addr(),
        emulator.http_addr(),
        emulator.ca_pem_path().display()
    );
    let network = emulator_network(config, &emulator, ca)?;
    Ok((Some(emulator), network))
}

/// The network redirected to `emulator` (see [`crate::supervisor`]'s `redirect_args`): the
/// manifest's MQTT endpoint to its TLS or plain port as the manifest's `tls.enabled` says, the
/// HTTPS registration endpoint to its HTTPS port when the manifest says the emulator serves
/// it, by the name `localhost` (the one its certificate names); anything else (OTA downloads,
/// whose URLs name the emulator already) is dialled as asked. Trusts `ca`, else the
/// manifest's CA file, else the emulator's CA.
pub fn emulator_network(
    config: &DeviceConfig,
    emulator: &Emulator,
    ca: Option<&Path>,
) -> Result<HostNetwork, String> {
    let ca = ca
        .map(Path::to_path_buf)
        .or(config.tls.ca_file.map(PathBuf::from))
        .unwrap_or_else(|| emulator.ca_pem_path().to_path_buf());
    let mut network = HostNetwork::new(net::tls_config(Some(&ca))?, None);
    let mqtt = if config.tls.enabled {
        emulator.tls_addr()
    } else {
        emulator.mqtt_addr()
    };
    let endpoint = config.endpoint;
    network.redirect(
        (endpoint.host.to_owned(), endpoint.port),
        ("localhost".to_owned(), mqtt.port()),
    );
    let https = config.registration.https;
    if https.emulator {
        network.redirect(
            (https.host.to_owned(), https.port),
            ("localhost".to_owned(), emulator.https_addr().port()),
        );
    }
    Ok(network)
}

/// How the QEMU run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// QEMU exited with this status (the board's verdict).
    Exited(ExitStatus),
    /// QEMU exited before connecting its UART.
    ExitedUnconnected(ExitStatus),
    /// QEMU did not connect its UART in time (killed).
    NeverConnected,
    /// The time limit passed (QEMU killed).
    TimedOut(Duration),
    /// SIGINT or SIGTERM (QEMU killed).
    Interrupted,
}

/// Builds, starts everything, waits for the verdict; `(passed, one line)`.
fn run(config: &DeviceConfig, args: &QemuArgs) -> Result<(bool, String), String> {
    let image = image(args.image.as_deref(), args.no_build)?;
    let (emulator, network) = network(config, args.ca.as_deref())?;
    let limit = Duration::from_secs(args.timeout_secs);
    let (runtime, mut signals) = crate::StopSignals::with_runtime()?;
    let ran = runtime.block_on(run_qemu(&args.qemu, &image, network, limit, &mut signals))?;
    drop(runtime);
    let update = config
        .topics
        .iter()
        .find(|t| t.name == "update")
        .map(|t| t.topic);
    let summary = emulator.as_ref().map(|e| {
        summarize(
            &e.uplinks(config.product_key, config.device_name),
            &e.logins(config.product_key, config.device_name),
            update,
        )
    });
    match &summary {
        Some(s) => print!("{}", s.report()),
        None => println!("no built-in emulator (the manifest names a real endpoint): no summary"),
    }
    drop(emulator);
    Ok(verdict(
        &ran,
        summary.as_ref(),
        args.expect_publishes,
        args.expect_numbered.as_deref(),
        update,
    ))
}

/// The QEMU command line: the one image through the generic loader (no `-kernel`: the vector
/// table is in the image), UART0 (`-serial` #0) a client socket to `port`, the monitor off,
/// semihosting to QEMU's own stdout/stderr.
pub fn qemu_args(image: &Path, port: u16) -> Vec<OsString> {
    let mut loader = OsString::from("loader,file=");
    loader.push(image);
    let mut out: Vec<OsString> = [
        "-machine",
        "mps2-an505",
        "-cpu",
        "cortex-m33",
        "-nographic",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-serial",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    out.push(format!("tcp:127.0.0.1:{port},nodelay=on").into());
    out.extend(["-device".into(), loader]);
    out
}

/// Starts QEMU, relays its UART until it exits (or the limit, or a signal).
async fn run_qemu(
    qemu: &Path,
    image: &Path,
    network: HostNetwork,
    limit: Duration,
    signals: &mut crate::StopSignals,
) -> Result<Ran, String> {
    let deadline = tokio::time::Instant::now() + limit;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot listen for QEMU's UART: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for QEMU's UART: {e}"))?
        .port();
    let mut command = tokio::process::Command::new(qemu);
    command
        .args(qemu_args(image, port))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    crate::supervisor::die_with_parent(&mut command);
    log::info!("starting {} (UART0 on 127.0.0.1:{port})", qemu.display());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let accept_by = deadline.min(tokio::time::Instant::now() + ACCEPT_DEADLINE);
    let line = tokio::select! {
        accepted = tokio::time::timeout_at(accept_by, listener.accept()) => match accepted {
            Ok(Ok((line, _))) => line,
            Ok(Err(e)) => {
                let _ = child.kill().await;
                return Err(format!("accepting QEMU's UART: {e}"));
            }
            Err(_) => {
                let _ = child.kill().await;
                return Ok(Ran::NeverConnected);
            }
        },
        status = child.wait() => {
            let status = status.map_err(|e| format!("cannot wait for QEMU: {e}"))?;
            return Ok(Ran::ExitedUnconnected(status));
        }
        () = signals.received() => {
            let _ = child.kill().await;
            return Ok(Ran::Interrupted);
        }
    };
    drop(listener);
    let _ = line.set_nodelay(true);
    log::info!("QEMU's UART connected: relaying");
    let relay = tokio::spawn(bridge::relay(line, network, RelayOptions::default()));
    let ran = tokio::select! {
        status = child.wait() => {
            Ran::Exited(status.map_err(|e| format!("cannot wait for QEMU: {e}"))?)
        }
        () = tokio::time::sleep_until(deadline) => {
            let _ = child.kill().await;
            Ran::TimedOut(limit)
        }
        () = signals.received() => {
            let _ = child.kill().await;
            Ran::Interrupted
        }
    };
    // QEMU is gone, so is its socket: the relay ends (bounded, in case it does not).
    match tokio::time::timeout(Duration::from_secs(5), relay).await {
        Ok(Ok(Err(e))) => log::warn!("bridge: the line failed: {e}"),
        Ok(Err(e)) => log::warn!("bridge: {e}"),
        Ok(Ok(Ok(_))) | Err(_) => {}
    }
    Ok(ran)
}

/// What the device sent on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    /// Topic name.
    pub topic: String,
    /// Publishes received (DUP re-sends and refused ones included).
    pub count: usize,
    /// Of which the platform refused.
    pub refused: usize,
    /// First payload.
    pub first: Vec<u8>,
    /// Last payload.
    pub last: Vec<u8>,
}

/// What the emulator saw from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Login attempts.
    pub logins: usize,
    /// At least one was accepted.
    pub logged_in: bool,
    /// Per topic, in order of first arrival.
    pub topics: Vec<TopicSummary>,
    /// The `update` topic, when the manifest names one.
    pub update_topic: Option<String>,
    /// Publishes on it that the platform took (not refused, not DUP re-sends).
    pub update_publishes: usize,
    /// Those publishes' payloads, in order of arrival.
    pub update_payloads: Vec<Vec<u8>>,
}

impl Summary {
    /// The numbers `n` of the update payloads that read `{prefix}{n}`, in order of arrival
    /// (a payload with the prefix and no number counts as 0).
    pub fn numbered(&self, prefix: &str) -> Vec<u64> {
        self.update_payloads
            .iter()
            .filter_map(|p| p.strip_prefix(prefix.as_bytes()))
            .map(|n| {
                std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// Summarises the device's `uplinks` and `logins` as the emulator recorded them.
pub fn summarize(uplinks: &[Uplink], logins: &[LoginRecord], update: Option<&str>) -> Summary {
    let mut topics: Vec<TopicSummary> = Vec::new();
    for u in uplinks {
        let refused = usize::from(u.refused.is_some());
        match topics.iter_mut().find(|t| t.topic == u.topic) {
            Some(t) => {
                t.count += 1;
                t.refused += refused;
                t.last.clone_from(&u.payload);
            }
            None => topics.push(TopicSummary {
                topic: u.topic.clone(),
                count: 1,
                refused,
                first: u.payload.clone(),
                last: u.payload.clone(),
            }),
        }
    }
    let update_payloads: Vec<Vec<u8>> = update.map_or_else(Vec::new, |topic| {
        uplinks
            .iter()
            .filter(|u| u.topic == topic && u.refused.is_none() && !u.dup)
            .map(|u| u.payload.clone())
            .collect()
    });
    Summary {
        logins: logins.len(),
        logged_in: logins.iter().any(|l| l.accepted),
        topics,
        update_topic: update.map(str::to_owned),
        update_publishes: update_payloads.len(),
        update_payloads,
    }
}

/// A payload for a log line: text, quoted and escaped, cut at [`EXCERPT`] characters.
fn excerpt(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let cut: String = text.chars().take(EXCERPT).collect();
    let more = if cut.len() < text.len() { "..." } else { "" };
    format!("{cut:?}{more} ({} bytes)", payload.len())
}

impl Summary {
    /// The summary's lines.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "emulator: {} login attempt(s), device {}",
            self.logins,
            if self.logged_in {
                "logged in"
            } else {
                "never logged in"
            }
        );
        if self.topics.is_empty() {
            let _ = writeln!(out, "emulator: no publishes from the device");
        }
        for t in &self.topics {
            let refused = if t.refused > 0 {
                format!(", {} refused", t.refused)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "emulator: {}: {} publish(es){refused}; first {}; last {}",
                t.topic,
                t.count,
                excerpt(&t.first),
                excerpt(&t.last)
            );
        }
        out
    }
}

/// The run's verdict and its one line: passed only when QEMU exited 0 and, with `expect`,
/// at least that many publishes on the `update` topic reached the emulator (and, with
/// `numbered`, exactly `{numbered}1` to `{numbered}{expect}` among them, in order).
pub fn verdict(
    ran: &Ran,
    summary: Option<&Summary>,
    expect: Option<usize>,
    numbered: Option<&str>,
    update: Option<&str>,
) -> (bool, String) {
    let (mut passed, mut line) = match ran {
        Ran::Exited(status) if status.success() => (true, "QEMU exited 0".to_owned()),
        Ran::Exited(status) => (false, format!("QEMU {status}")),
        Ran::ExitedUnconnected(status) => (
            false,
            format!("QEMU {status} before connecting its UART to the bridge"),
        ),
        Ran::NeverConnected => (
            false,
            format!("QEMU did not connect its UART within {ACCEPT_DEADLINE:?} (killed)"),
        ),
        Ran::TimedOut(limit) => (
            false,
            format!("QEMU still running after {}s (killed)", limit.as_secs()),
        ),
        Ran::Interrupted => (false, "interrupted (QEMU killed)".to_owned()),
    };
    if let Some(want) = expect {
        let _ = match (summary, update) {
            (Some(s), Some(topic)) => {
                passed &= s.update_publishes >= want;
                let _ = write!(
                    line,
                    "; {} publish(es) on {topic} (expected at least {want})",
                    s.update_publishes
                );
                match numbered {
                    None => Ok(()),
                    Some(prefix) => {
                        let got = s.numbered(prefix);
                        let wanted: Vec<u64> = (1..=want as u64).collect();
                        passed &= got == wanted;
                        if got == wanted {
                            write!(line, "; {prefix}1..{want} each once, in order")
                        } else {
                            write!(line, "; {prefix}N arrived as {got:?}, expected 1..={want}")
                        }
                    }
                }
            }
            (None, _) => {
                passed = false;
                write!(
                    line,
                    "; --expect-publishes {want} needs the built-in emulator"
                )
            }
            (_, None) => {
                passed = false;
                write!(line, "; the manifest names no `update` topic to count")
            }
        };
    }
    (passed, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::time::SystemTime;

    const UPDATE: &str = "/pk/dn/user/update";

    fn up(topic: &str, payload: &[u8], refused: bool, dup: bool) -> Uplink {
        Uplink {
            topic: topic.to_owned(),
            qos: 1,
            payload: payload.to_vec(),
            at: SystemTime::UNIX_EPOCH,
            refused: refused.then(|| "no".to_owned()),
            dup,
            ack_held: false,
        }
    }

    fn login(accepted: bool) -> LoginRecord {
        LoginRecord {
            at: SystemTime::UNIX_EPOCH,
            accepted,
            reason: String::new(),
            mqtt_version: 4,
            tls: true,
            client_id: String::new(),
            keep_alive: 300,
        }
    }

    fn exited(code: i32) -> Ran {
        Ran::Exited(ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn the_summary_counts_per_topic_and_only_accepted_first_sends_on_update() {
        let ups = [
            up(UPDATE, b"one", false, false),
            up("/pk/dn/user/other", b"x", true, false),
            up(UPDATE, b"one", false, true),
            up(UPDATE, b"two", false, false),
            up(UPDATE, b"bad", true, false),
        ];
        let s = summarize(&ups, &[login(false), login(true)], Some(UPDATE));
        assert!(s.logged_in);
        assert_eq!(s.logins, 2);
        assert_eq!(s.update_publishes, 2);
        assert_eq!(s.topics.len(), 2);
        assert_eq!(s.topics[0].count, 4);
        assert_eq!(s.topics[0].refused, 1);
        assert_eq!(s.topics[0].first, b"one");
        assert_eq!(s.topics[0].last, b"bad");
        assert_eq!(s.topics[1].refused, 1);
        let report = s.report();
        assert!(report.contains("device logged in"), "{report}");
        assert!(
            report.contains("/pk/dn/user/update: 4 publish(es), 1 refused"),
            "{report}"
        );
        let none = summarize(&[], &[login(false)], Some(UPDATE));
        assert!(!none.logged_in);
        assert!(none.report().contains("never logged in"));
    }

    #[test]
    fn the_verdict_needs_exit_0_and_the_expected_publishes() {
        let s = summarize(&[up(UPDATE, b"a", false, false)], &[], Some(UPDATE));
        assert!(verdict(&exited(0), Some(&s), None, None, Some(UPDATE)).0);
        assert!(verdict(&exited(0), Some(&s), Some(1), None, Some(UPDATE)).0);
        let (passed, line) = verdict(&exited(0), Some(&s), Some(2), None, Some(UPDATE));
        assert!(!passed);
        assert!(line.contains("1 publish(es)"), "{line}");
        assert!(line.contains("at least 2"), "{line}");
        assert!(!verdict(&exited(1), Some(&s), Some(1), None, Some(UPDATE)).0);
        assert!(!verdict(&exited(0), None, Some(1), None, Some(UPDATE)).0);
        assert!(!verdict(&exited(0), Some(&s), Some(1), None, None).0);
        let limit = Ran::TimedOut(Duration::from_secs(3));
        let (passed, line) = verdict(&limit, Some(&s), None, None, Some(UPDATE));
        assert!(!passed);
        assert!(line.contains("after 3s"), "{line}");
        assert!(!verdict(&Ran::Interrupted, Some(&s), None, None, Some(UPDATE)).0);
        assert!(!verdict(&Ran::NeverConnected, Some(&s), None, None, Some(UPDATE)).0);
    }

    #[test]
    fn numbered_payloads_must_be_one_to_n_once_in_order() {
        let ups = |ns: &[&str]| {
            let ups: Vec<Uplink> = ns
                .iter()
                .map(|n| up(UPDATE, format!("q_{n}").as_bytes(), false, false))
                .chain([up(UPDATE, b"hello", false, false)])
                .collect();
            summarize(&ups, &[], Some(UPDATE))
        };
        let ok = ups(&["1", "2", "3"]);
        assert_eq!(ok.numbered("q_"), [1, 2, 3]);
        let (passed, line) = verdict(&exited(0), Some(&ok), Some(3), Some("q_"), Some(UPDATE));
        assert!(passed, "{line}");
        for bad in [
            &["1", "3"][..],
            &["1", "2", "2", "3"],
            &["2", "1", "3"],
            &["1", "x", "3"],
        ] {
            let s = ups(bad);
            let (passed, line) = verdict(&exited(0), Some(&s), Some(3), Some("q_"), Some(UPDATE));
            assert!(!passed, "{bad:?} passed: {line}");
        }
    }

    #[test]
    fn excerpts_are_quoted_and_cut() {
        assert_eq!(excerpt(b"hi\n"), "\"hi\\n\" (3 bytes)");
        let long = excerpt(&[b'a'; 100]);
        assert_eq!(long, format!("{:?}... (100 bytes)", "a".repeat(EXCERPT)));
        assert_eq!(excerpt(&[0xFF]), "\"\u{FFFD}\" (1 bytes)");
    }

    #[test]
    fn the_endpoints_go_to_the_emulator_as_on_the_host_board() {
        use aliot_kernel::board::Network;
        let emulator = Emulator::start(EmulatorConfig::demo()).unwrap();
        let mut config = crate::generated::DEVICE;
        config.registration.https = aliot_kernel::config::Endpoint {
            host: "iot-auth.example.invalid",
            port: 443,
            emulator: true,
        };
        let (host, port) = (config.endpoint.host, config.endpoint.port);
        for tls in [true, false] {
            config.tls.enabled = tls;
            let network = emulator_network(&config, &emulator, None).unwrap();
            let mqtt = if tls {
                emulator.tls_addr()
            } else {
                emulator.mqtt_addr()
            };
            let want = format!("localhost:{}", mqtt.port());
            assert_eq!(network.describe(host, port).to_string(), want);
            let https = format!("localhost:{}", emulator.https_addr().port());
            let got = network
                .describe("iot-auth.example.invalid", 443)
                .to_string();
            assert_eq!(got, https);
            // Anything else (an OTA URL) is dialled as asked.
            let other = network.describe("localhost", 1234).to_string();
            assert_eq!(other, "localhost:1234");
        }
    }

    #[test]
    fn uart0_is_the_socket_and_the_one_image_is_loaded() {
        let args = qemu_args(Path::new("/i.hex"), 4242);
        let args: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].as_str()
        };
        assert_eq!(at("-serial"), "tcp:127.0.0.1:4242,nodelay=on");
        assert_eq!(at("-monitor"), "none");
        assert_eq!(at("-device"), "loader,file=/i.hex");
        assert!(!args.iter().any(|a| a == "-kernel"), "{args:?}");
        assert_eq!(args.iter().filter(|a| *a == "-serial").count(), 1);
    }
}
