//! The capsule's main loop: a thin driver of the session state machine ([`crate::session`]).
//!
//! The machine says what to wait for and until when ([`Action`]); this loop does the awaiting
//! over the board's traits ([`board`](crate::board)) and the MQTT link, racing every wait
//! against its deadline and against the board's request to stop, and reports the outcome
//! back. Apps are served the whole time the kernel is free, connected or not: while the
//! stream opens, while the login waits for CONNACK, while a packet trickles in, during the
//! backoff. Only the write of a kernel packet does not serve them (the packet is borrowed from
//! the kernel), and it is bounded like every other wait.
//!
//! It owns no policy: the [`Kernel`] decides what to send and to whom events go, the
//! [`Session`] decides when the connection is broken, the [`Credentials`] provider what to log
//! in with.

use core::future::{Future, pending, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_futures::select::{Either, Either3, Either4, select, select3, select4};

use crate::board::{AppInput, AppPort, Clock, Entropy, Network};
use crate::config::{AuthMode, DeviceConfig};
use crate::credentials::{Credentials, CredentialsError, Readiness};
use crate::kernel::Kernel;
use crate::link::{ConnectParams, LinkError, MqttLink, Refusal};
#[cfg(feature = "ota")]
use crate::ota::updates::Updates;
#[cfg(feature = "ota")]
use crate::ota::{OtaAgent, OtaOptions};
#[cfg(feature = "platform-time")]
use crate::platform_time::{TimeAgent, TimeOptions};
use crate::session::{Action, Heard, Session, SessionEnd, Timing};
#[cfg(not(feature = "ota"))]
use no_ota::OtaAgent;
#[cfg(not(feature = "platform-time"))]
use no_time::TimeAgent;

mod links;
#[cfg(not(feature = "ota"))]
mod no_ota;
#[cfg(not(feature = "platform-time"))]
mod no_time;
mod register;

pub use links::{AnyLink, LinkFactory, MqttLinks};

/// Timing knobs of the session: every deadline and the backoff (see [`Timing`]).
pub type RunnerOptions = Timing;

/// Everything the loop needs from the board, and the provider of login material.
pub struct Runner<'k, N, C, E, P, K, F = MqttLinks> {
    kernel: &'k mut Kernel,
    net: N,
    clock: C,
    entropy: E,
    port: P,
    credentials: K,
    links: F,
    timing: Timing,
    /// The OTA service's agent, when the kernel was made with [`crate::services::all`].
    #[cfg(feature = "ota")]
    ota: Option<OtaAgent<'k>>,
    #[cfg(not(feature = "ota"))]
    ota: Option<OtaAgent>,
    /// The platform-time service's agent, likewise.
    time: Option<TimeAgent>,
}

impl<'k, N, C, E, P, K> Runner<'k, N, C, E, P, K, MqttLinks> {
    /// A runner speaking the MQTT version of the kernel's configuration over `net`'s streams.
    pub fn new(
        kernel: &'k mut Kernel,
        net: N,
        clock: C,
        entropy: E,
        port: P,
        credentials: K,
        timing: Timing,
    ) -> Self {
        Self {
            kernel,
            net,
            clock,
            entropy,
            port,
            credentials,
            links: MqttLinks,
            timing,
            ota: None,
            time: None,
        }
    }
}

impl<'k, N, C, E, P, K, F> Runner<'k, N, C, E, P, K, F> {
    /// The same runner making its links with `links` (tests script the link this way).
    pub fn with_links<G>(self, links: G) -> Runner<'k, N, C, E, P, K, G> {
        Runner {
            kernel: self.kernel,
            net: self.net,
            clock: self.clock,
            entropy: self.entropy,
            port: self.port,
            credentials: self.credentials,
            links,
            timing: self.timing,
            ota: self.ota,
            time: self.time,
        }
    }

    #[cfg(feature = "ota")]
    /// The same runner driving the OTA service too (its kernel must have been made with
    /// [`crate::services::all`]): announce after every login, check every job and hand it to
    /// the download task behind `updates` ([`crate::ota::task::run_updates`], which the board
    /// runs beside the runner). The runner stops by itself when an update needs a reboot
    /// ([`Updates::reboot_requested`]).
    pub fn with_ota(mut self, updates: &'k Updates, options: OtaOptions) -> Self {
        let cfg: &'static DeviceConfig = self.kernel.config();
        self.ota = Some(OtaAgent::new(
            cfg,
            crate::ota::OTA_SERVICE,
            updates,
            options,
        ));
        self
    }

    #[cfg(feature = "platform-time")]
    /// The same runner driving the platform-time service too (its kernel must have been made
    /// with [`crate::services::all`]): ask the platform for the time after every login and
    /// every [`TimeOptions::resync_ms`], and give the answer to the kernel, where apps read it
    /// ([`aliot_abi::Request::Time`]). Without that service in the kernel, nothing changes.
    pub fn with_platform_time(mut self, options: TimeOptions) -> Self {
        let service = crate::platform_time::TIME_SERVICE;
        self.time = self
            .kernel
            .service_def(service)
            .filter(|def| def.name == "time")
            .and_then(|def| TimeAgent::new(def, service, options));
        self
    }
}

