//! Cloud-side operations shared by the Rust API ([`crate::Emulator`]) and the HTTP JSON API.

use std::time::{Duration, Instant};

use crate::EmulatorError;
use crate::state::{Cmd, DeviceState, Downlink, LoginRecord, Shared, Uplink, key, send_locked};
use crate::topics::{self, Direction};

/// Every registered device with its state.
pub(crate) fn devices(sh: &Shared) -> Vec<DeviceState> {
    let g = sh.lock();
    let mut out = Vec::new();
    for p in &g.registry.products {
        for d in &p.devices {
            let conn = g.conns.get(&key(&p.product_key, &d.name));
            out.push(DeviceState {
                product_key: p.product_key.clone(),
                device_name: d.name.clone(),
                activated: d.activated,
                online: conn.is_some(),
                has_secret: d.secret.is_some() || d.token.is_some(),
                mqtt_version: conn.map(|c| c.version),
                tls: conn.map(|c| c.tls),
                subscriptions: conn.map(|c| c.subs.clone()).unwrap_or_default(),
                auto_subscriptions: conn.map(|c| c.auto_subs.clone()).unwrap_or_default(),
                versions: d.versions.clone(),
            });
        }
    }
    out
}

pub(crate) fn is_online(sh: &Shared, pk: &str, dn: &str) -> bool {
    sh.lock().conns.contains_key(&key(pk, dn))
}

pub(crate) fn uplinks(sh: &Shared, pk: &str, dn: &str) -> Vec<Uplink> {
    sh.lock()
        .logs
        .get(&key(pk, dn))
        .map(|l| l.uplinks.clone())
        .unwrap_or_default()
}

pub(crate) fn downlinks(sh: &Shared, pk: &str, dn: &str) -> Vec<Downlink> {
    sh.lock()
        .logs
        .get(&key(pk, dn))
        .map(|l| l.downlinks.clone())
        .unwrap_or_default()
}

pub(crate) fn logins(sh: &Shared, pk: &str, dn: &str) -> Vec<LoginRecord> {
    sh.lock()
        .logs
        .get(&key(pk, dn))
        .map(|l| l.logins.clone())
        .unwrap_or_default()
}

pub(crate) fn subscriptions(sh: &Shared, pk: &str, dn: &str) -> Vec<String> {
    sh.lock()
        .conns
        .get(&key(pk, dn))
        .map(|c| c.subs.clone())
        .unwrap_or_default()
}

/// Publishes to a device the way the platform delivers: the topic must be one the device may
/// subscribe to, the device must be online, and one of its subscriptions must match (its own,
/// or the `/sys/{pk}/{dn}/#` the platform holds for a `_ss=1` login).
pub(crate) fn publish_to_device(
    sh: &Shared,
    pk: &str,
    dn: &str,
    topic: &str,
    payload: &[u8],
    qos: u8,
) -> Result<(), EmulatorError> {
    if qos > 1 {
        return Err(EmulatorError::InvalidRequest("QoS must be 0 or 1".into()));
    }
    let mut g = sh.lock();
    let Some(product) = g.registry.product(pk) else {
        return Err(EmulatorError::UnknownDevice(format!("{pk}/{dn}")));
    };
    if product.device(dn).is_none() {
        return Err(EmulatorError::UnknownDevice(format!("{pk}/{dn}")));
    }
    topics::check_topic(product, dn, topic, Direction::Subscribe)
        .map_err(EmulatorError::TopicNotAllowed)?;
    if topic.contains('+') || topic.contains('#') {
        return Err(EmulatorError::TopicNotAllowed(format!(
            "{topic}: wildcards in a topic name"
        )));
    }
    let k = key(pk, dn);
    let Some(conn) = g.conns.get(&k) else {
        return Err(EmulatorError::NotOnline(format!("{pk}/{dn}")));
    };
    if !conn.delivers(topic) {
        return Err(EmulatorError::NotSubscribed(format!(
            "{pk}/{dn} has no subscription matching {topic}"
        )));
    }
    log::info!(
        "cloud -> {pk}/{dn}: {topic} qos{qos} {} bytes",
        payload.len()
    );
    if !send_locked(&mut g, &k, topic, payload.to_vec(), qos) {
        return Err(EmulatorError::NotOnline(format!("{pk}/{dn}")));
    }
    Ok(())
}

