//! The plain MQTT client every capsule figure is compared with: rumqttc, logged in as the same
//! device with the same credentials (`aliot_kernel::auth::device_login`), publishing the same
//! 64-byte message on the same topic, or subscribing the same filters.

use std::time::{Duration, Instant};

use aliot_kernel::auth::{DeviceIdentity, LoginCredentials, device_login};
use aliot_kernel::config::{MqttVersion, SignMethod};

use crate::capsule::{DN, PAYLOAD, PK, SECRET, TOPIC, measure_end, measure_start};

/// rumqttc's keep-alive: the bound on a wait for a server that went silent (the platform
/// takes 30 to 1200 s).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// What a rumqttc run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// From the first poll (the TCP connect) to CONNACK and every SUBACK.
    pub ready: Duration,
    /// The measured loop.
    pub work: Duration,
}

/// The workload of one run.
#[derive(Debug, Clone, Copy)]
pub enum Work<'a> {
    /// Log in and subscribe `filters`; nothing else.
    Ready(&'a [&'a str]),
    /// `n` publishes, each waiting for its PUBACK (the window is callgrind's too).
    Sequential(u32),
    /// `n` publishes with at most `window` unacknowledged (rumqttc's inflight limit).
    Windowed(u32, u16),
}

fn nodelay() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

/// The demo device's login, as the kernel computes it.
pub fn credentials() -> LoginCredentials {
    let id = DeviceIdentity {
        product_key: PK,
        device_name: DN,
        client_id: "bench.baseline",
        device_secret: SECRET.as_bytes(),
    };
    device_login(&id, SignMethod::HmacSha256, false)
}

/// Runs `work` against `127.0.0.1:port`, giving up after `limit`.
pub fn run(
    port: u16,
    version: MqttVersion,
    work: Work<'_>,
    limit: Duration,
) -> Result<Timing, String> {
    let creds = credentials();
    let deadline = Instant::now() + limit;
    // rumqttc's 3.1.1 and 5 clients have the same shape but different types.
    macro_rules! client {
        ($client:ty, $options:ty, $event:path, $packet:path, $qos:expr, $sub:expr, $inflight:ident, $nodelay_opts:expr, $nodelay_conn:expr) => {{
            use $event as Event;
            use $packet as Packet;
            // `LoginCredentials` zeroizes its password on drop: copy the strings out.
            let mut o = <$options>::new(creds.client_id.clone(), "127.0.0.1", port);
            o.set_credentials(creds.username.clone(), creds.password.clone());
            // The keep-alive bounds every wait below: a server that stops answering fails the
            // PINGREQ after at most two of them (iter() has no timeout of its own, and
            // recv_timeout's timer would count in the baseline's instructions).
            o.set_keep_alive(KEEP_ALIVE);
            if let Work::Windowed(_, window) = work {
                o.$inflight(window);
            }
            // TCP_NODELAY, as the capsule's host network sets it: no Nagle stall in either.
            $nodelay_opts(&mut o);
            let (client, mut conn) = <$client>::new(o, 64);
            $nodelay_conn(&mut conn);
            let mut timing = Timing::default();
            let start = Instant::now();
            if let Work::Ready(filters) = work {
                // Queued before the connection exists: rumqttc sends them right after CONNACK.
                for f in filters {
                    $sub(&client, f).map_err(|e| format!("subscribe: {e}"))?;
                }
            }
            let mut events = conn.iter();
            let mut next = || -> Result<Option<Packet>, String> {
                if Instant::now() >= deadline {
                    return Err(format!("rumqttc: no answer within {limit:?}"));
                }
                match events.next() {
                    Some(Ok(Event::Incoming(p))) => Ok(Some(p)),
                    Some(Ok(_)) => Ok(None),
                    Some(Err(e)) => Err(format!("rumqttc: {e}")),
                    None => Err("rumqttc: connection ended".into()),
                }
            };
            while !matches!(next()?, Some(Packet::ConnAck(_))) {}
            match work {
                Work::Ready(filters) => {
                    let mut acked = 0;
                    while acked < filters.len() {
                        if matches!(next()?, Some(Packet::SubAck(_))) {
                            acked += 1;
                        }
                    }
                    timing.ready = start.elapsed();
                }
                Work::Sequential(n) => {
                    measure_start();
                    let start = Instant::now();
                    for _ in 0..n {
                        client
                            .publish(TOPIC, $qos, false, &PAYLOAD[..])
                            .map_err(|e| format!("publish: {e}"))?;
                        while !matches!(next()?, Some(Packet::PubAck(_))) {}
                    }
                    timing.work = start.elapsed();
                    measure_end();
                }
                Work::Windowed(n, _) => {
                    let start = Instant::now();
                    let publisher = client.clone();
                    let feeder = std::thread::spawn(move || {
                        for _ in 0..n {
                            if publisher.publish(TOPIC, $qos, false, &PAYLOAD[..]).is_err() {
                                break;
                            }
                        }
                    });
                    let mut acked = 0;
                    while acked < n {
                        if matches!(next()?, Some(Packet::PubAck(_))) {
                            acked += 1;
                        }
                    }
                    timing.work = start.elapsed();
                    let _ = feeder.join();
                }
            }
            let _ = client.disconnect();
            Ok(timing)
        }};
    }
    match version {
        MqttVersion::V311 => client!(
            rumqttc::Client,
            rumqttc::MqttOptions,
            rumqttc::Event,
            rumqttc::Packet,
            rumqttc::QoS::AtLeastOnce,
            |c: &rumqttc::Client, f: &str| c.subscribe(f, rumqttc::QoS::AtLeastOnce),
            set_inflight,
            |_: &mut rumqttc::MqttOptions| {},
            |c: &mut rumqttc::Connection| {
                c.eventloop.set_network_options(nodelay());
            }
        ),
        MqttVersion::V5 => client!(
            rumqttc::v5::Client,
            rumqttc::v5::MqttOptions,
            rumqttc::v5::Event,
            rumqttc::v5::mqttbytes::v5::Packet,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            |c: &rumqttc::v5::Client, f: &str| c
                .subscribe(f, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(Box::new),
            set_outgoing_inflight_upper_limit,
            |o: &mut rumqttc::v5::MqttOptions| {
                o.set_network_options(nodelay());
            },
            |_: &mut rumqttc::v5::Connection| {}
        ),
    }
}
