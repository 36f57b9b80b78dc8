//! The ntex system thread that runs every listener on one worker.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ntex::service::chain_factory;
use ntex_mqtt::MqttError;

use crate::EmulatorError;
use crate::http::HttpCtx;
use crate::mqtt::{ServerError, mqtt_server};
use crate::state::Shared;

/// Bound sockets, handed to the server thread.
pub(crate) struct Listeners {
    pub mqtt: TcpListener,
    pub tls: TcpListener,
    pub http: TcpListener,
    pub https: TcpListener,
}

/// Binds 127.0.0.1 on the given ports (0 = a free one).
pub(crate) fn bind(mqtt: u16, tls: u16, http: u16, https: u16) -> Result<Listeners, EmulatorError> {
    let b = |port: u16, what: &str| {
        TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|e| EmulatorError::Io(format!("bind {what} port {port}: {e}")))
    };
    Ok(Listeners {
        mqtt: b(mqtt, "MQTT")?,
        tls: b(tls, "TLS")?,
        http: b(http, "HTTP")?,
        https: b(https, "HTTPS")?,
    })
}

fn mqtt_cfg(name: &'static str) -> ntex::SharedCfg {
    ntex::SharedCfg::new(name)
        .add(ntex_mqtt::MqttServiceConfig::new().set_max_qos(ntex_mqtt::QoS::ExactlyOnce))
        .into()
}

/// Handle to the running server thread; stopping it frees every port.
pub(crate) struct Running {
    system: ntex::rt::System,
    server: ntex::server::Server,
    thread: Option<JoinHandle<()>>,
}

/// Starts the ntex system and server; returns once the server is accepting.
pub(crate) fn start(
    shared: Arc<Shared>,
    lst: Listeners,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Running, EmulatorError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("aliot-emulator".into())
        .spawn(move || {
            let sys = ntex::rt::System::build()
                .name("aliot-emulator")
                .disable_signals()
                .build(ntex::rt::DefaultRuntime);
            let res = sys.run(move || {
                let (s1, s2, s3, s4) = (shared.clone(), shared.clone(), shared.clone(), shared);
                let (t1, t2) = (tls.clone(), tls);
                let server = ntex::server::build()
                    .listen("mqtt", lst.mqtt, async move |_| {
                        mqtt_server(s1.clone(), false)
                    })?
                    .listen("mqtt-tls", lst.tls, async move |_| {
                        chain_factory(ntex::tls::rustls::TlsAcceptor::new(t1.clone()))
                            .map_err(|e| MqttError::Service(ServerError(format!("TLS: {e}"))))
                            .and_then(mqtt_server(s2.clone(), true))
                    })?
                    .listen("http", lst.http, async move |_| {
                        ntex::http::HttpService::new(
                            ntex::web::App::new()
                                .state(HttpCtx {
                                    shared: s3.clone(),
                                    tls: false,
                                })
                                .configure(crate::http::routes),
                        )
                    })?
                    .listen("https", lst.https, async move |_| {
                        ntex::http::HttpService::new(
                            ntex::web::App::new()
                                .state(HttpCtx {
                                    shared: s4.clone(),
                                    tls: true,
                                })
                                .configure(crate::http::routes),
                        )
                        .rustls((*t2).clone())
                    })?
                    // Let QoS 2 PUBLISHes reach the publish service, which logs them as refused
                    // and then closes the connection (the platform has no QoS 2).
                    .config("mqtt", mqtt_cfg("mqtt"))
                    .config("mqtt-tls", mqtt_cfg("mqtt-tls"))
                    .workers(1)
                    .disable_signals()
                    .run();
                let _ = tx.send((ntex::rt::System::current(), server));
                Ok(())
            });
            if let Err(e) = res {
                log::error!("emulator server stopped with error: {e}");
            }
        })
        .map_err(|e| EmulatorError::Io(format!("spawn server thread: {e}")))?;
    let (system, server) = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| EmulatorError::Io("server thread did not start".into()))?;
    Ok(Running {
        system,
        server,
        thread: Some(thread),
    })
}

impl Running {
    /// Stops the server and the system, waiting (bounded) for the thread to end.
    pub fn stop(&mut self) {
        drop(self.server.stop(false));
        std::thread::sleep(Duration::from_millis(50));
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                log::warn!("emulator server thread did not stop within 5 s");
            }
        }
    }
}
