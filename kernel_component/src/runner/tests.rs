//! The runner and its session machine on virtual time: a fake clock, a scripted network,
//! scripted links and a scripted app port. Nothing sleeps: when every future waits, the test
//! executor moves the clock to the earliest time anything waits for.
//!
//! Dials, links, what the client did on them and what a credential storage did go into one
//! ordered [`Journal`], so a test can check what happened before what (the 一型一密 tests in
//! [`registration`] check that the issued secret is stored before it is used).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{Future, pending, poll_fn};
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use aliot_abi::{ABI_MAJOR, ABI_MINOR, LinkStatus, Qos, Request, Response};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use super::*;
use crate::board::{Address, NetError};
use crate::config::*;
use crate::credentials::{DeviceSecretLogin, Secret};
use crate::kernel::AppId;
use crate::link::{Incoming, Outgoing, Sent};
use crate::ota::OtaOptions;

// ---- virtual time -----------------------------------------------------------------------

#[derive(Default)]
struct TimeState {
    now: Cell<u64>,
    /// Times something is waiting for, collected during one poll.
    wakeups: RefCell<Vec<u64>>,
    /// Clock reads since the time last moved: a runner that spins without waiting reads it
    /// without end.
    reads: Cell<u32>,
    /// The board's network time: from this monotonic instant, this Unix time (a modem that
    /// heard the network's time).
    network: Cell<Option<(u64, u64)>>,
}

#[derive(Clone, Default)]
struct Time(Rc<TimeState>);

impl Time {
    fn now(&self) -> u64 {
        self.0.now.get()
    }

    /// Something waits until `at`.
    fn wake_at(&self, at: u64) {
        self.0.wakeups.borrow_mut().push(at);
    }

    async fn until(&self, at: u64) {
        poll_fn(|_| {
            if self.now() >= at {
                Poll::Ready(())
            } else {
                self.wake_at(at);
                Poll::Pending
            }
        })
        .await
    }
}

impl Clock for Time {
    fn now_ms(&self) -> u64 {
        let reads = self.0.reads.get() + 1;
        assert!(reads < 100_000, "the runner spins at {} ms", self.now());
        self.0.reads.set(reads);
        self.now()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        self.until(deadline_ms).await
    }

    fn network_time_ms(&self) -> Option<u64> {
        let (from, unix) = self.0.network.get()?;
        let now = self.now();
        (now >= from).then(|| unix + (now - from))
    }
}

/// Set when a waker is woken: something (e.g. the OTA task's news) is ready without the time
/// moving.
#[derive(Default)]
struct Woken(core::sync::atomic::AtomicBool);

impl alloc::task::Wake for Woken {
    fn wake(self: alloc::sync::Arc<Self>) {
        self.0.store(true, core::sync::atomic::Ordering::SeqCst);
    }
}

/// Polls `future` until it completes, again at once when it was woken, else jumping the clock
/// to the earliest wake-up it waits for; `None` once nothing is due before `limit` (the
/// runner runs forever otherwise).
fn run_until_time<F: Future>(time: &Time, limit: u64, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let woken = alloc::sync::Arc::new(Woken::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        time.0.wakeups.borrow_mut().clear();
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        if woken.0.swap(false, core::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        let now = time.now();
        let next = time
            .0
            .wakeups
            .borrow()
            .iter()
            .copied()
            .filter(|at| *at > now)
            .min()?;
        if next > limit {
            return None;
        }
        time.0.now.set(next);
        time.0.reads.set(0);
    }
}

// ---- the journal ---------------------------------------------------------------------------

/// One thing the runner did, in order, across the network, the links and the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    /// A stream was dialled (`tls` as asked).
    Dial { tls: bool },
    /// The `link`th link (from 0) was made for an accepted stream.
    Link { link: usize, version: MqttVersion },
    /// A CONNECT on the `link`th link, with its strings.
    Connect {
        link: usize,
        client_id: String,
        username: String,
        password: String,
    },
    /// Anything else the client did on the `link`th link.
    Did { link: usize, did: Did },
    /// A credential storage was read.
    Load,
    /// A credential storage was asked to save `secret` (and `client_id` for a token); `ok`
    /// says whether it did.
    Save {
        secret: String,
        client_id: Option<String>,
        ok: bool,
    },
}

