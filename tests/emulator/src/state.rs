//! Shared emulator state: registry, live connections, per-device logs and fault settings.
//!
//! Everything the MQTT worker, the HTTP API and the Rust API share sits behind one mutex; a
//! condition variable wakes the blocking `wait_*` calls. Connections are reached through an
//! unbounded channel per connection, because the MQTT sinks live on the `!Send` worker.
//!
//! Server-side subscription (`_ss=1`): a device whose clientId carries `_ss=1` among its
//! extension parameters (as Link SDK 3.1+/4.x and linkkit send it) is subscribed by the
//! platform itself, so Alibaba's SDKs never SUBSCRIBE e.g. `thing/ota/firmware/get_reply`.
//! The platform's list (help.aliyun.com document 197770, "自动订阅Topic说明") names topics
//! under `/sys/${pk}/${dn}/` (`thing/event/+/post_reply`, `thing/service/+`,
//! `rrpc/request/+`, ...); the emulator grants the whole `/sys/${pk}/${dn}/#` (a superset of
//! that list's visible part) and nothing outside it: user topics, `/ext/ntp/...` and
//! `/broadcast/...` still need a SUBSCRIBE (the OTA upgrade push never does).
//!
//! Holding PUBACKs back (fault injection) is a per-session `watch` flag: a held PUBLISH handler
//! waits on it, and wakes when the hold is released or when the session's [`Conn`] is dropped
//! (kick, drop, replacement, disconnect), which ends every hold of that session with it.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;

use crate::auth::{self, Accepted, ConnectRequest, Refusal, RefuseCode};
use crate::ota::OtaState;
use crate::registry::Registry;
use crate::topics::{self, Direction};

/// `(productKey, deviceName)`.
pub(crate) type DevKey = (String, String);

pub(crate) fn key(pk: &str, dn: &str) -> DevKey {
    (pk.to_string(), dn.to_string())
}

/// One PUBLISH received from a device (accepted or refused), in arrival order.
#[derive(Debug, Clone, Serialize)]
pub struct Uplink {
    /// Topic name.
    pub topic: String,
    /// QoS of the PUBLISH.
    pub qos: u8,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// When it arrived.
    pub at: SystemTime,
    /// `Some(reason)` when the platform dropped it (topic not allowed, QoS 2, retain...).
    pub refused: Option<String>,
    /// DUP flag (a re-send); re-sends are recorded as separate entries.
    pub dup: bool,
    /// Its PUBACK was held back ([`crate::Emulator::hold_pubacks`]): it stayed unacknowledged
    /// until the hold was released or the session ended (then it never was acknowledged).
    pub ack_held: bool,
}

/// One login attempt of a device (or of a CONNECT whose username could not be parsed).
#[derive(Debug, Clone, Serialize)]
pub struct LoginRecord {
    /// When the CONNECT was decided.
    pub at: SystemTime,
    /// Accepted or refused.
    pub accepted: bool,
    /// Why (refusal reason, or what kind of login was accepted).
    pub reason: String,
    /// 4 = MQTT 3.1.1, 5 = MQTT 5.
    pub mqtt_version: u8,
    /// Came in over TLS.
    pub tls: bool,
    /// The full MQTT ClientId sent.
    pub client_id: String,
    /// Keep-alive sent.
    pub keep_alive: u16,
}

/// A message the cloud sent to a device.
#[derive(Debug, Clone, Serialize)]
pub struct Downlink {
    /// Topic name.
    pub topic: String,
    /// QoS used.
    pub qos: u8,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// When it was queued.
    pub at: SystemTime,
}

