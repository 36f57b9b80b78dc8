//! The sans-IO heart of the capsule: per-app grants, subscriptions, event queues and the
//! outbox of messages waiting for the network.
//!
//! Nothing here performs I/O or reads a clock. The runner feeds it syscall frames, network
//! happenings (connected, link down, PUBLISH, PUBACK, SUBACK) and the current time; it answers
//! with response frames and with [`Outgoing`] packets to put on the wire. That keeps every rule
//! (ACL before network, resend after reconnect, bounded queues) testable without a socket.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use aliot_abi::{
    ABI_VERSION, DisconnectReason, ErrorCode, Event, LinkStatus, MAX_PAYLOAD_LEN, Qos, Request,
    Response,
};

use crate::config::{AppDef, DeviceConfig};
use crate::topic::{filter_covers, filter_matches, validate_filter, validate_topic};

/// Index of an app in the manifest.
pub type AppId = u8;

/// Caps on every queue the kernel keeps, so no app and no flood from the network can exhaust
/// memory or block another app.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events queued per app before new ones are dropped (and counted in `Overflow`).
    pub event_queue: usize,
    /// Unacknowledged or unsent publishes per app.
    pub outbox_per_app: usize,
    /// Subscriptions per app.
    pub subscriptions_per_app: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            event_queue: 16,
            outbox_per_app: 16,
            subscriptions_per_app: 16,
        }
    }
}

pub use crate::link::Outgoing;

/// The packet [`Kernel::poll_outgoing`] handed out last, until it is written or refused.
#[derive(Debug, Clone, Copy)]
enum Polled {
    Publish { pid: u16, qos: Qos, ever_sent: bool },
    Subscribe(u16),
    Unsubscribe(u16),
}

/// What the kernel did with a syscall frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send this response frame (COBS, zero-terminated) to the app now.
    Now(Vec<u8>),
    /// The app is blocked in `WaitEvent`; its answer comes from [`Kernel::ready_responses`].
    Later,
}

#[derive(Debug, Clone)]
enum OwnedEvent {
    Connected,
    Disconnected(DisconnectReason),
    Message {
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    },
    PublishResult {
        token: u32,
        delivered: bool,
    },
    SubscribeResult {
        token: u32,
        granted: bool,
    },
}

impl OwnedEvent {
    fn as_abi(&self) -> Event<'_> {
        match self {
            OwnedEvent::Connected => Event::Connected,
            OwnedEvent::Disconnected(reason) => Event::Disconnected { reason: *reason },
            OwnedEvent::Message {
                topic,
                payload,
                qos,
            } => Event::Message {
                topic,
                payload,
                qos: *qos,
            },
            OwnedEvent::PublishResult { token, delivered } => Event::PublishResult {
                token: *token,
                delivered: *delivered,
            },
            OwnedEvent::SubscribeResult { token, granted } => Event::SubscribeResult {
                token: *token,
                granted: *granted,
            },
        }
    }
}

#[derive(Debug)]
struct AppState {
    def: &'static AppDef,
    greeted: bool,
    queue: VecDeque<OwnedEvent>,
    dropped: u32,
    subs: Vec<String>,
    wait_deadline: Option<u64>,
    /// Bumped on every restart so results of a dead instance's publishes are not delivered
    /// to its successor.
    generation: u32,
}

#[derive(Debug)]
struct PendingPublish {
    app: AppId,
    generation: u32,
    token: u32,
    topic: String,
    payload: Vec<u8>,
    qos: Qos,
    pid: u16,
    /// Written on the current connection (QoS 0: being written).
    sent: bool,
    /// Written on some connection before.
    ever_sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    Unsent,
    Sent(u16),
    Active,
}

#[derive(Debug)]
struct MqttSub {
    filter: String,
    qos: Qos,
    state: SubState,
    /// (app, generation, token) waiting for the SUBACK.
    waiters: Vec<(AppId, u32, u32)>,
}

/// The kernel state. One per device.
#[derive(Debug)]
pub struct Kernel {
    config: &'static DeviceConfig,
    limits: Limits,
    apps: Vec<AppState>,
    outbox: VecDeque<PendingPublish>,
    subs: Vec<MqttSub>,
    unsubs: Vec<(String, Option<u16>)>,
    connected: bool,
    connects: u32,
    last_down: Option<DisconnectReason>,
    next_pid: u16,
    last_polled: Option<Polled>,
}

fn encode(response: &Response<'_>) -> Vec<u8> {
    // Encoding into a growable buffer cannot fail for these types.
    postcard::to_allocvec_cobs(response).unwrap_or_default()
}

