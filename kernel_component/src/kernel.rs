//! The sans-IO heart of the capsule: per-client grants, subscriptions, event queues and the
//! outboxes of messages waiting for the network.
//!
//! Nothing here performs I/O or reads a clock. The runner lends it syscall buffers, network
//! happenings (connected, link down, PUBLISH, PUBACK, SUBACK) and the current time; it answers
//! into the lent buffer and hands out [`Outgoing`] packets to put on the wire. That keeps every
//! rule (ACL before network, resend after reconnect, bounded queues) testable without a socket.
//!
//! Memory: every queue is a fixed ring (`kernel/ring.rs`) sized from the client's
//! [`crate::budget::AppBudget`] and allocated in [`Kernel::new`]; the subscription tables and
//! the in-flight table are reserved there too. After boot the kernel does not allocate, so its
//! worst case is [`crate::budget::worst_case_ram`] whatever apps or the network send.
//!
//! Clients are the manifest's apps (ids `0..apps`, reached through syscalls) followed by the
//! kernel's own services (registration, OTA, time: [`Kernel::with_services`]), which use the
//! same handlers through [`Kernel::service_call`] with grants of their own. A message on a
//! topic a service subscribed to goes to services only, never to an app.

use alloc::vec::Vec;

use crate::watch::LinkWatch;
use aliot_abi::{
    ABI_MAJOR, ABI_MINOR, DisconnectReason, ErrorCode, Event, LinkStatus, MAX_PAYLOAD_LEN,
    MAX_TOPIC_LEN, OtaStatus, Qos, REQUEST_VARIANTS, Registration, Request, Response, TimeSource,
    WallClock,
};

use crate::budget::event_record_bytes;
use crate::config::{AppDef, AuthMode, DeviceConfig};
use crate::topic::{filter_covers, filter_matches, validate_filter, validate_topic};

mod grants;
mod inflight;
mod outbox;
mod ring;

pub use crate::link::Outgoing;
use grants::Grants;
use inflight::{InFlight, Waiting};
use outbox::Outbox;
use ring::{Ring, Slot};

/// Index of a client: an app in the manifest (`0..apps`), then the kernel's services.
pub type AppId = u8;

/// Index of a kernel service among [`Kernel::with_services`]' list.
pub type ServiceId = usize;

/// How long a written SUBSCRIBE, UNSUBSCRIBE or QoS 1 PUBLISH may wait for its acknowledgement
/// before the session is considered broken (then everything is resent on a new connection).
pub const DEFAULT_ACK_TIMEOUT_MS: u32 = 30_000;

/// A topic filter, stored inline (no allocation per subscription).
type Filter = heapless::String<MAX_TOPIC_LEN>;

/// What the kernel did with an incoming PUBLISH.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every matching client's queue took it (or it can never be taken and was counted as
    /// dropped): acknowledge it.
    Taken {
        /// Clients it was queued for.
        clients: usize,
    },
    /// A matching client's queue is full right now: do not acknowledge a QoS 1 message, so the
    /// platform delivers it again, and queue it for nobody (no duplicates on the resend).
    Refused,
}

/// What a syscall turned into, before the edge encodes it.
enum Answer {
    /// Answer with this response now.
    Now(Response<'static>),
    /// Answer with the app's next queued event (known to be there).
    Event,
    /// The app waits in `WaitEvent`; [`Kernel::ready_app`] says when to answer.
    Wait,
}

/// One subscription of one client.
#[derive(Debug)]
struct ClientSub {
    filter: Filter,
    qos: Qos,
    /// Token of the `Subscribe` that made (or last confirmed) it.
    token: u32,
    /// Its `SubscribeResult` is still owed.
    pending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// To be written (first time or after a reconnect).
    Unsent,
    /// Written with this packet id; awaiting SUBACK.
    Sent(u16),
    /// Acknowledged on this connection.
    Active,
}

/// One filter of the MQTT session: the union of the clients' subscriptions.
#[derive(Debug)]
struct SessionSub {
    filter: Filter,
    qos: Qos,
    state: SubState,
    /// A client asked for a higher QoS while the SUBSCRIBE was on the wire: write it again.
    resend: bool,
}

/// An UNSUBSCRIBE to write (`pid` None) or awaiting UNSUBACK.
#[derive(Debug)]
struct Unsub {
    filter: Filter,
    pid: Option<u16>,
}

/// The packet handed out by [`Kernel::poll_outgoing`], until the runner says how writing it went.
#[derive(Debug, Clone, Copy)]
enum Writing {
    Publish {
        client: usize,
        slot: Slot,
        before: outbox::Header,
        pid: Option<u16>,
    },
    Subscribe(u16),
    Unsubscribe(u16),
}

/// A client's event queue and the greeting that opens it.
#[derive(Debug)]
struct Inbox {
    /// `Hello` accepted (services: always); events are queued only while greeted.
    greeted: bool,
    /// ABI minor the app announced; events of later minors are not sent to it.
    minor: u16,
    ring: Ring,
    /// Events lost since the app last took one (reported as `Overflow` first).
    dropped: u32,
}

impl Inbox {
    fn has_event(&self) -> bool {
        self.dropped > 0 || !self.ring.is_empty()
    }

