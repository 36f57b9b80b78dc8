//! Workloads for instruction counting under callgrind (`tests/e2e/callgrind.sh` runs them and
//! prints the table). Instruction counts repeat on a shared machine where wall time does not,
//! so this is how the capsule's cost is compared across changes and against a plain client.
//!
//! ```text
//! callgrind syscall publish|status N     A: N syscall round trips, kernel called directly
//! callgrind device PORT N v311|v5        B: kernel thread (runner, kernel, MQTT link) + app
//! callgrind rumqttc PORT N v311|v5       B baseline: rumqttc publishing the same message
//! ```
//!
//! A measures one syscall as an app sees it: encode the request, `Kernel::syscall`, decode the
//! response. `publish_round_trip` and `status_round_trip` are never inlined so callgrind can
//! collect only inside them (`--toggle-collect`); the link side that empties the outbox after
//! each publish runs outside them.
//!
//! B runs the runner on a thread named `kernel` (as `cargo bench -p aliot-e2e` does) and the
//! app on the main thread. The channel between them carries COBS frames, and the kernel's port
//! frames them as the host board's pipe port does (the same `aliot_host::apps::unframe` into
//! the lent buffer and `frame` for the answer). The port opens the measured window when the first Publish arrives and closes it when the Status after the
//! last result arrives (`measure_start` / `measure_end`, for `--zero-before` / `--dump-before`,
//! which act on the calling thread): the kernel side of exactly N publishes, without the login
//! and without the app thread. The emulator runs as a separate process, outside callgrind.
//! Every publish is QoS 1, 64 bytes, on the same topic, and waits for its result (PUBACK for
//! rumqttc, whose window is its own publish loop) before the next.

use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use aliot_abi::{ABI_MAJOR, ABI_MINOR, Event as AbiEvent, MAX_FRAME_LEN, Qos, Request, Response};
use aliot_app::{Aliot, Event, Syscalls};
use aliot_kernel::auth::{DeviceIdentity, device_login};
use aliot_kernel::board::{AppInput, AppPort};
use aliot_kernel::config::{AppBudget, AppDef, DeviceConfig, MqttVersion, RestartPolicy};
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};
use aliot_kernel::kernel::{AppId, Kernel, Outgoing};
use aliot_kernel::runner::{Runner, RunnerOptions};

/// The second demo device of `tests/emulator/demo-registry.toml` (the benches use it too).
const SECRET: &str = "DemoDeviceSecretForEmulator00002";
const PK: &str = "a1NrfDemo01";
const DN: &str = "nrf9160-dk-02";
/// Granted exactly (no wildcard) to the bench app.
const TOPIC: &str = "/a1NrfDemo01/nrf9160-dk-02/user/update";
const PAYLOAD: [u8; 64] = [b'x'; 64];
/// Waits in the workloads; only a broken setup ever reaches them.
const WAIT_MS: u32 = 30_000;

fn config(version: MqttVersion, client_id: &'static str) -> &'static DeviceConfig {
    let apps: &'static [AppDef] = Box::leak(Box::new([AppDef {
        name: "bench",
        memory: 16384,
        publish: &[TOPIC],
        subscribe: &[],
        restart: RestartPolicy::Never,
        settings: &[],
        budget: AppBudget {
            event_queue_bytes: 4608,
            outbox_bytes: 8704,
            max_payload: 4096,
            subscriptions: 8,
        },
    }]));
    let mut config = aliot_host::generated::DEVICE;
    config.device_name = DN;
    config.client_id = client_id;
    config.mqtt_version = version;
    config.tls.enabled = false;
    config.apps = apps;
    Box::leak(Box::new(config))
}

// ---- A: one syscall round trip ----------------------------------------------------------

/// Encode `request` (postcard, as the syscall edge takes it), run it through the kernel as app
/// 0, decode the response and hand it to `check`.
fn call(kernel: &mut Kernel, request: &Request<'_>, check: impl Fn(&Response<'_>) -> bool) {
    let mut buf = [0u8; 256];
    let len = postcard::to_slice(request, &mut buf).expect("encode").len();
    let n = kernel
        .syscall(0, &mut buf, len, 1_000)
        .expect("an immediate answer");
    let response: Response<'_> = postcard::from_bytes(&buf[..n]).expect("decode");
    assert!(check(&response), "unexpected {response:?}");
}

