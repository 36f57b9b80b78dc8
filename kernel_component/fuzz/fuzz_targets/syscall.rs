//! ABI frames from three apps (and a fourth, out-of-range app id) into the kernel's syscall
//! handler, mixed with what the network does (connect, link down, packets written or refused,
//! acknowledgements, incoming PUBLISHes), app exits, expired waits and a kernel service's calls.
//!
//! The input is a list of steps (at most `MAX_STEPS` are run); each starts with one byte: low
//! nibble = what, high nibble = an argument (the app id for syscalls, modulo 4). Frames are raw bytes (`0..=6`: one or two
//! length bytes, then the frame) or built from the next bytes (`7`: a well-formed request on
//! the topics below, so the fuzzer gets past the decoder and the grants quickly).
//!
//! Checked after every step (besides: no panic, no hang):
//! - **isolation**: a syscall from app `a` leaves every other client's kernel state (grants,
//!   event queue bytes, outbox bytes, subscriptions, pending wait, greeting) exactly as it was
//!   (`Kernel::client_snapshot`: the queues' bytes and the rest's `Debug` text); from an
//!   out-of-range id it changes no client and is answered `Error(Malformed)`;
//! - every answer fits the lent buffer, is not empty and decodes as a `Response`; a `Welcome`
//!   names the caller; a blocked answer (`None`) comes only for an in-range app;
//! - **ACL on the way in**: every `Message` event an app or the service takes matches one of
//!   that client's own subscribe grants in the manifest;
//! - **ACL on the way out**: every PUBLISH the kernel hands the link is on a topic some client
//!   may publish to, every SUBSCRIBE / UNSUBSCRIBE is for a filter some client's subscribe
//!   grant covers; payloads are within `MAX_PAYLOAD_LEN`;
//! - a packet id handed out for a QoS 1 PUBLISH, SUBSCRIBE or UNSUBSCRIBE is not 0 and not
//!   one still awaiting its acknowledgement on this connection.

#![no_main]

use std::collections::BTreeMap;

use aliot_abi::{
    ABI_MAJOR, DisconnectReason, ErrorCode, Event, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, Qos, Request,
    Response,
};
use aliot_kernel::budget::AppBudget;
use aliot_kernel::config::{AppDef, DeviceConfig, RestartPolicy};
use aliot_kernel::kernel::{Kernel, Outgoing};
use aliot_kernel::topic::{filter_covers, filter_matches};
use aliot_kernel_fuzz::{DEVICE, Input};
use libfuzzer_sys::fuzz_target;

const fn app(
    name: &'static str,
    publish: &'static [&'static str],
    subscribe: &'static [&'static str],
    event_queue_bytes: u32,
    outbox_bytes: u32,
    max_payload: u32,
    subscriptions: u16,
) -> AppDef {
    AppDef {
        name,
        memory: 4096,
        publish,
        subscribe,
        restart: RestartPolicy::Always,
        settings: &[],
        budget: AppBudget {
            event_queue_bytes,
            outbox_bytes,
            max_payload,
            subscriptions,
        },
    }
}

/// Three apps whose grants overlap (`wild` shares filters with both others), with queues just
/// above the manifest's minimum for their largest payload so they fill up often.
static APPS: [AppDef; 3] = [
    app(
        "pub",
        &["/pk/dn/user/update"],
        &["/pk/dn/user/get"],
        200,
        200,
        32,
        2,
    ),
    app(
        "echo",
        &["/pk/dn/user/update", "/pk/dn/user/update/error"],
        &["/pk/dn/user/ceshi", "/pk/dn/user/cmd/#"],
        512,
        400,
        128,
        3,
    ),
    app(
        "wild",
        &["/pk/dn/user/#"],
        &["/pk/dn/user/+", "/pk/dn/user/cmd/#"],
        300,
        300,
        64,
        4,
    ),
];

/// One kernel service (the OTA service's grants).
static SERVICES: [AppDef; 1] = [app(
    "ota",
    &["/ota/device/progress/pk/dn"],
    &["/ota/device/upgrade/pk/dn"],
    400,
    300,
    128,
    1,
)];

static CONFIG: DeviceConfig = DeviceConfig {
    apps: &APPS,
    ..DEVICE
};

/// Topics requests and incoming messages use (granted, not granted, invalid).
const TOPICS: &[&str] = &[
    "/pk/dn/user/update",
    "/pk/dn/user/update/error",
    "/pk/dn/user/get",
    "/pk/dn/user/ceshi",
    "/pk/dn/user/cmd/reboot",
    "/pk/dn/user/other",
    "/ota/device/upgrade/pk/dn",
    "/ota/device/progress/pk/dn",
    "/sys/pk/dn/thing/event/property/post",
    "/pk/dn/user/+",
    "",
];

/// Filters requests use.
const FILTERS: &[&str] = &[
    "/pk/dn/user/get",
    "/pk/dn/user/ceshi",
    "/pk/dn/user/cmd/#",
    "/pk/dn/user/cmd/+",
    "/pk/dn/user/+",
    "/pk/dn/user/#",
    "/pk/dn/#",
    "#",
    "/ota/device/upgrade/pk/dn",
    "/pk/dn/user/cmd/reboot",
    "/pk/dn/user//",
    "",
];

