//! Emulator of the Alibaba Cloud IoT Platform device endpoint, for tests and local runs.
//!
//! Neither CI nor a new user's laptop can reach Alibaba Cloud, so this crate stands in for it:
//! MQTT 3.1.1 and 5 on one port (plain TCP and TLS), the platform's exact login rules, topic
//! rights, dynamic registration, OTA jobs with a firmware file server, a cloud-side API (Rust
//! and HTTP JSON) and fault injection. The rules follow `shared/spec/aliyun-protocol.md`.
//!
//! ```no_run
//! use aliot_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::demo()).expect("emulator starts");
//! println!("MQTT on {}", emu.mqtt_addr());
//! ```

mod api;
pub mod auth;
mod http;
mod mqtt;
mod ota;
pub mod registry;
mod runtime;
pub mod sign;
mod state;
pub mod thing;
mod tls;
pub mod topics;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use ota::{
    DeviceOtaState, DownloadRecord, JobId, MAX_FIRMWARE_UPLOAD, OtaDigest, OtaJob, OtaJobStatus,
};
pub use registry::{Device, Product, Registry, TopicCategory, TopicRights};
pub use state::{DeviceState, Downlink, LoginRecord, Uplink};

/// Everything that can go wrong when starting or driving the emulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulatorError {
    /// Socket or file error.
    #[error("I/O: {0}")]
    Io(String),
    /// The registry file is invalid.
    #[error("registry: {0}")]
    Registry(String),
    /// Certificate or TLS configuration error.
    #[error("TLS: {0}")]
    Tls(String),
    /// No such product or device.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// The device has no live session.
    #[error("device {0} is offline")]
    NotOnline(String),
    /// The device has no subscription matching the topic (the platform would not deliver).
    #[error("not subscribed: {0}")]
    NotSubscribed(String),
    /// The topic is not one the device may use.
    #[error("topic not allowed: {0}")]
    TopicNotAllowed(String),
    /// Bad argument (QoS, OTA job fields...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Products and devices.
    pub registry: Registry,
    /// Plain-TCP MQTT port, 0 = pick a free one.
    pub mqtt_port: u16,
    /// MQTT-over-TLS port, 0 = pick a free one.
    pub tls_port: u16,
    /// Cloud JSON API + plain-HTTP firmware download port, 0 = pick a free one.
    pub http_port: u16,
    /// HTTPS (`/auth/register/device`, firmware download) port, 0 = pick a free one.
    pub https_port: u16,
    /// Offer only TLS 1.2 (as some platform endpoints and the nRF9160 modem do).
    pub tls12_only: bool,
    /// Where `ca.pem` is written (or loaded with its key); `None` = a fresh temporary directory.
    pub ca_dir: Option<PathBuf>,
    /// Answer firmware downloads as if every request carried `x-oss-range-behavior: standard`
    /// (RFC 7233: 416 for a start past the end). Off = the object store's default: a range it
    /// cannot serve as written gets 200 and the whole object.
    pub strict_ranges: bool,
}

impl EmulatorConfig {
    /// The demo registry on free ports, TLS 1.2 and 1.3, CA in a temporary directory.
    pub fn demo() -> Self {
        EmulatorConfig {
            registry: Registry::demo(),
            mqtt_port: 0,
            tls_port: 0,
            http_port: 0,
            https_port: 0,
            tls12_only: false,
            ca_dir: None,
            strict_ranges: false,
        }
    }
}

/// A running emulator. Dropping it stops every listener and thread and frees the ports.
///
/// All methods take `&self`, never block on an async runtime, and may be called from std
/// threads or from inside a tokio runtime (`wait_*` block the calling thread, bounded).
pub struct Emulator {
    shared: Arc<state::Shared>,
    mqtt_addr: SocketAddr,
    tls_addr: SocketAddr,
    http_addr: SocketAddr,
    https_addr: SocketAddr,
    ca_pem_path: PathBuf,
    running: Mutex<runtime::Running>,
    _tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("mqtt_addr", &self.mqtt_addr)
            .field("tls_addr", &self.tls_addr)
            .field("http_addr", &self.http_addr)
            .field("https_addr", &self.https_addr)
            .field("ca_pem_path", &self.ca_pem_path)
            .finish()
    }
}

/// A fresh numeric message id (RRPC ids are decimal strings).
pub(crate) fn rand_id() -> u64 {
    use rand::Rng;
    rand::rng().random_range(1_000_000_000..u64::from(u32::MAX))
}

fn local(l: &std::net::TcpListener) -> Result<SocketAddr, EmulatorError> {
    l.local_addr().map_err(|e| EmulatorError::Io(e.to_string()))
}

