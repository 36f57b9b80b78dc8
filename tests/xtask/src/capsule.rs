//! The capsule in this process, as the host board runs it: aliot-kernel's `Kernel` and
//! `Runner` with the host board's network, clock and entropy, on a thread of its own; an app
//! written against `aliot-app` on the caller's thread. The syscall channel carries COBS
//! frames and the kernel's port frames them as the host board's pipe port does (the same
//! `aliot_host::apps::unframe` / `frame`), so a figure measures the capsule, not the OS pipes.
//!
//! The network can be wrapped in [`CountingNetwork`], which splits both directions into MQTT
//! packets ([`crate::mqtt::Splitter`]) and stamps each: the wire-cost and round-trips rows
//! read it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aliot_abi::{MAX_FRAME_LEN, Qos};
use aliot_app::{Aliot, Event, Syscalls};
use aliot_kernel::board::{AppInput, AppPort, NetError, Network};
use aliot_kernel::config::{AppBudget, AppDef, DeviceConfig, MqttVersion, RestartPolicy};
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};
use aliot_kernel::kernel::{AppId, Kernel};
use aliot_kernel::runner::{Runner, RunnerOptions};

use crate::mqtt::{Packet, Splitter};

/// The demo device the benchmarks log in as (`tests/emulator/demo-registry.toml`'s second
/// device, so a test run of the default device elsewhere is not disturbed).
pub const PK: &str = "a1NrfDemo01";
/// Its DeviceName.
pub const DN: &str = "nrf9160-dk-02";
/// Its DeviceSecret (a demo value for the local emulator only).
pub const SECRET: &str = "DemoDeviceSecretForEmulator00002";
/// The topic every benchmark publishes to (38 bytes).
pub const TOPIC: &str = "/a1NrfDemo01/nrf9160-dk-02/user/update";
/// The payload every benchmark publishes (64 bytes, as issue 12 asks).
pub const PAYLOAD: [u8; 64] = [b'x'; 64];
/// The topics the capsule subscribes before its login in the round-trips row: the app's two
/// (the default manifest's `get` and the `ceshi` pub/sub topic) and the OTA service's two.
pub const READY_FILTERS: [&str; 4] = [
    "/a1NrfDemo01/nrf9160-dk-02/user/get",
    "/a1NrfDemo01/nrf9160-dk-02/user/ceshi",
    "/ota/device/upgrade/a1NrfDemo01/nrf9160-dk-02",
    "/sys/a1NrfDemo01/nrf9160-dk-02/thing/ota/firmware/get_reply",
];

/// The one app's definition: publishes to [`TOPIC`], subscribes to [`READY_FILTERS`].
pub fn config(version: MqttVersion, client_id: &'static str) -> &'static DeviceConfig {
    let apps: &'static [AppDef] = Box::leak(Box::new([AppDef {
        name: "bench",
        memory: 16384,
        publish: &[TOPIC],
        subscribe: &READY_FILTERS,
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

// ---- instruction-count window ---------------------------------------------------------

/// Where a callgrind workload is: logging in, measuring, done. The kernel thread's port reads
/// it when a frame arrives and marks the window on its own thread (callgrind zeroes and dumps
/// per thread).
pub static PHASE: AtomicU8 = AtomicU8::new(SETUP);
/// Before the measured window.
pub const SETUP: u8 = 0;
/// In it.
pub const MEASURING: u8 = 1;
/// After it.
pub const DONE: u8 = 2;

/// Entering this zeroes the calling thread's counts (callgrind `--zero-before`).
#[inline(never)]
pub fn measure_start() {
    std::hint::black_box(1);
}

/// Entering this dumps the calling thread's counts since [`measure_start`] (`--dump-before`).
#[inline(never)]
pub fn measure_end() {
    std::hint::black_box(2);
}

// ---- the syscall channel --------------------------------------------------------------

/// The kernel's side of the in-process syscall channel.
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
        let frame = aliot_host::apps::frame(self.buffer.get(..len).unwrap_or_default());
        let _ = self.responses.send(frame);
    }
}

