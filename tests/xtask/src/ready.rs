//! Row 1.3: round trips from the TCP connect to ready (logged in, every subscription
//! acknowledged), through a [`DelayProxy`] adding a fixed latency each way, so the count is
//! the elapsed time over the proxy's round-trip time. The capsule has the app's and the OTA
//! service's four filters queued before it connects, as after a boot; the baseline is
//! rumqttc logging in and subscribing the same four through the same proxy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aliot_abi::{Qos, Request, Response};
use aliot_kernel::config::MqttVersion;
use aliot_kernel::kernel::Kernel;

use crate::baseline::{self, Work};
use crate::capsule::{Capsule, READY_FILTERS, Start};
use crate::mqtt::kind;
use crate::proxy::DelayProxy;
use crate::table::{Outcome, Row, Value};

/// Bound on reaching ready.
const LIMIT: Duration = Duration::from_secs(30);

/// Queues `filters` as app 0's subscriptions before the runner starts.
fn subscribe_all(kernel: &mut Kernel) {
    let mut greet = |request: Request<'_>| {
        let mut buf = [0u8; 256];
        let ok = postcard::to_slice(&request, &mut buf)
            .ok()
            .map(|b| b.len())
            .and_then(|len| kernel.syscall(0, &mut buf, len, 0))
            .and_then(|n| postcard::from_bytes::<Response<'_>>(buf.get(..n)?).ok());
        if !matches!(
            ok,
            Some(Response::Welcome { .. } | Response::Accepted { .. })
        ) {
            eprintln!("round trips: {request:?} answered {ok:?}");
        }
    };
    greet(Request::Hello {
        major: aliot_abi::ABI_MAJOR,
        minor: aliot_abi::ABI_MINOR,
    });
    for (token, filter) in READY_FILTERS.iter().enumerate() {
        greet(Request::Subscribe {
            filter,
            qos: Qos::AtLeastOnce,
            token: token as u32,
        });
    }
}

/// Time to ready and the client's flights until then.
type Ready = (Duration, u32);

/// The capsule: from its connect to the last SUBACK it read, and its flights until then.
pub fn capsule(proxy: &DelayProxy, version: MqttVersion) -> Result<Ready, String> {
    let capsule = Capsule::start(Start {
        mqtt_port: proxy.addr().port(),
        version,
        count: true,
        prepare: Some(Box::new(subscribe_all)),
    })?;
    let deadline = Instant::now() + LIMIT;
    loop {
        let ready = capsule.wire.with(|w| {
            let subacks: Vec<Instant> = w
                .received
                .iter()
                .filter(|(_, p)| p.kind == kind::SUBACK)
                .map(|(t, _)| *t)
                .collect();
            let connack = w.received.iter().any(|(_, p)| p.kind == kind::CONNACK);
            match (w.connect_at, subacks.get(READY_FILTERS.len() - 1)) {
                (Some(start), Some(last)) if connack => Some(last.duration_since(start)),
                _ => None,
            }
        });
        if let Some(d) = ready {
            return Ok((d, proxy.flights()));
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready within {LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The rows: capsule against rumqttc for `version`, `delay` each way: the client's flights
/// (the protocol's round trips, counted by the proxy) and the time over the proxy's RTT.
pub fn rows(emulator: SocketAddr, version: MqttVersion, delay: Duration) -> Vec<Row> {
    let label = match version {
        MqttVersion::V311 => "3.1.1",
        MqttVersion::V5 => "5",
    };
    let what = format!(
        "round trips to ready, MQTT {label} (login + {} SUBACKs)",
        READY_FILTERS.len()
    );
    let measured = (|| -> Result<(Ready, Ready), String> {
        let proxy = DelayProxy::start(emulator, delay).map_err(|e| format!("proxy: {e}"))?;
        let ours = capsule(&proxy, version)?;
        let theirs = baseline::run(
            proxy.addr().port(),
            version,
            Work::Ready(&READY_FILTERS),
            LIMIT,
        )?
        .ready;
        Ok((ours, (theirs, proxy.flights())))
    })();
    match measured {
        Ok(((ours, our_flights), (theirs, their_flights))) => {
            let rtt = 2.0 * delay.as_secs_f64();
            vec![
                Row::measured(
                    "1.3",
                    format!("{what}: client flights"),
                    Value::new(f64::from(our_flights), "RTT"),
                    Value::new(f64::from(their_flights), "RTT"),
                    "rumqttc",
                ),
                Row::measured(
                    "1.3",
                    format!("{what}: time / proxy RTT"),
                    Value::new(ours.as_secs_f64() / rtt, "RTT"),
                    Value::new(theirs.as_secs_f64() / rtt, "RTT"),
                    "rumqttc",
                )
                .with_note(format!(
                    "MQTT {label}: {:.1} ms vs rumqttc {:.1} ms through a proxy adding {} ms each way (RTT {} ms); time beyond the flights is processing and TCP stalls on loopback (Nagle against delayed ACKs), which the flight count leaves out",
                    ours.as_secs_f64() * 1e3,
                    theirs.as_secs_f64() * 1e3,
                    delay.as_millis(),
                    2 * delay.as_millis()
                )),
            ]
        }
        Err(e) => vec![Row::other("1.3", what, Outcome::Failed(e))],
    }
}
