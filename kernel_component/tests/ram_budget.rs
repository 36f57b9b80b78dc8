//! The kernel's heap never exceeds the worst case the build prints
//! ([`aliot_kernel::budget::worst_case_ram`]), whatever apps and the network do: every queue
//! full of largest messages, restarts while offline, subscribe and unsubscribe storms.
//!
//! A counting global allocator measures the heap; this file is its own test binary, so nothing
//! else runs under it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use aliot_abi::{ABI_MAJOR, ABI_MINOR, MAX_FRAME_LEN, MAX_TOPIC_LEN, Qos, Request, Response};
use aliot_kernel::budget::{AppBudget, worst_case_ram};
use aliot_kernel::config::*;
use aliot_kernel::kernel::{AppId, Delivery, Kernel, Outgoing};

struct Counting;

static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Only the test's own thread is counted: the test harness's other threads allocate at
    /// times of their own (seen: a peak 900 B higher in one run of twenty).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            let size = layout.size() as isize;
            let now = CURRENT.fetch_add(size, Ordering::SeqCst) + size;
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            CURRENT.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        }
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PK_TOPIC: &str = "/a1NrfDemo01/nrf9160-dk-01/user/";

fn long(prefix: &str) -> String {
    let mut t = String::from(prefix);
    while t.len() < MAX_TOPIC_LEN {
        t.push('x');
    }
    t
}

static APPS: std::sync::LazyLock<&'static [AppDef]> = std::sync::LazyLock::new(|| {
    let update: &'static str = Box::leak(long(&format!("{PK_TOPIC}update/")).into_boxed_str());
    let publish: &'static [&'static str] = Box::leak(vec![update].into_boxed_slice());
    let wild: &'static str = Box::leak(format!("{PK_TOPIC}#").into_boxed_str());
    let subscribe: &'static [&'static str] = Box::leak(vec![wild].into_boxed_slice());
    let app = |name, budget| AppDef {
        name,
        memory: 16384,
        publish,
        subscribe,
        restart: RestartPolicy::Always,
        settings: &[],
        budget,
    };
    Box::leak(Box::new([
        app(
            "small",
            AppBudget {
                event_queue_bytes: 2048,
                outbox_bytes: 4096,
                max_payload: 1024,
                subscriptions: 4,
            },
        ),
        app(
            "large",
            AppBudget {
                event_queue_bytes: 4608,
                outbox_bytes: 8960,
                max_payload: 4096,
                subscriptions: 8,
            },
        ),
    ]))
});

fn config() -> &'static DeviceConfig {
    Box::leak(Box::new(DeviceConfig {
        product_key: "a1NrfDemo01",
        device_name: "nrf9160-dk-01",
        client_id: "a1NrfDemo01.nrf9160-dk-01",
        auth: AuthMode::DeviceSecret,
        secret: SecretSource::Provisioned,
        registration: RegistrationConfig {
            transport: RegistrationTransport::Mqtt,
            instance_id: None,
            https: Endpoint {
                host: "localhost",
                port: 443,
                emulator: true,
            },
        },
        credentials_partition: FlashPartition {
            offset: 0,
            size: 8192,
            erase_page: 4096,
        },
        ota: NRF9160_OTA,
        endpoint: Endpoint {
            host: "localhost",
            port: 1883,
            emulator: true,
        },
        mqtt_version: MqttVersion::V311,
        tls: TlsConfig {
            enabled: true,
            ca_file: None,
        },
        keepalive_secs: 300,
        sign_method: SignMethod::HmacSha256,
        topics: &[],
        apps: *APPS,
        kernel_ram_budget: 49152,
    }))
}

struct Driver {
    kernel: Kernel,
    buf: Vec<u8>,
}