    /// Queues `event`, or counts it as dropped when the queue is full.
    fn push(&mut self, event: &Event<'_>) {
        if !self.greeted || event.since_minor() > self.minor {
            return;
        }
        let max = match event {
            Event::Message { topic, payload, .. } => message_body_bytes(topic, payload),
            _ => SMALL_EVENT_BYTES,
        };
        let response = Response::Event(event.clone());
        let pushed = self.ring.push_encoded(max, |dst| {
            postcard::to_slice(&response, dst).ok().map(|s| s.len())
        });
        if pushed.is_none() {
            self.drop_one();
        }
    }

    fn drop_one(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
    }

    /// Writes the next event (an overflow count first) as a whole response into `buf`.
    fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.dropped > 0 {
            let dropped = core::mem::take(&mut self.dropped);
            return Some(encode(buf, &Response::Event(Event::Overflow { dropped })));
        }
        while let Some(slot) = self.ring.front() {
            let record = self.ring.get(slot).unwrap_or_default();
            let copied = buf.get_mut(..record.len()).map(|dst| {
                dst.copy_from_slice(record);
                record.len()
            });
            self.ring.pop_front();
            match copied {
                Some(len) => return Some(len),
                // The lent buffer cannot hold it: count it lost rather than wedge the queue.
                None => self.drop_one(),
            }
        }
        None
    }

    /// The result of a publish made by run `generation` of the app: dropped if it has restarted.
    fn result(&mut self, current: u32, generation: u32, event: Event<'_>) {
        if current == generation {
            self.push(&event);
        }
    }
}

/// Upper bound of the encoded `Response::Event(Event::Message { .. })` for a message (the ring
/// record without its header).
fn message_body_bytes(topic: &str, payload: &[u8]) -> usize {
    event_record_bytes(topic.len() as u32, payload.len() as u32) as usize - ring::RECORD_HEADER
}

/// Largest encoded response carrying an event other than a message (`PublishResult` with a
/// 5-byte token is 8 bytes), with headroom.
const SMALL_EVENT_BYTES: usize = 16;

#[derive(Debug)]
struct Client {
    def: &'static AppDef,
    grants: Grants,
    service: bool,
    inbox: Inbox,
    outbox: Outbox,
    subs: Vec<ClientSub>,
    wait_deadline: Option<u64>,
    /// Bumped on every restart so results of a dead run's publishes are not delivered to its
    /// successor.
    generation: u32,
}

impl Client {
    fn new(def: &'static AppDef, service: bool) -> Self {
        let budget = def.budget;
        Self {
            def,
            grants: Grants::new(def),
            service,
            inbox: Inbox {
                greeted: service,
                minor: ABI_MINOR,
                ring: Ring::new(budget.event_queue_bytes as usize),
                dropped: 0,
            },
            outbox: Outbox::new(budget.outbox_bytes as usize),
            subs: Vec::with_capacity(usize::from(budget.subscriptions)),
            wait_deadline: None,
            generation: 0,
        }
    }

    fn max_payload(&self) -> usize {
        (self.def.budget.max_payload as usize).min(MAX_PAYLOAD_LEN)
    }

    fn holds(&self, filter: &str) -> bool {
        self.subs.iter().any(|s| s.filter == filter)
    }
}

/// Encodes `response` into `buf`; 0 when even that does not fit (a board bug: lent buffers
/// hold at least [`aliot_abi::MAX_FRAME_LEN`]).
fn encode(buf: &mut [u8], response: &Response<'_>) -> usize {
    postcard::to_slice(response, buf).map_or(0, |s| s.len())
}

/// The kernel state. One per device.
#[derive(Debug)]
pub struct Kernel {
    config: &'static DeviceConfig,
    clients: Vec<Client>,
    apps: usize,
    session: Vec<SessionSub>,
    unsubs: Vec<Unsub>,
    in_flight: InFlight,
    writing: Option<Writing>,
    /// The link could not take a packet; nothing more is offered until an acknowledgement.
    link_busy: bool,
    connected: bool,
    connects: u32,
    last_down: Option<DisconnectReason>,
    /// Client whose outbox is offered first next time (round robin).
    next_client: usize,
    ack_timeout_ms: u32,
    refused_inbound: u32,
    registration: Registration,
    ota: OtaStatus,
    /// The wall-clock time, once learnt ([`Kernel::set_wall_time`]).
    wall: Option<WallAnchor>,
    /// The board's view of the link, kept current (see [`crate::watch`]).
    watch: Option<&'static LinkWatch>,
}

/// The wall-clock time learnt at a monotonic instant.
#[derive(Debug, Clone, Copy)]
struct WallAnchor {
    unix_ms: u64,
    at_ms: u64,
    source: TimeSource,
    accuracy_ms: u32,
}

/// Bytes of the kernel's fixed tables for `clients` clients (see [`crate::budget`]).
pub(crate) const fn fixed_bytes(clients: usize) -> usize {
    core::mem::size_of::<Kernel>() + clients * core::mem::size_of::<Client>() + InFlight::bytes()
}

/// Bytes one subscription slot costs across the tables: the client's entry, and the session
/// filter and pending UNSUBSCRIBE it may add.
pub(crate) const fn subscription_slot_bytes() -> usize {
    core::mem::size_of::<ClientSub>()
        + core::mem::size_of::<SessionSub>()
        + core::mem::size_of::<Unsub>()
}

