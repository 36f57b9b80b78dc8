//! The MQTT session as a state machine, apart from I/O: connect → log in → restore
//! subscriptions → pump → down, and again after a backoff.
//!
//! The machine decides what to wait for and until when; the runner ([`crate::runner`]) does
//! the awaiting and reports what happened. [`Session::next`] hands out one [`Action`] at a
//! time, each with its deadline; the runner performs it (racing the deadline, and a request
//! to stop) and calls the matching report ([`Session::connected`], [`Session::logged_in`],
//! [`Session::sent`], ...). Nothing here reads a clock (every call takes `now`), touches the
//! network or an app, or panics, so every timing rule is testable without either.
//!
//! Every wait has a deadline ([`Timing`]):
//! - opening the stream (TCP + TLS): [`Timing::connect_ms`];
//! - the CONNACK: [`Timing::login_ms`];
//! - writing one packet (PUBLISH, SUBSCRIBE, PINGREQ, PUBACK): [`Timing::io_ms`];
//! - the rest of an incoming packet, timed from its first byte ([`Session::partial`]): a
//!   packet whose body stalls ends the session within [`Timing::io_ms`], while the runner
//!   keeps serving apps;
//! - the PINGRESP: [`Timing::ping_ms`], the ping itself sent after half the keep-alive in
//!   force without a packet from us (MQTT 3.1.1 §3.1.2.10; MQTT 5 "Server Keep Alive"
//!   replaces ours when the server sends one, §3.2.2.3.14);
//! - PUBACK, SUBACK, UNSUBACK: the kernel's [`Kernel::ack_deadline`];
//! - the DISCONNECT at the end: [`Timing::disconnect_ms`].
//!
//! Subscriptions are restored by the kernel: a login queues every SUBSCRIBE again
//! ([`Kernel::on_connected`]) ahead of any publish ([`Kernel::poll_outgoing`]'s order).
//!
//! A DISCONNECT is written only on a link that is between operations: an operation cut short
//! by its deadline or by a stop leaves the link in an unknown state (half a packet written),
//! and such a link is dropped without a word (see [`crate::link::MqttLink`]).
//!
//! The backoff restarts from its base only after a login was accepted, not after a TCP
//! connection that then failed to log in (a device with a wrong secret must not retry fast).

use aliot_abi::DisconnectReason;

use crate::backoff::Backoff;
use crate::board::NetError;
use crate::credentials::CredentialsError;
use crate::kernel::{Delivery, Kernel};
use crate::link::{Incoming, LinkError, Outgoing, Refusal, Sent};

/// The deadlines of a session, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// First reconnect delay; doubles per failed attempt.
    pub backoff_base_ms: u32,
    /// Longest reconnect delay.
    pub backoff_max_ms: u32,
    /// Opening the stream: TCP connect and TLS handshake.
    pub connect_ms: u32,
    /// From CONNECT to CONNACK.
    pub login_ms: u32,
    /// Writing one packet; receiving one packet from its first byte to its last.
    pub io_ms: u32,
    /// From PINGREQ to PINGRESP.
    pub ping_ms: u32,
    /// PUBACK, SUBACK or UNSUBACK after the packet was written (given to the kernel).
    pub ack_ms: u32,
    /// Writing the DISCONNECT at the end.
    pub disconnect_ms: u32,
    /// 一型一密: from the registration's CONNACK to the pushed answer, or the whole HTTPS
    /// exchange after the stream is open.
    pub register_ms: u32,
}

impl Default for Timing {
    fn default() -> Self {
        // IOTKIT reconnects from 1 s doubling to 60 s; LuatOS uses a fixed 20 s.
        Self {
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            connect_ms: 15_000,
            login_ms: 15_000,
            io_ms: 20_000,
            ping_ms: 20_000,
            ack_ms: 20_000,
            disconnect_ms: 2_000,
            register_ms: 20_000,
        }
    }
}

/// Why one session ended.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The stream could not be opened.
    Net(NetError),
    /// TCP + TLS took longer than [`Timing::connect_ms`].
    ConnectTimeout,
    /// No CONNACK within [`Timing::login_ms`].
    LoginTimeout,
    /// The link failed or the platform refused or closed the session.
    Link(LinkError),
    /// No PINGRESP within [`Timing::ping_ms`].
    KeepAlive,
    /// A packet was not written within [`Timing::io_ms`].
    WriteTimeout,
    /// An incoming packet did not arrive whole within [`Timing::io_ms`] of its first byte.
    ReceiveTimeout,
    /// A PUBACK, SUBACK or UNSUBACK did not come in time.
    AckTimeout,
    /// The credentials provider had nothing to log in with.
    Credentials(CredentialsError),
    /// The board asked the runner to stop.
    Stopped,
}