impl Emulator {
    /// Binds every port, makes the TLS material and starts serving; returns once listening.
    pub fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        cfg.registry.validate()?;
        let (ca_dir, tmp) = match cfg.ca_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("aliot-emulator-ca")
                    .tempdir()
                    .map_err(|e| EmulatorError::Io(e.to_string()))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let tls = tls::setup(&ca_dir, cfg.tls12_only)?;
        let lst = runtime::bind(cfg.mqtt_port, cfg.tls_port, cfg.http_port, cfg.https_port)?;
        let (mqtt_addr, tls_addr) = (local(&lst.mqtt)?, local(&lst.tls)?);
        let (http_addr, https_addr) = (local(&lst.http)?, local(&lst.https)?);
        let shared = Arc::new(state::Shared::new(cfg.registry, cfg.strict_ranges));
        shared.lock().bases = state::Bases {
            http: format!("http://{http_addr}"),
            https: format!("https://localhost:{}", https_addr.port()),
        };
        let running = runtime::start(shared.clone(), lst, tls.server_config)?;
        log::info!(
            "emulator listening: mqtt {mqtt_addr}, mqtt+tls {tls_addr}, http {http_addr}, https {https_addr}, CA {}",
            tls.ca_pem_path.display()
        );
        Ok(Emulator {
            shared,
            mqtt_addr,
            tls_addr,
            http_addr,
            https_addr,
            ca_pem_path: tls.ca_pem_path,
            running: Mutex::new(running),
            _tmp: tmp,
        })
    }

    /// Plain-TCP MQTT address (127.0.0.1).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }
    /// MQTT-over-TLS address (127.0.0.1; the certificate names `localhost` and 127.0.0.1).
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }
    /// Cloud HTTP JSON API and plain-HTTP firmware download address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }
    /// HTTPS address (`/auth/register/device`, firmware download).
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }
    /// PEM file of the CA that signed the server certificate.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// Every registered device with its state.
    pub fn devices(&self) -> Vec<DeviceState> {
        api::devices(&self.shared)
    }
    /// True when the device has a live session.
    pub fn is_online(&self, pk: &str, dn: &str) -> bool {
        api::is_online(&self.shared, pk, dn)
    }
    /// Waits (bounded) until the device is online.
    pub fn wait_online(&self, pk: &str, dn: &str, timeout: Duration) -> bool {
        let k = state::key(pk, dn);
        self.shared
            .wait_until(timeout, |g| g.conns.contains_key(&k).then_some(()))
            .is_some()
    }
    /// Waits (bounded) until the device is offline.
    pub fn wait_offline(&self, pk: &str, dn: &str, timeout: Duration) -> bool {
        let k = state::key(pk, dn);
        self.shared
            .wait_until(timeout, |g| (!g.conns.contains_key(&k)).then_some(()))
            .is_some()
    }
    /// Every PUBLISH from the device, in arrival order (refused ones and DUP re-sends included).
    pub fn uplinks(&self, pk: &str, dn: &str) -> Vec<Uplink> {
        api::uplinks(&self.shared, pk, dn)
    }
    /// Waits (bounded) for the first uplink, already received or arriving, that satisfies `pred`.
    pub fn wait_for_uplink(
        &self,
        pk: &str,
        dn: &str,
        timeout: Duration,
        pred: impl Fn(&Uplink) -> bool,
    ) -> Option<Uplink> {
        let k = state::key(pk, dn);
        self.shared.wait_until(timeout, |g| {
            g.logs
                .get(&k)
                .and_then(|l| l.uplinks.iter().find(|u| pred(u)).cloned())
        })
    }
    /// Every message the cloud sent to the device.
    pub fn downlinks(&self, pk: &str, dn: &str) -> Vec<Downlink> {
        api::downlinks(&self.shared, pk, dn)
    }
    /// Topic filters of the device's current session.
    pub fn subscriptions(&self, pk: &str, dn: &str) -> Vec<String> {
        api::subscriptions(&self.shared, pk, dn)
    }
    /// Waits (bounded) until the current session has subscribed to `filter`.
    pub fn wait_subscribed(&self, pk: &str, dn: &str, filter: &str, timeout: Duration) -> bool {
        let k = state::key(pk, dn);
        self.shared
            .wait_until(timeout, |g| {
                g.conns
                    .get(&k)
                    .filter(|c| c.subs.iter().any(|s| s == filter))
                    .map(|_| ())
            })
            .is_some()
    }
    /// Every login attempt of the device (accepted or refused).
    pub fn logins(&self, pk: &str, dn: &str) -> Vec<LoginRecord> {
        api::logins(&self.shared, pk, dn)
    }
    /// When the device ended a session with an MQTT DISCONNECT (not counting connections
    /// that just closed), in order.
    pub fn client_disconnects(&self, pk: &str, dn: &str) -> Vec<SystemTime> {
        let k = state::key(pk, dn);
        self.shared
            .lock()
            .logs
            .get(&k)
            .map(|l| l.disconnects.clone())
            .unwrap_or_default()
    }
    /// Publishes to the device as the platform would deliver (see [`EmulatorError`] cases).
    pub fn publish_to_device(
        &self,
        pk: &str,
        dn: &str,
        topic: &str,
        payload: &[u8],
        qos: u8,
    ) -> Result<(), EmulatorError> {
        api::publish_to_device(&self.shared, pk, dn, topic, payload, qos)
    }
    /// Synchronous RRPC (the cloud's `RRpc` call): publishes `payload` on
    /// `/sys/pk/dn/rrpc/request/<id>` and waits (bounded) for the device's answer on
    /// `/sys/pk/dn/rrpc/response/<id>`. The device must subscribe to `.../rrpc/request/+`.
    pub fn rrpc(
        &self,
        pk: &str,
        dn: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, EmulatorError> {
        let id = format!("{}", rand_id());
        self.publish_to_device(
            pk,
            dn,
            &format!("/sys/{pk}/{dn}/rrpc/request/{id}"),
            payload,
            0,
        )?;
        let want = format!("/sys/{pk}/{dn}/rrpc/response/{id}");
        Ok(self
            .wait_for_uplink(pk, dn, timeout, |u| u.topic == want && u.refused.is_none())
            .map(|u| u.payload))
    }
    /// Loads the thing model of product `pk` (the TSL JSON the console exports). From then on
    /// the platform checks every property and event post of its devices against it (a post
    /// that fails is answered with code 460 and not stored) and keeps what passes.
    pub fn load_thing_model(&self, pk: &str, tsl: &str) -> Result<(), EmulatorError> {
        thing::load_model(&self.shared, pk, tsl)
    }
    /// The latest value of each property the device posted (and the platform accepted).
    pub fn thing_properties(
        &self,
        pk: &str,
        dn: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        thing::properties(&self.shared, pk, dn)
    }
    /// The events the device posted (and the platform accepted), in order.
    pub fn thing_events(&self, pk: &str, dn: &str) -> Vec<thing::PostedEvent> {
        thing::events(&self.shared, pk, dn)
    }
    /// Sets properties (the cloud's `SetDeviceProperty`): checked against the product's TSL
    /// (known, writable, in range) when one is loaded, sent on
    /// `/sys/pk/dn/thing/service/property/set`; waits (bounded) for the device's
    /// `set_reply` with the same id and returns it (`None` after `timeout`).
    pub fn set_properties(
        &self,
        pk: &str,
        dn: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, EmulatorError> {
        let sent = thing::send_set(&self.shared, pk, dn, params)?;
        Ok(self.wait_thing_reply(pk, dn, &sent, timeout))
    }
    /// Invokes the service `identifier` (the cloud's `InvokeThingService`), its input checked
    /// against the TSL when one is loaded. An async service goes to
    /// `/sys/pk/dn/thing/service/<identifier>` and is answered on its `_reply`; a sync one
    /// (`callType: "sync"`) goes over RRPC, `/sys/pk/dn/rrpc/request/<messageId>`, and is
    /// answered on `rrpc/response/<messageId>`. Returns the device's reply (`None` after
    /// `timeout`).
    pub fn invoke_service(
        &self,
        pk: &str,
        dn: &str,
        identifier: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, EmulatorError> {
        let sent = thing::send_service(&self.shared, pk, dn, identifier, params)?;
        Ok(self.wait_thing_reply(pk, dn, &sent, timeout))
    }
    /// Waits for the uplink on the request's reply topic that carries its id.
    fn wait_thing_reply(
        &self,
        pk: &str,
        dn: &str,
        sent: &thing::Sent,
        timeout: Duration,
    ) -> Option<serde_json::Value> {
        self.wait_for_uplink(pk, dn, timeout, |u| sent.is_reply(u))
            .and_then(|u| serde_json::from_slice(&u.payload).ok())
    }
    /// Adds a device to a product (the console's "add device"); returns its DeviceSecret
    /// (generated unless given; `None` for a pre-registered device of a dynreg product).
    pub fn add_device(
        &self,
        pk: &str,
        dn: &str,
        secret: Option<String>,
    ) -> Result<Option<String>, EmulatorError> {
        api::add_device(&self.shared, pk, dn, secret)
    }
    /// The device's current DeviceSecret, as the console shows it (for tests that check what a
    /// registration handed out; never logged).
    pub fn device_secret(&self, pk: &str, dn: &str) -> Option<String> {
        self.shared
            .lock()
            .registry
            .device(pk, dn)
            .and_then(|d| d.secret.clone())
    }
    /// The `(clientId, deviceToken)` a not-pre-registered registration issued (for tests that
    /// check what a device does with it; never logged).
    pub fn device_token(&self, pk: &str, dn: &str) -> Option<(String, String)> {
        self.shared
            .lock()
            .registry
            .device(pk, dn)
            .and_then(|d| d.token.clone())
    }
    /// Kicks the device off (MQTT 5: DISCONNECT 0x8E first). False when it was offline.
    pub fn kick(&self, pk: &str, dn: &str) -> bool {
        api::end_session(&self.shared, pk, dn, false)
    }
    /// ResetThing: makes an activated device registrable again.
    pub fn reset_registration(&self, pk: &str, dn: &str) -> Result<(), EmulatorError> {
        api::reset_registration(&self.shared, pk, dn)
    }
    /// Creates an OTA job: the upgrade is pushed on `/ota/device/upgrade/pk/dn` now to online
    /// targets and at the next login to the others.
    pub fn create_ota_job(&self, job: OtaJob) -> Result<JobId, EmulatorError> {
        api::create_ota_job(&self.shared, job)
    }
    /// State of an OTA job (per device), `None` for an unknown id.
    pub fn ota_job(&self, id: JobId) -> Option<OtaJobStatus> {
        api::ota_job(&self.shared, id)
    }
    /// Waits (bounded) until device `dn` reaches a state in job `id` that satisfies `pred`.
    pub fn wait_ota_state(
        &self,
        id: JobId,
        dn: &str,
        timeout: Duration,
        pred: impl Fn(&DeviceOtaState) -> bool,
    ) -> Option<DeviceOtaState> {
        self.shared.wait_until(timeout, |g| {
            ota::job_status(g, id).and_then(|s| s.devices.get(dn).filter(|st| pred(st)).cloned())
        })
    }
    /// Fault: refuse new connections (CONNACK "server unavailable") for `d`.
    pub fn refuse_connections_for(&self, d: Duration) {
        api::refuse_connections_for(&self.shared, d)
    }
    /// Fault: drop the device's connection now, without DISCONNECT. False when it was offline.
    pub fn drop_connection(&self, pk: &str, dn: &str) -> bool {
        api::end_session(&self.shared, pk, dn, true)
    }
    /// Every firmware download the file server answered, in order.
    pub fn downloads(&self) -> Vec<DownloadRecord> {
        self.shared.lock().downloads.clone()
    }
    /// Fault: cut every firmware download after `bytes` bytes of body (`None` = no cut).
    pub fn cut_downloads_after(&self, bytes: Option<u64>) {
        api::cut_downloads_after(&self.shared, bytes)
    }
    /// Fault: hold back every PUBACK of the device's current session, so each QoS 1 PUBLISH it
    /// sends from now on stays in flight (its [`Uplink::ack_held`] is set) until
    /// [`Emulator::release_pubacks`], or until the session ends: then it is never acknowledged,
    /// as on a dead link. The next session starts without a hold. False when offline.
    pub fn hold_pubacks(&self, pk: &str, dn: &str) -> bool {
        api::hold_pubacks(&self.shared, pk, dn, true)
    }
    /// Ends [`Emulator::hold_pubacks`]: the held PUBACKs go out now. False when offline.
    pub fn release_pubacks(&self, pk: &str, dn: &str) -> bool {
        api::hold_pubacks(&self.shared, pk, dn, false)
    }
    /// Downloads answer as if every request carried `x-oss-range-behavior: standard` (`true`),
    /// or as the object store does by default (`false`, see [`EmulatorConfig::strict_ranges`]).
    pub fn set_strict_ranges(&self, on: bool) {
        api::set_strict_ranges(&self.shared, on)
    }
    /// The platform's clock runs `ms` milliseconds ahead of the host's (behind when negative):
    /// NTP answers (`/ext/ntp/.../response`) give that time, so a test can tell the platform's
    /// time from the host's.
    pub fn set_clock_offset(&self, ms: i64) {
        api::set_clock_offset(&self.shared, ms)
    }
    /// Fault: delay every MQTT packet (both directions) by `d`.
    pub fn set_packet_latency(&self, d: Duration) {
        api::set_packet_latency(&self.shared, d)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop();
    }
}

#[cfg(test)]
mod tests {
    /// The end-to-end tests share one emulator across threads.
    #[test]
    fn emulator_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<super::Emulator>();
    }
}