/// The app's side of the channel.
pub struct ChannelSyscalls {
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

// ---- counting the wire ----------------------------------------------------------------

/// What crossed the capsule's transport: packets each way with when they completed.
#[derive(Debug, Default)]
pub struct Wire {
    /// When the runner asked the network for a connection (the last time it did).
    pub connect_at: Option<Instant>,
    /// Packets the capsule wrote, with the writes each took.
    pub sent: Vec<(Instant, Packet)>,
    /// Packets the capsule read, with the reads each took.
    pub received: Vec<(Instant, Packet)>,
    out: Splitter,
    inp: Splitter,
}

/// Shared handle on a [`Wire`].
#[derive(Debug, Clone, Default)]
pub struct WireLog(Arc<Mutex<Wire>>);

impl WireLog {
    /// Look at the log.
    pub fn with<T>(&self, f: impl FnOnce(&Wire) -> T) -> T {
        match self.0.lock() {
            Ok(w) => f(&w),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Wire)) {
        match self.0.lock() {
            Ok(mut w) => f(&mut w),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

/// A [`Network`] that logs every packet its streams carry.
pub struct CountingNetwork<N> {
    inner: N,
    log: WireLog,
}

impl<N> CountingNetwork<N> {
    /// Wraps `inner`; the log is reset at each connect.
    pub fn new(inner: N, log: WireLog) -> Self {
        Self { inner, log }
    }
}

/// The capsule's runner over `network` (counted or not: the two are different types) until
/// `stop`, with the host board's clock and entropy.
async fn run_over<N: Network>(
    kernel: &mut Kernel,
    network: N,
    port: ChannelPort,
    credentials: DeviceSecretLogin,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), aliot_kernel::credentials::CredentialsError> {
    Runner::new(
        kernel,
        network,
        aliot_host::clock::HostClock::new(),
        aliot_host::clock::HostEntropy,
        port,
        credentials,
        RunnerOptions::default(),
    )
    .run_until(stop)
    .await
}

impl<N: Network> Network for CountingNetwork<N> {
    type Stream = Counted<N::Stream>;

    async fn connect(
        &mut self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<Self::Stream, NetError> {
        self.log.update(|w| {
            *w = Wire {
                connect_at: Some(Instant::now()),
                ..Wire::default()
            }
        });
        let inner = self.inner.connect(host, port, tls).await?;
        Ok(Counted {
            inner,
            log: self.log.clone(),
        })
    }

    fn describe<'a>(&'a self, host: &'a str, port: u16) -> impl core::fmt::Display + 'a {
        self.inner.describe(host, port)
    }
}

/// A stream whose reads and writes go through the splitters of a [`WireLog`].
pub struct Counted<S> {
    inner: S,
    log: WireLog,
}

impl<S: embedded_io_async::ErrorType> embedded_io_async::ErrorType for Counted<S> {
    type Error = S::Error;
}

impl<S: embedded_io_async::Read> embedded_io_async::Read for Counted<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self.inner.read(buf).await?;
        let now = Instant::now();
        self.log.update(|w| {
            let Wire { inp, received, .. } = w;
            inp.feed(buf.get(..n).unwrap_or_default(), |p| {
                received.push((now, p))
            });
        });
        Ok(n)
    }
}

impl<S: embedded_io_async::Write> embedded_io_async::Write for Counted<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = self.inner.write(buf).await?;
        let now = Instant::now();
        self.log.update(|w| {
            let Wire { out, sent, .. } = w;
            out.feed(buf.get(..n).unwrap_or_default(), |p| sent.push((now, p)));
        });
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

// ---- the capsule ----------------------------------------------------------------------

/// A running capsule and the app's handle on it; stops its kernel thread when dropped.
pub struct Capsule {
    /// The app, talking to the kernel over the channel.
    pub app: Aliot<ChannelSyscalls>,
    /// What crossed its transport (when started with counting on).
    pub wire: WireLog,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Work on the kernel before its runner starts.
pub type Prepare = Box<dyn FnOnce(&mut Kernel) + Send>;

/// How to start a [`Capsule`].
pub struct Start {
    /// Where it dials (the emulator, or a proxy in front of it).
    pub mqtt_port: u16,
    /// MQTT version.
    pub version: MqttVersion,
    /// Log packets ([`CountingNetwork`]); off for instruction counts.
    pub count: bool,
    /// Run on the kernel before the runner starts (e.g. subscriptions queued before login).
    pub prepare: Option<Prepare>,
}

impl Capsule {
    /// Starts the kernel thread and greets it from this thread (the app's `Hello`).
    pub fn start(start: Start) -> Result<Capsule, String> {
        let config = config(start.version, "bench.capsule");
        let (req_tx, req_rx) = tokio::sync::mpsc::channel(8);
        let (resp_tx, resp_rx) = std_mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let wire = WireLog::default();
        let log = wire.clone();
        let Start {
            mqtt_port,
            count,
            prepare,
            ..
        } = start;
        let thread = std::thread::Builder::new()
            .name("kernel".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return eprintln!("capsule: runtime: {e}"),
                };
                runtime.block_on(async move {
                    let tls = match aliot_host::net::tls_config(None) {
                        Ok(t) => t,
                        Err(e) => return eprintln!("capsule: TLS config: {e}"),
                    };
                    let network = aliot_host::net::HostNetwork::new(
                        tls,
                        Some(("127.0.0.1".into(), mqtt_port)),
                    );
                    let port = ChannelPort {
                        requests: req_rx,
                        responses: resp_tx,
                        buffer: vec![0; MAX_FRAME_LEN],
                        phase: SETUP,
                    };
                    let mut kernel = Kernel::new(config);
                    if let Some(prepare) = prepare {
                        prepare(&mut kernel);
                    }
                    let credentials =
                        match DeviceSecretLogin::new(Secret::from(String::from(SECRET))) {
                            Ok(c) => c,
                            Err(e) => return eprintln!("capsule: credentials: {e:?}"),
                        };
                    let stop = async {
                        let _ = stop_rx.await;
                    };
                    let ran = if count {
                        let network = CountingNetwork::new(network, log);
                        run_over(&mut kernel, network, port, credentials, stop).await
                    } else {
                        run_over(&mut kernel, network, port, credentials, stop).await
                    };
                    if let Err(e) = ran {
                        eprintln!("capsule: {e:?}");
                    }
                })
            })
            .map_err(|e| format!("kernel thread: {e}"))?;
        let app = Aliot::new(ChannelSyscalls {
            requests: req_tx,
            responses: resp_rx,
        })
        .map_err(|e| format!("hello: {e:?}"))?;
        Ok(Capsule {
            app,
            wire,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Waits (at most `timeout_ms`) for the login.
    pub fn wait_connected(&mut self, timeout_ms: u64) -> Result<(), String> {
        let deadline = Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            if self.app.status().map_err(|e| format!("{e:?}"))?.connected {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the capsule did not log in within {timeout_ms} ms"));
            }
            let _ = self.app.next_event(50);
        }
    }

    /// Publishes [`PAYLOAD`] QoS 1 and waits for its result.
    pub fn publish_and_wait(&mut self, wait_ms: u32) -> Result<(), String> {
        let token = self
            .app
            .publish(TOPIC, &PAYLOAD, Qos::AtLeastOnce)
            .map_err(|e| format!("publish: {e:?}"))?;
        loop {
            match self
                .app
                .next_event(wait_ms)
                .map_err(|e| format!("event: {e:?}"))?
            {
                Some(Event::PublishResult {
                    token: t,
                    delivered,
                }) if t == token => {
                    return if delivered {
                        Ok(())
                    } else {
                        Err("a publish was not delivered".into())
                    };
                }
                Some(_) => {}
                None => return Err(format!("no publish result within {wait_ms} ms")),
            }
        }
    }

    /// Publishes `n` messages QoS 1 keeping at most `window` unacknowledged, and waits for
    /// every result.
    pub fn publish_windowed(&mut self, n: u32, window: u32, wait_ms: u32) -> Result<(), String> {
        let (mut sent, mut done, mut busy_waits) = (0u32, 0u32, 0u32);
        while done < n {
            while sent < n && sent - done < window {
                match self.app.publish(TOPIC, &PAYLOAD, Qos::AtLeastOnce) {
                    Ok(_) => sent += 1,
                    Err(aliot_app::AppError::Kernel(aliot_abi::ErrorCode::Busy)) => {
                        busy_waits += 1;
                        break;
                    }
                    Err(e) => return Err(format!("publish: {e:?}")),
                }
            }
            match self
                .app
                .next_event(wait_ms)
                .map_err(|e| format!("event: {e:?}"))?
            {
                Some(Event::PublishResult { delivered, .. }) => {
                    if !delivered {
                        return Err("a publish was not delivered".into());
                    }
                    done += 1;
                }
                Some(_) => {}
                None => return Err(format!("no publish result within {wait_ms} ms")),
            }
        }
        let _ = busy_waits;
        Ok(())
    }
}

impl Drop for Capsule {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
