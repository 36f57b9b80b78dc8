//! What the fuzz targets share: a transport that replays the fuzz input, and a driver that
//! polls a future once and calls a hang what does not finish.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// A stream whose peer sends `input` (at most `chunk` bytes per `read`) and then closes; what
/// the device writes is kept in `written`. It never blocks, so any future driven over it must
/// finish in one poll.
pub struct Replay<'a> {
    input: &'a [u8],
    chunk: usize,
    /// Everything written so far.
    pub written: Vec<u8>,
    /// `write` calls so far.
    pub writes: usize,
}

impl<'a> Replay<'a> {
    /// `input` delivered `chunk` (at least 1) bytes per read at most.
    pub fn new(input: &'a [u8], chunk: usize) -> Self {
        Self {
            input,
            chunk: chunk.max(1),
            written: Vec::new(),
            writes: 0,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len()
    }
}

impl ErrorType for Replay<'_> {
    type Error = ErrorKind;
}

impl Read for Replay<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.input.len()).min(self.chunk);
        let (now, rest) = self.input.split_at(n);
        buf[..n].copy_from_slice(now);
        self.input = rest;
        Ok(n)
    }
}

impl Write for Replay<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.writes += 1;
        // Bounded: a device that keeps writing into a closed peer is a bug, not a hang.
        assert!(self.writes < 1_000_000, "write loop");
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// What a link reads after its requests: a canned CONNACK (`connack`) first unless bit 0 of
/// `flags` is set (then the server's bytes must bring their own), then `server`'s bytes.
pub fn server_bytes(flags: u8, connack: &[u8], server: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(connack.len() + server.len());
    if flags & 1 == 0 {
        bytes.extend_from_slice(connack);
    }
    bytes.extend_from_slice(server);
    bytes
}

/// Read chunk size from a selector (1, 2, 3, 7, 64, 512 or everything at once): split
/// packets and several packets per read both get exercised.
pub fn chunk(selector: u8) -> usize {
    match selector % 7 {
        0 => 1,
        1 => 2,
        2 => 3,
        3 => 7,
        4 => 64,
        5 => 512,
        _ => usize::MAX,
    }
}

/// Polls `fut` once. Over a [`Replay`] nothing ever blocks, so a pending future waits for
/// something that will never come: a hang, reported as a crash.
pub fn once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("future pending over a stream that never blocks: a hang"),
    }
}

use aliot_kernel::config::{DeviceConfig, FlashPartition, TEST_CONFIG};

/// The kernel's unit-test device (ProductKey `pk`, DeviceName `dn`, 一机一密, MQTT 3.1.1, no
/// apps) with the nRF9160's credentials partition and a roomier RAM budget; targets override
/// what they need with `DeviceConfig { .., ..DEVICE }`.
pub const DEVICE: DeviceConfig = DeviceConfig {
    credentials_partition: FlashPartition {
        offset: 0xFC000,
        size: 0x4000,
        erase_page: 4096,
    },
    kernel_ram_budget: 65536,
    ..TEST_CONFIG
};

/// Reads the fuzz input front to back; past its end every read is 0 / empty.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (now, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        now
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

use std::collections::BTreeMap;

use aliot_abi::Qos;
use aliot_kernel::link::{ConnectParams, Incoming, LinkError, MAX_PACKET_LEN, MqttLink, Outgoing};

/// The login every link target uses (an Alibaba-length client id).
pub const PARAMS: ConnectParams<'static> = ConnectParams {
    client_id: "pk.dn|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|",
    username: "dn&pk",
    password: "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
    keepalive_secs: 60,
};