/// Steps of one input that are run (the rest is ignored).
const MAX_STEPS: usize = 64;

/// Clients: the apps, then the service.
const CLIENTS: usize = APPS.len() + SERVICES.len();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Publish,
    Subscribe,
    Unsubscribe,
}

fn grant_of(client: usize) -> &'static AppDef {
    APPS.get(client)
        .or_else(|| SERVICES.get(client - APPS.len()))
        .expect("a client")
}

/// Writes each client's state (`Kernel::client_snapshot`) into `out`, reusing its memory.
fn states(k: &Kernel, out: &mut [Vec<u8>; CLIENTS]) {
    for (c, bytes) in out.iter_mut().enumerate() {
        bytes.clear();
        assert!(k.client_snapshot(c, bytes), "a client");
    }
}

/// An incoming message `event` may reach `client` only through its manifest grants.
fn check_event(client: usize, event: &Event<'_>) {
    if let Event::Message { topic, .. } = event {
        let def = grant_of(client);
        assert!(
            def.subscribe.iter().any(|g| filter_matches(g, topic)),
            "{} received a message on {topic}, which its grants {:?} do not cover",
            def.name,
            def.subscribe
        );
    }
}

/// A request built from the input: something the kernel will mostly accept.
fn request<'a>(input: &mut Input<'a>, arg: u8) -> Request<'a> {
    let what = input.byte();
    let pick = usize::from(input.byte());
    let qos = if what & 0x10 == 0 {
        Qos::AtMostOnce
    } else {
        Qos::AtLeastOnce
    };
    let token = u32::from(input.byte());
    match what % 6 {
        0 => Request::Hello {
            major: ABI_MAJOR,
            minor: u16::from(arg),
        },
        1 => {
            let len = usize::from(input.byte());
            Request::Publish {
                topic: TOPICS[pick % TOPICS.len()],
                payload: input.bytes(len),
                qos,
                token,
            }
        }
        2 => Request::Subscribe {
            filter: FILTERS[pick % FILTERS.len()],
            qos,
            token,
        },
        3 => Request::Unsubscribe {
            filter: FILTERS[pick % FILTERS.len()],
        },
        4 => Request::WaitEvent {
            timeout_ms: u32::from(arg) * 100,
        },
        _ => Request::Status,
    }
}

struct Run {
    k: Kernel,
    now: u64,
    buf: Vec<u8>,
    /// Packet ids written and not acknowledged yet, on this connection.
    outstanding: BTreeMap<u16, Kind>,
    /// The clients' states around a syscall.
    before: [Vec<u8>; CLIENTS],
    after: [Vec<u8>; CLIENTS],
}

impl Run {
    /// One syscall from `app` with `buf[..len]`, and every check on it.
    fn syscall(&mut self, app: u8, len: usize) {
        states(&self.k, &mut self.before);
        let answer = self.k.syscall(app, &mut self.buf, len, self.now);
        states(&self.k, &mut self.after);
        let caller = usize::from(app);
        for (c, (b, a)) in self.before.iter().zip(&self.after).enumerate() {
            // An out-of-range id (3 is the service's client index) may change nobody.
            assert!(
                (c == caller && caller < APPS.len()) || b == a,
                "a syscall from app {app} changed client {c}:\nbefore {b:?}\nafter  {a:?}"
            );
        }
        let Some(n) = answer else {
            assert!(
                caller < APPS.len(),
                "app {app} out of range was left waiting"
            );
            return;
        };
        assert!(n > 0 && n <= self.buf.len(), "answer of {n} bytes");
        let response: Response<'_> =
            postcard::from_bytes(&self.buf[..n]).expect("the answer decodes");
        match response {
            Response::Welcome { app_id, .. } => assert_eq!(app_id, app),
            Response::Event(ref event) => check_event(caller, event),
            _ => {}
        }
        if caller >= APPS.len() {
            assert_eq!(response, Response::Error(ErrorCode::Malformed));
        }
    }

    /// What the link would write next.
    fn poll(&mut self, busy: bool) {
        let Some(out) = self.k.poll_outgoing(self.now) else {
            return;
        };
        let (pid, kind) = match out {
            Outgoing::Publish {
                pid,
                topic,
                payload,
                qos,
                ..
            } => {
                assert!(
                    (0..CLIENTS)
                        .any(|c| grant_of(c).publish.iter().any(|g| filter_matches(g, topic))),
                    "PUBLISH on {topic}, which no client may publish to"
                );
                assert!(payload.len() <= MAX_PAYLOAD_LEN);
                ((qos == Qos::AtLeastOnce).then_some(pid), Kind::Publish)
            }
            Outgoing::Subscribe { pid, filter, .. } | Outgoing::Unsubscribe { pid, filter } => {
                assert!(
                    (0..CLIENTS).any(|c| grant_of(c)
                        .subscribe
                        .iter()
                        .any(|g| filter_covers(g, filter))),
                    "(UN)SUBSCRIBE of {filter}, which no client's grants cover"
                );
                let kind = if matches!(out, Outgoing::Subscribe { .. }) {
                    Kind::Subscribe
                } else {
                    Kind::Unsubscribe
                };
                (Some(pid), kind)
            }
        };
        if let Some(pid) = pid {
            assert_ne!(pid, 0, "packet id 0");
            assert!(
                !self.outstanding.contains_key(&pid),
                "packet id {pid} handed out while still awaiting its acknowledgement"
            );
        }
        if busy {
            self.k.on_send_busy();
        } else {
            self.k.on_written();
            if let Some(pid) = pid {
                self.outstanding.insert(pid, kind);
            }
        }
    }