impl<N, C, E, P, K, F> Runner<'_, N, C, E, P, K, F>
where
    N: Network,
    C: Clock,
    E: Entropy,
    P: AppPort,
    K: Credentials,
    F: LinkFactory<N::Stream>,
{
    /// Keep the session up until `stop` completes (or, with [`Runner::with_ota`], until an
    /// update needs a reboot), then say DISCONNECT (when logged in and the link is between
    /// packets, within [`Timing::disconnect_ms`]) and return `Ok`.
    ///
    /// Returns an error, before any connection is made, when the credentials provider cannot
    /// log this device in at all (e.g. its manifest and its provider disagree on the auth
    /// mode), or when it fails later.
    pub async fn run_until<S: Future<Output = ()>>(
        &mut self,
        stop: S,
    ) -> Result<(), CredentialsError> {
        let Self {
            kernel,
            net,
            clock,
            entropy,
            port,
            credentials,
            links,
            timing,
            ota,
            time,
        } = self;
        let cfg: &'static DeviceConfig = kernel.config();
        if let Some((feature, setting)) = crate::features::missing(cfg) {
            return Err(CredentialsError::CompiledOut {
                feature: feature.name(),
                setting,
            });
        }
        credentials.check(cfg)?;
        let mut stop = StopSignal {
            signal: Some(pin!(stop)),
        };
        // The registration phase borrows what the session loop owns; built where it runs.
        macro_rules! registration_phase {
            () => {
                register::Phase {
                    apps: register::Served {
                        kernel,
                        port: &mut *port,
                        clock: &*clock,
                        stop: &mut stop,
                    },
                    net: &mut *net,
                    entropy: &mut *entropy,
                    credentials: &mut *credentials,
                    links: &mut *links,
                    timing: &*timing,
                }
            };
        }
        // A build without registration (no `register-*` feature) cannot get here with a
        // 一型一密 manifest (`features::missing` refused it above), and its image keeps none of
        // the registration phase (issue 11). `#[cfg]`, not a constant `if`: an `.await` in
        // dead code still leaves its state, and all it calls, in the async state machine.
        let must_register = credentials.prepare(cfg).await == Readiness::MustRegister;
        #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
        if must_register {
            let mut phase = registration_phase!();
            if !phase.until_stored().await {
                log_info!("stopped before registration completed");
                return Ok(());
            }
        }
        if !must_register && cfg.auth != AuthMode::DeviceSecret {
            kernel.set_registration(aliot_abi::Registration::Registered);
        }
        let mut session = Session::new(*timing, cfg.keepalive_secs);
        // Logins refused in a row with registered credentials (see `REREGISTER_AFTER`).
        let mut refused_in_a_row = 0u32;
        let mut link: Option<F::Link> = None;
        let (host, tcp_port) = (cfg.endpoint.host, cfg.endpoint.port);
        // The download task's news wakes the waits that can last (listening, backing off).
        let updates = ota.as_ref().map(|agent| agent.updates());
        let news = || async move {
            match updates {
                Some(updates) => updates.news().await,
                None => pending().await,
            }
        };
        loop {
            deliver_ready(kernel, port, clock);
            let mut service_deadline = None;
            if let Some(agent) = ota.as_mut() {
                let now = clock.now_ms();
                agent.poll(kernel, now);
                if agent.reboot_due(kernel, now) {
                    session.stop(now);
                }
                service_deadline = agent.next_deadline();
            }
            if let Some(agent) = time.as_mut() {
                agent.poll(kernel, clock.now_ms());
                service_deadline = match (service_deadline, agent.next_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let now = clock.now_ms();
            if let Some(l) = &link {
                session.partial(now, l.partial());
            }
            match session.next(now, kernel) {
                Action::Pause { until } => {
                    let until = service_deadline.map_or(until, |d| d.min(until));
                    let idle = serving(kernel, port, clock, Some(&mut stop), until, news());
                    if let Waited::Stopped = idle.await {
                        session.stop(clock.now_ms());
                    }
                }
                Action::Connect { deadline } => {
                    let opening = net.connect(host, tcp_port, cfg.tls.enabled);
                    let opened =
                        serving(kernel, port, clock, Some(&mut stop), deadline, opening).await;
                    let now = clock.now_ms();
                    match opened {
                        Waited::Done(Ok(stream)) => {
                            link = Some(links.link(stream, cfg.mqtt_version));
                            session.connected(now, Some(Ok(())));
                        }
                        Waited::Done(Err(e)) => session.connected(now, Some(Err(e))),
                        Waited::TimedOut => session.connected(now, None),
                        Waited::Stopped => session.stop(now),
                    }
                }
                Action::Login { deadline } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    // Dropped (and the password zeroized) as soon as the CONNECT is answered.
                    let login = credentials.login_params(cfg)?;
                    let params = ConnectParams {
                        client_id: &login.client_id,
                        username: &login.username,
                        password: &login.password,
                        keepalive_secs: cfg.keepalive_secs,
                    };
                    let answered = serving(
                        kernel,
                        port,
                        clock,
                        Some(&mut stop),
                        deadline,
                        l.connect(&params),
                    )
                    .await;
                    drop(login);
                    let now = clock.now_ms();
                    match answered {
                        Waited::Done(result) => {
                            let keepalive = l.negotiated_keepalive_secs();
                            session.logged_in(now, kernel, Some(result), keepalive);
                        }
                        Waited::TimedOut => session.logged_in(now, kernel, None, None),
                        Waited::Stopped => session.stop(now),
                    }
                    if session.is_up() {
                        log_info!(
                            "logged in as {}/{} (MQTT {:?}, TLS {}) at {}",
                            cfg.product_key,
                            cfg.device_name,
                            cfg.mqtt_version,
                            cfg.tls.enabled,
                            crate::logging::Disp(&net.describe(host, tcp_port))
                        );
                        refused_in_a_row = 0;
                        if let Some(agent) = ota.as_mut() {
                            agent.on_login(kernel);
                        }
                        if let Some(agent) = time.as_mut() {
                            agent.on_login(kernel, now);
                        }
                    }
                }
                Action::Send { packet, deadline } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    // The packet borrows the kernel: apps wait until it is written (bounded).
                    let written = racing(clock, &mut stop, deadline, l.send(&packet)).await;
                    let now = clock.now_ms();
                    match written {
                        Waited::Done(result) => session.sent(now, kernel, Some(result)),
                        Waited::TimedOut => session.sent(now, kernel, None),
                        Waited::Stopped => session.stop(now),
                    }
                }
                Action::Ping { deadline } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    let pinged =
                        serving(kernel, port, clock, Some(&mut stop), deadline, l.ping()).await;
                    let now = clock.now_ms();
                    match pinged {
                        Waited::Done(result) => session.pinged(now, Some(result)),
                        Waited::TimedOut => session.pinged(now, None),
                        Waited::Stopped => session.stop(now),
                    }
                }
                Action::Listen { until } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    let was_partial = l.partial();
                    let until = service_deadline.map_or(until, |d| d.min(until));
                    let woke = select4(
                        ready_or_started(l, was_partial),
                        port.recv(),
                        select(clock.sleep_until(until), news()),
                        stop.fired(),
                    )
                    .await;
                    let now = clock.now_ms();
                    match woke {
                        Either4::First(Some(heard)) => session.heard(now, heard),
                        // A packet has begun: the next turn times it (`Session::partial`).
                        Either4::First(None) => {}
                        Either4::Second(input) => handle_input(kernel, port, clock, input),
                        // A deadline, or news from the download task: the next turn sees it.
                        Either4::Third(_) => {}
                        Either4::Fourth(()) => session.stop(now),
                    }
                }
                Action::Receive { deadline } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    let received =
                        serving(kernel, port, clock, Some(&mut stop), deadline, l.receive()).await;
                    let now = clock.now_ms();
                    match received {
                        Waited::Done(result) => session.received(now, kernel, Some(result)),
                        Waited::TimedOut => session.received(now, kernel, None),
                        Waited::Stopped => session.stop(now),
                    }
                }
                Action::Acknowledge { pid, deadline } => {
                    let Some(l) = link.as_mut() else {
                        session.fail(SessionEnd::Link(LinkError::Network));
                        continue;
                    };
                    let acked = serving(
                        kernel,
                        port,
                        clock,
                        Some(&mut stop),
                        deadline,
                        l.acknowledge(pid),
                    )
                    .await;
                    let now = clock.now_ms();
                    match acked {
                        Waited::Done(result) => session.acknowledged(now, Some(result)),
                        Waited::TimedOut => session.acknowledged(now, None),
                        Waited::Stopped => session.stop(now),
                    }
                }
                Action::Disconnect { deadline } => {
                    if let Some(mut l) = link.take() {
                        // Not cut short by a stop: the stop is what it is finishing.
                        let unstoppable: Option<&mut StopSignal<core::future::Pending<()>>> = None;
                        let closing =
                            serving(kernel, port, clock, unstoppable, deadline, l.disconnect());
                        if let Waited::TimedOut = closing.await {
                            log_warn!("DISCONNECT not written within its deadline");
                        }
                    }
                    session.closed(clock.now_ms());
                }
                Action::Down { end } => {
                    link = None;
                    let delay = session.retry(clock.now_ms(), entropy.random_u32());
                    deliver_ready(kernel, port, clock);
                    if end != SessionEnd::Stopped {
                        log_session_end(cfg, end, delay, net.describe(host, tcp_port));
                    }
                    let refused = matches!(
                        end,
                        SessionEnd::Link(LinkError::Refused(
                            Refusal::BadCredentials | Refusal::NotAuthorized
                        ))
                    );
                    if refused && credentials.product_secret().is_some() {
                        refused_in_a_row += 1;
                    }
                    #[cfg(any(feature = "register-mqtt", feature = "register-https"))]
                    if refused_in_a_row >= REREGISTER_AFTER {
                        refused_in_a_row = 0;
                        let mut phase = registration_phase!();
                        if !phase.once_more().await {
                            session.stop(clock.now_ms());
                        }
                    }
                }
                Action::Stop => {
                    drop(link);
                    log_info!("MQTT session stopped");
                    return Ok(());
                }
            }
        }
    }
}

