//! The capsule's main loop: keeps the MQTT session up (login, keep-alive, reconnect with
//! backoff) and serves apps the whole time, connected or not.
//!
//! It owns no policy of its own: the [`Kernel`] decides what to send and to whom events go;
//! this loop moves bytes between the kernel, the apps ([`AppPort`]) and the link.

use alloc::string::String;

use aliot_abi::DisconnectReason;
use embassy_futures::select::{Either, Either3, select, select3};

use crate::auth::{DeviceIdentity, device_login};
use crate::backoff::Backoff;
use crate::board::{AppInput, AppPort, Clock, Entropy, NetError, Network};
use crate::config::{DeviceConfig, MqttVersion};
use crate::kernel::{Delivery, Kernel};
use crate::link::{ConnectParams, Incoming, LinkError, MqttLink, Refusal, Sent};

/// Timing knobs of the session loop.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// First reconnect delay (ms); doubles per failure.
    pub backoff_base_ms: u32,
    /// Longest reconnect delay (ms).
    pub backoff_max_ms: u32,
    /// Longest wait for TCP + TLS + CONNACK (ms).
    pub connect_timeout_ms: u32,
    /// Longest wait for a PINGRESP (ms).
    pub ping_timeout_ms: u32,
    /// Longest wait for one packet to be written, or for a PUBACK/SUBACK/UNSUBACK (ms).
    pub io_timeout_ms: u32,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        // IOTKIT reconnects from 1 s doubling to 60 s; LuatOS uses a fixed 20 s.
        Self {
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            connect_timeout_ms: 15_000,
            ping_timeout_ms: 20_000,
            io_timeout_ms: 20_000,
        }
    }
}

/// Why one session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    Net(NetError),
    Link(LinkError),
    KeepAlive,
    ConnectTimeout,
    /// A write did not complete, or an acknowledgement did not come, in time.
    IoTimeout,
}

impl SessionEnd {
    fn reason(self) -> DisconnectReason {
        match self {
            SessionEnd::Net(_) | SessionEnd::ConnectTimeout => DisconnectReason::Network,
            SessionEnd::KeepAlive | SessionEnd::IoTimeout => DisconnectReason::KeepAliveTimeout,
            SessionEnd::Link(LinkError::Network) => DisconnectReason::Network,
            SessionEnd::Link(LinkError::Refused(Refusal::ServerUnavailable)) => {
                DisconnectReason::ServerClosed
            }
            SessionEnd::Link(LinkError::Refused(_)) => DisconnectReason::AuthRejected,
            SessionEnd::Link(LinkError::ServerDisconnect(_)) => DisconnectReason::ServerClosed,
            SessionEnd::Link(LinkError::Protocol | LinkError::TooLarge) => {
                DisconnectReason::Protocol
            }
        }
    }
}

/// Everything the loop needs from the board, plus the secret it signs with.
pub struct Runner<'k, N, C, E, P> {
    kernel: &'k mut Kernel,
    net: N,
    clock: C,
    entropy: E,
    port: P,
    secret: String,
    options: RunnerOptions,
}

impl<'k, N: Network, C: Clock, E: Entropy, P: AppPort> Runner<'k, N, C, E, P> {
    /// `secret` is the DeviceSecret, read by the board from the source the manifest names.
    pub fn new(
        kernel: &'k mut Kernel,
        net: N,
        clock: C,
        entropy: E,
        port: P,
        secret: String,
        options: RunnerOptions,
    ) -> Self {
        Self {
            kernel,
            net,
            clock,
            entropy,
            port,
            secret,
            options,
        }
    }

    /// Run forever.
    pub async fn run(&mut self) -> ! {
        let mut backoff = Backoff::new(self.options.backoff_base_ms, self.options.backoff_max_ms);
        loop {
            let end = self.session(&mut backoff).await;
            let reason = end.reason();
            self.kernel.on_link_down(reason);
            self.deliver_ready();
            let delay = backoff.next_delay_ms(self.entropy.random_u32());
            log_session_end(self.kernel.config(), end, delay);
            let until = self.clock.now_ms() + u64::from(delay);
            serve_apps_until(self.kernel, &mut self.port, &self.clock, until).await;
        }
    }

    /// One connection: open the stream, log in, then pump until something fails.
    async fn session(&mut self, backoff: &mut Backoff) -> SessionEnd {
        let cfg = self.kernel.config();
        let deadline = self.clock.now_ms() + u64::from(self.options.connect_timeout_ms);
        let stream = {
            let connecting =
                self.net
                    .connect(cfg.endpoint.host, cfg.endpoint.port, cfg.tls.enabled);
            match serving_apps(
                self.kernel,
                &mut self.port,
                &self.clock,
                deadline,
                connecting,
            )
            .await
            {
                Some(Ok(stream)) => stream,
                Some(Err(e)) => return SessionEnd::Net(e),
                None => return SessionEnd::ConnectTimeout,
            }
        };
        match cfg.mqtt_version {
            MqttVersion::V311 => {
                let link = crate::link::v311::V311Link::new(stream);
                self.drive(link, deadline, backoff).await
            }
            MqttVersion::V5 => {
                let link = crate::link::v5::V5Link::new(stream);
                self.drive(link, deadline, backoff).await
            }
        }
    }