#[inline(never)]
fn publish_round_trip(kernel: &mut Kernel, token: u32) {
    call(
        kernel,
        &Request::Publish {
            topic: black_box(TOPIC),
            payload: black_box(&PAYLOAD),
            qos: Qos::AtLeastOnce,
            token,
        },
        |r| matches!(r, Response::Accepted { .. }),
    );
}

#[inline(never)]
fn status_round_trip(kernel: &mut Kernel) {
    call(kernel, &Request::Status, |r| {
        matches!(r, Response::Status(_))
    });
}

/// The link's part, outside the measured functions: write and acknowledge what is queued and
/// take the app's events, so every round trip starts from the same empty state.
fn drain(kernel: &mut Kernel) {
    loop {
        let pid = match kernel.poll_outgoing(1_000) {
            Some(Outgoing::Publish { pid, .. }) => Some(pid),
            Some(_) => None,
            None => break,
        };
        kernel.on_written();
        if let Some(pid) = pid {
            kernel.on_puback(pid);
        }
    }
    loop {
        let mut buf = [0u8; 256];
        let request = Request::WaitEvent { timeout_ms: 0 };
        let len = postcard::to_slice(&request, &mut buf)
            .expect("encode")
            .len();
        let n = kernel.syscall(0, &mut buf, len, 1_000).expect("answer");
        match postcard::from_bytes(&buf[..n]).expect("decode") {
            Response::Event(AbiEvent::PublishResult { delivered, .. }) => assert!(delivered),
            Response::Event(_) => {}
            Response::NoEvent => break,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn syscall(case: &str, n: u32) {
    let mut kernel = Kernel::new(config(MqttVersion::V311, "bench.a"));
    call(
        &mut kernel,
        &Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
        |r| matches!(r, Response::Welcome { .. }),
    );
    kernel.on_connected();
    drain(&mut kernel);
    for i in 0..n {
        match case {
            "publish" => publish_round_trip(&mut kernel, i),
            "status" => status_round_trip(&mut kernel),
            _ => panic!("case: publish or status"),
        }
        drain(&mut kernel);
    }
}

// ---- B: the whole kernel side ------------------------------------------------------------

/// Where the app is: logging in, publishing, done. The kernel thread's port reads it when a
/// frame arrives and marks the window on its own thread (callgrind zeroes and dumps per thread).
static PHASE: AtomicU8 = AtomicU8::new(SETUP);
const SETUP: u8 = 0;
const MEASURING: u8 = 1;
const DONE: u8 = 2;

/// Entering this zeroes the calling thread's counts (`--zero-before`).
#[inline(never)]
fn measure_start() {
    black_box(1);
}

/// Entering this dumps the calling thread's counts since `measure_start` (`--dump-before`).
#[inline(never)]
fn measure_end() {
    black_box(2);
}

/// The kernel's side of the in-process syscall channel: COBS frames in, the request lent to
/// the kernel unframed, the response framed again (as the host board's pipes do).
struct ChannelPort {
    requests: tokio::sync::mpsc::Receiver<Vec<u8>>,
    responses: std_mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
    /// The last [`PHASE`] this thread saw.
    phase: u8,
}

impl AppPort for ChannelPort {
    async fn recv(&mut self) -> AppInput {
        let Some(frame) = self.requests.recv().await else {
            return std::future::pending().await;
        };
        let phase = PHASE.load(Ordering::SeqCst);
        if phase != self.phase {
            self.phase = phase;
            match phase {
                MEASURING => measure_start(),
                DONE => measure_end(),
                _ => {}
            }
        }
        AppInput::Syscall {
            app: 0,
            len: aliot_host::apps::unframe(frame, &mut self.buffer),
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

    fn exchange(&mut self, request: &[u8], response_buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.requests
            .blocking_send(request.to_vec())
            .map_err(|_| "kernel gone")?;
        let frame = self.responses.recv().map_err(|_| "kernel gone")?;
        let out = response_buf
            .get_mut(..frame.len())
            .ok_or("frame too long")?;
        out.copy_from_slice(&frame);
        Ok(frame.len())
    }
}

fn device(port: u16, n: u32, version: MqttVersion) {
    let config = config(version, "bench.capsule");
    let (req_tx, req_rx) = tokio::sync::mpsc::channel(8);
    let (resp_tx, resp_rx) = std_mpsc::channel();
    std::thread::Builder::new()
        .name("kernel".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let tls = aliot_host::net::tls_config(None).expect("TLS config");
                let network =
                    aliot_host::net::HostNetwork::new(tls, Some(("127.0.0.1".into(), port)));
                let app_port = ChannelPort {
                    requests: req_rx,
                    responses: resp_tx,
                    buffer: vec![0; MAX_FRAME_LEN],
                    phase: SETUP,
                };
                let mut kernel = Kernel::new(config);
                let credentials = DeviceSecretLogin::new(Secret::from(String::from(SECRET)))
                    .expect("device secret login");
                let mut runner = Runner::new(
                    &mut kernel,
                    network,
                    aliot_host::clock::HostClock::new(),
                    aliot_host::clock::HostEntropy,
                    app_port,
                    credentials,
                    RunnerOptions::default(),
                );
                runner.run_until(std::future::pending()).await
            })
        })
        .expect("kernel thread");
    let app = Aliot::new(ChannelSyscalls {
        requests: req_tx,
        responses: resp_rx,
    })
    .expect("hello");
    publish_loop(app, n);
}

/// Wait for the login, then publish `n` times, each waiting for its result. The kernel
/// thread's window opens when the first Publish arrives and closes when the Status after the
/// last result arrives: exactly `n` publish cycles.
fn publish_loop<S: Syscalls>(mut app: Aliot<S>, n: u32) {
    loop {
        match app.next_event(WAIT_MS).expect("event") {
            Some(Event::Connected) => break,
            Some(_) => {}
            None => panic!("no login within {WAIT_MS} ms"),
        }
    }
    PHASE.store(MEASURING, Ordering::SeqCst);
    for i in 0..n {
        let token = app
            .publish(TOPIC, &PAYLOAD, Qos::AtLeastOnce)
            .expect("publish");
        loop {
            match app.next_event(WAIT_MS).expect("event") {
                Some(Event::PublishResult {
                    token: t,
                    delivered,
                }) if t == token => {
                    assert!(delivered, "publish {i} not delivered");
                    break;
                }
                Some(_) => {}
                None => panic!("publish {i}: no result within {WAIT_MS} ms"),
            }
        }
    }
    PHASE.store(DONE, Ordering::SeqCst);
    app.status().expect("status");
}

fn rumqttc(port: u16, n: u32, v5: bool) {
    let id = DeviceIdentity {
        product_key: PK,
        device_name: DN,
        client_id: "bench.baseline",
        device_secret: SECRET.as_bytes(),
    };
    let creds = device_login(&id, aliot_kernel::config::SignMethod::HmacSha256, false);
    // rumqttc's 3.1.1 and 5 clients have the same shape but different types.
    macro_rules! rounds {
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
            measure_start();
            for _ in 0..n {
                client
                    .publish(TOPIC, $qos, false, &PAYLOAD[..])
                    .expect("publish");
                while !matches!(events.next(), Some(Ok(Event::Incoming(Packet::PubAck(_))))) {}
            }
            measure_end();
        }};
    }
    if v5 {
        rounds!(
            rumqttc::v5::Client,
            rumqttc::v5::MqttOptions,
            rumqttc::v5::Event,
            rumqttc::v5::mqttbytes::v5::Packet,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce
        )
    } else {
        rounds!(
            rumqttc::Client,
            rumqttc::MqttOptions,
            rumqttc::Event,
            rumqttc::Packet,
            rumqttc::QoS::AtLeastOnce
        )
    }
}

const USAGE: &str = "usage: callgrind syscall publish|status N | device|rumqttc PORT N v311|v5";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let number = |i: usize| arg(i).parse::<u32>().expect(USAGE);
    match arg(1) {
        "syscall" => syscall(arg(2), number(3)),
        mode @ ("device" | "rumqttc") => {
            let port = u16::try_from(number(2)).expect(USAGE);
            let v5 = match arg(4) {
                "v311" => false,
                "v5" => true,
                _ => panic!("{USAGE}"),
            };
            if mode == "device" {
                let version = if v5 {
                    MqttVersion::V5
                } else {
                    MqttVersion::V311
                };
                device(port, number(3), version);
            } else {
                rumqttc(port, number(3), v5);
            }
        }
        _ => panic!("{USAGE}"),
    }
    // The kernel thread never returns: end the process (callgrind writes its counts now).
    std::process::exit(0);
}
