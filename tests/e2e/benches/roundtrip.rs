//! Benchmark: sequential QoS 1 publish round trips (publish, wait for the result) against the
//! emulator on loopback, plain TCP.
//!
//! - baseline: rumqttc, a plain MQTT client, publishing and waiting for each PUBACK;
//! - capsule: an app-side `Aliot` client → syscall frames → kernel → runner → MQTT link →
//!   emulator, waiting for each `PublishResult` event (the app runs on its own thread and
//!   talks to the kernel through channels instead of a process pipe, so this measures the
//!   capsule, not the OS).
//!
//! Prints mean microseconds per round trip and the ratio capsule / baseline, for MQTT 3.1.1
//! and 5. Run: `cargo bench -p aliot-e2e`.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use aliot_abi::Qos;
use aliot_app::{Aliot, Event, Syscalls};
use aliot_emulator::{Emulator, EmulatorConfig};
use aliot_kernel::auth::{DeviceIdentity, device_login};
use aliot_kernel::board::{AppInput, AppPort};
use aliot_kernel::config::{AppDef, DeviceConfig, MqttVersion, RestartPolicy};
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};
use aliot_kernel::kernel::{AppId, Kernel};
use aliot_kernel::runner::{Runner, RunnerOptions};

const ROUNDS: u32 = 300;
const SECRET: &str = "DemoDeviceSecretForEmulator00002";
const PK: &str = "a1NrfDemo01";
const DN: &str = "nrf9160-dk-02";

fn topic() -> String {
    format!("/{PK}/{DN}/user/update")
}

fn baseline(emu: &Emulator, v5: bool) -> Duration {
    let id = DeviceIdentity {
        product_key: PK,
        device_name: DN,
        client_id: "bench.baseline",
        device_secret: SECRET.as_bytes(),
    };
    let creds = device_login(&id, aliot_kernel::config::SignMethod::HmacSha256, false);
    let port = emu.mqtt_addr().port();
    let topic = topic();
    // rumqttc's 3.1.1 and 5 clients have the same shape but different types.
    macro_rules! timed_rounds {
        ($client:ty, $options:ty, $event:path, $packet:path, $qos:expr) => {{
            use $event as Event;
            use $packet as Packet;
            // `LoginCredentials` zeroizes its password on drop: copy the strings out.
            let mut o = <$options>::new(creds.client_id.clone(), "127.0.0.1", port);
            o.set_credentials(creds.username.clone(), creds.password.clone());
            o.set_keep_alive(Duration::from_secs(300));
            let (client, mut conn) = <$client>::new(o, 8);
            let mut events = conn.iter();
            while !matches!(events.next(), Some(Ok(Event::Incoming(Packet::ConnAck(_))))) {}
            let start = Instant::now();
            for i in 0..ROUNDS {
                client
                    .publish(topic.clone(), $qos, false, format!("base-{i}"))
                    .unwrap();
                while !matches!(events.next(), Some(Ok(Event::Incoming(Packet::PubAck(_))))) {}
            }
            start.elapsed()
        }};
    }
    if v5 {
        timed_rounds!(
            rumqttc::v5::Client,
            rumqttc::v5::MqttOptions,
            rumqttc::v5::Event,
            rumqttc::v5::mqttbytes::v5::Packet,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce
        )
    } else {
        timed_rounds!(
            rumqttc::Client,
            rumqttc::MqttOptions,
            rumqttc::Event,
            rumqttc::Packet,
            rumqttc::QoS::AtLeastOnce
        )
    }
}

/// The kernel's side of the in-process syscall channel: COBS frames in, the request lent to
/// the kernel unframed, the response framed again (as the host board's pipes do).
struct ChannelPort {
    requests: tokio::sync::mpsc::Receiver<Vec<u8>>,
    responses: std_mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl AppPort for ChannelPort {
    async fn recv(&mut self) -> AppInput {
        match self.requests.recv().await {
            Some(frame) => AppInput::Syscall {
                app: 0,
                len: aliot_host::apps::unframe(frame, &mut self.buffer),
            },
            None => std::future::pending().await,
        }
    }

    fn buffer(&mut self, _app: AppId) -> Option<&mut [u8]> {
        Some(&mut self.buffer)
    }

    fn respond(&mut self, _app: AppId, len: usize) {
        let frame = aliot_host::apps::frame(&self.buffer[..len]);
        let _ = self.responses.send(frame);
    }
}

/// The app's side of the channel.
struct ChannelSyscalls {
    requests: tokio::sync::mpsc::Sender<Vec<u8>>,
    responses: std_mpsc::Receiver<Vec<u8>>,
}

impl Syscalls for ChannelSyscalls {
    type Error = &'static str;

