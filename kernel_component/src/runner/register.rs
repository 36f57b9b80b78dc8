//! The runner's registration phase (一型一密, spec §2): before the first login of a device
//! that has nothing stored, register with the ProductSecret until the platform's answer is
//! stored and read back, backing off between attempts like logins do. Apps are served the
//! whole time and see the state in `Status` ([`Registration`]).
//!
//! One attempt over MQTT: open a TLS stream, CONNECT with `authType=register|regnwl` and a
//! fresh random, wait (bounded) for the pushed `/ext/register` or `/ext/regnwl` message,
//! store what it carries ([`Credentials::registered`]), and only then DISCONNECT. A power cut
//! before the store completes loses nothing that was used: the device was not activated, so
//! the next boot registers again (each registration issues a new secret, and only the last
//! is valid).

use alloc::string::String;
use core::fmt::Write;
use core::future::{Future, pending};

use aliot_abi::{Registration, RegistrationFailure};

use super::{StopSignal, Waited, serving};
use crate::backoff::Backoff;
use crate::board::{AppPort, Clock, Entropy, Network};
#[cfg(feature = "register-mqtt")]
use crate::config::MqttVersion;
use crate::config::{DeviceConfig, RegistrationTransport};
#[cfg(any(feature = "register-mqtt", feature = "register-https"))]
use crate::credentials::issued_kind;
use crate::credentials::{Credentials, auth_mode_name};
use crate::kernel::Kernel;
#[cfg(feature = "register-mqtt")]
use crate::link::{ConnectParams, Incoming, LinkError, MqttLink};
#[cfg(feature = "register-https")]
use crate::registration::https;
#[cfg(feature = "register-mqtt")]
use crate::registration::mqtt;
use crate::registration::{Issued, RegistrationError};
use crate::session::Timing;

use super::LinkFactory;

/// How one attempt ended.
enum Attempt {
    /// The answer is stored: log in with it.
    Stored(&'static str),
    /// The board asked to stop.
    Stopped,
    /// It failed; back off and try again.
    Failed(RegistrationError),
}

/// Everything an attempt borrows from the runner.
pub(super) struct Phase<'a, N, C, E, P, K, F, S> {
    pub apps: Served<'a, C, P, S>,
    pub net: &'a mut N,
    pub entropy: &'a mut E,
    pub credentials: &'a mut K,
    pub links: &'a mut F,
    pub timing: &'a Timing,
}

/// What serving apps during a wait takes: every wait of the phase goes through
/// [`Served::wait`].
pub(super) struct Served<'a, C, P, S> {
    pub kernel: &'a mut Kernel,
    pub port: &'a mut P,
    pub clock: &'a C,
    pub stop: &'a mut StopSignal<S>,
}

impl<C: Clock, P: AppPort, S: Future<Output = ()> + Unpin> Served<'_, C, P, S> {
    /// `work` raced against `ms` from now, serving apps meanwhile; cut short by the board's
    /// stop when `stoppable`.
    async fn wait<T>(
        &mut self,
        ms: u32,
        stoppable: bool,
        work: impl Future<Output = T>,
    ) -> Waited<T> {
        let deadline = self.clock.now_ms() + u64::from(ms);
        let stop = if stoppable {
            Some(&mut *self.stop)
        } else {
            None
        };
        serving(self.kernel, self.port, self.clock, stop, deadline, work).await
    }
}