impl SessionEnd {
    /// What apps are told.
    pub fn reason(self) -> DisconnectReason {
        match self {
            SessionEnd::Net(_)
            | SessionEnd::ConnectTimeout
            | SessionEnd::LoginTimeout
            | SessionEnd::Stopped => DisconnectReason::Network,
            SessionEnd::KeepAlive
            | SessionEnd::WriteTimeout
            | SessionEnd::ReceiveTimeout
            | SessionEnd::AckTimeout => DisconnectReason::KeepAliveTimeout,
            SessionEnd::Credentials(_) => DisconnectReason::AuthRejected,
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

/// What the runner is to do next. Every wait comes with its deadline (ms on the board's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'k> {
    /// Serve apps until `until` (the backoff before the next attempt), then ask again.
    Pause {
        /// End of the pause.
        until: u64,
    },
    /// Open a stream to the endpoint, serving apps meanwhile; report with
    /// [`Session::connected`].
    Connect {
        /// Give up at this time.
        deadline: u64,
    },
    /// Make the MQTT link on the new stream and log in (CONNECT with the credentials
    /// provider's strings, then CONNACK), serving apps meanwhile; report with
    /// [`Session::logged_in`].
    Login {
        /// Give up at this time.
        deadline: u64,
    },
    /// Write this packet from the kernel's outbox; report with [`Session::sent`].
    Send {
        /// The packet, borrowed from the kernel.
        packet: Outgoing<'k>,
        /// Give up at this time.
        deadline: u64,
    },
    /// Write a PINGREQ; report with [`Session::pinged`].
    Ping {
        /// Give up at this time.
        deadline: u64,
    },
    /// Read the packet the link announced; report with [`Session::received`].
    Receive {
        /// Give up at this time.
        deadline: u64,
    },
    /// Write the PUBACK for this incoming QoS 1 message; report with
    /// [`Session::acknowledged`].
    Acknowledge {
        /// Its packet identifier.
        pid: u16,
        /// Give up at this time.
        deadline: u64,
    },
    /// Wait for a whole incoming packet, for an app, or for `until`; report what the link
    /// said with [`Session::heard`] (an app is the runner's business, the time is checked by
    /// the next [`Session::next`]). Cancel-safe: nothing is lost if it is cut short.
    Listen {
        /// Ask again at this time at the latest.
        until: u64,
    },
    /// Write DISCONNECT and close; report with [`Session::closed`].
    Disconnect {
        /// Give up at this time.
        deadline: u64,
    },
    /// The session is over and the link is to be dropped: tell apps (the kernel is told
    /// already), log, and call [`Session::retry`].
    Down {
        /// Why.
        end: SessionEnd,
    },
    /// Stop: the runner returns.
    Stop,
}

/// What [`Action::Listen`] ended with, as far as the link is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A whole packet is buffered.
    Packet,
    /// The link failed.
    Failed(LinkError),
}

/// An operation on the link handed out and not reported yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Ping,
    Receive,
    Acknowledge,
}

/// The session while logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Up {
    /// Send a PINGREQ after this long without writing (half the keep-alive in force); `None`
    /// with a keep-alive of 0 (none).
    ping_every: Option<u64>,
    /// When we last wrote a packet.
    last_tx: u64,
    /// A PINGREQ written at this time awaits its PINGRESP.
    ping_sent_at: Option<u64>,
    /// Bytes of an incoming packet not yet whole were first seen at this time.
    partial_since: Option<u64>,
    /// A whole packet is buffered: read it next.
    packet_ready: bool,
    /// The PUBACK owed for an incoming QoS 1 message the apps took.
    ack_owed: Option<u16>,
    /// The operation in progress: until it is reported, the link is in use, and if it is cut
    /// short the link must not say DISCONNECT.
    op: Option<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the next attempt.
    Idle { until: u64 },
    /// Opening the stream.
    Connecting { deadline: u64 },
    /// The stream is open: log in next.
    Connected,
    /// CONNECT written, awaiting CONNACK.
    LoggingIn { deadline: u64 },
    /// Logged in.
    Up(Up),
    /// Writing DISCONNECT.
    Closing {
        end: SessionEnd,
        deadline: Option<u64>,
    },
    /// The session ended; `told` once the kernel knows.
    Down { end: SessionEnd, told: bool },
    /// For good.
    Stopped,
}

