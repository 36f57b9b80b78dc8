//! Test helpers: real MQTT clients (rumqttc 3.1.1 and 5) driven on their own threads, and the
//! platform's credential formulas written out independently of the emulator's checker.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use aliot_emulator::sign::{SignMethod, hmac_hex, login_sign_content};

/// Bound for every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// Demo product / devices.
pub const PK: &str = "a1NrfDemo01";
/// Demo device 1.
pub const DN: &str = "nrf9160-dk-01";
/// Demo device 1 secret.
pub const DS: &str = "DemoDeviceSecretForEmulator00001";
/// Demo device 2.
pub const DN2: &str = "nrf9160-dk-02";
/// Demo device 2 secret.
pub const DS2: &str = "DemoDeviceSecretForEmulator00002";

/// MQTT CONNECT credentials.
#[derive(Clone, Debug)]
pub struct Creds {
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub keep_alive: u64,
}

/// Credentials as the official SDKs build them (hmacsha256, fixed timestamp, uppercase).
pub fn sdk_creds(pk: &str, dn: &str, ds: &str) -> Creds {
    let cid = format!("{pk}.{dn}");
    let ts = "2524608000000";
    let content = login_sign_content(Some(&cid), dn, pk, Some(ts));
    Creds {
        client_id: format!(
            "{cid}|timestamp={ts},_ss=1,_v=sdk-c-4.0.0,securemode=3,signmethod=hmacsha256,ext=3,|"
        ),
        username: format!("{dn}&{pk}"),
        password: hmac_hex(SignMethod::HmacSha256, ds.as_bytes(), content.as_bytes()),
        keep_alive: 300,
    }
}

/// The same credentials without `_ss=1` (the platform then subscribes nothing itself). The
/// extension parameters are not signed, so the password stays valid.
pub fn without_ss(mut c: Creds) -> Creds {
    assert!(c.client_id.contains("_ss=1,"), "{}", c.client_id);
    c.client_id = c.client_id.replace("_ss=1,", "");
    c
}

/// Credentials as LuatOS builds them (hmacmd5, its seconds-looking timestamp).
pub fn luatos_creds(pk: &str, dn: &str, ds: &str) -> Creds {
    let cid = format!("{pk}.{dn}");
    let ts = "32472115200";
    let content = login_sign_content(Some(&cid), dn, pk, Some(ts));
    Creds {
        client_id: format!("{cid}|securemode=3,signmethod=hmacmd5,timestamp={ts}|"),
        username: format!("{dn}&{pk}"),
        password: hmac_hex(SignMethod::HmacMd5, ds.as_bytes(), content.as_bytes()),
        keep_alive: 300,
    }
}

/// What a client saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    /// CONNACK: Ok or the refusal code's name.
    ConnAck(Result<(), String>),
    /// SUBACK return codes (`Success(..)` or failure names).
    SubAck(Vec<String>),
    /// PUBLISH from the server.
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
    },
    /// PUBACK for our QoS 1 PUBLISH (MQTT 5: its reason code name).
    PubAck(String),
    /// DISCONNECT from the server (MQTT 5 reason code name; "" on 3.1.1).
    Disconnect(String),
    /// The connection ended with an error.
    Closed(String),
}

/// One client of either version, events forwarded from its network thread.
pub struct TestClient {
    v3: Option<rumqttc::Client>,
    v5: Option<rumqttc::v5::Client>,
    pub events: Receiver<Ev>,
}

/// TLS configuration trusting the emulator's CA (`tls12_only` restricts the client side).
pub fn client_tls(ca_pem: &std::path::Path, tls12_only: bool) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca_pem).expect("read ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("pem cert")).expect("add root");
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(cfg)
}