/// Ends the device's session: `kick` (MQTT 5 DISCONNECT 0x8E, then close) or an abrupt drop.
pub(crate) fn end_session(sh: &Shared, pk: &str, dn: &str, abrupt: bool) -> bool {
    let mut g = sh.lock();
    let Some(conn) = g.conns.remove(&key(pk, dn)) else {
        return false;
    };
    log::warn!(
        "{pk}/{dn}: {} by the cloud",
        if abrupt {
            "connection dropped"
        } else {
            "kicked"
        }
    );
    let _ = conn.tx.send(if abrupt { Cmd::Drop } else { Cmd::Kick });
    drop(g);
    sh.notify();
    true
}

/// ResetThing: the device becomes registrable again (its old secret stays valid until a new
/// registration replaces it).
pub(crate) fn reset_registration(sh: &Shared, pk: &str, dn: &str) -> Result<(), EmulatorError> {
    let mut g = sh.lock();
    let Some(d) = g.registry.device_mut(pk, dn) else {
        return Err(EmulatorError::UnknownDevice(format!("{pk}/{dn}")));
    };
    d.activated = false;
    log::info!("{pk}/{dn}: registration reset");
    Ok(())
}

pub(crate) fn refuse_connections_for(sh: &Shared, d: Duration) {
    sh.lock().faults.refuse_until = Some(Instant::now() + d);
    log::warn!("fault: refusing new connections for {d:?}");
}

pub(crate) fn cut_downloads_after(sh: &Shared, bytes: Option<u64>) {
    sh.lock().faults.cut_downloads_after = bytes;
    log::warn!("fault: cut downloads after {bytes:?} bytes");
}

/// Holds back (`on`) or releases the PUBACKs of the device's current session; false when offline.
pub(crate) fn hold_pubacks(sh: &Shared, pk: &str, dn: &str, on: bool) -> bool {
    let done = sh.hold_acks(&key(pk, dn), on);
    if done {
        log::warn!(
            "fault: {pk}/{dn}: PUBACKs {}",
            if on { "held back" } else { "released" }
        );
    }
    done
}

/// Answer every download as if it carried `x-oss-range-behavior: standard` (`on`), or as
/// the object store does by default.
pub(crate) fn set_strict_ranges(sh: &Shared, on: bool) {
    sh.lock().faults.strict_ranges = on;
    log::warn!("downloads: strict (RFC 7233) ranges {on}");
}

pub(crate) fn set_packet_latency(sh: &Shared, d: Duration) {
    sh.lock().faults.latency = d;
    log::warn!("fault: packet latency {d:?}");
}

pub(crate) fn set_clock_offset(sh: &Shared, ms: i64) {
    sh.lock().faults.clock_offset_ms = ms;
    log::warn!("fault: the platform's clock is {ms} ms off the host's");
}

/// Creates an OTA job and pushes it to the targets that are online.
pub(crate) fn create_ota_job(
    sh: &Shared,
    job: crate::OtaJob,
) -> Result<crate::JobId, EmulatorError> {
    let mut g = sh.lock();
    let bases = g.bases.clone();
    let (id, pushes) = crate::ota::create_job(&mut g, job, &bases)?;
    for (pk, dn, msg) in pushes {
        let topic = format!("/ota/device/upgrade/{pk}/{dn}");
        log::info!("OTA job {}: push to {pk}/{dn}", id.0);
        send_locked(&mut g, &key(&pk, &dn), &topic, msg, 1);
    }
    drop(g);
    sh.notify();
    Ok(id)
}

