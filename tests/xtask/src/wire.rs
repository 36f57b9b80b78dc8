//! Row 1.2: what one QoS 1 publish of the 64-byte message costs on the wire, against the MQTT
//! minimum for that topic and payload ([`crate::mqtt`]): bytes of the PUBLISH the capsule
//! writes and the transport writes it takes, bytes of the PUBACK it reads; for 3.1.1, 5, and
//! 5 with a topic alias when the broker grants one (its CONNACK's Topic Alias Maximum).

use std::time::Duration;

use aliot_kernel::config::MqttVersion;

use crate::capsule::{Capsule, PAYLOAD, Start, TOPIC};
use crate::mqtt::{MIN_PUBACK, Version, kind, min_publish};
use crate::table::{Outcome, Row, Value};

/// Averages over the measured publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireCost {
    /// Bytes of each PUBLISH written.
    pub publish_bytes: f64,
    /// Transport writes each PUBLISH took.
    pub publish_writes: f64,
    /// Bytes of each PUBACK read.
    pub puback_bytes: f64,
    /// Packets other than PUBLISH written in the window (none expected).
    pub other_sent: usize,
}

/// `n` publishes through a capsule logging its wire, after `warmup` unmeasured ones.
pub fn measure(mqtt_port: u16, version: MqttVersion, n: u32) -> Result<WireCost, String> {
    let mut capsule = Capsule::start(Start {
        mqtt_port,
        version,
        count: true,
        prepare: None,
    })?;
    capsule.wait_connected(20_000)?;
    for _ in 0..3 {
        capsule.publish_and_wait(10_000)?;
    }
    let (sent0, received0) = capsule.wire.with(|w| (w.sent.len(), w.received.len()));
    for _ in 0..n {
        capsule.publish_and_wait(10_000)?;
    }
    capsule.wire.with(|w| {
        let sent = w.sent.get(sent0..).unwrap_or_default();
        let received = w.received.get(received0..).unwrap_or_default();
        let publishes: Vec<_> = sent
            .iter()
            .filter(|(_, p)| p.kind == kind::PUBLISH)
            .collect();
        let pubacks: Vec<_> = received
            .iter()
            .filter(|(_, p)| p.kind == kind::PUBACK)
            .collect();
        if publishes.len() != n as usize || pubacks.len() != n as usize {
            return Err(format!(
                "expected {n} PUBLISH and PUBACK, saw {} and {}",
                publishes.len(),
                pubacks.len()
            ));
        }
        let avg = |v: &[&(std::time::Instant, crate::mqtt::Packet)],
                   f: fn(&crate::mqtt::Packet) -> usize| {
            v.iter().map(|(_, p)| f(p) as f64).sum::<f64>() / v.len() as f64
        };
        Ok(WireCost {
            publish_bytes: avg(&publishes, |p| p.len),
            publish_writes: avg(&publishes, |p| p.calls),
            puback_bytes: avg(&pubacks, |p| p.len),
            other_sent: sent.len() - publishes.len(),
        })
    })
}

/// The Topic Alias Maximum the broker at `port` grants an MQTT 5 client (0: none).
pub fn broker_topic_alias_max(port: u16) -> Result<u16, String> {
    let creds = crate::baseline::credentials();
    let mut o = rumqttc::v5::MqttOptions::new(creds.client_id.clone(), "127.0.0.1", port);
    o.set_credentials(creds.username.clone(), creds.password.clone());
    o.set_topic_alias_max(Some(16));
    let (client, mut conn) = rumqttc::v5::Client::new(o, 4);
    let limit = Duration::from_secs(20);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match conn.recv_timeout(left) {
            Ok(Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(
                ack,
            )))) => {
                let _ = client.disconnect();
                return Ok(ack.properties.and_then(|p| p.topic_alias_max).unwrap_or(0));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("rumqttc v5: {e}")),
            Err(_) => return Err(format!("no CONNACK within {limit:?}")),
        }
    }
}

/// The rows for `version` (3.1.1 or 5).
pub fn rows(mqtt_port: u16, version: MqttVersion, n: u32) -> Vec<Row> {
    let (label, v) = match version {
        MqttVersion::V311 => ("3.1.1", Version::V311),
        MqttVersion::V5 => ("5", Version::V5),
    };
    let minimum = min_publish(v, TOPIC.len(), PAYLOAD.len()) as f64;
    let what = |w: &str| format!("wire, MQTT {label}: {w}");
    match measure(mqtt_port, version, n) {
        Ok(c) => {
            let mut rows = vec![
                Row::measured(
                    "1.2",
                    what("PUBLISH QoS 1 bytes (64 B, 38 B topic)"),
                    Value::new(c.publish_bytes, "B"),
                    Value::new(minimum, "B"),
                    "MQTT minimum",
                )
                .with_note(format!(
                    "MQTT {label}: averages over {n} publishes; {} other packets written meanwhile",
                    c.other_sent
                )),
                Row::measured(
                    "1.2",
                    what("transport writes per PUBLISH"),
                    Value::new(c.publish_writes, "writes"),
                    Value::new(1.0, "writes"),
                    "one write a packet",
                ),
                Row::measured(
                    "1.2",
                    what("PUBACK bytes read"),
                    Value::new(c.puback_bytes, "B"),
                    Value::new(MIN_PUBACK as f64, "B"),
                    "MQTT minimum",
                ),
            ];
            if version == MqttVersion::V5 {
                rows.push(alias_row(mqtt_port, c.publish_bytes));
            }
            rows
        }
        Err(e) => vec![Row::other("1.2", what("PUBLISH QoS 1"), Outcome::Failed(e))],
    }
}

/// MQTT 5 with a topic alias: the capsule's PUBLISH against the minimum with an alias, when
/// the broker grants aliases; skipped when it grants none.
fn alias_row(mqtt_port: u16, capsule_bytes: f64) -> Row {
    let what = "wire, MQTT 5 + topic alias: PUBLISH bytes";
    let minimum = min_publish(Version::V5Alias, TOPIC.len(), PAYLOAD.len());
    match broker_topic_alias_max(mqtt_port) {
        Ok(0) => Row::other(
            "1.2",
            what,
            Outcome::Skipped(format!(
                "the broker grants no topic alias (minimum with one: {minimum} B)"
            )),
        ),
        Ok(max) => Row::measured(
            "1.2",
            what,
            Value::new(capsule_bytes, "B"),
            Value::new(minimum as f64, "B"),
            "MQTT minimum",
        )
        .with_note(format!(
            "the emulator grants {max} topic aliases; the kernel sends the topic name every time"
        )),
        Err(e) => Row::other("1.2", what, Outcome::Failed(e)),
    }
}