impl TestClient {
    /// Connects with MQTT 3.1.1 (`version` 4) or 5; `tls` = Some(config) for TLS to `localhost`.
    pub fn connect(
        version: u8,
        port: u16,
        c: &Creds,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> TestClient {
        let (tx, rx) = channel();
        let host = if tls.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        if version == 5 {
            use rumqttc::v5::{Client, Event, MqttOptions, mqttbytes::v5::Packet};
            let mut o = MqttOptions::new(c.client_id.clone(), host, port);
            o.set_credentials(c.username.clone(), c.password.clone());
            o.set_keep_alive(Duration::from_secs(c.keep_alive));
            if let Some(t) = tls {
                o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                    t,
                )));
            }
            let (client, mut conn) = Client::new(o, 64);
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    let e = match ev {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => Ev::ConnAck(Ok(())),
                        Ok(Event::Incoming(Packet::SubAck(s))) => {
                            Ev::SubAck(s.return_codes.iter().map(|r| format!("{r:?}")).collect())
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => Ev::Publish {
                            topic: String::from_utf8_lossy(&p.topic).to_string(),
                            payload: p.payload.to_vec(),
                            qos: p.qos as u8,
                        },
                        Ok(Event::Incoming(Packet::PubAck(a))) => {
                            Ev::PubAck(format!("{:?}", a.reason))
                        }
                        Ok(Event::Incoming(Packet::Disconnect(d))) => {
                            Ev::Disconnect(format!("{:?}", d.reason_code))
                        }
                        Ok(_) => continue,
                        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
                            let _ = tx.send(Ev::ConnAck(Err(format!("{code:?}"))));
                            break;
                        }
                        Err(e) => {
                            // rumqttc 0.25 reports a server DISCONNECT as a state error.
                            let text = e.to_string();
                            let ev = match text.split_once("code '") {
                                Some((_, rest)) if text.contains("Server sent disconnect") => {
                                    Ev::Disconnect(
                                        rest.split('\'').next().unwrap_or("").to_string(),
                                    )
                                }
                                _ => Ev::Closed(text),
                            };
                            let _ = tx.send(ev);
                            break;
                        }
                    };
                    if tx.send(e).is_err() {
                        break;
                    }
                }
            });
            TestClient {
                v3: None,
                v5: Some(client),
                events: rx,
            }
        } else {
            use rumqttc::{Client, Event, MqttOptions, Packet};
            let mut o = MqttOptions::new(c.client_id.clone(), host, port);
            o.set_credentials(c.username.clone(), c.password.clone());
            o.set_keep_alive(Duration::from_secs(c.keep_alive));
            o.set_max_packet_size(1 << 20, 1 << 20);
            if let Some(t) = tls {
                o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                    t,
                )));
            }
            let (client, mut conn) = Client::new(o, 64);
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    let e = match ev {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => Ev::ConnAck(Ok(())),
                        Ok(Event::Incoming(Packet::SubAck(s))) => {
                            Ev::SubAck(s.return_codes.iter().map(|r| format!("{r:?}")).collect())
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => Ev::Publish {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            qos: p.qos as u8,
                        },
                        Ok(Event::Incoming(Packet::PubAck(_))) => Ev::PubAck("Success".into()),
                        Ok(Event::Incoming(Packet::Disconnect)) => Ev::Disconnect(String::new()),
                        Ok(_) => continue,
                        Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                            let _ = tx.send(Ev::ConnAck(Err(format!("{code:?}"))));
                            break;
                        }
                        Err(e) => {
                            let _ = tx.send(Ev::Closed(e.to_string()));
                            break;
                        }
                    };
                    if tx.send(e).is_err() {
                        break;
                    }
                }
            });
            TestClient {
                v3: Some(client),
                v5: None,
                events: rx,
            }
        }
    }

    /// Waits for the next event matching `pred`, skipping others; None on timeout or close.
    pub fn wait(&self, pred: impl Fn(&Ev) -> bool) -> Option<Ev> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return Some(e),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Waits for the CONNACK (or refusal).
    pub fn connack(&self) -> Result<(), String> {
        match self.wait(|e| matches!(e, Ev::ConnAck(_) | Ev::Closed(_))) {
            Some(Ev::ConnAck(r)) => r,
            Some(Ev::Closed(e)) => Err(format!("closed: {e}")),
            _ => Err("no CONNACK".into()),
        }
    }

    /// Subscribes and returns the SUBACK codes.
    pub fn subscribe(&self, filter: &str, qos: u8) -> Vec<String> {
        if let Some(c) = &self.v3 {
            c.subscribe(filter, qos3(qos)).expect("subscribe");
        } else if let Some(c) = &self.v5 {
            c.subscribe(filter, qos5(qos)).expect("subscribe");
        }
        match self.wait(|e| matches!(e, Ev::SubAck(_))) {
            Some(Ev::SubAck(v)) => v,
            _ => vec!["no SUBACK".into()],
        }
    }

    /// Publishes (does not wait for PUBACK).
    pub fn publish(&self, topic: &str, qos: u8, payload: &[u8]) {
        if let Some(c) = &self.v3 {
            c.publish(topic, qos3(qos), false, payload.to_vec())
                .expect("publish");
        } else if let Some(c) = &self.v5 {
            c.publish(topic, qos5(qos), false, payload.to_vec())
                .expect("publish");
        }
    }

    /// Publishes with the retain flag.
    pub fn publish_retained(&self, topic: &str, payload: &[u8]) {
        if let Some(c) = &self.v3 {
            c.publish(topic, qos3(1), true, payload.to_vec())
                .expect("publish");
        } else if let Some(c) = &self.v5 {
            c.publish(topic, qos5(1), true, payload.to_vec())
                .expect("publish");
        }
    }

    /// Sends DISCONNECT.
    pub fn disconnect(&self) {
        if let Some(c) = &self.v3 {
            let _ = c.disconnect();
        } else if let Some(c) = &self.v5 {
            let _ = c.disconnect();
        }
    }

    /// Waits for a PUBLISH from the server on `topic`.
    pub fn wait_publish(&self, topic: &str) -> Option<Vec<u8>> {
        match self.wait(|e| matches!(e, Ev::Publish { topic: t, .. } if t == topic)) {
            Some(Ev::Publish { payload, .. }) => Some(payload),
            _ => None,
        }
    }

    /// Waits until the server closes the connection (DISCONNECT or error); returns what it saw.
    pub fn wait_closed(&self) -> Option<Ev> {
        self.wait(|e| matches!(e, Ev::Disconnect(_) | Ev::Closed(_)))
    }
}

fn qos3(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// HTTP(S) client that returns every status (no error for 4xx) and trusts `ca` for HTTPS.
pub fn http_agent(ca: Option<&std::path::Path>) -> ureq::Agent {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("ca");
        let cert = ureq::tls::Certificate::from_pem(&pem).expect("pem");
        b = b.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        );
    }
    b.build().into()
}

/// GET `url` and parse the JSON body.
pub fn get_json(agent: &ureq::Agent, url: &str) -> (u16, serde_json::Value) {
    let mut r = agent.get(url).call().expect("request");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// POST a JSON body and parse the JSON answer.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut r = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