/// The requests the device has on the wire before the server's bytes come: one of each kind,
/// so acknowledgements of every kind have something to match.
const BEFORE: [Outgoing<'static>; 5] = [
    Outgoing::Subscribe {
        pid: 1,
        filter: "/pk/dn/user/get",
        qos: Qos::AtLeastOnce,
    },
    Outgoing::Subscribe {
        pid: 2,
        filter: "/pk/dn/user/cmd/#",
        qos: Qos::AtMostOnce,
    },
    Outgoing::Publish {
        pid: 3,
        topic: "/pk/dn/user/update",
        payload: b"LUATOS_CESHI",
        qos: Qos::AtLeastOnce,
        dup: false,
    },
    Outgoing::Publish {
        pid: 0,
        topic: "/pk/dn/user/update",
        payload: b"qos0",
        qos: Qos::AtMostOnce,
        dup: false,
    },
    Outgoing::Unsubscribe {
        pid: 4,
        filter: "/pk/dn/user/old",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    Publish,
    Subscribe,
    Unsubscribe,
}

fn ack_kind(packet: &Outgoing<'_>) -> Option<(u16, Ack)> {
    match *packet {
        Outgoing::Publish {
            pid,
            qos: Qos::AtLeastOnce,
            ..
        } => Some((pid, Ack::Publish)),
        Outgoing::Publish { .. } => None,
        Outgoing::Subscribe { pid, .. } => Some((pid, Ack::Subscribe)),
        Outgoing::Unsubscribe { pid, .. } => Some((pid, Ack::Unsubscribe)),
    }
}

/// Drives a link the way the runner does, over `stream` (which replays the server's bytes):
/// CONNECT, the requests of [`BEFORE`], then `ready` + `receive` until an error, acknowledging
/// QoS 1 messages when `flags` bit 1 is set and writing one more QoS 1 PUBLISH after every
/// received packet when bit 2 is set (fills MQTT 5's Receive Maximum). Checks:
/// - every future finishes in one poll (the stream never blocks, so pending is a hang);
/// - the link ends: at most one received packet per input byte plus a few, then an error
///   (the stream closes at the end of the input);
/// - PUBACK / SUBACK / UNSUBACK are reported only for requests sent on this connection, with
///   the pid the kernel gave them, once each, for the matching kind;
/// - a QoS 1 message's pid is not 0; a received topic and payload fit [`MAX_PACKET_LEN`].
pub fn drive_link<L: MqttLink>(link: &mut L, input_len: usize, flags: u8) {
    match once(link.connect(&PARAMS)) {
        Ok(()) => {}
        Err(_) => {
            once(link.disconnect());
            return;
        }
    }
    let mut outstanding: BTreeMap<u16, Ack> = BTreeMap::new();
    let sent =
        |link: &mut L, packet: &Outgoing<'_>, outstanding: &mut BTreeMap<u16, Ack>| match once(
            link.send(packet),
        ) {
            Ok(aliot_kernel::link::Sent::Written) => {
                if let Some((pid, kind)) = ack_kind(packet) {
                    outstanding.insert(pid, kind);
                }
                true
            }
            Ok(aliot_kernel::link::Sent::Busy) => true,
            Err(_) => false,
        };
    for packet in &BEFORE {
        if !sent(link, packet, &mut outstanding) {
            return;
        }
    }
    let mut next_pid: u16 = 100;
    let limit = input_len + 16;
    for _ in 0..=limit {
        if once(link.ready()).is_err() {
            return;
        }
        let mut to_ack = None;
        match once(link.receive()) {
            Err(LinkError::TooLarge | LinkError::Protocol | LinkError::Network) => return,
            Err(LinkError::ServerDisconnect(_)) => return,
            Err(LinkError::Refused(r)) => panic!("a refusal after CONNACK: {r:?}"),
            Ok(incoming) => match incoming {
                Incoming::Publish {
                    topic,
                    payload,
                    qos,
                    pid,
                } => {
                    assert!(topic.len() + payload.len() <= MAX_PACKET_LEN);
                    if let Some(pid) = pid {
                        assert_ne!(pid, 0, "QoS 1 message with pid 0");
                        assert_eq!(qos, Qos::AtLeastOnce);
                        to_ack = Some(pid);
                    }
                }
                Incoming::PubAck(pid) | Incoming::PubRejected(pid) => {
                    assert_eq!(
                        outstanding.remove(&pid),
                        Some(Ack::Publish),
                        "PUBACK {pid} for nothing outstanding"
                    );
                }
                Incoming::SubAck { pid, .. } => assert_eq!(
                    outstanding.remove(&pid),
                    Some(Ack::Subscribe),
                    "SUBACK {pid} for nothing outstanding"
                ),
                Incoming::UnsubAck(pid) => assert_eq!(
                    outstanding.remove(&pid),
                    Some(Ack::Unsubscribe),
                    "UNSUBACK {pid} for nothing outstanding"
                ),
                Incoming::PingResp | Incoming::Other => {}
            },
        }
        if let Some(pid) = to_ack
            && flags & 2 != 0
            && once(link.acknowledge(pid)).is_err()
        {
            return;
        }
        if flags & 4 != 0 {
            next_pid = next_pid.wrapping_add(1).max(100);
            let packet = Outgoing::Publish {
                pid: next_pid,
                topic: "/pk/dn/user/update",
                payload: b"more",
                qos: Qos::AtLeastOnce,
                dup: false,
            };
            if !sent(link, &packet, &mut outstanding) {
                return;
            }
        }
    }
    panic!("the link returned {limit} packets from fewer input bytes without ending");
}
