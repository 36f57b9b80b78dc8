//! MQTT 3.1.1 + 5 endpoint on ntex-mqtt: handshake -> login checker, publish -> uplink log,
//! subscribe -> topic rights, and a per-connection task that executes cloud commands.
//!
//! Runs on the emulator's single ntex worker thread (the ntex-mqtt sinks are `!Send`); the rest
//! of the emulator talks to a connection only through its command channel.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use ntex::service::{ServiceFactory, fn_factory_with_config, fn_service};
use ntex::util::{ByteString, Bytes};
use ntex_mqtt::{Control, MqttServer, v3, v5};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::auth::{ConnectRequest, RefuseCode};
use crate::state::{Cmd, DevKey, Shared};

/// Error type of the MQTT services: closes the connection.
#[derive(Debug)]
pub(crate) struct ServerError(pub String);

impl From<()> for ServerError {
    fn from(_: ()) -> Self {
        ServerError("unspecified".into())
    }
}

impl TryFrom<ServerError> for v5::PublishAck {
    type Error = ServerError;
    fn try_from(err: ServerError) -> Result<Self, Self::Error> {
        Err(err)
    }
}

/// Per-connection state held by ntex-mqtt's session.
pub(crate) struct ConnState {
    shared: Arc<Shared>,
    key: DevKey,
    id: u64,
    registration: bool,
    rx: RefCell<Option<UnboundedReceiver<Cmd>>>,
}

impl Drop for ConnState {
    fn drop(&mut self) {
        if !self.registration {
            self.shared
                .disconnected(&self.key, self.id, "connection closed");
        }
    }
}

async fn delay(shared: &Shared) {
    let d = shared.latency();
    if !d.is_zero() {
        ntex::time::sleep(d).await;
    }
}

/// Waits out a PUBACK hold (fault injection): until it is released or the session ends. The
/// caller then checks that the session is still current before acknowledging.
async fn wait_hold(hold: Option<watch::Receiver<bool>>) {
    if let Some(mut hold) = hold {
        // `Err` = the sender is gone: the session ended, which ends the hold too.
        let _ = hold.wait_for(|held| !*held).await;
    }
}

/// Either version's sink, so one command task serves both.
#[derive(Clone)]
enum AnySink {
    V3(v3::MqttSink),
    V5(v5::MqttSink),
}

impl AnySink {
    async fn publish(&self, topic: String, payload: Vec<u8>, qos: u8) {
        let payload = Bytes::from(payload);
        let topic = ByteString::from(topic);
        match (self, qos) {
            (AnySink::V3(s), 0) => {
                let _ = s.publish(topic).send_at_most_once(payload);
            }
            (AnySink::V3(s), _) => {
                let _ = s.publish(topic).send_at_least_once(payload).await;
            }
            (AnySink::V5(s), 0) => {
                let _ = s.publish(topic).send_at_most_once(payload);
            }
            (AnySink::V5(s), _) => {
                let _ = s.publish(topic).send_at_least_once(payload).await;
            }
        }
    }

    fn kick(&self) {
        match self {
            AnySink::V3(s) => s.close(),
            AnySink::V5(s) => s.close_with_reason(v5::codec::Disconnect {
                reason_code: v5::codec::DisconnectReasonCode::SessionTakenOver,
                ..Default::default()
            }),
        }
    }

    fn force_close(&self) {
        match self {
            AnySink::V3(s) => s.force_close(),
            AnySink::V5(s) => s.force_close(),
        }
    }

    fn close(&self) {
        match self {
            AnySink::V3(s) => s.close(),
            AnySink::V5(s) => s.close(),
        }
    }
}