impl<N, C, E, P, K, F, S> Phase<'_, N, C, E, P, K, F, S>
where
    N: Network,
    C: Clock,
    E: Entropy,
    P: AppPort,
    K: Credentials,
    F: LinkFactory<N::Stream>,
    S: Future<Output = ()> + Unpin,
{
    /// Registers until the answer is stored (`true`) or the board stops (`false`).
    pub async fn until_stored(&mut self) -> bool {
        let cfg: &'static DeviceConfig = self.apps.kernel.config();
        let mut backoff = Backoff::new(self.timing.backoff_base_ms, self.timing.backoff_max_ms);
        loop {
            match self.attempt(cfg).await {
                Ok(stored) => return stored,
                Err(e) => {
                    let delay = backoff.next_delay_ms(self.entropy.random_u32());
                    log_failure(cfg, e, delay);
                    if let Waited::Stopped = self.apps.wait(delay, true, pending::<()>()).await {
                        return false;
                    }
                }
            }
        }
    }

    /// One attempt after the platform refused the stored credentials (the device was
    /// deleted and added again, or registered again elsewhere): a success replaces them; a
    /// failure keeps them, and the session goes on trying them with its own backoff. `false`
    /// when the board stopped.
    pub async fn once_more(&mut self) -> bool {
        let cfg: &'static DeviceConfig = self.apps.kernel.config();
        log_warn!(
            "the platform refuses the stored credentials of {}/{}: trying to register again",
            cfg.product_key,
            cfg.device_name
        );
        match self.attempt(cfg).await {
            Ok(stored) => stored,
            Err(e) => {
                log_warn!(
                    "registering again failed ({:?}); keeping the stored credentials and logging in with them",
                    e
                );
                self.apps.kernel.set_registration(Registration::Registered);
                true
            }
        }
    }

    /// One attempt, with the state apps see set: `Ok(true)` stored, `Ok(false)` stopped.
    async fn attempt(&mut self, cfg: &'static DeviceConfig) -> Result<bool, RegistrationError> {
        self.apps.kernel.set_registration(Registration::Registering);
        log_info!(
            "registering {}/{} ({}, over {}; 一型一密)",
            cfg.product_key,
            cfg.device_name,
            auth_mode_name(cfg.auth),
            transport_name(cfg.registration.transport)
        );
        let attempt = match cfg.registration.transport {
            #[cfg(feature = "register-mqtt")]
            RegistrationTransport::Mqtt => self.over_mqtt(cfg).await,
            #[cfg(feature = "register-https")]
            RegistrationTransport::Https => self.over_https(cfg).await,
            // Compiled out: the runner refuses such a configuration before it starts
            // (`crate::features::missing`), so this is never reached; stop rather than retry.
            #[allow(unreachable_patterns)]
            other => {
                log_error!(
                    "registration over {} is compiled out of this firmware",
                    transport_name(other)
                );
                Attempt::Stopped
            }
        };
        match attempt {
            Attempt::Stored(kind) => {
                self.apps.kernel.set_registration(Registration::Registered);
                log_info!(
                    "registered {}/{}: {} stored and read back; logging in with it",
                    cfg.product_key,
                    cfg.device_name,
                    kind
                );
                Ok(true)
            }
            Attempt::Stopped => Ok(false),
            Attempt::Failed(e) => {
                self.apps
                    .kernel
                    .set_registration(Registration::Failed(failure(e)));
                Err(e)
            }
        }
    }

    #[cfg_attr(
        not(any(feature = "register-mqtt", feature = "register-https")),
        allow(dead_code)
    )]
    /// A fresh nonce for every attempt (LuatOS sends "123" every time; spec §5.1).
    fn random(&mut self) -> String {
        let mut s = String::with_capacity(16);
        let _ = write!(
            s,
            "{:08x}{:08x}",
            self.entropy.random_u32(),
            self.entropy.random_u32()
        );
        s
    }

    #[cfg_attr(
        not(any(feature = "register-mqtt", feature = "register-https")),
        allow(dead_code)
    )]
    /// Opens a TLS stream to `host:port` (registration is TLS only, spec §2.1).
    async fn open(&mut self, host: &str, port: u16) -> Result<N::Stream, Attempt> {
        let opening = self.net.connect(host, port, true);
        match self.apps.wait(self.timing.connect_ms, true, opening).await {
            Waited::Done(Ok(stream)) => Ok(stream),
            Waited::Done(Err(e)) => Err(Attempt::Failed(RegistrationError::Net(e))),
            Waited::TimedOut => Err(Attempt::Failed(RegistrationError::Timeout)),
            Waited::Stopped => Err(Attempt::Stopped),
        }
    }

    #[cfg(feature = "register-mqtt")]
    async fn over_mqtt(&mut self, cfg: &'static DeviceConfig) -> Attempt {
        let random = self.random();
        let Some(login) = self
            .credentials
            .product_secret()
            .and_then(|ps| mqtt::registration_login(cfg, ps.expose(), &random))
        else {
            return Attempt::Failed(RegistrationError::Storage);
        };
        let stream = match self.open(cfg.endpoint.host, cfg.endpoint.port).await {
            Ok(s) => s,
            Err(a) => return a,
        };
        // Registration is specified for MQTT 3.1.1 whatever the session speaks later.
        let mut link = self.links.link(stream, MqttVersion::V311);
        let params = ConnectParams {
            client_id: &login.client_id,
            username: &login.username,
            password: &login.password,
            keepalive_secs: cfg.keepalive_secs,
        };
        let answered = self
            .apps
            .wait(self.timing.login_ms, true, link.connect(&params))
            .await;
        drop(login);
        match answered {
            Waited::Done(Ok(())) => {}
            Waited::Done(Err(LinkError::Refused(r))) => {
                return Attempt::Failed(mqtt::classify_refusal(r));
            }
            Waited::Done(Err(e)) => return Attempt::Failed(RegistrationError::Link(e)),
            Waited::TimedOut => return Attempt::Failed(RegistrationError::Timeout),
            Waited::Stopped => return Attempt::Stopped,
        }
        let issued = match self.answer(cfg, &mut link).await {
            Ok(issued) => issued,
            // The answer was read whole, so the link is between packets: say goodbye. After a
            // timeout or a link error it may be mid-packet and is dropped without a word.
            Err(a @ Attempt::Failed(RegistrationError::BadReply)) => {
                self.close(&mut link).await;
                return a;
            }
            Err(a) => return a,
        };
        let kind = issued_kind(&issued);
        // Stored and read back before the registration connection is closed and before any
        // login uses it (spec §2.1 "persist ... before DISCONNECT").
        let stored = self.credentials.registered(cfg, issued).await;
        self.close(&mut link).await;
        match stored {
            Ok(()) => Attempt::Stored(kind),
            Err(e) => Attempt::Failed(e),
        }
    }

    #[cfg(feature = "register-mqtt")]
    /// Waits for the pushed answer (acknowledging it when it is QoS 1) within
    /// [`Timing::register_ms`]; other messages are acknowledged and ignored.
    async fn answer<L: MqttLink>(
        &mut self,
        cfg: &'static DeviceConfig,
        link: &mut L,
    ) -> Result<Issued, Attempt> {
        let deadline = self.apps.clock.now_ms() + u64::from(self.timing.register_ms);
        loop {
            let left = deadline.saturating_sub(self.apps.clock.now_ms());
            let left = u32::try_from(left).unwrap_or(u32::MAX);
            let received = self.apps.wait(left, true, link.receive()).await;
            let (parsed, pid) = match received {
                Waited::Done(Ok(Incoming::Publish {
                    topic,
                    payload,
                    pid,
                    ..
                })) => {
                    if mqtt::is_answer(cfg.auth, topic) {
                        (Some(mqtt::parse_answer(cfg, payload)), pid)
                    } else {
                        log_warn!(
                            "ignoring a message on {} while waiting for the registration answer",
                            topic
                        );
                        (None, pid)
                    }
                }
                Waited::Done(Ok(_)) => (None, None),
                Waited::Done(Err(e)) => {
                    return Err(Attempt::Failed(RegistrationError::Link(e)));
                }
                Waited::TimedOut => return Err(Attempt::Failed(RegistrationError::Timeout)),
                Waited::Stopped => return Err(Attempt::Stopped),
            };
            if let Some(pid) = pid {
                // Best effort: the answer is in hand whether or not the PUBACK goes out.
                let _ = self
                    .apps
                    .wait(self.timing.io_ms, false, link.acknowledge(pid))
                    .await;
            }
            if let Some(parsed) = parsed {
                return parsed.map_err(Attempt::Failed);
            }
        }
    }

    #[cfg(feature = "register-mqtt")]
    /// DISCONNECT within [`Timing::disconnect_ms`] (the platform may have closed already).
    async fn close<L: MqttLink>(&mut self, link: &mut L) {
        let _ = self
            .apps
            .wait(self.timing.disconnect_ms, false, link.disconnect())
            .await;
    }

    #[cfg(feature = "register-https")]
    /// `POST /auth/register/device` over TLS (spec §2.2; pre-registered devices only).
    async fn over_https(&mut self, cfg: &'static DeviceConfig) -> Attempt {
        let random = self.random();
        let endpoint = cfg.registration.https;
        let mut stream = match self.open(endpoint.host, endpoint.port).await {
            Ok(s) => s,
            Err(a) => return a,
        };
        let Some(product_secret) = self.credentials.product_secret() else {
            return Attempt::Failed(RegistrationError::Storage);
        };
        let request = https::HttpsRequest {
            host: endpoint.host,
            product_key: cfg.product_key,
            device_name: cfg.device_name,
            random: &random,
            sign_method: cfg.sign_method,
            product_secret: product_secret.expose(),
        };
        // Request and answer; freed (and wiped by `register`) before the session's link is
        // made, so the phase stays inside the link's share of the RAM budget.
        let mut buf = alloc::vec![0u8; https::RECOMMENDED_BUF_LEN];
        let exchanged = self
            .apps
            .wait(
                self.timing.register_ms,
                true,
                https::register(&mut stream, &request, &mut buf),
            )
            .await;
        drop(stream);
        let issued = match exchanged {
            Waited::Done(Ok(secret)) => Issued::DeviceSecret(secret),
            Waited::Done(Err(e)) => return Attempt::Failed(e),
            Waited::TimedOut => return Attempt::Failed(RegistrationError::Timeout),
            Waited::Stopped => return Attempt::Stopped,
        };
        let kind = issued_kind(&issued);
        match self.credentials.registered(cfg, issued).await {
            Ok(()) => Attempt::Stored(kind),
            Err(e) => Attempt::Failed(e),
        }
    }
}