    async fn drive<L: MqttLink>(
        &mut self,
        mut link: L,
        deadline: u64,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let cfg = self.kernel.config();
        let id = DeviceIdentity {
            product_key: cfg.product_key,
            device_name: cfg.device_name,
            client_id: cfg.client_id,
            device_secret: self.secret.as_bytes(),
        };
        let creds = device_login(&id, cfg.sign_method, cfg.tls.enabled);
        let params = ConnectParams {
            client_id: &creds.client_id,
            username: &creds.username,
            password: &creds.password,
            keepalive_secs: cfg.keepalive_secs,
        };
        let login = link.connect(&params);
        match serving_apps(self.kernel, &mut self.port, &self.clock, deadline, login).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return SessionEnd::Link(e),
            None => return SessionEnd::ConnectTimeout,
        }
        log::info!(
            "logged in as {}/{} (MQTT {:?}, TLS {})",
            cfg.product_key,
            cfg.device_name,
            cfg.mqtt_version,
            cfg.tls.enabled
        );
        backoff.reset();
        self.kernel.set_ack_timeout_ms(self.options.io_timeout_ms);
        self.kernel.on_connected();
        let end = self.pump(&mut link).await;
        if !matches!(end, SessionEnd::Link(LinkError::Network)) {
            link.disconnect().await;
        }
        end
    }

    /// Connected: write what the kernel wants written, read what arrives, serve apps, ping.
    async fn pump<L: MqttLink>(&mut self, link: &mut L) -> SessionEnd {
        let keepalive_secs = link
            .negotiated_keepalive_secs()
            .unwrap_or(self.kernel.config().keepalive_secs);
        let keepalive_ms = u64::from(keepalive_secs) * 1000;
        // Never ping in a tight loop, whatever a server negotiates.
        let ping_every = (keepalive_ms / 2).max(1_000);
        let io_timeout = u64::from(self.options.io_timeout_ms);
        let mut last_tx = self.clock.now_ms();
        let mut ping_sent_at: Option<u64> = None;
        loop {
            loop {
                let now = self.clock.now_ms();
                let Some(packet) = self.kernel.poll_outgoing(now) else {
                    break;
                };
                match with_deadline(&self.clock, now + io_timeout, link.send(&packet)).await {
                    Some(Ok(Sent::Written)) => self.kernel.on_written(),
                    Some(Ok(Sent::Busy)) => {
                        self.kernel.on_send_busy();
                        break;
                    }
                    Some(Err(e)) => return SessionEnd::Link(e),
                    None => return SessionEnd::IoTimeout,
                }
                last_tx = self.clock.now_ms();
            }
            self.deliver_ready();
            let now = self.clock.now_ms();
            if self.kernel.ack_deadline().is_some_and(|d| now >= d) {
                return SessionEnd::IoTimeout;
            }
            if let Some(sent) = ping_sent_at {
                if now >= sent + u64::from(self.options.ping_timeout_ms) {
                    return SessionEnd::KeepAlive;
                }
            } else if now >= last_tx + ping_every {
                match with_deadline(&self.clock, now + io_timeout, link.ping()).await {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return SessionEnd::Link(e),
                    None => return SessionEnd::IoTimeout,
                }
                last_tx = self.clock.now_ms();
                ping_sent_at = Some(last_tx);
                continue;
            }
            let mut wake = match ping_sent_at {
                Some(sent) => sent + u64::from(self.options.ping_timeout_ms),
                None => last_tx + ping_every,
            };
            for deadline in [self.kernel.next_deadline(), self.kernel.ack_deadline()]
                .into_iter()
                .flatten()
            {
                wake = wake.min(deadline);
            }
            match select3(link.ready(), self.port.recv(), self.clock.sleep_until(wake)).await {
                Either3::First(Ok(())) => {
                    let deadline = self.clock.now_ms() + io_timeout;
                    match with_deadline(&self.clock, deadline, receive(self.kernel, link)).await {
                        Some(Ok(received)) => {
                            if received.pingresp {
                                ping_sent_at = None;
                            }
                            if received.acknowledged {
                                // A PUBACK is traffic: it resets the keep-alive.
                                last_tx = self.clock.now_ms();
                            }
                        }
                        Some(Err(e)) => return SessionEnd::Link(e),
                        None => return SessionEnd::IoTimeout,
                    }
                }
                Either3::First(Err(e)) => return SessionEnd::Link(e),
                Either3::Second(input) => {
                    handle_input(self.kernel, &mut self.port, &self.clock, input)
                }
                Either3::Third(()) => {}
            }
        }
    }

    fn deliver_ready(&mut self) {
        deliver_ready(self.kernel, &mut self.port, &self.clock);
    }
}

fn deliver_ready<P: AppPort, C: Clock>(kernel: &mut Kernel, port: &mut P, clock: &C) {
    let now = clock.now_ms();
    while let Some(app) = kernel.ready_app(now) {
        match port.buffer(app) {
            Some(buf) => {
                let len = kernel.answer_wait(app, buf);
                port.respond(app, len);
            }
            None => kernel.cancel_wait(app),
        }
    }
}