/// Shared by everything a [`World`] makes.
type Journal = Rc<RefCell<Vec<(u64, Ev)>>>;

// ---- the scripted network -----------------------------------------------------------------

/// What one dial does.
#[derive(Clone, Copy)]
enum Dial {
    Accept,
    Refuse(NetError),
    Hang,
}

/// A stream the scripted links never touch.
struct NoStream;

impl ErrorType for NoStream {
    type Error = ErrorKind;
}

impl Read for NoStream {
    async fn read(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
        Ok(0)
    }
}

impl Write for NoStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

struct Net {
    time: Time,
    plan: VecDeque<Dial>,
    /// When each dial started.
    dials: Rc<RefCell<Vec<u64>>>,
    journal: Journal,
}

impl Network for Net {
    type Stream = NoStream;

    async fn connect(&mut self, _: &str, _: u16, tls: bool) -> Result<NoStream, NetError> {
        self.dials.borrow_mut().push(self.time.now());
        self.journal
            .borrow_mut()
            .push((self.time.now(), Ev::Dial { tls }));
        match self.plan.pop_front().unwrap_or(Dial::Hang) {
            Dial::Accept => Ok(NoStream),
            Dial::Refuse(e) => Err(e),
            Dial::Hang => pending().await,
        }
    }

    fn describe<'a>(&'a self, _: &'a str, port: u16) -> impl core::fmt::Display + 'a {
        Address {
            host: "dialled.example",
            port,
        }
    }
}

/// Random numbers `next`, `next + step`, ... (wrapping). The default, all zeros, takes no
/// jitter from the backoff: every delay is the lowest of its step.
#[derive(Clone, Copy, Default)]
struct Counter {
    next: u32,
    step: u32,
}

impl Entropy for Counter {
    fn random_u32(&mut self) -> u32 {
        let n = self.next;
        self.next = n.wrapping_add(self.step);
        n
    }
}

// ---- scripted links -----------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Login {
    Accept,
    Refuse(LinkError),
    Hang,
}

/// A packet the scripted server sends.
#[derive(Clone)]
enum In {
    PingResp,
    PubAck(u16),
    SubAck(u16),
    Publish {
        topic: &'static str,
        payload: &'static [u8],
        pid: Option<u16>,
    },
    /// The first bytes of a packet whose rest never comes.
    Stall,
    /// The connection breaks.
    Fail(LinkError),
}

/// What the client did on the link, with the time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Did {
    Connect { keepalive: u16 },
    Publish { pid: u16 },
    Subscribe { pid: u16, filter: String },
    Ping,
    Ack(u16),
    Disconnect,
}

struct LinkState {
    login: Login,
    negotiated: Option<u16>,
    /// Answer each PINGREQ with a PINGRESP at once.
    pingresp: bool,
    /// Writes of packets from the kernel never complete.
    sends_hang: bool,
    /// Answer each PUBLISH (QoS 1) and SUBSCRIBE at once, as a broker does.
    acks: bool,
    incoming: VecDeque<(u64, In)>,
    did: Vec<(u64, Did)>,
    current: Option<In>,
}

impl LinkState {
    fn new(login: Login) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            login,
            negotiated: None,
            pingresp: true,
            sends_hang: false,
            acks: false,
            incoming: VecDeque::new(),
            did: Vec::new(),
            current: None,
        }))
    }
}

/// Shared script handle: the factory hands one to each new link, the test inspects them.
type Script = Rc<RefCell<LinkState>>;

fn did(script: &Script) -> Vec<(u64, Did)> {
    script.borrow().did.clone()
}

fn times_of(script: &Script, what: &Did) -> Vec<u64> {
    did(script)
        .into_iter()
        .filter(|(_, d)| d == what)
        .map(|(at, _)| at)
        .collect()
}

struct ScriptLink {
    time: Time,
    s: Script,
    /// Which link this is (from 0), for the journal.
    index: usize,
    journal: Journal,
}

impl ScriptLink {
    fn record(&self, what: Did) {
        let now = self.time.now();
        self.s.borrow_mut().did.push((now, what.clone()));
        if !matches!(what, Did::Connect { .. }) {
            self.journal.borrow_mut().push((
                now,
                Ev::Did {
                    link: self.index,
                    did: what,
                },
            ));
        }
    }