fn transport_name(t: RegistrationTransport) -> &'static str {
    match t {
        RegistrationTransport::Mqtt => "MQTT",
        RegistrationTransport::Https => "HTTPS",
    }
}

/// What apps are told.
pub(super) fn failure(e: RegistrationError) -> RegistrationFailure {
    match e {
        RegistrationError::AlreadyActivated => RegistrationFailure::AlreadyActivated,
        RegistrationError::BadProductSecret => RegistrationFailure::BadProductSecret,
        RegistrationError::UnknownDevice => RegistrationFailure::UnknownDevice,
        RegistrationError::Refused(_) => RegistrationFailure::Refused,
        RegistrationError::Net(_) | RegistrationError::Link(_) => RegistrationFailure::Network,
        RegistrationError::Timeout => RegistrationFailure::Timeout,
        RegistrationError::BadReply => RegistrationFailure::BadReply,
        RegistrationError::Storage => RegistrationFailure::Storage,
    }
}

/// One line per failed attempt, saying what the user must do. Never a secret.
fn log_failure(cfg: &DeviceConfig, e: RegistrationError, delay_ms: u32) {
    let (pk, dn) = (cfg.product_key, cfg.device_name);
    match e {
        RegistrationError::AlreadyActivated => log_error!(
            "registration of {}/{} refused: the device is already activated (it has logged in before) and the platform issues its credentials only once, but none are stored here. Reset the device's registration in the console (ResetThing; or, if registration is off for the product, enable it), then the device registers by itself; retrying in {} ms",
            pk,
            dn,
            delay_ms
        ),
        RegistrationError::BadProductSecret => log_error!(
            "registration of {}/{} refused: bad signature — check the ProductSecret ({:?}) and the ProductKey; retrying in {} ms",
            pk,
            dn,
            cfg.secret,
            delay_ms
        ),
        RegistrationError::UnknownDevice => log_error!(
            "registration of {}/{} refused: the product does not know this device — add it in the console (register: pre-register the DeviceName) or enable registration without pre-registration (regnwl); retrying in {} ms",
            pk,
            dn,
            delay_ms
        ),
        RegistrationError::Refused(code) => log_error!(
            "registration of {}/{} refused (code {}); retrying in {} ms",
            pk,
            dn,
            code,
            delay_ms
        ),
        RegistrationError::Net(n) => {
            log_warn!(
                "registration of {}/{}: cannot reach the platform ({:?}); retrying in {} ms",
                pk,
                dn,
                n,
                delay_ms
            )
        }
        RegistrationError::Link(l) => {
            log_warn!(
                "registration of {}/{}: connection failed ({:?}); retrying in {} ms",
                pk,
                dn,
                l,
                delay_ms
            )
        }
        RegistrationError::Timeout => log_warn!(
            "registration of {}/{}: no answer within the deadline; retrying in {} ms",
            pk,
            dn,
            delay_ms
        ),
        RegistrationError::BadReply => log_error!(
            "registration of {}/{}: the platform's answer could not be used (malformed, too long, or for another device); retrying in {} ms",
            pk,
            dn,
            delay_ms
        ),
        RegistrationError::Storage => log_error!(
            "registration of {}/{}: the credentials could not be stored, so they were not used; retrying in {} ms",
            pk,
            dn,
            delay_ms
        ),
    }
}