/// The board's own wall-clock time (a modem's network time), while the kernel has none: the
/// platform's NTP answer, where a board runs that service, replaces it. Taken before each
/// syscall (only a syscall reads it).
fn take_network_time<C: Clock>(kernel: &mut Kernel, clock: &C) {
    let now = clock.now_ms();
    if kernel.wall_time(now).is_none()
        && let Some(unix_ms) = clock.network_time_ms()
    {
        kernel.set_wall_time(unix_ms, now, aliot_abi::TimeSource::Network, 1_000);
    }
}

/// Logins refused in a row with registered (一型一密) credentials after which the runner
/// tries one registration: the credentials may have been replaced by a registration
/// elsewhere, or the device deleted and added again. Registration replaces them only when it
/// succeeds, so trying costs nothing but one connection; two refusals keep a single
/// platform hiccup from triggering it.
const REREGISTER_AFTER: u32 = 2;

/// How a wait ended.
enum Waited<T> {
    /// The work completed.
    Done(T),
    /// Its deadline passed first.
    TimedOut,
    /// The board asked to stop first.
    Stopped,
}

/// The board's request to stop, polled at every wait until it fires, then never again.
struct StopSignal<S> {
    signal: Option<S>,
}

impl<S: Future<Output = ()> + Unpin> StopSignal<S> {
    /// Completes when the stop is requested; pending forever once it has been. Cancel-safe.
    async fn fired(&mut self) {
        match self.signal.as_mut() {
            Some(signal) => {
                signal.await;
                self.signal = None;
            }
            None => pending().await,
        }
    }
}