    /// The front packet, once it is due.
    fn due(&self) -> Option<In> {
        let s = self.s.borrow();
        let (at, packet) = s.incoming.front()?;
        (*at <= self.time.now()).then(|| packet.clone())
    }
}

impl MqttLink for ScriptLink {
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        self.record(Did::Connect {
            keepalive: params.keepalive_secs,
        });
        self.journal.borrow_mut().push((
            self.time.now(),
            Ev::Connect {
                link: self.index,
                client_id: params.client_id.into(),
                username: params.username.into(),
                password: params.password.into(),
            },
        ));
        let login = self.s.borrow().login;
        match login {
            Login::Accept => Ok(()),
            Login::Refuse(e) => Err(e),
            Login::Hang => pending().await,
        }
    }

    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError> {
        if self.s.borrow().sends_hang {
            return pending().await;
        }
        if self.s.borrow().acks {
            let now = self.time.now();
            let answer = match *packet {
                Outgoing::Publish { pid, .. } => Some(In::PubAck(pid)),
                Outgoing::Subscribe { pid, .. } => Some(In::SubAck(pid)),
                Outgoing::Unsubscribe { .. } => None,
            };
            self.s
                .borrow_mut()
                .incoming
                .extend(answer.map(|a| (now, a)));
        }
        self.record(match *packet {
            Outgoing::Publish { pid, .. } => Did::Publish { pid },
            Outgoing::Subscribe { pid, filter, .. } => Did::Subscribe {
                pid,
                filter: filter.into(),
            },
            Outgoing::Unsubscribe { .. } => unreachable!("no test unsubscribes"),
        });
        Ok(Sent::Written)
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        self.record(Did::Ping);
        let now = self.time.now();
        let mut s = self.s.borrow_mut();
        if s.pingresp {
            s.incoming.push_back((now, In::PingResp));
        }
        Ok(())
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        poll_fn(|_| match self.due() {
            Some(In::Fail(e)) => Poll::Ready(Err(e)),
            // Stalled: nothing more ever comes, and nothing to wake for.
            Some(In::Stall) => Poll::Pending,
            Some(_) => Poll::Ready(Ok(())),
            None => {
                if let Some((at, _)) = self.s.borrow().incoming.front() {
                    self.time.wake_at(*at);
                }
                Poll::Pending
            }
        })
        .await
    }

    fn partial(&self) -> bool {
        matches!(self.due(), Some(In::Stall))
    }

    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError> {
        // The session calls it after `ready` (a packet is due); the registration phase calls
        // it directly and waits here for the next one.
        let packet = poll_fn(|_| match self.due() {
            // Stalled: nothing more ever comes, and nothing to wake for.
            Some(In::Stall) => Poll::Pending,
            Some(_) => Poll::Ready(self.s.borrow_mut().incoming.pop_front()),
            None => {
                if let Some((at, _)) = self.s.borrow().incoming.front() {
                    self.time.wake_at(*at);
                }
                Poll::Pending
            }
        })
        .await;
        let Some((_, packet)) = packet else {
            unreachable!("a due packet was there")
        };
        if let In::Fail(e) = packet {
            return Err(e);
        }
        self.s.borrow_mut().current = Some(packet.clone());
        Ok(match packet {
            In::PingResp => Incoming::PingResp,
            In::PubAck(pid) => Incoming::PubAck(pid),
            In::SubAck(pid) => Incoming::SubAck { pid, granted: true },
            In::Publish {
                topic,
                payload,
                pid,
            } => Incoming::Publish {
                topic,
                payload,
                qos: if pid.is_some() {
                    Qos::AtLeastOnce
                } else {
                    Qos::AtMostOnce
                },
                pid,
            },
            In::Stall | In::Fail(_) => unreachable!("never announced by ready"),
        })
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        self.record(Did::Ack(pid));
        Ok(())
    }

    async fn disconnect(&mut self) {
        self.record(Did::Disconnect);
    }

    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        self.s.borrow().negotiated
    }
}

/// Hands out the scripted links in order, one per connection.
struct Links {
    time: Time,
    scripts: VecDeque<Script>,
    made: usize,
    journal: Journal,
}