impl Driver {
    fn call(&mut self, app: AppId, request: &Request<'_>) -> Response<'_> {
        let len = postcard::to_slice(request, &mut self.buf).unwrap().len();
        let n = self
            .kernel
            .syscall(app, &mut self.buf, len, 0)
            .expect("answered at once");
        postcard::from_bytes(&self.buf[..n]).unwrap()
    }

    fn hello(&mut self, app: AppId) {
        let r = self.call(
            app,
            &Request::Hello {
                major: ABI_MAJOR,
                minor: ABI_MINOR,
            },
        );
        assert!(matches!(r, Response::Welcome { .. }));
    }

    /// Publishes largest messages until the outbox refuses; returns how many were taken.
    fn fill_outbox(&mut self, app: AppId, topic: &str, payload: &[u8]) -> u32 {
        let mut taken = 0;
        loop {
            let r = self.call(
                app,
                &Request::Publish {
                    topic,
                    payload,
                    qos: Qos::AtLeastOnce,
                    token: taken,
                },
            );
            match r {
                Response::Accepted { .. } => taken += 1,
                Response::Error(aliot_abi::ErrorCode::Busy) => return taken,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn write_everything(&mut self) {
        while let Some(packet) = self.kernel.poll_outgoing(0) {
            let sub = match packet {
                Outgoing::Subscribe { pid, .. } => Some(pid),
                _ => None,
            };
            self.kernel.on_written();
            if let Some(pid) = sub {
                self.kernel.on_suback(pid, true);
            }
        }
    }
}

#[test]
fn the_heap_stays_within_the_printed_worst_case() {
    let config = config();
    let budgets: Vec<AppBudget> = config.apps.iter().map(|a| a.budget).collect();
    let report = worst_case_ram(&budgets, config.mqtt_version);
    let update = config.apps[0].publish[0];
    let filter = config.apps[0].subscribe[0];
    let topic = long(PK_TOPIC);
    let payloads = [vec![0xa5u8; 1024], vec![0x5au8; 4096]];
    let buf = vec![0; MAX_FRAME_LEN];
    // The runner's OTA agent (its buffer is the runner's, allocated once).
    let updates =
        aliot_kernel::ota::updates::Updates::new(aliot_kernel::ota::updates::BootKind::Normal);
    let mut ota = aliot_kernel::ota::OtaAgent::new(
        config,
        aliot_kernel::ota::OTA_SERVICE,
        &updates,
        aliot_kernel::ota::OtaOptions::default(),
    );
    let upgrade = format!(
        "/ota/device/upgrade/{}/{}",
        config.product_key, config.device_name
    );
    let push = vec![b'{'; aliot_kernel::ota::MAX_MESSAGE as usize];
    let ntp = format!(
        "/ext/ntp/{}/{}/response",
        config.product_key, config.device_name
    );
    let ntp_answer = vec![b'{'; aliot_kernel::platform_time::MAX_MESSAGE as usize];
    // Everything above is the test's own; from here on the heap grows only by the kernel's
    // (and only this thread's allocations are counted).
    COUNTED.with(|c| c.set(true));
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let mut driver = Driver {
        kernel: Kernel::with_services(config, aliot_kernel::services::all(config)),
        buf,
    };
    let kernel_at_boot = CURRENT.load(Ordering::SeqCst) - before;
    // The runner's time agent (it allocates nothing: its topics are the kernel's).
    let time_service = aliot_kernel::platform_time::TIME_SERVICE;
    let mut time = aliot_kernel::platform_time::TimeAgent::new(
        driver.kernel.service_def(time_service).unwrap(),
        time_service,
        aliot_kernel::platform_time::TimeOptions::default(),
    )
    .unwrap();

    for round in 0..8 {
        for app in 0..2u8 {
            driver.hello(app);
            let r = driver.call(
                app,
                &Request::Subscribe {
                    filter,
                    qos: Qos::AtLeastOnce,
                    token: 1,
                },
            );
            assert!(matches!(r, Response::Accepted { .. }));
            // Subscribe storm: repeats never grow a table.
            for token in 2..200 {
                driver.call(
                    app,
                    &Request::Subscribe {
                        filter,
                        qos: Qos::AtLeastOnce,
                        token,
                    },
                );
            }
            let taken = driver.fill_outbox(app, update, &payloads[usize::from(app)]);
            if round == 0 {
                assert!(taken >= 1, "app {app} queued at least one largest message");
            }
        }
        // Online: the OTA service announces itself, the time service asks; fill every event
        // queue with largest messages, the OTA service's with largest pushes, the time
        // service's with largest answers.
        driver.kernel.on_connected();
        ota.on_login(&mut driver.kernel);
        time.on_login(&mut driver.kernel, 0);
        time.poll(&mut driver.kernel, 0);
        driver.write_everything();
        let mut answers_refused = 0;
        for _ in 0..8 {
            if driver
                .kernel
                .on_publish(&ntp, &ntp_answer, Qos::AtLeastOnce)
                == Delivery::Refused
            {
                answers_refused += 1;
            }
        }
        assert!(
            answers_refused > 0,
            "the time service's queue really filled"
        );
        let mut pushes_refused = 0;
        for _ in 0..8 {
            if driver.kernel.on_publish(&upgrade, &push, Qos::AtLeastOnce) == Delivery::Refused {
                pushes_refused += 1;
            }
        }
        assert!(pushes_refused > 0, "the OTA service's queue really filled");
        let mut refused = 0;
        for _ in 0..64 {
            if driver
                .kernel
                .on_publish(&topic, &payloads[0], Qos::AtLeastOnce)
                == Delivery::Refused
            {
                refused += 1;
            }
            driver
                .kernel
                .on_publish(&topic, &payloads[1], Qos::AtMostOnce);
        }
        assert!(refused > 0, "the event queues really filled");
        // Offline restarts with full outboxes.
        driver
            .kernel
            .on_link_down(aliot_abi::DisconnectReason::Network);
        for app in 0..2u8 {
            driver.kernel.app_exited(app);
        }
    }
    assert!(
        driver.kernel.pending_publishes() > 0,
        "QoS 1 messages were held across restarts"
    );
    COUNTED.with(|c| c.set(false));
    let peak = PEAK.load(Ordering::SeqCst) - before;
    let limit = report.kernel_heap() as isize;
    println!(
        "kernel heap: at boot {kernel_at_boot} B, peak {peak} B, worst case {limit} B \
         (total with link buffers {} B)",
        report.total()
    );
    assert!(
        peak <= limit,
        "peak {peak} B exceeds the printed worst case {limit} B"
    );
    assert_eq!(
        peak, kernel_at_boot,
        "the kernel allocates everything at boot and nothing after"
    );
}