/// Starts the task that executes cloud commands for one connection (after CONNACK was sent).
fn start_pump(state: &ConnState, sink: AnySink) {
    let Some(mut rx) = state.rx.borrow_mut().take() else {
        return;
    };
    let shared = state.shared.clone();
    ntex::rt::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            delay(&shared).await;
            // Each command runs as its own task, spawned in order, so a QoS 1 send waiting for
            // its PUBACK never holds up later commands, and first polls (the writes) stay FIFO.
            let sink = sink.clone();
            let last = matches!(cmd, Cmd::Kick | Cmd::Drop | Cmd::Close);
            ntex::rt::spawn(async move {
                match cmd {
                    Cmd::Publish {
                        topic,
                        payload,
                        qos,
                    } => sink.publish(topic, payload, qos).await,
                    Cmd::Kick => sink.kick(),
                    Cmd::Drop => sink.force_close(),
                    Cmd::Close => {
                        // Let the queued PUBLISH reach the socket before closing.
                        ntex::time::sleep(Duration::from_millis(50)).await;
                        sink.close();
                    }
                }
            });
            if last {
                break;
            }
        }
    });
}

/// The connection is ending: log an error cause and mark the device offline.
fn on_stop(st: &ConnState, reason: &ntex_mqtt::Reason<ServerError>) {
    if let ntex_mqtt::Reason::Error(e) = reason {
        log::warn!(
            "{}/{}: connection closed: {}",
            st.key.0,
            st.key.1,
            e.get_ref().0
        );
    }
    if !st.registration {
        st.shared
            .disconnected(&st.key, st.id, &format!("{reason:?}"));
    }
}

fn login(shared: &Arc<Shared>, req: &ConnectRequest) -> Result<ConnState, RefuseCode> {
    match shared.login(req) {
        Ok(ok) => Ok(ConnState {
            shared: shared.clone(),
            key: ok.key,
            id: ok.id,
            registration: ok.registration,
            rx: RefCell::new(Some(ok.rx)),
        }),
        Err(r) => Err(r.code),
    }
}

fn v3_reason(code: RefuseCode) -> v3::codec::ConnectAckReason {
    use v3::codec::ConnectAckReason as R;
    match code {
        RefuseCode::BadCredentials => R::BadUserNameOrPassword,
        RefuseCode::IdentifierRejected | RefuseCode::BadKeepAlive => R::IdentifierRejected,
        RefuseCode::ServerUnavailable => R::ServiceUnavailable,
        RefuseCode::NotAuthorized => R::NotAuthorized,
    }
}

fn v5_reason(code: RefuseCode) -> v5::codec::ConnectAckReason {
    use v5::codec::ConnectAckReason as R;
    match code {
        RefuseCode::BadCredentials => R::BadUserNameOrPassword,
        RefuseCode::IdentifierRejected => R::ClientIdentifierNotValid,
        RefuseCode::ServerUnavailable => R::ServerUnavailable,
        RefuseCode::NotAuthorized => R::NotAuthorized,
        RefuseCode::BadKeepAlive => R::ProtocolError,
    }
}

/// QoS granted for a SUBSCRIBE: the platform has no QoS 2.
fn granted(q: ntex_mqtt::QoS) -> ntex_mqtt::QoS {
    if qos_u8(q) >= 1 {
        ntex_mqtt::QoS::AtLeastOnce
    } else {
        ntex_mqtt::QoS::AtMostOnce
    }
}

fn qos_u8(q: ntex_mqtt::QoS) -> u8 {
    match q {
        ntex_mqtt::QoS::AtMostOnce => 0,
        ntex_mqtt::QoS::AtLeastOnce => 1,
        ntex_mqtt::QoS::ExactlyOnce => 2,
    }
}

// ---------------------------------------------------------------- MQTT 3.1.1