/// Reads the packet [`MqttLink::ready`] announced, hands it to the kernel, and
/// acknowledges a QoS 1 message only when every app it is for has taken it.
async fn receive<L: MqttLink>(kernel: &mut Kernel, link: &mut L) -> Result<Received, LinkError> {
    let incoming = link.receive().await?;
    let pingresp = incoming == Incoming::PingResp;
    let ack = match incoming {
        Incoming::Publish {
            topic,
            payload,
            qos,
            pid,
        } => {
            let delivery = kernel.on_publish(topic, payload, qos);
            log::info!("message on {topic} ({} bytes): {delivery:?}", payload.len());
            pid.filter(|_| matches!(delivery, Delivery::Taken { .. }))
        }
        Incoming::PubAck(pid) => {
            kernel.on_puback(pid);
            None
        }
        Incoming::PubRejected(pid) => {
            log::warn!("the platform refused a QoS 1 message (packet id {pid})");
            kernel.on_pub_rejected(pid);
            None
        }
        Incoming::SubAck { pid, granted } => {
            kernel.on_suback(pid, granted);
            None
        }
        Incoming::UnsubAck(pid) => {
            kernel.on_unsuback(pid);
            None
        }
        Incoming::PingResp | Incoming::Other => None,
    };
    if let Some(pid) = ack {
        link.acknowledge(pid).await?;
    }
    Ok(Received {
        pingresp,
        acknowledged: ack.is_some(),
    })
}

/// What [`receive`] saw and did.
struct Received {
    /// The packet was a PINGRESP.
    pingresp: bool,
    /// A PUBACK was written for it.
    acknowledged: bool,
}

/// `work`, unless `deadline_ms` passes first (`None`).
async fn with_deadline<C: Clock, F: core::future::Future>(
    clock: &C,
    deadline_ms: u64,
    work: F,
) -> Option<F::Output> {
    match select(work, clock.sleep_until(deadline_ms)).await {
        Either::First(output) => Some(output),
        Either::Second(()) => None,
    }
}

fn handle_input<P: AppPort, C: Clock>(
    kernel: &mut Kernel,
    port: &mut P,
    clock: &C,
    input: AppInput,
) {
    match input {
        AppInput::Syscall { app, len } => {
            let now = clock.now_ms();
            if let Some(buf) = port.buffer(app)
                && let Some(response) = kernel.syscall(app, buf, len, now)
            {
                port.respond(app, response);
            }
        }
        AppInput::Exited(app) => {
            log::info!("app {app} exited; its subscriptions are released");
            kernel.app_exited(app);
        }
    }
    deliver_ready(kernel, port, clock);
}

/// Await `work` while serving app syscalls; `None` when `deadline_ms` passes first. Apps are
/// never left waiting while the network is slow.
async fn serving_apps<P: AppPort, C: Clock, F: core::future::Future>(
    kernel: &mut Kernel,
    port: &mut P,
    clock: &C,
    deadline_ms: u64,
    work: F,
) -> Option<F::Output> {
    match select(work, serve_apps_until(kernel, port, clock, deadline_ms)).await {
        Either::First(output) => Some(output),
        Either::Second(()) => None,
    }
}

/// Serve app syscalls (no network) until `until_ms`.
async fn serve_apps_until<P: AppPort, C: Clock>(
    kernel: &mut Kernel,
    port: &mut P,
    clock: &C,
    until_ms: u64,
) {
    loop {
        deliver_ready(kernel, port, clock);
        let now = clock.now_ms();
        if now >= until_ms {
            return;
        }
        let wake = kernel.next_deadline().map_or(until_ms, |d| d.min(until_ms));
        match select(port.recv(), clock.sleep_until(wake)).await {
            Either::First(input) => handle_input(kernel, port, clock, input),
            Either::Second(()) => {}
        }
    }
}

fn log_session_end(cfg: &DeviceConfig, end: SessionEnd, delay_ms: u32) {
    match end {
        SessionEnd::Link(LinkError::Refused(Refusal::BadCredentials | Refusal::NotAuthorized)) => {
            log::error!(
                "login refused for {}/{}: bad user name or password — check the DeviceSecret ({:?}) and that the device exists in this instance; retrying in {} ms",
                cfg.product_key,
                cfg.device_name,
                cfg.secret,
                delay_ms
            )
        }
        SessionEnd::Link(LinkError::Refused(r)) => {
            log::error!(
                "login refused for {}/{}: {:?}; retrying in {} ms",
                cfg.product_key,
                cfg.device_name,
                r,
                delay_ms
            )
        }
        SessionEnd::Net(e) => log::warn!(
            "cannot reach {}:{} ({:?}); retrying in {} ms",
            cfg.endpoint.host,
            cfg.endpoint.port,
            e,
            delay_ms
        ),
        other => log::warn!(
            "session ended: {:?}; reconnecting in {} ms",
            other,
            delay_ms
        ),
    }
}