impl Kernel {
    /// A kernel for the apps in `config`, link down. Allocates every queue now.
    pub fn new(config: &'static DeviceConfig) -> Self {
        Self::with_services(config, &[])
    }

    /// A kernel for the apps in `config` plus kernel-internal `services` (each with grants and a
    /// budget of its own, reached through [`Kernel::service_call`]).
    pub fn with_services(config: &'static DeviceConfig, services: &'static [AppDef]) -> Self {
        let mut clients = Vec::with_capacity(config.apps.len() + services.len());
        clients.extend(config.apps.iter().map(|def| Client::new(def, false)));
        clients.extend(services.iter().map(|def| Client::new(def, true)));
        let slots: usize = clients
            .iter()
            .map(|c| usize::from(c.def.budget.subscriptions))
            .sum();
        Self {
            config,
            apps: config.apps.len(),
            clients,
            session: Vec::with_capacity(slots),
            unsubs: Vec::with_capacity(slots),
            in_flight: InFlight::new(),
            writing: None,
            link_busy: false,
            connected: false,
            connects: 0,
            last_down: None,
            next_client: 0,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            refused_inbound: 0,
            registration: match config.auth {
                AuthMode::DeviceSecret => Registration::NotNeeded,
                _ => Registration::Registering,
            },
            ota: OtaStatus::Idle,
            wall: None,
            watch: None,
        }
    }

    /// Keep `watch` current from now on: the session's ups and downs and the update's phase,
    /// for a board to show while the runner holds the kernel.
    pub fn set_watch(&mut self, watch: &'static LinkWatch) {
        watch.set_connected(self.connected);
        watch.set_ota(self.ota);
        self.watch = Some(watch);
    }

    /// Where 一型一密 registration stands, for [`LinkStatus::registration`] (the runner
    /// reports each change).
    pub fn set_registration(&mut self, state: Registration) {
        self.registration = state;
    }

    /// Where 一型一密 registration stands.
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// Where a firmware update stands, for [`LinkStatus::ota`] (the OTA service reports each
    /// change).
    pub fn set_ota_status(&mut self, status: OtaStatus) {
        self.ota = status;
        if let Some(w) = self.watch {
            w.set_ota(status);
        }
    }

    /// The wall-clock time was `unix_ms` at monotonic `at_ms`, learnt from `source` to within
    /// `accuracy_ms`: what [`Request::Time`] answers from now on, carried forward on the
    /// monotonic clock. The latest learnt time wins (each source is read when it is fresh).
    pub fn set_wall_time(
        &mut self,
        unix_ms: u64,
        at_ms: u64,
        source: TimeSource,
        accuracy_ms: u32,
    ) {
        self.wall = Some(WallAnchor {
            unix_ms,
            at_ms,
            source,
            accuracy_ms,
        });
    }

    /// The wall-clock time at monotonic `now_ms`, if the kernel has learnt it. A `now_ms`
    /// before the anchor (a caller's stale clock reading) gives the anchor's time.
    pub fn wall_time(&self, now_ms: u64) -> Option<WallClock> {
        self.wall.map(|w| WallClock {
            unix_ms: w.unix_ms.saturating_add(now_ms.saturating_sub(w.at_ms)),
            source: w.source,
            accuracy_ms: w.accuracy_ms,
        })
    }

    /// Sets how long an acknowledgement may take (see [`DEFAULT_ACK_TIMEOUT_MS`]).
    pub fn set_ack_timeout_ms(&mut self, ms: u32) {
        self.ack_timeout_ms = ms;
    }