impl LinkFactory<NoStream> for Links {
    type Link = ScriptLink;

    fn link(&mut self, _: NoStream, version: MqttVersion) -> ScriptLink {
        let index = self.made;
        self.made += 1;
        self.journal.borrow_mut().push((
            self.time.now(),
            Ev::Link {
                link: index,
                version,
            },
        ));
        ScriptLink {
            time: self.time.clone(),
            s: self
                .scripts
                .pop_front()
                .expect("a link script per accepted dial"),
            index,
            journal: self.journal.clone(),
        }
    }
}

// ---- the scripted app port ----------------------------------------------------------------

struct Port {
    time: Time,
    /// Syscalls (app, request) each made at a time.
    inputs: VecDeque<(u64, AppId, Vec<u8>)>,
    buffers: Vec<Vec<u8>>,
    /// Responses each app got, with the time. Their bytes are leaked (a few per test) so that
    /// events, which borrow them, can be kept too.
    responses: Rc<RefCell<Vec<(u64, AppId, Response<'static>)>>>,
    /// The raw bytes of each response, as the app got them.
    raw: Rc<RefCell<Vec<&'static [u8]>>>,
}

impl AppPort for Port {
    async fn recv(&mut self) -> AppInput {
        poll_fn(|_| match self.inputs.front() {
            Some((at, _, _)) if *at <= self.time.now() => {
                let (_, app, request) = self.inputs.pop_front().expect("front exists");
                let buffer = &mut self.buffers[usize::from(app)];
                buffer[..request.len()].copy_from_slice(&request);
                Poll::Ready(AppInput::Syscall {
                    app,
                    len: request.len(),
                })
            }
            Some((at, _, _)) => {
                self.time.wake_at(*at);
                Poll::Pending
            }
            None => Poll::Pending,
        })
        .await
    }

    fn buffer(&mut self, app: AppId) -> Option<&mut [u8]> {
        self.buffers.get_mut(usize::from(app)).map(|b| &mut b[..])
    }

    fn respond(&mut self, app: AppId, len: usize) {
        let bytes: &'static [u8] = self.buffers[usize::from(app)][..len].to_vec().leak();
        let response: Response<'static> = postcard::from_bytes(bytes).expect("a response");
        self.raw.borrow_mut().push(bytes);
        self.responses
            .borrow_mut()
            .push((self.time.now(), app, response));
    }
}

fn request(request: &Request<'_>) -> Vec<u8> {
    postcard::to_allocvec(request).expect("encodes")
}

fn hello() -> Vec<u8> {
    request(&Request::Hello {
        major: ABI_MAJOR,
        minor: ABI_MINOR,
    })
}

// ---- the device -------------------------------------------------------------------------

const GET: &str = "/pk/dn/user/get";

static APPS: [AppDef; 1] = [AppDef {
    name: "app",
    memory: 1024,
    publish: &["/pk/dn/user/update"],
    subscribe: &[GET],
    restart: RestartPolicy::OnFailure,
    settings: &[],
    budget: AppBudget {
        event_queue_bytes: 512,
        outbox_bytes: 512,
        max_payload: 64,
        subscriptions: 1,
    },
}];

static CONFIG: DeviceConfig = DeviceConfig {
    endpoint: Endpoint {
        host: "manifest.example",
        port: 1883,
        emulator: false,
    },
    mqtt_version: MqttVersion::V5,
    apps: &APPS,
    ..TEST_CONFIG
};

/// One scripted run.
struct World {
    time: Time,
    config: &'static DeviceConfig,
    dials: Vec<Dial>,
    links: Vec<Script>,
    inputs: Vec<(u64, AppId, Vec<u8>)>,
    timing: Timing,
    stop_at: Option<u64>,
    entropy: Counter,
    journal: Journal,
}

/// What a run left behind.
struct Outcome {
    /// `Some` when the runner returned before the time limit.
    returned: Option<Result<(), CredentialsError>>,
    dials: Vec<u64>,
    responses: Vec<(u64, AppId, Response<'static>)>,
    /// The bytes of each response in `responses`.
    raw: Vec<&'static [u8]>,
    journal: Vec<(u64, Ev)>,
    end: u64,
}

impl World {
    fn new(dials: Vec<Dial>, links: Vec<Script>) -> Self {
        Self {
            time: Time::default(),
            config: &CONFIG,
            dials,
            links,
            inputs: Vec::new(),
            timing: Timing::default(),
            stop_at: None,
            entropy: Counter::default(),
            journal: Journal::default(),
        }
    }