/// A device as the cloud console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    /// ProductKey.
    pub product_key: String,
    /// DeviceName.
    pub device_name: String,
    /// Has logged in with its credentials since creation or the last reset.
    pub activated: bool,
    /// Has a live MQTT session now.
    pub online: bool,
    /// Has a DeviceSecret (or token) issued.
    pub has_secret: bool,
    /// MQTT version of the live session.
    pub mqtt_version: Option<u8>,
    /// Live session is over TLS.
    pub tls: Option<bool>,
    /// Topic filters of the live session.
    pub subscriptions: Vec<String>,
    /// Filters the platform subscribed the live session to itself, because it logged in with
    /// `_ss=1` in its clientId (`/sys/{pk}/{dn}/#`); empty otherwise.
    pub auto_subscriptions: Vec<String>,
    /// Versions reported on `/ota/device/inform`, by module (`default` when none was given).
    pub versions: std::collections::BTreeMap<String, String>,
}

/// Commands to a connection's task on the MQTT worker.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Send a PUBLISH.
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
    },
    /// Cloud-side kick: MQTT 5 DISCONNECT 0x8E (session taken over), then close.
    Kick,
    /// Abrupt drop (as a network loss): close the socket without DISCONNECT.
    Drop,
    /// Orderly close after the queued messages (registration connections).
    Close,
}

/// A live device session.
pub(crate) struct Conn {
    pub id: u64,
    pub tx: UnboundedSender<Cmd>,
    pub subs: Vec<String>,
    /// Filters the platform added itself (`_ss=1`), see the module doc.
    pub auto_subs: Vec<String>,
    pub version: u8,
    pub tls: bool,
    /// `true` while PUBACKs of this session are held back (fault injection). Dropping the
    /// `Conn` drops the sender, which wakes every held PUBLISH handler.
    pub hold_acks: watch::Sender<bool>,
}

impl Conn {
    /// Would the platform deliver a message on `topic` to this session: does one of its
    /// subscriptions, its own or the platform's (`_ss=1`), match?
    pub fn delivers(&self, topic: &str) -> bool {
        self.subs
            .iter()
            .chain(&self.auto_subs)
            .any(|f| topics::filter_matches(f, topic))
    }
}

/// The filter the platform subscribes a `_ss=1` device to: `/sys/{pk}/{dn}/#`.
pub(crate) fn auto_sub_filter(pk: &str, dn: &str) -> String {
    format!("/sys/{pk}/{dn}/#")
}

/// Does the clientId ask for server-side subscription (`_ss=1` among its parameters)?
fn wants_server_subscription(client_id: &str) -> bool {
    auth::parse_client_id(client_id).is_ok_and(|p| p.params.get("_ss").is_some_and(|v| v == "1"))
}

/// Per-device history.
#[derive(Default)]
pub(crate) struct DevLog {
    pub uplinks: Vec<Uplink>,
    pub logins: Vec<LoginRecord>,
    pub downlinks: Vec<Downlink>,
    /// When the device ended a session with an MQTT DISCONNECT.
    pub disconnects: Vec<SystemTime>,
}

/// Fault-injection settings.
#[derive(Default)]
pub(crate) struct Faults {
    pub refuse_until: Option<Instant>,
    pub cut_downloads_after: Option<u64>,
    pub latency: Duration,
    /// Answer every download as if it carried `x-oss-range-behavior: standard`.
    pub strict_ranges: bool,
    /// The platform's clock runs this many milliseconds from the host's (NTP answers say so).
    pub clock_offset_ms: i64,
}

/// Every firmware download answered, in order (for tests: how much was fetched again).
pub(crate) type Downloads = Vec<crate::ota::DownloadRecord>;

pub(crate) struct Inner {
    pub registry: Registry,
    pub conns: HashMap<DevKey, Conn>,
    pub logs: HashMap<DevKey, DevLog>,
    pub faults: Faults,
    pub downloads: Downloads,
    pub ota: OtaState,
    pub bases: Bases,
    /// Thing models and what devices posted against them.
    pub things: crate::thing::Things,
    next_id: u64,
}

/// The state every part of the emulator shares.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    cond: Condvar,
}

/// Bases of the firmware download URLs, set once the listeners are bound.
#[derive(Clone, Default)]
pub(crate) struct Bases {
    /// `http://127.0.0.1:PORT`.
    pub http: String,
    /// `https://localhost:PORT`.
    pub https: String,
}