pub(crate) fn ota_job(sh: &Shared, id: crate::JobId) -> Option<crate::OtaJobStatus> {
    crate::ota::job_status(&sh.lock(), id)
}

pub(crate) fn ota_jobs(sh: &Shared) -> Vec<crate::OtaJobStatus> {
    crate::ota::all_jobs(&sh.lock())
}

/// Products without their secrets.
pub(crate) fn products(sh: &Shared) -> Vec<serde_json::Value> {
    sh.lock()
        .registry
        .products
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "product_key": p.product_key,
                "dynamic_registration": p.dynamic_registration,
                "allow_unregistered": p.allow_unregistered,
                "topics": p.topics,
                "devices": p.devices.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Adds a device to a product (the console's "add device"); returns its DeviceSecret, which
/// is generated unless given. For a dynamic-registration product without `secret` the device
/// is pre-registered without one.
pub(crate) fn add_device(
    sh: &Shared,
    pk: &str,
    dn: &str,
    secret: Option<String>,
) -> Result<Option<String>, EmulatorError> {
    let mut g = sh.lock();
    let Some(p) = g.registry.product_mut(pk) else {
        return Err(EmulatorError::UnknownDevice(pk.to_string()));
    };
    if dn.is_empty() || p.device(dn).is_some() {
        return Err(EmulatorError::InvalidRequest(format!(
            "device name {dn:?} is empty or taken"
        )));
    }
    if !crate::auth::valid_new_device_name(dn) {
        return Err(EmulatorError::InvalidRequest(format!(
            "device name {dn:?} must match [A-Za-z0-9_.@:-]{{4,32}}"
        )));
    }
    let secret = match secret {
        Some(s) => Some(s),
        None if p.dynamic_registration => None,
        None => Some(crate::state::random_secret()),
    };
    p.devices.push(crate::Device {
        name: dn.to_string(),
        secret: secret.clone(),
        ..crate::Device::default()
    });
    log::info!("device {pk}/{dn} added");
    Ok(secret)
}

/// HTTPS dynamic registration (pre-registered devices only); `Err((code, message))`.
pub(crate) fn https_register(
    sh: &Shared,
    pk: &str,
    dn: &str,
    random: &str,
    method: crate::sign::SignMethod,
    sign: &str,
) -> Result<String, (u32, String)> {
    let mut g = sh.lock();
    let res = (|| {
        let Some(product) = g.registry.product(pk) else {
            return Err((404, format!("product {pk} not found")));
        };
        if !crate::auth::check_register_sign(
            &product.product_secret,
            pk,
            dn,
            random,
            method,
            sign.as_bytes(),
        ) {
            return Err((401, "sign check failed".to_string()));
        }
        // The platform's HTTPS codes are UNCONFIRMED; the emulator answers 404 for a device
        // the product does not know and 403 for one that may not register (activated, or
        // dynamic registration off), each with a message saying which.
        crate::auth::issue_secret(&mut g.registry, pk, dn, &mut crate::state::random_secret)
            .map_err(|r| {
                let code = match r.code {
                    crate::auth::RefuseCode::IdentifierRejected => 404,
                    _ => 403,
                };
                (code, r.reason)
            })
    })();
    let record = LoginRecord {
        at: std::time::SystemTime::now(),
        accepted: res.is_ok(),
        reason: match &res {
            Ok(_) => "HTTPS registration, secret issued".to_string(),
            Err((_, m)) => format!("HTTPS registration refused: {m}"),
        },
        mqtt_version: 0,
        tls: true,
        client_id: String::new(),
        keep_alive: 0,
    };
    match &res {
        Ok(_) => log::info!("HTTPS registration ok: {pk}/{dn} (secret issued, not logged)"),
        Err((_, m)) => log::warn!("HTTPS registration refused: {pk}/{dn}: {m}"),
    }
    g.logs.entry(key(pk, dn)).or_default().logins.push(record);
    drop(g);
    sh.notify();
    res
}