    /// Runs a 一机一密 device (DeviceSecret `s3cr3t`) until `limit` ms.
    fn run(self, limit: u64) -> Outcome {
        let credentials = DeviceSecretLogin::new(Secret::from(String::from("s3cr3t")))
            .expect("device secret login");
        self.run_with(credentials, limit)
    }

    /// Runs with `credentials` until `limit` ms.
    fn run_with<K: Credentials>(self, credentials: K, limit: u64) -> Outcome {
        self.run_full(credentials, limit, None, pending())
    }

    /// Runs a 一机一密 device with the OTA service until `limit` ms, `task` standing in for
    /// the download task beside the runner.
    fn run_with_ota(
        self,
        limit: u64,
        updates: &Updates,
        options: OtaOptions,
        task: impl Future<Output = ()>,
    ) -> Outcome {
        let credentials = DeviceSecretLogin::new(Secret::from(String::from("s3cr3t")))
            .expect("device secret login");
        self.run_full(credentials, limit, Some((updates, options)), task)
    }

    fn run_full<K: Credentials>(
        mut self,
        credentials: K,
        limit: u64,
        ota: Option<(&Updates, OtaOptions)>,
        task: impl Future<Output = ()>,
    ) -> Outcome {
        // The port takes them in order (stable: same-time syscalls keep theirs).
        self.inputs.sort_by_key(|(at, _, _)| *at);
        let time = self.time;
        let dials = Rc::new(RefCell::new(Vec::new()));
        let responses = Rc::new(RefCell::new(Vec::new()));
        let raw = Rc::new(RefCell::new(Vec::new()));
        let mut kernel = match ota {
            Some(_) => Kernel::with_services(self.config, crate::services::all(self.config)),
            None => Kernel::new(self.config),
        };
        let net = Net {
            time: time.clone(),
            plan: self.dials.into(),
            dials: dials.clone(),
            journal: self.journal.clone(),
        };
        let port = Port {
            time: time.clone(),
            inputs: self.inputs.into(),
            buffers: vec![vec![0; aliot_abi::MAX_FRAME_LEN]; APPS.len()],
            responses: responses.clone(),
            raw: raw.clone(),
        };
        let links = Links {
            time: time.clone(),
            scripts: self.links.into(),
            made: 0,
            journal: self.journal.clone(),
        };
        let mut runner = Runner::new(
            &mut kernel,
            net,
            time.clone(),
            self.entropy,
            port,
            credentials,
            self.timing,
        )
        .with_links(links);
        if let Some((updates, options)) = ota {
            runner = runner.with_ota(updates, options);
        }
        let stop_at = self.stop_at;
        let stop = {
            let time = time.clone();
            async move {
                match stop_at {
                    Some(at) => time.until(at).await,
                    None => pending().await,
                }
            }
        };
        let both = async {
            match select(runner.run_until(stop), task).await {
                Either::First(returned) => returned,
                Either::Second(()) => pending().await,
            }
        };
        let returned = run_until_time(&time, limit, both);
        Outcome {
            returned,
            dials: dials.borrow().clone(),
            responses: responses.borrow().clone(),
            raw: raw.borrow().clone(),
            journal: self.journal.borrow().clone(),
            end: time.now(),
        }
    }
}

/// A link that logs in and then has nothing to say unless told.
fn accepting() -> Script {
    LinkState::new(Login::Accept)
}

// ---- the tests ----------------------------------------------------------------------------

#[test]
fn keep_alive_timeout_ends_the_session() {
    let link = accepting();
    link.borrow_mut().pingresp = false;
    let out = World::new(vec![Dial::Accept], vec![link.clone()]).run(180_000);
    assert_eq!(out.returned, None, "runs until the limit");
    // Keep-alive 300 s: a PINGREQ after 150 s of silence, then 20 s for the PINGRESP.
    assert_eq!(times_of(&link, &Did::Ping), [150_000]);
    assert_eq!(
        times_of(&link, &Did::Disconnect),
        [170_000],
        "no PINGRESP within ping_ms: DISCONNECT"
    );
    // Backoff base 1 s, no jitter: the next dial half a second later.
    assert_eq!(out.dials, [0, 170_500]);
}

#[test]
fn answered_pings_keep_the_session() {
    let link = accepting();
    let out = World::new(vec![Dial::Accept], vec![link.clone()]).run(400_000);
    assert_eq!(out.returned, None);
    assert_eq!(times_of(&link, &Did::Ping), [150_000, 300_000]);
    assert!(times_of(&link, &Did::Disconnect).is_empty());
    assert_eq!(out.dials, [0]);
}

#[test]
fn connect_timeout_ends_the_attempt_and_apps_are_served_meanwhile() {
    let mut world = World::new(vec![Dial::Hang, Dial::Hang, Dial::Hang], vec![]);
    world.inputs.push((5_000, 0, hello()));
    let out = world.run(40_000);
    // 15 s to connect, then 0.5 s, 1 s of backoff.
    assert_eq!(out.dials, [0, 15_500, 31_500]);
    assert!(
        matches!(
            out.responses.as_slice(),
            [(5_000, 0, Response::Welcome { .. })]
        ),
        "the app is answered while the stream is opening: {:?}",
        out.responses
    );
}

#[test]
fn login_timeout_ends_the_attempt_without_disconnect() {
    let link = LinkState::new(Login::Hang);
    let out = World::new(vec![Dial::Accept, Dial::Hang], vec![link.clone()]).run(20_000);
    assert_eq!(times_of(&link, &Did::Connect { keepalive: 300 }), [0]);
    // No CONNACK within 15 s: the next dial after 0.5 s of backoff.
    assert_eq!(out.dials, [0, 15_500]);
    assert!(times_of(&link, &Did::Disconnect).is_empty());
}

#[test]
fn a_stalled_packet_body_ends_the_session_while_apps_are_served() {
    let link = accepting();
    link.borrow_mut().incoming.push_back((1_000, In::Stall));
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.inputs.push((2_000, 0, hello()));
    world.inputs.push((3_000, 0, request(&Request::Status)));
    let out = world.run(30_000);
    let answered: Vec<u64> = out.responses.iter().map(|(at, _, _)| *at).collect();
    assert_eq!(
        answered,
        [2_000, 3_000],
        "syscalls answered during the stall"
    );
    assert!(matches!(
        out.responses[1].2,
        Response::Status(LinkStatus {
            connected: true,
            ..
        })
    ));
    // The first bytes came at 1 s; io_ms is 20 s.
    assert_eq!(times_of(&link, &Did::Disconnect), [21_000]);
    assert_eq!(out.dials, [0, 21_500]);
}

#[test]
fn backoff_resets_only_after_a_good_login() {
    let refused = || LinkState::new(Login::Refuse(LinkError::Refused(Refusal::BadCredentials)));
    let good = accepting();
    good.borrow_mut()
        .incoming
        .push_back((10_000, In::Fail(LinkError::Network)));
    let out = World::new(
        vec![Dial::Accept; 4],
        vec![refused(), refused(), good, accepting()],
    )
    .run(20_000);
    // Refused twice after a TCP connect each time: the backoff grows (0.5 s, 1 s); the good
    // login resets it, so the break at 10 s is followed by 0.5 s again.
    assert_eq!(out.dials, [0, 500, 1_500, 10_500]);
}

#[test]
fn the_mqtt5_server_keep_alive_is_honoured() {
    let link = accepting();
    link.borrow_mut().negotiated = Some(10);
    let out = World::new(vec![Dial::Accept], vec![link.clone()]).run(16_000);
    assert_eq!(out.returned, None);
    // We asked for 300 s; the server said 10 s: ping every 5 s.
    assert_eq!(times_of(&link, &Did::Connect { keepalive: 300 }), [0]);
    assert_eq!(times_of(&link, &Did::Ping), [5_000, 10_000, 15_000]);
}

#[test]
fn an_overdue_acknowledgement_ends_the_session() {
    let link = accepting();
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.inputs.push((0, 0, hello()));
    world.inputs.push((
        0,
        0,
        request(&Request::Subscribe {
            filter: GET,
            qos: Qos::AtLeastOnce,
            token: 1,
        }),
    ));
    let out = world.run(25_000);
    assert_eq!(
        did(&link)[..2],
        [
            (0, Did::Connect { keepalive: 300 }),
            (
                0,
                Did::Subscribe {
                    pid: 1,
                    filter: GET.into()
                }
            )
        ]
    );
    // No SUBACK within ack_ms (20 s).
    assert_eq!(times_of(&link, &Did::Disconnect), [20_000]);
    assert_eq!(out.dials, [0, 20_500]);
}

#[test]
fn subscriptions_are_restored_after_a_reconnect_and_messages_acknowledged() {
    let first = accepting();
    {
        let mut s = first.borrow_mut();
        s.incoming.push_back((100, In::SubAck(1)));
        s.incoming.push_back((
            200,
            In::Publish {
                topic: GET,
                payload: b"hi",
                pid: Some(7),
            },
        ));
        s.incoming.push_back((1_000, In::Fail(LinkError::Network)));
    }
    let second = accepting();
    let mut world = World::new(vec![Dial::Accept; 2], vec![first.clone(), second.clone()]);
    world.inputs.push((0, 0, hello()));
    world.inputs.push((
        0,
        0,
        request(&Request::Subscribe {
            filter: GET,
            qos: Qos::AtLeastOnce,
            token: 1,
        }),
    ));
    let out = world.run(5_000);
    assert_eq!(out.dials, [0, 1_500]);
    let subscribes = |script: &Script| -> Vec<u64> {
        did(script)
            .into_iter()
            .filter(|(_, d)| matches!(d, Did::Subscribe { filter, .. } if filter == GET))
            .map(|(at, _)| at)
            .collect()
    };
    assert_eq!(subscribes(&first), [0]);
    assert_eq!(
        times_of(&first, &Did::Ack(7)),
        [200],
        "taken, then acknowledged"
    );
    assert_eq!(subscribes(&second), [1_500], "restored on login");
}

#[test]
fn a_write_that_does_not_complete_ends_the_session_without_disconnect() {
    let link = accepting();
    link.borrow_mut().sends_hang = true;
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.inputs.push((1_000, 0, hello()));
    world.inputs.push((
        1_000,
        0,
        request(&Request::Subscribe {
            filter: GET,
            qos: Qos::AtLeastOnce,
            token: 1,
        }),
    ));
    let out = world.run(30_000);
    // The SUBSCRIBE write starts at 1 s and is given io_ms (20 s).
    assert_eq!(out.dials, [0, 21_500]);
    assert!(
        times_of(&link, &Did::Disconnect).is_empty(),
        "a link cut short mid-write says nothing more"
    );
}

#[test]
fn stop_when_logged_in_says_disconnect_and_returns() {
    let link = accepting();
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.stop_at = Some(5_000);
    let out = world.run(60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 5_000, "returns at once");
    assert_eq!(times_of(&link, &Did::Disconnect), [5_000]);
    assert_eq!(out.dials, [0]);
}

#[test]
fn stop_while_connecting_or_backing_off_returns_without_a_word() {
    let mut world = World::new(vec![Dial::Hang], vec![]);
    world.stop_at = Some(3_000);
    let out = world.run(60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 3_000);

    let mut world = World::new(vec![Dial::Refuse(NetError::Connect)], vec![]);
    world.timing.backoff_base_ms = 10_000;
    world.stop_at = Some(3_000);
    let out = world.run(60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 3_000);
    assert_eq!(out.dials, [0], "no new attempt after the stop");
}

#[test]
fn stop_during_a_write_drops_the_link_without_disconnect() {
    let link = accepting();
    link.borrow_mut().sends_hang = true;
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.inputs.push((0, 0, hello()));
    world.inputs.push((
        0,
        0,
        request(&Request::Subscribe {
            filter: GET,
            qos: Qos::AtLeastOnce,
            token: 1,
        }),
    ));
    world.stop_at = Some(2_000);
    let out = world.run(60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 2_000);
    assert!(times_of(&link, &Did::Disconnect).is_empty());
}

#[test]
fn a_provider_of_the_wrong_mode_fails_before_any_connection() {
    static REGISTER: DeviceConfig = {
        let mut config = CONFIG;
        config.auth = AuthMode::ProductSecretRegister;
        config
    };
    let mut world = World::new(vec![Dial::Accept], vec![accepting()]);
    world.config = &REGISTER;
    let out = world.run(60_000);
    assert_eq!(
        out.returned,
        Some(Err(CredentialsError::WrongMode {
            configured: AuthMode::ProductSecretRegister
        }))
    );
    assert!(out.dials.is_empty());
}

mod registration;

// ---- OTA ----------------------------------------------------------------------------------

#[test]
fn news_from_the_download_task_wakes_the_listening_runner_which_stops_for_the_reboot() {
    let link = accepting();
    link.borrow_mut().acks = true;
    let updates = Updates::new(crate::ota::updates::BootKind::Normal);
    let time = Time::default();
    let mut world = World::new(vec![Dial::Accept], vec![link.clone()]);
    world.time = time.clone();
    // The task: a job's image is ready at 42 s (the agent reports 100 and asks to reboot).
    let task = async {
        time.until(42_000).await;
        let generation = updates.offer(crate::ota::testkit::job(b"image"));
        updates.post_end(
            generation,
            crate::ota::updates::End::Ready {
                version: "2.0.0".try_into().unwrap(),
            },
        );
        pending::<()>().await
    };
    let out = world.run_with_ota(600_000, &updates, OtaOptions::default(), task);
    assert_eq!(out.returned, Some(Ok(())), "the runner stopped by itself");
    assert!(updates.reboot_requested());
    let grace = OtaOptions::default().reboot_grace_ms;
    let disconnects = times_of(&link, &Did::Disconnect);
    assert_eq!(disconnects.len(), 1, "{:?}", did(&link));
    assert!(
        (42_000..=42_000 + grace).contains(&disconnects[0]),
        "woken at once, not at the next keep-alive: {disconnects:?}"
    );
    let reported_at: Vec<u64> = did(&link)
        .iter()
        .filter(|(at, d)| *at >= 42_000 && matches!(d, Did::Publish { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert!(
        reported_at.iter().any(|at| *at <= disconnects[0]),
        "the 100 report went out before the DISCONNECT: {:?}",
        did(&link)
    );
}

#[test]
fn a_trial_image_that_cannot_log_in_stops_the_runner_for_the_reverting_reboot() {
    let refused = LinkState::new(Login::Refuse(LinkError::Refused(Refusal::BadCredentials)));
    let updates = Updates::new(crate::ota::updates::BootKind::Trial);
    let options = OtaOptions {
        trial_login_ms: 120_000,
        ..OtaOptions::default()
    };
    let world = World::new(vec![Dial::Accept; 64], vec![refused.clone(); 64]);
    let out = world.run_with_ota(600_000, &updates, options, pending());
    assert_eq!(out.returned, Some(Ok(())));
    assert!(updates.reboot_requested());
    assert!(
        (120_000..125_000).contains(&out.end),
        "at the trial deadline: {}",
        out.end
    );
}

#[test]
fn apps_get_the_board_s_network_time_once_it_has_one() {
    const UNIX_MS: u64 = 1_764_547_200_000;
    let mut world = World::new(vec![Dial::Accept], vec![accepting()]);
    world.time.0.network.set(Some((5_000, UNIX_MS)));
    world.inputs.push((1_000, 0, hello()));
    world.inputs.push((2_000, 0, request(&Request::Time)));
    world.inputs.push((7_000, 0, request(&Request::Time)));
    let out = world.run(10_000);
    let times: Vec<(u64, Response<'static>)> = out
        .responses
        .iter()
        .filter(|(_, _, r)| matches!(r, Response::Time(_)))
        .map(|(at, _, r)| (*at, r.clone()))
        .collect();
    assert_eq!(
        times,
        [
            (2_000, Response::Time(None)),
            (
                7_000,
                Response::Time(Some(aliot_abi::WallClock {
                    unix_ms: UNIX_MS + 2_000,
                    source: aliot_abi::TimeSource::Network,
                    accuracy_ms: 1_000,
                }))
            ),
        ]
    );
}