/// Builds the MQTT 3.1.1 server (an expression: its type is too long to write down).
macro_rules! v3_server {
    ($shared:expr, $tls:expr) => {{
        let shared: Arc<Shared> = $shared;
        let tls: bool = $tls;
        let sh_hs = shared.clone();
        v3::MqttServer::new(move |h: v3::Handshake| {
            let shared = sh_hs.clone();
            async move {
                delay(&shared).await;
                let p = h.packet();
                let req = ConnectRequest {
                    client_id: p.client_id.to_string(),
                    username: p.username.as_ref().map(|u| u.to_string()),
                    password: p.password.as_ref().map(|b| b.to_vec()),
                    keep_alive: p.keep_alive,
                    has_will: p.last_will.is_some(),
                    mqtt_version: 4,
                    tls,
                };
                match login(&shared, &req) {
                    Ok(st) => Ok::<_, ServerError>(h.ack(st, false)),
                    Err(code) => Ok(h.failed(v3_reason(code))),
                }
            }
        })
        .control(fn_factory_with_config(
            async |session: v3::Session<ConnState>| {
                Ok::<_, ServerError>(fn_service(move |c: Control<ServerError>| {
                    let session = session.clone();
                    async move {
                        if let Control::Stop(reason) = &c {
                            on_stop(&session, reason);
                        }
                        Ok::<_, ServerError>(None)
                    }
                }))
            },
        ))
        .protocol(fn_factory_with_config(
            async |session: v3::Session<ConnState>| {
                Ok::<_, ServerError>(fn_service(move |msg: v3::ProtocolMessage| {
                    let session = session.clone();
                    async move {
                        let st = &*session;
                        Ok::<_, ServerError>(match msg {
                            v3::ProtocolMessage::Subscribe(mut s) => {
                                for mut sub in s.iter_mut() {
                                    let allowed = !st.registration
                                        && st.shared.subscribe(&st.key, st.id, sub.topic()).is_ok();
                                    if allowed {
                                        sub.confirm(granted(sub.qos()));
                                    } else {
                                        sub.fail();
                                    }
                                }
                                s.ack()
                            }
                            v3::ProtocolMessage::Unsubscribe(u) => {
                                for t in u.iter() {
                                    st.shared.unsubscribe(&st.key, st.id, t);
                                }
                                u.ack()
                            }
                            v3::ProtocolMessage::Disconnect(d) => {
                                if !st.registration {
                                    st.shared.client_disconnect(&st.key, st.id);
                                }
                                d.ack()
                            }
                            other => other.ack(),
                        })
                    }
                }))
            },
        ))
        .publish(fn_factory_with_config(
            async |session: v3::Session<ConnState>| {
                start_pump(&*session, AnySink::V3(session.sink().clone()));
                Ok::<_, ServerError>(fn_service(move |p: v3::Publish| {
                    let session = session.clone();
                    async move {
                        let st = &*session;
                        delay(&st.shared).await;
                        let payload = p
                            .read_all()
                            .await
                            .map_err(|e| ServerError(format!("{e:?}")))?;
                        let qos = qos_u8(p.qos());
                        let topic = p.publish_topic();
                        // 3.1.1 has no way to say "refused" in a PUBACK: a refused one is dropped.
                        let verdict = st.shared.uplink(
                            &st.key,
                            st.id,
                            topic,
                            qos,
                            payload.to_vec(),
                            p.dup(),
                            p.retain(),
                        );
                        if qos > 1 {
                            return Err(ServerError("QoS 2 publish".into()));
                        }
                        wait_hold(verdict.hold).await;
                        if !st.shared.is_current(&st.key, st.id) {
                            // Kicked meanwhile: close without a PUBACK, as a dead session would.
                            return Err(ServerError("publish on a replaced session".into()));
                        }
                        Ok(())
                    }
                }))
            },
        ))
    }};
}

// ---------------------------------------------------------------- MQTT 5