/// A fresh random secret / token (32 alphanumerics).
pub(crate) fn random_secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// What the MQTT glue does with a recorded PUBLISH.
pub(crate) struct UplinkVerdict {
    /// Why the platform dropped it, if it did.
    pub refused: Option<String>,
    /// Set when its PUBACK is held back: wait until this says `false` or its sender is gone.
    pub hold: Option<watch::Receiver<bool>>,
}

/// An accepted connection, handed to the MQTT glue.
pub(crate) struct LoginOk {
    pub key: DevKey,
    pub id: u64,
    pub rx: UnboundedReceiver<Cmd>,
    pub registration: bool,
}

impl Shared {
    pub fn new(registry: Registry, strict_ranges: bool) -> Self {
        Shared {
            inner: Mutex::new(Inner {
                registry,
                conns: HashMap::new(),
                logs: HashMap::new(),
                faults: Faults {
                    strict_ranges,
                    ..Faults::default()
                },
                downloads: Downloads::new(),
                ota: OtaState::default(),
                bases: Bases::default(),
                things: crate::thing::Things::default(),
                next_id: 1,
            }),
            cond: Condvar::new(),
        }
    }

    /// Locks the state; a panic elsewhere must not wedge the emulator, so poison is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every blocking waiter.
    pub fn notify(&self) {
        self.cond.notify_all();
    }

    /// Blocks until `pred` holds or `timeout` passes; returns the last value of `pred`.
    pub fn wait_until<T>(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&mut Inner) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if let Some(v) = pred(&mut g) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .cond
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Is connection `id` still the device's current session? A kicked or replaced
    /// connection may still have packets in flight; they must not be acknowledged.
    pub fn is_current(&self, k: &DevKey, id: u64) -> bool {
        self.lock().conns.get(k).is_some_and(|c| c.id == id)
    }

    pub fn latency(&self) -> Duration {
        self.lock().faults.latency
    }

    /// Decides a CONNECT, records it, and on success registers the connection (kicking an
    /// older session of the same device) and queues what must be pushed at login.
    pub fn login(&self, req: &ConnectRequest) -> Result<LoginOk, Refusal> {
        let mut g = self.lock();
        let ident = auth::identity(req.username.as_deref()).unwrap_or_default();
        let refused_by_fault = g.faults.refuse_until.is_some_and(|t| Instant::now() < t);
        let decision = if refused_by_fault {
            Err(Refusal {
                code: RefuseCode::ServerUnavailable,
                reason: "connections refused (fault injection)".into(),
            })
        } else {
            auth::authorize(&mut g.registry, req, &mut random_secret)
        };
        let mut record = LoginRecord {
            at: SystemTime::now(),
            accepted: decision.is_ok(),
            reason: String::new(),
            mqtt_version: req.mqtt_version,
            tls: req.tls,
            client_id: req.client_id.clone(),
            keep_alive: req.keep_alive,
        };
        let result = match decision {
            Err(r) => {
                log::warn!(
                    "login refused: {}/{} mqtt{} tls={} code={:?}: {}",
                    ident.0,
                    ident.1,
                    req.mqtt_version,
                    req.tls,
                    r.code,
                    r.reason
                );
                record.reason = r.reason.clone();
                Err(r)
            }
            Ok(Accepted::Device {
                pk,
                dn,
                token_login,
            }) => {
                let k = key(&pk, &dn);
                let id = g.next_id;
                g.next_id += 1;
                let (tx, rx) = unbounded_channel();
                if let Some(old) = g.conns.remove(&k) {
                    log::warn!("{pk}/{dn}: kicked by a new login of the same device");
                    let _ = old.tx.send(Cmd::Kick);
                }
                log::info!(
                    "login ok: {pk}/{dn} mqtt{} tls={} keepalive={}s{}",
                    req.mqtt_version,
                    req.tls,
                    req.keep_alive,
                    if token_login { " (token)" } else { "" }
                );
                let auto_subs = if wants_server_subscription(&req.client_id) {
                    vec![auto_sub_filter(&pk, &dn)]
                } else {
                    Vec::new()
                };
                record.reason = format!(
                    "{}{}",
                    if token_login {
                        "token login"
                    } else {
                        "signed login"
                    },
                    if auto_subs.is_empty() {
                        ""
                    } else {
                        ", _ss=1: /sys topics subscribed by the platform"
                    }
                );
                for (topic, payload) in {
                    let bases = g.bases.clone();
                    crate::ota::pending_pushes(&mut g, &pk, &dn, &bases)
                } {
                    let _ = tx.send(Cmd::Publish {
                        topic: topic.clone(),
                        payload: payload.clone(),
                        qos: 1,
                    });
                    push_downlink(&mut g, &k, &topic, &payload, 1);
                }
                g.conns.insert(
                    k.clone(),
                    Conn {
                        id,
                        tx,
                        subs: Vec::new(),
                        auto_subs,
                        version: req.mqtt_version,
                        tls: req.tls,
                        hold_acks: watch::Sender::new(false),
                    },
                );
                Ok(LoginOk {
                    key: k,
                    id,
                    rx,
                    registration: false,
                })
            }
            Ok(Accepted::Registration {
                pk,
                dn,
                topic,
                payload,
            }) => {
                let k = key(&pk, &dn);
                let id = g.next_id;
                g.next_id += 1;
                let (tx, rx) = unbounded_channel();
                log::info!("registration ok: {pk}/{dn} via {topic} (secret issued, not logged)");
                record.reason = format!("registration, answered on {topic}");
                let _ = tx.send(Cmd::Publish {
                    topic,
                    payload: payload.into_bytes(),
                    qos: 0,
                });
                let _ = tx.send(Cmd::Close);
                Ok(LoginOk {
                    key: k,
                    id,
                    rx,
                    registration: true,
                })
            }
        };
        g.logs.entry(ident).or_default().logins.push(record);
        drop(g);
        self.notify();
        result
    }

