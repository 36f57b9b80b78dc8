//! Row 1.4: QoS 1 publishes app → emulator on loopback through the host board's capsule (the
//! app on its own thread over the syscall channel, the kernel's runner with the host
//! board's network), against rumqttc publishing the same messages straight to the same
//! emulator in the same run: the round-trip time of one publish waiting for its result, and
//! the throughput with at most [`WINDOW`] unacknowledged.

use std::time::{Duration, Instant};

use aliot_kernel::config::MqttVersion;

use crate::baseline::{self, Work};
use crate::capsule::{Capsule, Start};
use crate::table::{Outcome, Row, Value};

/// Publishes in flight at once in the throughput figure (the kernel's in-flight table holds
/// 16; rumqttc gets the same limit).
pub const WINDOW: u16 = 16;
const LIMIT: Duration = Duration::from_secs(120);

/// (mean µs per sequential round trip, messages per second windowed) through the capsule.
fn capsule(port: u16, version: MqttVersion, n: u32) -> Result<(f64, f64), String> {
    let mut c = Capsule::start(Start {
        mqtt_port: port,
        version,
        count: false,
        prepare: None,
    })?;
    c.wait_connected(20_000)?;
    let start = Instant::now();
    for _ in 0..n {
        c.publish_and_wait(10_000)?;
    }
    let rtt = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let start = Instant::now();
    c.publish_windowed(n, u32::from(WINDOW), 10_000)?;
    Ok((rtt, f64::from(n) / start.elapsed().as_secs_f64()))
}

/// The same through rumqttc.
fn rumqttc(port: u16, version: MqttVersion, n: u32) -> Result<(f64, f64), String> {
    let seq = baseline::run(port, version, Work::Sequential(n), LIMIT)?;
    let win = baseline::run(port, version, Work::Windowed(n, WINDOW), LIMIT)?;
    Ok((
        seq.work.as_secs_f64() * 1e6 / f64::from(n),
        f64::from(n) / win.work.as_secs_f64(),
    ))
}

/// The two rows for `version`.
pub fn rows(port: u16, version: MqttVersion, n: u32) -> Vec<Row> {
    let label = match version {
        MqttVersion::V311 => "3.1.1",
        MqttVersion::V5 => "5",
    };
    let rtt_what = format!("QoS 1 round trip app → emulator, MQTT {label}");
    let tput_what = format!("QoS 1 throughput, {WINDOW} in flight, MQTT {label}");
    match capsule(port, version, n).and_then(|c| Ok((c, rumqttc(port, version, n)?))) {
        Ok(((rtt, tput), (base_rtt, base_tput))) => vec![
            Row::measured(
                "1.4",
                rtt_what,
                Value::new(rtt, "µs"),
                Value::new(base_rtt, "µs"),
                "rumqttc",
            )
            .with_note(format!(
                "MQTT {label}: {n} publishes of 64 B each way, loopback, plain TCP; a capsule round trip is two syscalls (publish, then the wait that returns the result)"
            )),
            Row::measured(
                "1.4",
                tput_what,
                Value::new(tput, "msg/s"),
                Value::new(base_tput, "msg/s"),
                "rumqttc",
            ),
        ],
        Err(e) => vec![Row::other("1.4", rtt_what, Outcome::Failed(e))],
    }
}