/// `work` raced against `deadline` and the stop, without serving apps.
async fn racing<C: Clock, S: Future<Output = ()> + Unpin, F: Future>(
    clock: &C,
    stop: &mut StopSignal<S>,
    deadline: u64,
    work: F,
) -> Waited<F::Output> {
    match select3(work, clock.sleep_until(deadline), stop.fired()).await {
        Either3::First(output) => Waited::Done(output),
        Either3::Second(()) => Waited::TimedOut,
        Either3::Third(()) => Waited::Stopped,
    }
}

/// `work` raced against `deadline` and the stop (when given), serving apps meanwhile: apps
/// are never left waiting while the network is slow.
async fn serving<P: AppPort, C: Clock, S: Future<Output = ()> + Unpin, F: Future>(
    kernel: &mut Kernel,
    port: &mut P,
    clock: &C,
    stop: Option<&mut StopSignal<S>>,
    deadline: u64,
    work: F,
) -> Waited<F::Output> {
    let stopped = async {
        match stop {
            Some(stop) => stop.fired().await,
            None => pending().await,
        }
    };
    match select3(
        work,
        serve_apps_until(kernel, port, clock, deadline),
        stopped,
    )
    .await
    {
        Either3::First(output) => Waited::Done(output),
        Either3::Second(()) => Waited::TimedOut,
        Either3::Third(()) => Waited::Stopped,
    }
}