    /// The device sent DISCONNECT on connection `id` (an orderly end of its session).
    pub fn client_disconnect(&self, k: &DevKey, id: u64) {
        let mut g = self.lock();
        log::info!("{}/{} sent DISCONNECT (connection {id})", k.0, k.1);
        g.logs
            .entry(k.clone())
            .or_default()
            .disconnects
            .push(SystemTime::now());
        drop(g);
        self.notify();
    }

    /// A connection ended; forget it if it is still the device's current one.
    pub fn disconnected(&self, k: &DevKey, id: u64, why: &str) {
        let mut g = self.lock();
        if g.conns.get(k).is_some_and(|c| c.id == id) {
            g.conns.remove(k);
            log::info!("{}/{} offline: {why}", k.0, k.1);
        }
        drop(g);
        self.notify();
    }

    /// Records a PUBLISH from a device and runs the platform's reactions (NTP, OTA).
    /// Says whether the message was dropped and whether its PUBACK is held back.
    #[allow(clippy::too_many_arguments)] // one call site per version; the fields are the header
    pub fn uplink(
        &self,
        k: &DevKey,
        id: u64,
        topic: &str,
        qos: u8,
        payload: Vec<u8>,
        dup: bool,
        retain: bool,
    ) -> UplinkVerdict {
        let mut g = self.lock();
        let current = g.conns.get(k).is_some_and(|c| c.id == id);
        // Decided under the same lock as the record, so every PUBLISH recorded after
        // `hold_pubacks` returned is held (and its record says so).
        let hold = g
            .conns
            .get(k)
            .filter(|c| current && qos == 1 && *c.hold_acks.borrow())
            .map(|c| c.hold_acks.subscribe());
        let refused = if !current {
            Some("not the device's current session".to_string())
        } else if qos > 1 {
            Some("QoS 2 is not supported".to_string())
        } else if retain {
            Some("retained messages are not supported".to_string())
        } else {
            match g.registry.product(&k.0) {
                None => Some("unknown product".to_string()),
                Some(p) => topics::check_topic(p, &k.1, topic, Direction::Publish).err(),
            }
        };
        if let Some(r) = &refused {
            log::warn!("{}/{}: publish to {topic} refused: {r}", k.0, k.1);
        } else {
            log::info!(
                "{}/{}: publish {topic} qos{qos} {} bytes{}{}",
                k.0,
                k.1,
                payload.len(),
                if dup { " (dup)" } else { "" },
                if hold.is_some() { " (PUBACK held)" } else { "" }
            );
        }
        let up = Uplink {
            topic: topic.to_string(),
            qos,
            payload,
            at: SystemTime::now(),
            refused: refused.clone(),
            dup,
            ack_held: hold.is_some(),
        };
        g.logs
            .entry(k.clone())
            .or_default()
            .uplinks
            .push(up.clone());
        if refused.is_none() {
            let replies = reactions(&mut g, k, &up);
            for (t, p) in replies {
                // Like any cloud-to-device message, a reply reaches the device only through a
                // matching subscription (its own, or the platform's for `_ss=1`).
                let subscribed = g.conns.get(k).is_some_and(|c| c.delivers(&t));
                if subscribed {
                    send_locked(&mut g, k, &t, p, 0);
                } else {
                    log::warn!(
                        "{}/{}: reply on {t} not delivered: no matching subscription",
                        k.0,
                        k.1
                    );
                }
            }
        }
        drop(g);
        self.notify();
        UplinkVerdict { refused, hold }
    }