/// The session state machine (see the module docs).
#[derive(Debug, Clone)]
pub struct Session {
    timing: Timing,
    /// Keep-alive asked for in CONNECT (the manifest's).
    keepalive_secs: u16,
    backoff: Backoff,
    phase: Phase,
    /// A stop was asked for: no new attempt.
    stopping: bool,
}

impl Session {
    /// A session that connects at once, asking for `keepalive_secs` of keep-alive.
    pub fn new(timing: Timing, keepalive_secs: u16) -> Self {
        Self {
            timing,
            keepalive_secs,
            backoff: Backoff::new(timing.backoff_base_ms, timing.backoff_max_ms),
            phase: Phase::Idle { until: 0 },
            stopping: false,
        }
    }

    /// The deadlines in force.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Logged in (and not closing).
    pub fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up(_))
    }

    /// Failed attempts since the last accepted login.
    pub fn failed_attempts(&self) -> u32 {
        self.backoff.attempts()
    }

    /// What to do now. `kernel` lends the next packet to write and says when an
    /// acknowledgement is overdue.
    pub fn next<'k>(&mut self, now: u64, kernel: &'k mut Kernel) -> Action<'k> {
        match self.phase {
            Phase::Idle { until } => {
                if self.stopping {
                    self.phase = Phase::Stopped;
                    return Action::Stop;
                }
                if now < until {
                    return Action::Pause { until };
                }
                let deadline = after(now, self.timing.connect_ms);
                self.phase = Phase::Connecting { deadline };
                Action::Connect { deadline }
            }
            Phase::Connecting { deadline } => Action::Connect { deadline },
            Phase::Connected => {
                let deadline = after(now, self.timing.login_ms);
                self.phase = Phase::LoggingIn { deadline };
                Action::Login { deadline }
            }
            Phase::LoggingIn { deadline } => Action::Login { deadline },
            Phase::Up(up) => self.next_up(now, up, kernel),
            Phase::Closing { end, deadline } => {
                let deadline = deadline.unwrap_or_else(|| after(now, self.timing.disconnect_ms));
                self.phase = Phase::Closing {
                    end,
                    deadline: Some(deadline),
                };
                Action::Disconnect { deadline }
            }
            Phase::Down { end, told } => {
                if !told {
                    kernel.on_link_down(end.reason());
                    self.phase = Phase::Down { end, told: true };
                }
                Action::Down { end }
            }
            Phase::Stopped => Action::Stop,
        }
    }

    fn next_up<'k>(&mut self, now: u64, mut up: Up, kernel: &'k mut Kernel) -> Action<'k> {
        let io = u64::from(self.timing.io_ms);
        // What the link already delivered comes first: a PINGRESP or PUBACK that is buffered
        // must count before its deadline is judged.
        if let Some(pid) = up.ack_owed {
            up.op = Some(Op::Acknowledge);
            self.phase = Phase::Up(up);
            return Action::Acknowledge {
                pid,
                deadline: now.saturating_add(io),
            };
        }
        if up.packet_ready {
            up.op = Some(Op::Receive);
            self.phase = Phase::Up(up);
            return Action::Receive {
                deadline: now.saturating_add(io),
            };
        }
        let receive_deadline = up.partial_since.map(|since| since.saturating_add(io));
        let pingresp_deadline = up.ping_sent_at.map(|sent| after(sent, self.timing.ping_ms));
        let ack_deadline = kernel.ack_deadline();
        for (deadline, end) in [
            (receive_deadline, SessionEnd::ReceiveTimeout),
            (pingresp_deadline, SessionEnd::KeepAlive),
            (ack_deadline, SessionEnd::AckTimeout),
        ] {
            if deadline.is_some_and(|d| now >= d) {
                self.phase = Phase::Closing {
                    end,
                    deadline: None,
                };
                return self.next(now, kernel);
            }
        }
        let ping_due = match (up.ping_sent_at, up.ping_every) {
            (None, Some(every)) => Some(up.last_tx.saturating_add(every)),
            _ => None,
        };
        let until = [
            receive_deadline,
            pingresp_deadline,
            ack_deadline,
            ping_due,
            kernel.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX);
        // Last use of `kernel`: the packet borrows it for the caller.
        if let Some(packet) = kernel.poll_outgoing(now) {
            up.op = Some(Op::Send);
            self.phase = Phase::Up(up);
            return Action::Send {
                packet,
                deadline: now.saturating_add(io),
            };
        }
        if ping_due.is_some_and(|due| now >= due) {
            up.op = Some(Op::Ping);
            self.phase = Phase::Up(up);
            return Action::Ping {
                deadline: now.saturating_add(io),
            };
        }
        Action::Listen { until }
    }

    /// [`Action::Connect`] ended: `Some(result)`, or `None` when its deadline passed.
    pub fn connected(&mut self, _now: u64, outcome: Option<Result<(), NetError>>) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        self.phase = match outcome {
            Some(Ok(())) => Phase::Connected,
            Some(Err(e)) => down(SessionEnd::Net(e)),
            None => down(SessionEnd::ConnectTimeout),
        };
    }

    /// [`Action::Login`] ended: `Some(result)`, or `None` when its deadline passed.
    /// `negotiated_keepalive_secs` is the link's [`crate::link::MqttLink::negotiated_keepalive_secs`].
    pub fn logged_in(
        &mut self,
        now: u64,
        kernel: &mut Kernel,
        outcome: Option<Result<(), LinkError>>,
        negotiated_keepalive_secs: Option<u16>,
    ) {
        if !matches!(self.phase, Phase::LoggingIn { .. }) {
            return;
        }
        match outcome {
            Some(Ok(())) => {
                self.backoff.reset();
                let keepalive_ms =
                    u64::from(negotiated_keepalive_secs.unwrap_or(self.keepalive_secs)) * 1000;
                // Never ping in a tight loop, whatever a server negotiates.
                let ping_every = (keepalive_ms > 0).then(|| (keepalive_ms / 2).max(1_000));
                self.phase = Phase::Up(Up {
                    ping_every,
                    last_tx: now,
                    ping_sent_at: None,
                    partial_since: None,
                    packet_ready: false,
                    ack_owed: None,
                    op: None,
                });
                kernel.set_ack_timeout_ms(self.timing.ack_ms);
                kernel.on_connected();
            }
            Some(Err(e)) => self.phase = down(SessionEnd::Link(e)),
            None => self.phase = down(SessionEnd::LoginTimeout),
        }
    }

    /// The current attempt ends for a reason the runner found (the credentials provider had
    /// nothing); the link, if any, is dropped without DISCONNECT.
    pub fn fail(&mut self, end: SessionEnd) {
        if !matches!(self.phase, Phase::Stopped) {
            self.phase = down(end);
        }
    }

    /// [`Action::Send`] ended: `Some(result)`, or `None` when its deadline passed.
    pub fn sent(
        &mut self,
        now: u64,
        kernel: &mut Kernel,
        outcome: Option<Result<Sent, LinkError>>,
    ) {
        let Some(mut up) = self.take_op(Op::Send) else {
            return;
        };
        match outcome {
            Some(Ok(Sent::Written)) => {
                kernel.on_written();
                up.last_tx = now;
                self.phase = Phase::Up(up);
            }
            Some(Ok(Sent::Busy)) => {
                kernel.on_send_busy();
                self.phase = Phase::Up(up);
            }
            Some(Err(e)) => self.link_failed(e),
            None => self.phase = down(SessionEnd::WriteTimeout),
        }
    }

    /// [`Action::Ping`] ended: `Some(result)`, or `None` when its deadline passed.
    pub fn pinged(&mut self, now: u64, outcome: Option<Result<(), LinkError>>) {
        let Some(mut up) = self.take_op(Op::Ping) else {
            return;
        };
        match outcome {
            Some(Ok(())) => {
                up.last_tx = now;
                up.ping_sent_at = Some(now);
                self.phase = Phase::Up(up);
            }
            Some(Err(e)) => self.link_failed(e),
            None => self.phase = down(SessionEnd::WriteTimeout),
        }
    }

    /// What the link said during [`Action::Listen`].
    pub fn heard(&mut self, _now: u64, heard: Heard) {
        let Phase::Up(mut up) = self.phase else {
            return;
        };
        match heard {
            Heard::Packet => {
                up.packet_ready = true;
                self.phase = Phase::Up(up);
            }
            Heard::Failed(e) => self.link_failed(e),
        }
    }

    /// Whether bytes of an incoming packet that is not whole yet are buffered (the link's
    /// [`crate::link::MqttLink::partial`]), observed at `now`. The packet's deadline runs
    /// from the first observation.
    pub fn partial(&mut self, now: u64, pending: bool) {
        if let Phase::Up(mut up) = self.phase {
            up.partial_since = if pending {
                Some(up.partial_since.unwrap_or(now))
            } else {
                None
            };
            self.phase = Phase::Up(up);
        }
    }

    /// [`Action::Receive`] ended: `Some(result)`, or `None` when its deadline passed. The
    /// packet goes to the kernel; a QoS 1 message every app took is acknowledged next.
    pub fn received(
        &mut self,
        _now: u64,
        kernel: &mut Kernel,
        outcome: Option<Result<Incoming<'_>, LinkError>>,
    ) {
        let Some(mut up) = self.take_op(Op::Receive) else {
            return;
        };
        up.packet_ready = false;
        up.partial_since = None;
        let incoming = match outcome {
            Some(Ok(incoming)) => incoming,
            Some(Err(e)) => return self.link_failed(e),
            None => {
                self.phase = down(SessionEnd::ReceiveTimeout);
                return;
            }
        };
        match incoming {
            Incoming::Publish {
                topic,
                payload,
                qos,
                pid,
            } => {
                let delivery = kernel.on_publish(topic, payload, qos);
                log_info!(
                    "message on {} ({} bytes): {:?}",
                    topic,
                    payload.len(),
                    delivery
                );
                up.ack_owed = pid.filter(|_| matches!(delivery, Delivery::Taken { .. }));
            }
            Incoming::PubAck(pid) => kernel.on_puback(pid),
            Incoming::PubRejected(pid) => {
                log_warn!("the platform refused a QoS 1 message (packet id {})", pid);
                kernel.on_pub_rejected(pid);
            }
            Incoming::SubAck { pid, granted } => kernel.on_suback(pid, granted),
            Incoming::UnsubAck(pid) => kernel.on_unsuback(pid),
            Incoming::PingResp => up.ping_sent_at = None,
            Incoming::Other => {}
        }
        self.phase = Phase::Up(up);
    }

    /// [`Action::Acknowledge`] ended: `Some(result)`, or `None` when its deadline passed.
    pub fn acknowledged(&mut self, now: u64, outcome: Option<Result<(), LinkError>>) {
        let Some(mut up) = self.take_op(Op::Acknowledge) else {
            return;
        };
        match outcome {
            Some(Ok(())) => {
                up.ack_owed = None;
                // A PUBACK is traffic: it resets the keep-alive.
                up.last_tx = now;
                self.phase = Phase::Up(up);
            }
            Some(Err(e)) => self.link_failed(e),
            None => self.phase = down(SessionEnd::WriteTimeout),
        }
    }

    /// [`Action::Disconnect`] ended (written, failed or timed out: the link is dropped).
    pub fn closed(&mut self, _now: u64) {
        if let Phase::Closing { end, .. } = self.phase {
            self.phase = if self.stopping || end == SessionEnd::Stopped {
                Phase::Stopped
            } else {
                down(end)
            };
        }
    }

    /// After [`Action::Down`]: the next attempt waits for the returned delay (ms), drawn
    /// from the backoff with `random`.
    pub fn retry(&mut self, now: u64, random: u32) -> u32 {
        if !matches!(self.phase, Phase::Down { .. }) {
            return 0;
        }
        if self.stopping {
            self.phase = Phase::Stopped;
            return 0;
        }
        let delay = self.backoff.next_delay_ms(random);
        self.phase = Phase::Idle {
            until: now.saturating_add(u64::from(delay)),
        };
        delay
    }

    /// The board asks to stop. Logged in and between operations, the session says DISCONNECT
    /// first ([`Action::Disconnect`]); otherwise it stops at once (an operation cut short
    /// leaves nothing that could be said safely).
    pub fn stop(&mut self, _now: u64) {
        self.stopping = true;
        self.phase = match self.phase {
            Phase::Up(Up { op: None, .. }) => Phase::Closing {
                end: SessionEnd::Stopped,
                deadline: None,
            },
            Phase::Closing { deadline, .. } => Phase::Closing {
                end: SessionEnd::Stopped,
                deadline,
            },
            _ => Phase::Stopped,
        };
    }

    /// The logged-in state, if `op` is the operation in progress (which is then done).
    fn take_op(&mut self, op: Op) -> Option<Up> {
        match self.phase {
            Phase::Up(mut up) if up.op == Some(op) => {
                up.op = None;
                Some(up)
            }
            _ => None,
        }
    }

    /// The link reported `e` (an operation completed with it, so the link is not mid-packet):
    /// say DISCONNECT unless the transport itself is gone.
    fn link_failed(&mut self, e: LinkError) {
        let end = SessionEnd::Link(e);
        self.phase = if e == LinkError::Network {
            down(end)
        } else {
            Phase::Closing {
                end,
                deadline: None,
            }
        };
    }
}

fn down(end: SessionEnd) -> Phase {
    Phase::Down { end, told: false }
}

fn after(now: u64, ms: u32) -> u64 {
    now.saturating_add(u64::from(ms))
}

#[cfg(test)]
mod tests;