    /// The configuration this kernel serves.
    pub fn config(&self) -> &'static DeviceConfig {
        self.config
    }

    // ---- the syscall edge -------------------------------------------------------------

    /// One syscall from app `app` at `now_ms`: the request is the postcard bytes in
    /// `buf[..len]` (a buffer the board lends: the app's own on the MPU board, a pipe buffer on
    /// the host). The response is written into `buf` and its length returned; `None` when the
    /// app is now blocked in `WaitEvent` (see [`Kernel::ready_app`]).
    pub fn syscall(
        &mut self,
        app: AppId,
        buf: &mut [u8],
        len: usize,
        now_ms: u64,
    ) -> Option<usize> {
        let index = usize::from(app);
        let answer = if index >= self.apps {
            Err(ErrorCode::Malformed)
        } else {
            match buf.get(..len) {
                None => Err(ErrorCode::Malformed),
                Some(bytes) => match postcard::from_bytes::<Request<'_>>(bytes) {
                    Ok(request) => self.request(index, request, now_ms),
                    Err(_) => Err(self.undecodable(index, bytes)),
                },
            }
        };
        match answer {
            Ok(Answer::Now(response)) => Some(encode(buf, &response)),
            Err(code) => Some(encode(buf, &Response::Error(code))),
            Ok(Answer::Event) => {
                let client = self.clients.get_mut(index)?;
                Some(
                    client
                        .inbox
                        .take(buf)
                        .unwrap_or_else(|| encode(buf, &Response::NoEvent)),
                )
            }
            Ok(Answer::Wait) => None,
        }
    }

    /// Why bytes that are not a [`Request`] were refused.
    fn undecodable(&mut self, index: usize, bytes: &[u8]) -> ErrorCode {
        let Some(client) = self.clients.get_mut(index) else {
            return ErrorCode::Malformed;
        };
        match bytes.first() {
            // A Hello of another shape: another major.
            Some(0) => {
                client.inbox.greeted = false;
                ErrorCode::AbiMismatch
            }
            _ if !client.inbox.greeted => ErrorCode::AbiMismatch,
            Some(&tag) if tag >= REQUEST_VARIANTS => ErrorCode::Unsupported,
            _ => ErrorCode::Malformed,
        }
    }

    fn request(
        &mut self,
        index: usize,
        request: Request<'_>,
        now_ms: u64,
    ) -> Result<Answer, ErrorCode> {
        let client = self.clients.get_mut(index).ok_or(ErrorCode::Malformed)?;
        if let Request::Hello { major, minor } = request {
            if major != ABI_MAJOR {
                log_warn!(
                    "app {}: ABI {}.{} refused (kernel speaks {}.{})",
                    client.def.name,
                    major,
                    minor,
                    ABI_MAJOR,
                    ABI_MINOR
                );
                client.inbox.greeted = false;
                return Err(ErrorCode::AbiMismatch);
            }
            if !client.inbox.greeted {
                client.inbox.greeted = true;
                client.inbox.minor = minor;
            }
            return Ok(Answer::Now(Response::Welcome {
                major: ABI_MAJOR,
                minor: ABI_MINOR,
                app_id: index as AppId,
            }));
        }
        if !client.inbox.greeted {
            return Err(ErrorCode::AbiMismatch);
        }
        if let Request::WaitEvent { timeout_ms } = request {
            if client.inbox.has_event() {
                return Ok(Answer::Event);
            }
            if timeout_ms == 0 {
                return Ok(Answer::Now(Response::NoEvent));
            }
            client.wait_deadline = Some(now_ms.saturating_add(u64::from(timeout_ms)));
            return Ok(Answer::Wait);
        }
        if let Request::Time = request {
            return Ok(Answer::Now(Response::Time(self.wall_time(now_ms))));
        }
        self.handle(index, request).map(Answer::Now)
    }

    /// The requests that are answered at once, for apps and services alike.
    fn handle(
        &mut self,
        index: usize,
        request: Request<'_>,
    ) -> Result<Response<'static>, ErrorCode> {
        match request {
            Request::Publish {
                topic,
                payload,
                qos,
                token,
            } => self
                .publish(index, topic, payload, qos, token)
                .map(|()| Response::Accepted { token }),
            Request::Subscribe { filter, qos, token } => self
                .subscribe(index, filter, qos, token)
                .map(|()| Response::Accepted { token }),
            Request::Unsubscribe { filter } => {
                self.unsubscribe(index, filter).map(|()| Response::Ok)
            }
            Request::Status => Ok(Response::Status(self.status(index))),
            // Answered by `request` (apps); a service reads `Kernel::wall_time` itself.
            Request::Hello { .. } | Request::WaitEvent { .. } | Request::Time => {
                Err(ErrorCode::Unsupported)
            }
        }
    }

    fn status(&self, index: usize) -> LinkStatus {
        let pending = self.clients.get(index).map_or(0, |c| {
            let generation = c.generation;
            c.outbox
                .count(|h| h.qos == Qos::AtLeastOnce && h.generation == generation)
        });
        LinkStatus {
            connected: self.connected,
            connects: self.connects,
            pending_publishes: u16::try_from(pending).unwrap_or(u16::MAX),
            registration: self.registration,
            ota: self.ota,
        }
    }

    fn publish(
        &mut self,
        index: usize,
        topic: &str,
        payload: &[u8],
        qos: Qos,
        token: u32,
    ) -> Result<(), ErrorCode> {
        let connected = self.connected;
        let client = self.clients.get_mut(index).ok_or(ErrorCode::Malformed)?;
        if validate_topic(topic).is_err() {
            return Err(ErrorCode::InvalidTopic);
        }
        if payload.len() > client.max_payload() {
            return Err(ErrorCode::PayloadTooLarge);
        }
        if !client.grants.may_publish(topic) {
            log_warn!(
                "app {}: publish to {} refused: not granted by the manifest",
                client.def.name,
                topic
            );
            return Err(ErrorCode::NotPermitted);
        }
        if qos == Qos::AtMostOnce && !connected {
            return Err(ErrorCode::NotConnected);
        }
        let generation = client.generation;
        client
            .outbox
            .push(topic, payload, qos, token, generation)
            .map(|_| ())
            .ok_or(ErrorCode::Busy)
    }

    fn subscribe(
        &mut self,
        index: usize,
        filter: &str,
        qos: Qos,
        token: u32,
    ) -> Result<(), ErrorCode> {
        let client = self.clients.get_mut(index).ok_or(ErrorCode::Malformed)?;
        if validate_filter(filter).is_err() {
            return Err(ErrorCode::InvalidTopic);
        }
        if !client
            .def
            .subscribe
            .iter()
            .any(|g| filter_covers(g, filter))
        {
            log_warn!(
                "app {}: subscribe to {} refused: not granted by the manifest",
                client.def.name,
                filter
            );
            return Err(ErrorCode::NotPermitted);
        }
        let name = Filter::try_from(filter).map_err(|_| ErrorCode::InvalidTopic)?;
        let session = self.session.iter_mut().find(|s| s.filter == filter);
        let active = session
            .as_ref()
            .is_some_and(|s| s.state == SubState::Active);
        let upgrade =
            qos == Qos::AtLeastOnce && session.as_ref().is_some_and(|s| s.qos == Qos::AtMostOnce);
        let existing = client.subs.iter_mut().find(|s| s.filter == filter);
        let granted_now = active && !upgrade;
        match existing {
            // One unanswered Subscribe per filter and client: the table cannot grow by repeats.
            Some(sub) if sub.pending => return Err(ErrorCode::Busy),
            Some(sub) => {
                sub.token = token;
                sub.pending = !granted_now;
                if qos == Qos::AtLeastOnce {
                    sub.qos = qos;
                }
            }
            None => {
                if client.subs.len() >= usize::from(client.def.budget.subscriptions) {
                    return Err(ErrorCode::Busy);
                }
                if session.is_none() && self.session.len() >= self.session.capacity() {
                    return Err(ErrorCode::Busy);
                }
                client.subs.push(ClientSub {
                    filter: name.clone(),
                    qos,
                    token,
                    pending: !granted_now,
                });
            }
        }
        if granted_now {
            client.inbox.push(&Event::SubscribeResult {
                token,
                granted: true,
            });
            return Ok(());
        }
        match self.session.iter_mut().find(|s| s.filter == filter) {
            Some(s) => {
                if upgrade {
                    s.qos = Qos::AtLeastOnce;
                    match s.state {
                        SubState::Active => s.state = SubState::Unsent,
                        SubState::Sent(_) => s.resend = true,
                        SubState::Unsent => {}
                    }
                }
            }
            None => self.session.push(SessionSub {
                filter: name,
                qos,
                state: SubState::Unsent,
                resend: false,
            }),
        }
        Ok(())
    }

    fn unsubscribe(&mut self, index: usize, filter: &str) -> Result<(), ErrorCode> {
        let client = self.clients.get_mut(index).ok_or(ErrorCode::Malformed)?;
        let pos = client
            .subs
            .iter()
            .position(|s| s.filter == filter)
            .ok_or(ErrorCode::NotSubscribed)?;
        let last_holder = !self
            .clients
            .iter()
            .enumerate()
            .any(|(i, c)| i != index && c.holds(filter));
        if last_holder
            && self.needs_unsubscribe(filter)
            && self.unsubs.len() >= self.unsubs.capacity()
        {
            // Too many UNSUBSCRIBEs unanswered: refuse rather than grow or lose the order.
            return Err(ErrorCode::Busy);
        }
        if let Some(client) = self.clients.get_mut(index) {
            client.subs.remove(pos);
        }
        self.release_filter_if_unused(filter);
        Ok(())
    }

    /// Whether dropping `filter` from the session takes an UNSUBSCRIBE on the wire.
    fn needs_unsubscribe(&self, filter: &str) -> bool {
        self.connected
            && self
                .session
                .iter()
                .any(|s| s.filter == filter && s.state != SubState::Unsent)
    }

    /// Drops the MQTT-level subscription when no client holds `filter` any more.
    fn release_filter_if_unused(&mut self, filter: &str) {
        if self.clients.iter().any(|c| c.holds(filter)) {
            return;
        }
        let needs_unsubscribe = self.needs_unsubscribe(filter);
        let Some(pos) = self.session.iter().position(|s| s.filter == filter) else {
            return;
        };
        let sub = self.session.swap_remove(pos);
        if needs_unsubscribe {
            if self.unsubs.len() < self.unsubs.capacity() {
                self.unsubs.push(Unsub {
                    filter: sub.filter,
                    pid: None,
                });
            } else {
                log_warn!(
                    "no room to unsubscribe {}; its messages reach no app until the next connection",
                    filter
                );
            }
        }
    }

    /// The app's process died or was restarted: forget its session (subscriptions, queue,
    /// greeting). Its accepted QoS 1 messages are still delivered to the platform (nothing
    /// accepted is lost) and keep holding its outbox bytes until then, but their results are
    /// not reported to the next instance.
    pub fn app_exited(&mut self, app: AppId) {
        let index = usize::from(app);
        if index >= self.apps {
            return;
        }
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        client.inbox.greeted = false;
        client.inbox.minor = ABI_MINOR;
        client.inbox.ring.clear();
        client.inbox.dropped = 0;
        client.wait_deadline = None;
        client.generation = client.generation.wrapping_add(1);
        client
            .outbox
            .remove_where(|h| h.qos == Qos::AtMostOnce && !h.sent(), |_| {});
        let subs = core::mem::take(&mut client.subs);
        for sub in &subs {
            self.release_filter_if_unused(&sub.filter);
        }
        // Give the table its reserved room back (no allocation: the capacity is reused).
        let mut subs = subs;
        subs.clear();
        if let Some(client) = self.clients.get_mut(index) {
            client.subs = subs;
        }
    }

    // ---- answers for blocked apps -------------------------------------------------------

    /// An app blocked in `WaitEvent` whose event arrived or whose wait expired.
    pub fn ready_app(&self, now_ms: u64) -> Option<AppId> {
        self.clients
            .iter()
            .take(self.apps)
            .position(|c| {
                c.wait_deadline
                    .is_some_and(|deadline| c.inbox.has_event() || now_ms >= deadline)
            })
            .map(|i| i as AppId)
    }

    /// Answers `app`'s pending `WaitEvent` into `buf` (an event, or `NoEvent` when its wait
    /// expired); returns the response length.
    pub fn answer_wait(&mut self, app: AppId, buf: &mut [u8]) -> usize {
        let Some(client) = self.clients.get_mut(usize::from(app)) else {
            return 0;
        };
        client.wait_deadline = None;
        client
            .inbox
            .take(buf)
            .unwrap_or_else(|| encode(buf, &Response::NoEvent))
    }

    /// Forgets `app`'s pending `WaitEvent` (the board cannot answer it).
    pub fn cancel_wait(&mut self, app: AppId) {
        if let Some(client) = self.clients.get_mut(usize::from(app)) {
            client.wait_deadline = None;
        }
    }

    /// When [`Kernel::ready_app`] must be asked next even if nothing happens.
    pub fn next_deadline(&self) -> Option<u64> {
        self.clients.iter().filter_map(|c| c.wait_deadline).min()
    }

    // ---- kernel services ----------------------------------------------------------------

    /// A request from kernel service `service` (Publish, Subscribe, Unsubscribe, Status),
    /// checked against the service's own grants exactly as an app's.
    pub fn service_call(
        &mut self,
        service: ServiceId,
        request: Request<'_>,
    ) -> Result<Response<'static>, ErrorCode> {
        let index = self.apps + service;
        if index >= self.clients.len() {
            return Err(ErrorCode::Malformed);
        }
        self.handle(index, request)
    }

    /// The definition kernel service `service` was made with, if the kernel has it.
    pub fn service_def(&self, service: ServiceId) -> Option<&'static AppDef> {
        self.clients
            .get(self.apps.checked_add(service)?)
            .map(|c| c.def)
    }

    /// The next event for kernel service `service`, decoded from `buf` (which it is copied into).
    pub fn service_event<'b>(
        &mut self,
        service: ServiceId,
        buf: &'b mut [u8],
    ) -> Option<Event<'b>> {
        let client = self.clients.get_mut(self.apps + service)?;
        let len = client.inbox.take(buf)?;
        match postcard::from_bytes::<Response<'b>>(buf.get(..len)?) {
            Ok(Response::Event(event)) => Some(event),
            _ => None,
        }
    }

    // ---- the network side ---------------------------------------------------------------

    /// The next packet to write, if the link is up and can take one. UNSUBSCRIBEs go first
    /// (so one filter's operations keep their order on the wire), then SUBSCRIBEs (after a
    /// reconnect the device listens again before it talks), then publishes, taking clients in
    /// turn. Report the outcome with [`Kernel::on_written`] or [`Kernel::on_send_busy`].
    pub fn poll_outgoing(&mut self, now_ms: u64) -> Option<Outgoing<'_>> {
        if !self.connected || self.link_busy {
            return None;
        }
        self.writing = None;
        if let Some(i) = self.unsubs.iter().position(|u| u.pid.is_none()) {
            let pid = self.in_flight.allocate(Waiting::Unsubscribe, now_ms)?;
            let unsub = self.unsubs.get_mut(i)?;
            unsub.pid = Some(pid);
            self.writing = Some(Writing::Unsubscribe(pid));
            return Some(Outgoing::Unsubscribe {
                pid,
                filter: &unsub.filter,
            });
        }
        if let Some(i) = self
            .session
            .iter()
            .position(|s| s.state == SubState::Unsent)
        {
            let pid = self.in_flight.allocate(Waiting::Subscribe, now_ms)?;
            let sub = self.session.get_mut(i)?;
            sub.state = SubState::Sent(pid);
            self.writing = Some(Writing::Subscribe(pid));
            return Some(Outgoing::Subscribe {
                pid,
                filter: &sub.filter,
                qos: sub.qos,
            });
        }
        self.poll_publish(now_ms)
    }

    fn poll_publish(&mut self, now_ms: u64) -> Option<Outgoing<'_>> {
        let count = self.clients.len();
        let (client, slot, header) = (0..count).find_map(|step| {
            let client = (self.next_client + step) % count;
            let outbox = &self.clients.get(client)?.outbox;
            let slot = outbox.first_unsent()?;
            let header = outbox.header(slot)?;
            // A QoS 1 message waits for a free packet id; later ones of this client wait
            // behind it, in order.
            let can = header.qos == Qos::AtMostOnce || !self.in_flight.is_full();
            can.then_some((client, slot, header))
        })?;
        self.next_client = (client + 1) % count;
        let pid = match header.qos {
            Qos::AtLeastOnce => Some(
                self.in_flight
                    .allocate(Waiting::Publish { client, slot }, now_ms)?,
            ),
            Qos::AtMostOnce => None,
        };
        self.writing = Some(Writing::Publish {
            client,
            slot,
            before: header,
            pid,
        });
        let outbox = &mut self.clients.get_mut(client)?.outbox;
        outbox.mark_sent(slot);
        let (_, topic, payload) = outbox.get(slot)?;
        Some(Outgoing::Publish {
            pid: pid.unwrap_or(0),
            topic,
            payload,
            qos: header.qos,
            dup: header.ever_sent() && header.qos == Qos::AtLeastOnce,
        })
    }

    /// The packet from [`Kernel::poll_outgoing`] was written completely. A QoS 0 publish is
    /// done at this point.
    pub fn on_written(&mut self) {
        if let Some(Writing::Publish {
            client,
            slot,
            before,
            pid: None,
        }) = self.writing.take()
            && let Some(c) = self.clients.get_mut(client)
        {
            c.outbox.remove(slot);
            c.inbox.result(
                c.generation,
                before.generation,
                Event::PublishResult {
                    token: before.token,
                    delivered: true,
                },
            );
        }
    }

    /// The link could not take the packet from [`Kernel::poll_outgoing`] now (MQTT 5 flow
    /// control): it stays queued, and nothing more is offered until an acknowledgement arrives.
    pub fn on_send_busy(&mut self) {
        self.link_busy = true;
        match self.writing.take() {
            Some(Writing::Publish {
                client,
                slot,
                before,
                pid,
            }) => {
                if let Some(pid) = pid {
                    self.in_flight.release(pid);
                }
                if let Some(c) = self.clients.get_mut(client) {
                    c.outbox.restore(slot, before);
                }
            }
            Some(Writing::Subscribe(pid)) => {
                self.in_flight.release(pid);
                if let Some(s) = self
                    .session
                    .iter_mut()
                    .find(|s| s.state == SubState::Sent(pid))
                {
                    s.state = SubState::Unsent;
                }
            }
            Some(Writing::Unsubscribe(pid)) => {
                self.in_flight.release(pid);
                if let Some(u) = self.unsubs.iter_mut().find(|u| u.pid == Some(pid)) {
                    u.pid = None;
                }
            }
            None => {}
        }
    }

    /// When the oldest unacknowledged packet is overdue: at that time the session must end.
    pub fn ack_deadline(&self) -> Option<u64> {
        self.in_flight
            .oldest()
            .map(|sent| sent.saturating_add(u64::from(self.ack_timeout_ms)))
    }

    fn broadcast(&mut self, event: Event<'_>) {
        for client in self.clients.iter_mut().filter(|c| !c.service) {
            client.inbox.push(&event);
        }
    }

    /// The MQTT session is up (CONNACK accepted). Everything unacknowledged is queued again.
    pub fn on_connected(&mut self) {
        self.connected = true;
        if let Some(w) = self.watch {
            w.set_connected(true);
        }
        self.connects = self.connects.wrapping_add(1);
        self.last_down = None;
        self.reset_connection();
        // Clean session: the platform forgot our unsubscribes along with everything else.
        self.unsubs.clear();
        self.broadcast(Event::Connected);
    }

    fn reset_connection(&mut self) {
        self.in_flight.clear();
        self.writing = None;
        self.link_busy = false;
        for sub in &mut self.session {
            sub.state = SubState::Unsent;
            sub.resend = false;
        }
        for client in &mut self.clients {
            client.outbox.mark_all_unsent();
        }
    }

    /// The link went down or a login failed. QoS 1 messages stay queued for the next
    /// connection; QoS 0 messages not yet written are reported as not delivered.
    pub fn on_link_down(&mut self, reason: DisconnectReason) {
        let was_connected = core::mem::replace(&mut self.connected, false);
        if let Some(w) = self.watch {
            w.set_connected(false);
        }
        self.reset_connection();
        for client in &mut self.clients {
            let generation = client.generation;
            let inbox = &mut client.inbox;
            client.outbox.remove_where(
                |h| h.qos == Qos::AtMostOnce,
                |h| {
                    inbox.result(
                        generation,
                        h.generation,
                        Event::PublishResult {
                            token: h.token,
                            delivered: false,
                        },
                    )
                },
            );
        }
        if was_connected || self.last_down != Some(reason) {
            self.broadcast(Event::Disconnected { reason });
        }
        self.last_down = Some(reason);
    }

    /// A PUBLISH arrived from the platform: queue it for every client whose own subscription
    /// matches, and no other (services only, when a service's matches). A QoS 1 message is
    /// queued only when every such client has room, so that [`Delivery::Refused`] can leave it
    /// unacknowledged without anyone having a copy.
    pub fn on_publish(&mut self, topic: &str, payload: &[u8], qos: Qos) -> Delivery {
        let matches =
            |c: &Client| c.inbox.greeted && c.subs.iter().any(|s| filter_matches(&s.filter, topic));
        let for_services = self.clients.iter().any(|c| c.service && matches(c));
        let targets = |c: &Client| matches(c) && c.service == for_services;
        let record = message_body_bytes(topic, payload);
        let too_large = |c: &Client| {
            payload.len() > c.max_payload()
                || topic.len() > MAX_TOPIC_LEN
                || !c.inbox.ring.can_ever_hold(record)
        };
        if qos == Qos::AtLeastOnce
            && self
                .clients
                .iter()
                .any(|c| targets(c) && !too_large(c) && !c.inbox.ring.fits(record))
        {
            self.refused_inbound = self.refused_inbound.saturating_add(1);
            log_warn!(
                "message on {} left unacknowledged: an app's event queue is full (the platform will send it again)",
                topic
            );
            return Delivery::Refused;
        }
        let event = Event::Message {
            topic,
            payload,
            qos,
        };
        let mut clients = 0;
        for client in self.clients.iter_mut().filter(|c| targets(c)) {
            clients += 1;
            if too_large(client) {
                log_warn!(
                    "message on {} ({} bytes) exceeds app {}'s max_payload; counted as dropped",
                    topic,
                    payload.len(),
                    client.def.name
                );
                client.inbox.drop_one();
            } else {
                client.inbox.push(&event);
            }
        }
        Delivery::Taken { clients }
    }

    /// PUBACK for `pid`: the QoS 1 publish is delivered.
    pub fn on_puback(&mut self, pid: u16) {
        self.finish_qos1(pid, true);
    }

    /// A failure PUBACK for `pid` (MQTT 5): the platform refused the message for good.
    pub fn on_pub_rejected(&mut self, pid: u16) {
        self.finish_qos1(pid, false);
    }

    fn finish_qos1(&mut self, pid: u16, delivered: bool) {
        self.link_busy = false;
        let Some(Waiting::Publish { client, slot }) = self
            .in_flight
            .take(pid, |w| matches!(w, Waiting::Publish { .. }))
        else {
            log_debug!("acknowledgement for unknown packet id {}", pid);
            return;
        };
        let Some(c) = self.clients.get_mut(client) else {
            return;
        };
        if let Some(header) = c.outbox.header(slot) {
            c.outbox.remove(slot);
            c.inbox.result(
                c.generation,
                header.generation,
                Event::PublishResult {
                    token: header.token,
                    delivered,
                },
            );
        }
    }

    /// SUBACK for `pid`; `granted` is false when the platform refused the filter.
    pub fn on_suback(&mut self, pid: u16, granted: bool) {
        self.link_busy = false;
        if self
            .in_flight
            .take(pid, |w| matches!(w, Waiting::Subscribe))
            .is_none()
        {
            log_debug!("SUBACK for unknown packet id {}", pid);
            return;
        }
        let Some(pos) = self
            .session
            .iter()
            .position(|s| s.state == SubState::Sent(pid))
        else {
            // Unsubscribed while the SUBSCRIBE was on the wire.
            return;
        };
        if granted {
            let Some(sub) = self.session.get_mut(pos) else {
                return;
            };
            sub.state = if core::mem::take(&mut sub.resend) {
                SubState::Unsent
            } else {
                SubState::Active
            };
            let filter = sub.filter.clone();
            for client in &mut self.clients {
                for s in client
                    .subs
                    .iter_mut()
                    .filter(|s| s.filter == filter && s.pending)
                {
                    s.pending = false;
                    client.inbox.push(&Event::SubscribeResult {
                        token: s.token,
                        granted: true,
                    });
                }
            }
        } else {
            let sub = self.session.swap_remove(pos);
            log_warn!("platform refused subscription {}", sub.filter.as_str());
            for client in &mut self.clients {
                if let Some(i) = client.subs.iter().position(|s| s.filter == sub.filter) {
                    let lost = client.subs.remove(i);
                    // Pending or restored after a reconnect: either way the app is told, with
                    // the token of the subscribe that made it.
                    client.inbox.push(&Event::SubscribeResult {
                        token: lost.token,
                        granted: false,
                    });
                }
            }
        }
    }

    /// UNSUBACK for `pid`.
    pub fn on_unsuback(&mut self, pid: u16) {
        self.link_busy = false;
        if self
            .in_flight
            .take(pid, |w| matches!(w, Waiting::Unsubscribe))
            .is_some()
        {
            self.unsubs.retain(|u| u.pid != Some(pid));
        }
    }

    /// Filters of the MQTT session the kernel currently holds (for logs and tests).
    pub fn session_filters(&self) -> impl Iterator<Item = &str> {
        self.session.iter().map(|s| s.filter.as_str())
    }

    /// QoS 1 messages still waiting for a PUBACK (all clients).
    pub fn pending_publishes(&self) -> usize {
        self.clients
            .iter()
            .map(|c| c.outbox.count(|h| h.qos == Qos::AtLeastOnce))
            .sum()
    }

    /// Incoming QoS 1 messages left unacknowledged because an app's queue was full.
    pub fn refused_inbound(&self) -> u32 {
        self.refused_inbound
    }

    /// Appends everything the kernel holds for client `client` (an app, then the services) to
    /// `out`: the bytes of its event queue and outbox, and the `Debug` text of the rest
    /// (greeting, dropped count, subscriptions, pending wait, generation). Only for the
    /// `syscall` fuzz target, which compares it before and after another app's syscall; not
    /// an API. False when there is no such client.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn client_snapshot(&self, client: usize, out: &mut Vec<u8>) -> bool {
        use core::fmt::Write as _;
        let Some(c) = self.clients.get(client) else {
            return false;
        };
        c.inbox.ring.snapshot(out);
        c.outbox.snapshot(out);
        let mut text = alloc::string::String::new();
        let _ = write!(
            text,
            "{} {} {} {:?} {:?} {} {:?}",
            c.inbox.greeted,
            c.inbox.minor,
            c.inbox.dropped,
            c.subs,
            c.wait_deadline,
            c.generation,
            c.grants
        );
        out.extend_from_slice(text.as_bytes());
        true
    }
}

#[cfg(test)]
mod tests;