    /// Starts (`on`) or releases holding back the PUBACKs of the device's current session.
    /// False when the device is offline.
    pub fn hold_acks(&self, k: &DevKey, on: bool) -> bool {
        let g = self.lock();
        let Some(c) = g.conns.get(k) else {
            return false;
        };
        // `send_replace` also works while no handler is waiting (no receiver).
        c.hold_acks.send_replace(on);
        true
    }

    /// Adds a subscription of the current session after checking the topic rights.
    pub fn subscribe(&self, k: &DevKey, id: u64, filter: &str) -> Result<(), String> {
        let mut g = self.lock();
        let check = match g.registry.product(&k.0) {
            None => Err("unknown product".to_string()),
            Some(p) => topics::check_topic(p, &k.1, filter, Direction::Subscribe),
        };
        let res = match (check, g.conns.get_mut(k)) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(c)) if c.id == id => {
                if !c.subs.iter().any(|s| s == filter) {
                    c.subs.push(filter.to_string());
                }
                Ok(())
            }
            (Ok(()), _) => Err("not the device's current session".into()),
        };
        match &res {
            Ok(()) => log::info!("{}/{}: subscribed {filter}", k.0, k.1),
            Err(e) => log::warn!("{}/{}: subscribe {filter} refused: {e}", k.0, k.1),
        }
        drop(g);
        self.notify();
        res
    }

    /// Removes a subscription of the current session.
    pub fn unsubscribe(&self, k: &DevKey, id: u64, filter: &str) {
        let mut g = self.lock();
        if let Some(c) = g.conns.get_mut(k).filter(|c| c.id == id) {
            c.subs.retain(|s| s != filter);
        }
    }
}

fn push_downlink(g: &mut Inner, k: &DevKey, topic: &str, payload: &[u8], qos: u8) {
    g.logs
        .entry(k.clone())
        .or_default()
        .downlinks
        .push(Downlink {
            topic: topic.to_string(),
            qos,
            payload: payload.to_vec(),
            at: SystemTime::now(),
        });
}

/// Queues a PUBLISH to a device's live session (no subscription check). False when offline.
pub(crate) fn send_locked(
    g: &mut Inner,
    k: &DevKey,
    topic: &str,
    payload: Vec<u8>,
    qos: u8,
) -> bool {
    let sent = g.conns.get(k).is_some_and(|c| {
        c.tx.send(Cmd::Publish {
            topic: topic.to_string(),
            payload: payload.clone(),
            qos,
        })
        .is_ok()
    });
    if sent {
        push_downlink(g, k, topic, &payload, qos);
    }
    sent
}