    fn exchange(
        &mut self,
        request_frame: &[u8],
        response_buf: &mut [u8],
    ) -> Result<usize, Self::Error> {
        self.requests
            .blocking_send(request_frame.to_vec())
            .map_err(|_| "kernel gone")?;
        let frame = self.responses.recv().map_err(|_| "kernel gone")?;
        let out = response_buf
            .get_mut(..frame.len())
            .ok_or("frame too long")?;
        out.copy_from_slice(&frame);
        Ok(frame.len())
    }
}

/// (publish round trips, syscall-only round trips) through the capsule.
fn capsule(emu: &Emulator, version: MqttVersion) -> (Duration, Duration) {
    let topic: &'static str = Box::leak(topic().into_boxed_str());
    let publish: &'static [&'static str] = Box::leak(vec![topic].into_boxed_slice());
    let apps: &'static [AppDef] = Box::leak(Box::new([AppDef {
        name: "bench",
        memory: 16384,
        publish,
        subscribe: &[],
        restart: RestartPolicy::Never,
        settings: &[],
        budget: aliot_kernel::config::AppBudget {
            event_queue_bytes: 4608,
            outbox_bytes: 8704,
            max_payload: 4096,
            subscriptions: 8,
        },
    }]));
    let mut config = aliot_host::generated::DEVICE;
    config.device_name = DN;
    config.client_id = "bench.capsule";
    config.mqtt_version = version;
    config.tls.enabled = false;
    config.apps = apps;
    let config: &'static DeviceConfig = Box::leak(Box::new(config));

    let (req_tx, req_rx) = tokio::sync::mpsc::channel(8);
    let (resp_tx, resp_rx) = std_mpsc::channel();
    let port = emu.mqtt_addr().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let tls = aliot_host::net::tls_config(None).unwrap();
            let network = aliot_host::net::HostNetwork::new(tls, Some(("127.0.0.1".into(), port)));
            let app_port = ChannelPort {
                requests: req_rx,
                responses: resp_tx,
                buffer: vec![0; aliot_abi::MAX_FRAME_LEN],
            };
            let mut kernel = Kernel::new(config);
            let clock = aliot_host::clock::HostClock::new();
            let credentials = DeviceSecretLogin::new(Secret::from(String::from(SECRET))).unwrap();
            let mut runner = Runner::new(
                &mut kernel,
                network,
                clock,
                aliot_host::clock::HostEntropy,
                app_port,
                credentials,
                RunnerOptions::default(),
            );
            runner.run_until(std::future::pending()).await
        })
    });
    let mut app = Aliot::new(ChannelSyscalls {
        requests: req_tx,
        responses: resp_rx,
    })
    .expect("hello");
    // Wait for the login.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.status().expect("status").connected {
        assert!(Instant::now() < deadline, "the capsule did not log in");
        let _ = app.next_event(50);
    }
    // The cost of the app/kernel hand-off alone: a syscall the kernel answers at once.
    let start = Instant::now();
    for _ in 0..ROUNDS {
        app.status().expect("status");
    }
    let syscall_only = start.elapsed();
    let start = Instant::now();
    for i in 0..ROUNDS {
        let token = app
            .publish(topic, format!("cap-{i}").as_bytes(), Qos::AtLeastOnce)
            .expect("publish");
        loop {
            match app.next_event(5_000).expect("event") {
                Some(Event::PublishResult {
                    token: t,
                    delivered,
                }) if t == token => {
                    assert!(delivered, "round {i} not delivered");
                    break;
                }
                Some(_) => {}
                None => panic!("round {i}: no result within 5 s"),
            }
        }
    }
    (start.elapsed(), syscall_only)
}

fn per_round_us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / f64::from(ROUNDS)
}

fn main() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("emulator");
    println!(
        "QoS 1 publish round trips, {ROUNDS} sequential, loopback plain TCP, emulator in-process"
    );
    println!(
        "(a capsule round trip is 2 syscalls: publish, then the wait that returns the result)"
    );
    println!(
        "{:<6} {:>15} {:>14} {:>7} {:>16}",
        "mqtt", "baseline us/rt", "capsule us/rt", "ratio", "one syscall us"
    );
    for (name, version) in [("3.1.1", MqttVersion::V311), ("5", MqttVersion::V5)] {
        let base = per_round_us(baseline(&emu, version == MqttVersion::V5));
        let (cap, syscall) = capsule(&emu, version);
        let (cap, syscall) = (per_round_us(cap), per_round_us(syscall));
        println!(
            "{name:<6} {base:>15.1} {cap:>14.1} {:>7.2} {syscall:>16.1}",
            cap / base
        );
    }
}