/// Waits for [`MqttLink::ready`]; `None` as soon as bytes of a packet that is not whole yet
/// arrive (`was_partial` false, [`MqttLink::partial`] true), so the session can time the rest.
///
/// `ready` is cancel-safe, so each poll makes a new one and drops it: between polls the link
/// is free to say whether part of a packet is buffered.
async fn ready_or_started<L: MqttLink>(link: &mut L, was_partial: bool) -> Option<Heard> {
    poll_fn(|cx| {
        let polled = {
            let ready = pin!(link.ready());
            ready.poll(cx)
        };
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(Some(Heard::Packet)),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Heard::Failed(e))),
            Poll::Pending if !was_partial && link.partial() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Answers every app whose `WaitEvent` can be answered now.
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

fn handle_input<P: AppPort, C: Clock>(
    kernel: &mut Kernel,
    port: &mut P,
    clock: &C,
    input: AppInput,
) {
    match input {
        AppInput::Syscall { app, len } => {
            take_network_time(kernel, clock);
            let now = clock.now_ms();
            if let Some(buf) = port.buffer(app)
                && let Some(response) = kernel.syscall(app, buf, len, now)
            {
                port.respond(app, response);
            }
        }
        AppInput::Exited(app) => {
            log_info!("app {} exited; its subscriptions are released", app);
            kernel.app_exited(app);
        }
    }
    deliver_ready(kernel, port, clock);
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

/// One line per failed attempt or broken session; `dialled` is where the board really
/// connects ([`Network::describe`]), which a simulator may have redirected.
fn log_session_end(
    cfg: &DeviceConfig,
    end: SessionEnd,
    delay_ms: u32,
    dialled: impl core::fmt::Display,
) {
    let dialled = crate::logging::Disp(&dialled);
    match end {
        SessionEnd::Link(LinkError::Refused(Refusal::BadCredentials | Refusal::NotAuthorized))
            if cfg.auth != AuthMode::DeviceSecret =>
        {
            log_error!(
                "login refused for {}/{} at {}: the platform no longer accepts the credentials registration stored (was the device deleted, or its registration reset and done again elsewhere?); after {} refusals in a row the device registers again; retrying in {} ms",
                cfg.product_key,
                cfg.device_name,
                dialled,
                REREGISTER_AFTER,
                delay_ms
            )
        }
        SessionEnd::Link(LinkError::Refused(Refusal::BadCredentials | Refusal::NotAuthorized)) => {
            log_error!(
                "login refused for {}/{} at {}: bad user name or password — check the DeviceSecret ({:?}) and that the device exists in this instance; retrying in {} ms",
                cfg.product_key,
                cfg.device_name,
                dialled,
                cfg.secret,
                delay_ms
            )
        }
        SessionEnd::Link(LinkError::Refused(r)) => {
            log_error!(
                "login refused for {}/{} at {}: {:?}; retrying in {} ms",
                cfg.product_key,
                cfg.device_name,
                dialled,
                r,
                delay_ms
            )
        }
        SessionEnd::Net(e) => {
            log_warn!(
                "cannot reach {} ({:?}); retrying in {} ms",
                dialled,
                e,
                delay_ms
            )
        }
        SessionEnd::ConnectTimeout => log_warn!(
            "cannot reach {} (no connection within the deadline); retrying in {} ms",
            dialled,
            delay_ms
        ),
        other => {
            log_warn!(
                "session with {} ended: {:?}; reconnecting in {} ms",
                dialled,
                other,
                delay_ms
            )
        }
    }
}

#[cfg(test)]
mod tests;