/// Checks a thing-model post (`rest`: `property/post` or `<event>/post`) against the product's
/// TSL, if one is loaded, and stores what passes. Without a TSL every post passes, unstored.
fn thing_post(
    g: &mut Inner,
    k: &DevKey,
    rest: &str,
    req: &serde_json::Value,
) -> Result<(), String> {
    let Some(tsl) = g.things.models.get(&k.0) else {
        return Ok(());
    };
    let params = req
        .get("params")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let now = SystemTime::now();
    if rest == "property/post" {
        crate::thing::check_property_post(tsl, &params)?;
        let stored = g.things.properties.entry(k.clone()).or_default();
        for (id, v) in params.as_object().into_iter().flatten() {
            let value = match v {
                serde_json::Value::Object(o) if o.contains_key("value") => o["value"].clone(),
                v => v.clone(),
            };
            stored.insert(id.clone(), value);
        }
        return Ok(());
    }
    let Some(event) = rest.strip_suffix("/post") else {
        return Ok(());
    };
    crate::thing::check_event_post(tsl, event, &params)?;
    g.things
        .events
        .entry(k.clone())
        .or_default()
        .push(crate::thing::PostedEvent {
            identifier: event.to_owned(),
            params: params.as_object().cloned().unwrap_or_default(),
            at: now,
        });
    Ok(())
}

/// The platform's automatic answers to an accepted uplink.
fn reactions(g: &mut Inner, k: &DevKey, up: &Uplink) -> Vec<(String, Vec<u8>)> {
    let (pk, dn) = (&k.0, &k.1);
    let mut out = Vec::new();
    if up.topic == format!("/ext/ntp/{pk}/{dn}/request") {
        let host_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let now = host_ms
            .saturating_add(g.faults.clock_offset_ms)
            .max(0)
            .to_string();
        let sent = serde_json::from_slice::<serde_json::Value>(&up.payload)
            .ok()
            .and_then(|v| v.get("deviceSendTime").cloned())
            .unwrap_or(serde_json::Value::String(String::new()));
        let body = serde_json::json!({"deviceSendTime": sent, "serverRecvTime": now, "serverSendTime": now});
        out.push((
            format!("/ext/ntp/{pk}/{dn}/response"),
            body.to_string().into_bytes(),
        ));
    }
    // Alink thing-model posts (`thing/event/property/post`, `thing/event/{id}/post`) are
    // answered on `<topic>_reply` unless the request says `"sys":{"ack":0}`.
    let thing = format!("/sys/{pk}/{dn}/thing/event/");
    if up.topic.starts_with(&thing) && up.topic.ends_with("/post") {
        let req = serde_json::from_slice::<serde_json::Value>(&up.payload).ok();
        let ack = req
            .as_ref()
            .and_then(|v| v.get("sys"))
            .and_then(|s| s.get("ack"))
            .and_then(|a| a.as_i64());
        // With the product's TSL loaded, the post is checked and, if it passes, stored.
        let checked = req
            .as_ref()
            .map(|v| thing_post(g, k, &up.topic[thing.len()..], v));
        if let Some(v) = req.filter(|_| ack != Some(0)) {
            let method = v.get("method").cloned().unwrap_or_else(|| {
                let m = up.topic[format!("/sys/{pk}/{dn}/").len()..].replace('/', ".");
                serde_json::Value::String(m)
            });
            let (code, message) = match checked {
                Some(Err(e)) => (crate::thing::CODE_BAD_PARAMS, e),
                _ => (200, "success".to_owned()),
            };
            let body = serde_json::json!({
                "id": v.get("id").cloned().unwrap_or(serde_json::Value::Null),
                "code": code, "data": {}, "message": message, "method": method, "version": "1.0",
            });
            out.push((format!("{}_reply", up.topic), body.to_string().into_bytes()));
        }
    }
    let bases = g.bases.clone();
    out.extend(crate::ota::on_uplink(g, pk, dn, up, &bases));
    out
}