    fn ack(&mut self, input: &mut Input<'_>, arg: u8) {
        let pick = input.byte();
        if arg & 8 != 0 || self.outstanding.is_empty() {
            // Any identifier, any acknowledgement: unknown ones must be ignored.
            let pid = u16::from_be_bytes([input.byte(), pick]);
            match arg % 5 {
                0 => self.k.on_puback(pid),
                1 => self.k.on_pub_rejected(pid),
                2 => self.k.on_suback(pid, true),
                3 => self.k.on_suback(pid, false),
                _ => self.k.on_unsuback(pid),
            }
            if let Some(kind) = self.outstanding.get(&pid) {
                let matched = matches!(
                    (arg % 5, kind),
                    (0 | 1, Kind::Publish) | (2 | 3, Kind::Subscribe) | (4, Kind::Unsubscribe)
                );
                if matched {
                    self.outstanding.remove(&pid);
                }
            }
            return;
        }
        let (&pid, &kind) = self
            .outstanding
            .iter()
            .nth(usize::from(pick) % self.outstanding.len())
            .expect("not empty");
        self.outstanding.remove(&pid);
        match kind {
            Kind::Publish if arg & 1 == 0 => self.k.on_puback(pid),
            Kind::Publish => self.k.on_pub_rejected(pid),
            Kind::Subscribe => self.k.on_suback(pid, arg & 1 == 0),
            Kind::Unsubscribe => self.k.on_unsuback(pid),
        }
    }

    fn service(&mut self, input: &mut Input<'_>, arg: u8) {
        let request = request(input, arg);
        let _ = self.k.service_call(0, request);
        let mut buf = [0u8; MAX_FRAME_LEN];
        if let Some(event) = self.k.service_event(0, &mut buf) {
            check_event(APPS.len(), &event);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut run = Run {
        k: Kernel::with_services(&CONFIG, &SERVICES),
        now: 1_000,
        buf: vec![0u8; MAX_FRAME_LEN],
        outstanding: BTreeMap::new(),
        before: Default::default(),
        after: Default::default(),
    };
    // Bounded: each syscall copies every client's state twice (the isolation check).
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        run.now += 1;
        let op = input.byte();
        let arg = op >> 4;
        match op & 0x0F {
            kind @ 0..=6 => {
                let app = arg % 4;
                let mut len = usize::from(input.byte());
                if kind == 6 {
                    len |= usize::from(input.byte()) << 8;
                }
                let frame = input.bytes(len.min(MAX_FRAME_LEN));
                run.buf[..frame.len()].copy_from_slice(frame);
                run.syscall(app, frame.len());
            }
            7 => {
                let app = arg % 4;
                let request = request(&mut input, arg);
                let len = postcard::to_slice(&request, &mut run.buf)
                    .expect("a request fits")
                    .len();
                run.syscall(app, len);
            }
            8 => {
                run.k.on_connected();
                run.outstanding.clear();
            }
            9 => {
                let reason = match arg % 5 {
                    0 => DisconnectReason::Network,
                    1 => DisconnectReason::AuthRejected,
                    2 => DisconnectReason::ServerClosed,
                    3 => DisconnectReason::KeepAliveTimeout,
                    _ => DisconnectReason::Protocol,
                };
                run.k.on_link_down(reason);
                run.outstanding.clear();
            }
            10 => run.poll(arg & 1 != 0),
            11 => run.ack(&mut input, arg),
            12 => {
                let topic = TOPICS[usize::from(input.byte()) % TOPICS.len()];
                let len = usize::from(input.byte()) * usize::from(arg % 4 + 1);
                let payload = input.bytes(len);
                let qos = if arg & 8 == 0 {
                    Qos::AtMostOnce
                } else {
                    Qos::AtLeastOnce
                };
                let _ = run.k.on_publish(topic, payload, qos);
            }
            13 => run.k.app_exited(arg % 4),
            14 => {
                if let Some(app) = run.k.ready_app(run.now) {
                    assert!(usize::from(app) < APPS.len());
                    let n = run.k.answer_wait(app, &mut run.buf);
                    let response: Response<'_> =
                        postcard::from_bytes(&run.buf[..n]).expect("the answer decodes");
                    if let Response::Event(event) = response {
                        check_event(usize::from(app), &event);
                    }
                } else {
                    run.now += u64::from(input.byte()) * 100;
                }
            }
            _ => run.service(&mut input, arg),
        }
    }
});