fn error(code: ErrorCode) -> Reply {
    Reply::Now(encode(&Response::Error(code)))
}

impl Kernel {
    /// A kernel for the apps in `config`, link down.
    pub fn new(config: &'static DeviceConfig, limits: Limits) -> Self {
        let apps = config
            .apps
            .iter()
            .map(|def| AppState {
                def,
                greeted: false,
                queue: VecDeque::new(),
                dropped: 0,
                subs: Vec::new(),
                wait_deadline: None,
                generation: 0,
            })
            .collect();
        Self {
            config,
            limits,
            apps,
            outbox: VecDeque::new(),
            subs: Vec::new(),
            unsubs: Vec::new(),
            connected: false,
            connects: 0,
            last_down: None,
            next_pid: 1,
            last_polled: None,
        }
    }

    /// The configuration this kernel serves.
    pub fn config(&self) -> &'static DeviceConfig {
        self.config
    }

    /// Handle one COBS frame from app `app` at time `now_ms`.
    pub fn handle_frame(&mut self, app: AppId, frame: &mut [u8], now_ms: u64) -> Reply {
        if usize::from(app) >= self.apps.len() {
            return error(ErrorCode::Malformed);
        }
        match aliot_abi::decode_frame::<Request<'_>>(frame) {
            Ok(request) => self.handle_request(app, request, now_ms),
            Err(_) => error(ErrorCode::Malformed),
        }
    }

    fn handle_request(&mut self, app: AppId, request: Request<'_>, now_ms: u64) -> Reply {
        let index = usize::from(app);
        if let Request::Hello { abi_version } = request {
            if abi_version != ABI_VERSION {
                log::warn!(
                    "app {}: ABI {} refused (kernel speaks {})",
                    self.apps[index].def.name,
                    abi_version,
                    ABI_VERSION
                );
                return error(ErrorCode::AbiMismatch);
            }
            self.apps[index].greeted = true;
            return Reply::Now(encode(&Response::Welcome {
                abi_version: ABI_VERSION,
                app_id: app,
            }));
        }
        if !self.apps[index].greeted {
            return error(ErrorCode::AbiMismatch);
        }
        match request {
            Request::Hello { .. } => unreachable!("handled above"),
            Request::Publish {
                topic,
                payload,
                qos,
                token,
            } => self.publish(app, topic, payload, qos, token),
            Request::Subscribe { filter, qos, token } => self.subscribe(app, filter, qos, token),
            Request::Unsubscribe { filter } => self.unsubscribe(app, filter),
            Request::Status => {
                let generation = self.apps[index].generation;
                let pending = self
                    .outbox
                    .iter()
                    .filter(|p| p.app == app && p.generation == generation)
                    .count();
                Reply::Now(encode(&Response::Status(LinkStatus {
                    connected: self.connected,
                    connects: self.connects,
                    pending_publishes: u16::try_from(pending).unwrap_or(u16::MAX),
                })))
            }
            Request::WaitEvent { timeout_ms } => {
                if let Some(frame) = self.take_event_response(index) {
                    return Reply::Now(frame);
                }
                if timeout_ms == 0 {
                    return Reply::Now(encode(&Response::NoEvent));
                }
                self.apps[index].wait_deadline = Some(now_ms.saturating_add(u64::from(timeout_ms)));
                Reply::Later
            }
        }
    }

    fn publish(&mut self, app: AppId, topic: &str, payload: &[u8], qos: Qos, token: u32) -> Reply {
        let state = &self.apps[usize::from(app)];
        if validate_topic(topic).is_err() {
            return error(ErrorCode::InvalidTopic);
        }
        if payload.len() > MAX_PAYLOAD_LEN {
            return error(ErrorCode::PayloadTooLarge);
        }
        if !state
            .def
            .publish
            .iter()
            .any(|grant| filter_matches(grant, topic))
        {
            log::warn!(
                "app {}: publish to {topic} refused: not granted by the manifest",
                state.def.name
            );
            return error(ErrorCode::NotPermitted);
        }
        if qos == Qos::AtMostOnce && !self.connected {
            return error(ErrorCode::NotConnected);
        }
        let generation = state.generation;
        let queued = self
            .outbox
            .iter()
            .filter(|p| p.app == app && p.generation == generation)
            .count();
        if queued >= self.limits.outbox_per_app {
            return error(ErrorCode::Busy);
        }
        let pid = if qos == Qos::AtLeastOnce {
            self.allocate_pid()
        } else {
            0
        };
        self.outbox.push_back(PendingPublish {
            app,
            generation,
            token,
            topic: topic.to_string(),
            payload: payload.to_vec(),
            qos,
            pid,
            sent: false,
            ever_sent: false,
        });
        Reply::Now(encode(&Response::Accepted { token }))
    }

    fn subscribe(&mut self, app: AppId, filter: &str, qos: Qos, token: u32) -> Reply {
        let index = usize::from(app);
        let state = &self.apps[index];
        if validate_filter(filter).is_err() {
            return error(ErrorCode::InvalidTopic);
        }
        if !state
            .def
            .subscribe
            .iter()
            .any(|grant| filter_covers(grant, filter))
        {
            log::warn!(
                "app {}: subscribe to {filter} refused: not granted by the manifest",
                state.def.name
            );
            return error(ErrorCode::NotPermitted);
        }
        let already = state.subs.iter().any(|s| s == filter);
        if !already && state.subs.len() >= self.limits.subscriptions_per_app {
            return error(ErrorCode::Busy);
        }
        let generation = state.generation;
        if !already {
            self.apps[index].subs.push(filter.to_string());
        }
        match self.subs.iter_mut().find(|s| s.filter == filter) {
            Some(sub) if sub.state == SubState::Active => {
                self.push_event(
                    index,
                    OwnedEvent::SubscribeResult {
                        token,
                        granted: true,
                    },
                );
            }
            Some(sub) => {
                if qos == Qos::AtLeastOnce {
                    sub.qos = qos;
                }
                sub.waiters.push((app, generation, token));
            }
            None => self.subs.push(MqttSub {
                filter: filter.to_string(),
                qos,
                state: SubState::Unsent,
                waiters: alloc::vec![(app, generation, token)],
            }),
        }
        Reply::Now(encode(&Response::Accepted { token }))
    }

    fn unsubscribe(&mut self, app: AppId, filter: &str) -> Reply {
        let index = usize::from(app);
        let Some(pos) = self.apps[index].subs.iter().position(|s| s == filter) else {
            return error(ErrorCode::NotSubscribed);
        };
        self.apps[index].subs.remove(pos);
        self.release_filter_if_unused(filter);
        Reply::Now(encode(&Response::Ok))
    }

    /// Drop the MQTT-level subscription when no app holds `filter` any more.
    fn release_filter_if_unused(&mut self, filter: &str) {
        if self.apps.iter().any(|a| a.subs.iter().any(|s| s == filter)) {
            return;
        }
        if let Some(pos) = self.subs.iter().position(|s| s.filter == filter) {
            let sub = self.subs.remove(pos);
            if self.connected && sub.state != SubState::Unsent {
                self.unsubs.push((sub.filter, None));
            }
        }
    }

    /// The app's process died or was restarted: forget its session (subscriptions, queue,
    /// greeting). Its accepted QoS 1 messages are still delivered to the platform (nothing
    /// accepted is lost), but their results are not reported to the next instance.
    pub fn app_exited(&mut self, app: AppId) {
        let index = usize::from(app);
        let Some(state) = self.apps.get_mut(index) else {
            return;
        };
        state.greeted = false;
        state.queue.clear();
        state.dropped = 0;
        state.wait_deadline = None;
        state.generation = state.generation.wrapping_add(1);
        let filters = core::mem::take(&mut state.subs);
        for filter in filters {
            self.release_filter_if_unused(&filter);
        }
        self.outbox
            .retain(|p| !(p.app == app && p.qos == Qos::AtMostOnce && !p.sent));
    }

    fn allocate_pid(&mut self) -> u16 {
        loop {
            let pid = self.next_pid;
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            let in_use = self.outbox.iter().any(|p| p.pid == pid)
                || self.subs.iter().any(|s| s.state == SubState::Sent(pid))
                || self.unsubs.iter().any(|(_, p)| *p == Some(pid));
            if !in_use {
                return pid;
            }
        }
    }

    fn push_event(&mut self, index: usize, event: OwnedEvent) {
        let limit = self.limits.event_queue;
        let state = &mut self.apps[index];
        if !state.greeted {
            return;
        }
        if state.queue.len() >= limit {
            state.dropped = state.dropped.saturating_add(1);
        } else {
            state.queue.push_back(event);
        }
    }

    fn take_event_response(&mut self, index: usize) -> Option<Vec<u8>> {
        let state = &mut self.apps[index];
        if state.dropped > 0 {
            let dropped = core::mem::take(&mut state.dropped);
            return Some(encode(&Response::Event(Event::Overflow { dropped })));
        }
        let event = state.queue.pop_front()?;
        Some(encode(&Response::Event(event.as_abi())))
    }

    /// Answers for apps blocked in `WaitEvent` whose event arrived or whose wait expired.
    pub fn ready_responses(&mut self, now_ms: u64) -> Vec<(AppId, Vec<u8>)> {
        let mut out = Vec::new();
        for index in 0..self.apps.len() {
            let Some(deadline) = self.apps[index].wait_deadline else {
                continue;
            };
            let frame = match self.take_event_response(index) {
                Some(frame) => frame,
                None if now_ms >= deadline => encode(&Response::NoEvent),
                None => continue,
            };
            self.apps[index].wait_deadline = None;
            out.push((index as AppId, frame));
        }
        out
    }

    /// When the runner must call [`Kernel::ready_responses`] next even if nothing happens.
    pub fn next_deadline(&self) -> Option<u64> {
        self.apps.iter().filter_map(|a| a.wait_deadline).min()
    }

    /// The next packet to write, if the link is up. Subscriptions go first so that after a
    /// reconnect the device listens again before it talks. Answer with
    /// [`Kernel::on_written`] or [`Kernel::on_send_busy`].
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<'_>> {
        if !self.connected {
            return None;
        }
        if let Some(i) = self.subs.iter().position(|s| s.state == SubState::Unsent) {
            let pid = self.allocate_pid();
            self.last_polled = Some(Polled::Subscribe(pid));
            let sub = &mut self.subs[i];
            sub.state = SubState::Sent(pid);
            return Some(Outgoing::Subscribe {
                pid,
                filter: &sub.filter,
                qos: sub.qos,
            });
        }
        if let Some(i) = self.unsubs.iter().position(|(_, pid)| pid.is_none()) {
            let pid = self.allocate_pid();
            self.last_polled = Some(Polled::Unsubscribe(pid));
            self.unsubs[i].1 = Some(pid);
            return Some(Outgoing::Unsubscribe {
                pid,
                filter: &self.unsubs[i].0,
            });
        }
        let p = self.outbox.iter_mut().find(|p| !p.sent)?;
        self.last_polled = Some(Polled::Publish {
            pid: p.pid,
            qos: p.qos,
            ever_sent: p.ever_sent,
        });
        p.sent = true;
        let dup = p.ever_sent && p.qos == Qos::AtLeastOnce;
        p.ever_sent = true;
        Some(Outgoing::Publish {
            pid: p.pid,
            topic: &p.topic,
            payload: &p.payload,
            qos: p.qos,
            dup,
        })
    }

    /// The packet from [`Kernel::poll_outgoing`] was written completely. QoS 0 publishes are
    /// done at this point.
    pub fn on_written(&mut self) {
        // QoS 0 publishes leave one at a time, in order: the written one is the first marked sent.
        if let Some(Polled::Publish {
            qos: Qos::AtMostOnce,
            ..
        }) = self.last_polled.take()
            && let Some(pos) = self
                .outbox
                .iter()
                .position(|p| p.qos == Qos::AtMostOnce && p.sent)
            && let Some(p) = self.outbox.remove(pos)
        {
            let result = OwnedEvent::PublishResult {
                token: p.token,
                delivered: true,
            };
            self.deliver_result(p.app, p.generation, result);
        }
    }

    /// The link could not take the packet from [`Kernel::poll_outgoing`] (flow control):
    /// it is unsent again and will be polled again.
    pub fn on_send_busy(&mut self) {
        match self.last_polled.take() {
            Some(Polled::Publish {
                pid,
                qos,
                ever_sent,
            }) => {
                if let Some(p) = self
                    .outbox
                    .iter_mut()
                    .find(|p| p.qos == qos && p.sent && (qos == Qos::AtMostOnce || p.pid == pid))
                {
                    p.sent = false;
                    p.ever_sent = ever_sent;
                }
            }
            Some(Polled::Subscribe(pid)) => {
                if let Some(sub) = self
                    .subs
                    .iter_mut()
                    .find(|s| s.state == SubState::Sent(pid))
                {
                    sub.state = SubState::Unsent;
                }
            }
            Some(Polled::Unsubscribe(pid)) => {
                if let Some(unsub) = self.unsubs.iter_mut().find(|(_, p)| *p == Some(pid)) {
                    unsub.1 = None;
                }
            }
            None => {}
        }
    }

    fn deliver_result(&mut self, app: AppId, generation: u32, event: OwnedEvent) {
        let index = usize::from(app);
        if self
            .apps
            .get(index)
            .is_some_and(|a| a.generation == generation)
        {
            self.push_event(index, event);
        }
    }

    fn broadcast(&mut self, event: OwnedEvent) {
        for index in 0..self.apps.len() {
            self.push_event(index, event.clone());
        }
    }

    /// The MQTT session is up (CONNACK accepted). Everything unacknowledged is queued again.
    pub fn on_connected(&mut self) {
        self.connected = true;
        self.last_polled = None;
        self.connects = self.connects.wrapping_add(1);
        self.last_down = None;
        for sub in &mut self.subs {
            sub.state = SubState::Unsent;
        }
        // Clean session: the platform forgot our unsubscribes along with everything else.
        self.unsubs.clear();
        for p in &mut self.outbox {
            p.sent = false;
        }
        self.broadcast(OwnedEvent::Connected);
    }

    /// The link went down or a login failed. QoS 1 messages stay queued for the next
    /// connection; QoS 0 messages not yet written are reported as not delivered.
    pub fn on_link_down(&mut self, reason: DisconnectReason) {
        let was_connected = core::mem::replace(&mut self.connected, false);
        self.last_polled = None;
        for sub in &mut self.subs {
            if matches!(sub.state, SubState::Sent(_)) {
                sub.state = SubState::Unsent;
            }
        }
        let mut failed = Vec::new();
        self.outbox.retain(|p| {
            if p.qos == Qos::AtMostOnce {
                failed.push((p.app, p.generation, p.token));
                false
            } else {
                true
            }
        });
        for p in &mut self.outbox {
            p.sent = false;
        }
        for (app, generation, token) in failed {
            self.deliver_result(
                app,
                generation,
                OwnedEvent::PublishResult {
                    token,
                    delivered: false,
                },
            );
        }
        if was_connected || self.last_down != Some(reason) {
            self.broadcast(OwnedEvent::Disconnected(reason));
        }
        self.last_down = Some(reason);
    }

    /// A PUBLISH arrived from the platform: queue it for every app whose own subscription
    /// matches, and no other. Returns how many apps got it.
    pub fn on_publish(&mut self, topic: &str, payload: &[u8], qos: Qos) -> usize {
        let mut routed = 0;
        for index in 0..self.apps.len() {
            let state = &self.apps[index];
            if !state.greeted || !state.subs.iter().any(|f| filter_matches(f, topic)) {
                continue;
            }
            routed += 1;
            if payload.len() > MAX_PAYLOAD_LEN || topic.len() > aliot_abi::MAX_TOPIC_LEN {
                log::warn!("message on {topic} too large for the app ABI; counted as dropped");
                self.apps[index].dropped = self.apps[index].dropped.saturating_add(1);
                continue;
            }
            let event = OwnedEvent::Message {
                topic: topic.to_string(),
                payload: payload.to_vec(),
                qos,
            };
            self.push_event(index, event);
        }
        routed
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
        let Some(pos) = self
            .outbox
            .iter()
            .position(|p| p.qos == Qos::AtLeastOnce && p.pid == pid && p.sent)
        else {
            log::debug!("acknowledgement for unknown packet id {pid}");
            return;
        };
        if let Some(p) = self.outbox.remove(pos) {
            let result = OwnedEvent::PublishResult {
                token: p.token,
                delivered,
            };
            self.deliver_result(p.app, p.generation, result);
        }
    }

    /// SUBACK for `pid`; `granted` is false when the platform refused the filter.
    pub fn on_suback(&mut self, pid: u16, granted: bool) {
        let Some(pos) = self
            .subs
            .iter()
            .position(|s| s.state == SubState::Sent(pid))
        else {
            log::debug!("SUBACK for unknown packet id {pid}");
            return;
        };
        let waiters = core::mem::take(&mut self.subs[pos].waiters);
        if granted {
            self.subs[pos].state = SubState::Active;
        } else {
            let sub = self.subs.remove(pos);
            log::warn!("platform refused subscription {}", sub.filter);
            for app in &mut self.apps {
                app.subs.retain(|f| *f != sub.filter);
            }
        }
        for (app, generation, token) in waiters {
            self.deliver_result(
                app,
                generation,
                OwnedEvent::SubscribeResult { token, granted },
            );
        }
    }

    /// UNSUBACK for `pid`.
    pub fn on_unsuback(&mut self, pid: u16) {
        self.unsubs.retain(|(_, p)| *p != Some(pid));
    }

    /// Filters of the MQTT session the kernel currently holds (for logs and tests).
    pub fn session_filters(&self) -> Vec<&str> {
        self.subs.iter().map(|s| s.filter.as_str()).collect()
    }

    /// QoS 1 messages still waiting for a PUBACK (all apps).
    pub fn pending_publishes(&self) -> usize {
        self.outbox
            .iter()
            .filter(|p| p.qos == Qos::AtLeastOnce)
            .count()
    }
}

#[cfg(test)]
mod tests;