/// Builds the MQTT 5 server.
macro_rules! v5_server {
    ($shared:expr, $tls:expr) => {{
        let shared: Arc<Shared> = $shared;
        let tls: bool = $tls;
        let sh_hs = shared.clone();
        v5::MqttServer::new(move |h: v5::Handshake| {
            let shared = sh_hs.clone();
            async move {
                delay(&shared).await;
                let p = h.packet();
                let req = ConnectRequest {
                    client_id: p.client_id.to_string(),
                    username: p.username.as_ref().map(|u| u.to_string()),
                    password: p.password.as_ref().map(|b| b.to_vec()),
                    keep_alive: p.keep_alive,
                    has_will: p.last_will.is_some(),
                    mqtt_version: 5,
                    tls,
                };
                match login(&shared, &req) {
                    Ok(st) => Ok::<_, ServerError>(h.ack(st).with(|a| {
                        a.max_qos = ntex_mqtt::QoS::AtLeastOnce;
                        a.retain_available = false;
                        a.shared_subscription_available = false;
                        a.subscription_identifiers_available = false;
                    })),
                    Err(code) => Ok(h.failed(v5_reason(code))),
                }
            }
        })
        .control(fn_factory_with_config(
            async |session: v5::Session<ConnState>| {
                Ok::<_, ServerError>(fn_service(move |c: Control<ServerError>| {
                    let session = session.clone();
                    async move {
                        if let Control::Stop(reason) = &c {
                            on_stop(&session, reason);
                        }
                        Ok::<_, ServerError>(None)
                    }
                }))
            },
        ))
        .protocol(fn_factory_with_config(
            async |session: v5::Session<ConnState>| {
                Ok::<_, ServerError>(fn_service(move |msg: v5::ProtocolMessage| {
                    let session = session.clone();
                    async move {
                        let st = &*session;
                        Ok::<_, ServerError>(match msg {
                            v5::ProtocolMessage::Subscribe(mut s) => {
                                for mut sub in s.iter_mut() {
                                    let res = if st.registration {
                                        Err("registration connection".to_string())
                                    } else {
                                        st.shared.subscribe(&st.key, st.id, sub.topic())
                                    };
                                    match res {
                                        Ok(()) => sub.confirm(granted(sub.options().qos)),
                                        Err(_) => {
                                            sub.fail(v5::codec::SubscribeAckReason::NotAuthorized)
                                        }
                                    }
                                }
                                s.ack()
                            }
                            v5::ProtocolMessage::Unsubscribe(u) => {
                                for t in u.iter() {
                                    st.shared.unsubscribe(&st.key, st.id, t);
                                }
                                u.ack()
                            }
                            v5::ProtocolMessage::Disconnect(d) => {
                                if !st.registration {
                                    st.shared.client_disconnect(&st.key, st.id);
                                }
                                d.ack()
                            }
                            other => other.ack(),
                        })
                    }
                }))
            },
        ))
        .publish(fn_factory_with_config(
            async |session: v5::Session<ConnState>| {
                start_pump(&*session, AnySink::V5(session.sink().clone()));
                Ok::<_, ServerError>(fn_service(move |p: v5::Publish| {
                    let session = session.clone();
                    async move {
                        let st = &*session;
                        delay(&st.shared).await;
                        let payload = p
                            .read_all()
                            .await
                            .map_err(|e| ServerError(format!("{e:?}")))?;
                        let qos = qos_u8(p.qos());
                        let verdict = st.shared.uplink(
                            &st.key,
                            st.id,
                            p.publish_topic(),
                            qos,
                            payload.to_vec(),
                            p.dup(),
                            p.retain(),
                        );
                        if qos > 1 {
                            return Err(ServerError("QoS 2 publish".into()));
                        }
                        wait_hold(verdict.hold).await;
                        if !st.shared.is_current(&st.key, st.id) {
                            // Kicked meanwhile: close without a PUBACK, as a dead session would.
                            return Err(ServerError("publish on a replaced session".into()));
                        }
                        Ok(match verdict.refused {
                            None => p.ack(),
                            Some(_) => p
                                .ack()
                                .reason_code(v5::codec::PublishAckReason::NotAuthorized),
                        })
                    }
                }))
            },
        ))
    }};
}

/// The MQTT 3.1.1 + 5 service for one listener (`tls` says which one, for the login rules).
#[allow(clippy::type_complexity)] // the types are ntex-mqtt's; `impl` types cannot be aliased
pub(crate) fn mqtt_server(
    shared: Arc<Shared>,
    tls: bool,
) -> MqttServer<
    impl ServiceFactory<
        ntex::io::IoBoxed,
        ntex::SharedCfg,
        Response = (),
        Error = ntex_mqtt::MqttError<ServerError>,
        InitError = (),
    > + 'static,
    impl ServiceFactory<
        ntex::io::IoBoxed,
        ntex::SharedCfg,
        Response = (),
        Error = ntex_mqtt::MqttError<ServerError>,
        InitError = (),
    > + 'static,
    ServerError,
    (),
> {
    MqttServer::new()
        .v3(v3_server!(shared.clone(), tls))
        .v5(v5_server!(shared, tls))
}
