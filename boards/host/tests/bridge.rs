//! The UART bridge's host end without QEMU: a fake device speaks the frame protocol over a
//! local socket to [`aliot_host::bridge::relay`], against local servers and the built-in
//! emulator. Every wait is bounded by [`WAIT`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aliot_emulator::{Emulator, EmulatorConfig};
use aliot_host::bridge::{RelayOptions, RelayStats, relay};
use aliot_host::net::{HostNetwork, tls_config};
use aliot_uart_bridge::{Deframer, Down, Failure, MAX_CHUNK, MAX_FRAME, Up, decode, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

/// A [`Down`] that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Connected(u8),
    Failed(u8, Failure),
    Data(u8, Vec<u8>),
    Closed(u8),
}

/// The device's end of the line.
struct Device {
    line: TcpStream,
    deframer: Deframer,
    unread: VecDeque<u8>,
    relay: JoinHandle<std::io::Result<RelayStats>>,
}

impl Device {
    /// Ask for a plain TCP stream `stream` to 127.0.0.1:`port`.
    async fn connect_plain(&mut self, stream: u8, port: u16) {
        self.send(&Up::Connect {
            stream,
            host: "127.0.0.1",
            port,
            tls: false,
        })
        .await;
    }

    /// A relay on a fresh local socket, and the device connected to it.
    async fn start(network: HostNetwork, options: RelayOptions) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = tokio::spawn(async move {
            let (line, _) = tokio::time::timeout(WAIT, listener.accept()).await??;
            relay(line, network, options).await
        });
        let line = TcpStream::connect(addr).await.unwrap();
        Self {
            line,
            deframer: Deframer::new(),
            unread: VecDeque::new(),
            relay,
        }
    }

    async fn send(&mut self, message: &Up<'_>) {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode(message, &mut buf).unwrap();
        self.line.write_all(&buf[..len]).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.line.write_all(bytes).await.unwrap();
    }

    /// The next frame from the relay (a bad one fails the test).
    async fn recv(&mut self) -> Answer {
        loop {
            while let Some(byte) = self.unread.pop_front() {
                if let Some(frame) = self.deframer.push(byte) {
                    let message = decode::<Down<'_>>(frame.unwrap()).unwrap();
                    return match message {
                        Down::Connected { stream } => Answer::Connected(stream),
                        Down::Failed { stream, reason } => Answer::Failed(stream, reason),
                        Down::Data { stream, bytes } => Answer::Data(stream, bytes.to_vec()),
                        Down::Closed { stream } => Answer::Closed(stream),
                    };
                }
            }
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, self.line.read(&mut buf))
                .await
                .expect("the relay answers in time")
                .unwrap();
            assert_ne!(n, 0, "the relay closed the line");
            self.unread.extend(&buf[..n]);
        }
    }

    /// Data on `stream` until `len` bytes came; returns them and how many frames they took.
    async fn recv_data(&mut self, stream: u8, len: usize) -> (Vec<u8>, usize) {
        let (mut got, mut frames) = (Vec::new(), 0);
        while got.len() < len {
            match self.recv().await {
                Answer::Data(s, bytes) if s == stream => {
                    assert!(bytes.len() <= MAX_CHUNK);
                    got.extend(bytes);
                    frames += 1;
                }
                other => panic!("expected data on {stream}, got {other:?}"),
            }
        }
        (got, frames)
    }

    /// Closes the line; the relay's statistics.
    async fn finish(self) -> RelayStats {
        drop(self.line);
        tokio::time::timeout(WAIT, self.relay)
            .await
            .expect("the relay ends with its line")
            .unwrap()
            .unwrap()
    }
}

fn plain_network() -> HostNetwork {
    HostNetwork::new(tls_config(None).unwrap(), None)
}

/// An echo server on a free local port; each connection's echoed byte count is sent on the
/// channel when its peer closes.
async fn echo_server() -> (u16, mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut peer, _)) = listener.accept().await {
            let done = done.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 700];
                let mut total = 0;
                while let Ok(n) = peer.read(&mut buf).await {
                    if n == 0 || peer.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    total += n;
                }
                let _ = done.send(total);
            });
        }
    });
    (port, closed)
}

async fn closed_within(closed: &mut mpsc::UnboundedReceiver<usize>) -> usize {
    tokio::time::timeout(WAIT, closed.recv())
        .await
        .expect("the peer saw the stream close")
        .unwrap()
}

/// 1300 bytes, zeros among them (the frame delimiter must survive inside the data).
fn payload() -> Vec<u8> {
    (0..1300u32).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn data_goes_both_ways_in_chunks_and_close_closes_the_peer() {
    let (port, mut closed) = echo_server().await;
    let mut device = Device::start(plain_network(), RelayOptions::default()).await;
    device.connect_plain(3, port).await;
    assert_eq!(device.recv().await, Answer::Connected(3));
    let sent = payload();
    for chunk in sent.chunks(MAX_CHUNK) {
        device
            .send(&Up::Data {
                stream: 3,
                bytes: chunk,
            })
            .await;
    }
    let (echoed, frames) = device.recv_data(3, sent.len()).await;
    assert_eq!(echoed, sent);
    assert!(frames >= sent.len().div_ceil(MAX_CHUNK), "{frames} frames");
    device.send(&Up::Close { stream: 3 }).await;
    assert_eq!(closed_within(&mut closed).await, sent.len());
    let stats = device.finish().await;
    assert_eq!((stats.connects, stats.bad_frames), (1, 0));
}

#[tokio::test]
async fn a_dead_port_fails_with_connect() {
    let dead = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut device = Device::start(plain_network(), RelayOptions::default()).await;
    device.connect_plain(1, port).await;
    assert_eq!(device.recv().await, Answer::Failed(1, Failure::Connect));
    // Nothing is open for it afterwards.
    device
        .send(&Up::Data {
            stream: 1,
            bytes: b"x",
        })
        .await;
    // (Its task ended after Failed: the data is dropped, the device was told.)
    device
        .send(&Up::Data {
            stream: 2,
            bytes: b"x",
        })
        .await;
    assert_eq!(device.recv().await, Answer::Closed(2));
}

/// A frame that is postcard for `Up::Data` with `len` bytes, bypassing `encode`'s check.
fn over_limit_data(stream: u8, len: usize) -> Vec<u8> {
    let mut message = vec![1, stream];
    let mut n = len;
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            message.push(byte);
            break;
        }
        message.push(byte | 0x80);
    }
    message.extend(std::iter::repeat_n(0x42, len));
    let mut framed = cobs::encode_vec(&message);
    framed.push(0);
    framed
}

#[tokio::test]
async fn bad_frames_are_dropped_and_the_next_one_is_served() {
    let (port, _closed) = echo_server().await;
    let mut device = Device::start(plain_network(), RelayOptions::default()).await;
    // Not COBS of a message; longer than any frame; a Data over MAX_CHUNK for stream 9
    // (were it taken, stream 9 is not open and the answer would be Closed(9)).
    device.send_raw(&[0x05, 0xFF, 0x13, 0x00]).await;
    device.send_raw(&vec![0x11; MAX_FRAME + 5]).await;
    device.send_raw(&[0]).await;
    device.send_raw(&over_limit_data(9, MAX_CHUNK + 1)).await;
    device.connect_plain(1, port).await;
    assert_eq!(device.recv().await, Answer::Connected(1));
    let stats = device.finish().await;
    assert_eq!(stats.bad_frames, 3);
    assert_eq!(stats.frames, 1);
}

#[tokio::test]
async fn the_peer_closing_says_closed_and_unknown_streams_are_closed() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut peer, _) = listener.accept().await.unwrap();
        peer.write_all(b"bye\0").await.unwrap();
    });
    let mut device = Device::start(plain_network(), RelayOptions::default()).await;
    device.connect_plain(4, port).await;
    assert_eq!(device.recv().await, Answer::Connected(4));
    assert_eq!(device.recv_data(4, 4).await.0, b"bye\0");
    assert_eq!(device.recv().await, Answer::Closed(4));
    device
        .send(&Up::Data {
            stream: 7,
            bytes: b"nobody",
        })
        .await;
    assert_eq!(device.recv().await, Answer::Closed(7));
}

#[tokio::test]
async fn streams_are_bounded_and_a_connect_replaces_an_open_id() {
    let (port, mut closed) = echo_server().await;
    let options = RelayOptions {
        max_streams: 2,
        ..RelayOptions::default()
    };
    let mut device = Device::start(plain_network(), options).await;
    let connect = |stream| Up::Connect {
        stream,
        host: "127.0.0.1",
        port,
        tls: false,
    };
    for stream in [1, 2] {
        device.send(&connect(stream)).await;
        assert_eq!(device.recv().await, Answer::Connected(stream));
    }
    device.send(&connect(3)).await;
    assert_eq!(device.recv().await, Answer::Failed(3, Failure::Unavailable));
    // The same id again replaces stream 2 (the old connection closes), within the bound.
    device.send(&connect(2)).await;
    assert_eq!(device.recv().await, Answer::Connected(2));
    assert_eq!(closed_within(&mut closed).await, 0);
    device
        .send(&Up::Data {
            stream: 2,
            bytes: b"new",
        })
        .await;
    assert_eq!(device.recv_data(2, 3).await.0, b"new");
    // Closing one makes room.
    device.send(&Up::Close { stream: 1 }).await;
    assert_eq!(closed_within(&mut closed).await, 0);
    device.send(&connect(3)).await;
    assert_eq!(device.recv().await, Answer::Connected(3));
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s);
}

/// Fixed header + remaining length (< 16 384) + body.
fn mqtt_packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let len = body.len();
    if len < 128 {
        out.push(len as u8);
    } else {
        out.extend([(len & 0x7F) as u8 | 0x80, (len >> 7) as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// The device logs in to the built-in emulator through the relay, at the manifest's endpoint
/// and TLS setting, redirected and verified as `aliot-qemu` does, and publishes on `update`.
#[tokio::test]
async fn the_device_logs_in_to_the_emulator_and_publishes_through_the_relay() {
    let config = &aliot_host::generated::DEVICE;
    let (pk, dn) = (config.product_key, config.device_name);
    let emulator = Arc::new(Emulator::start(EmulatorConfig::demo()).unwrap());
    let network = aliot_host::qemu::emulator_network(config, &emulator, None).unwrap();
    let mut device = Device::start(network, RelayOptions::default()).await;
    device
        .send(&Up::Connect {
            stream: 0,
            host: config.endpoint.host,
            port: config.endpoint.port,
            tls: config.tls.enabled,
        })
        .await;
    assert_eq!(device.recv().await, Answer::Connected(0));

    let secret = emulator.device_secret(pk, dn).expect("the demo device");
    let identity = aliot_kernel::auth::DeviceIdentity {
        product_key: pk,
        device_name: dn,
        client_id: config.client_id,
        device_secret: secret.as_bytes(),
    };
    let login = aliot_kernel::auth::device_login(&identity, config.sign_method, config.tls.enabled);
    let mut body = Vec::new();
    mqtt_str(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0xC2, 0, 60]);
    mqtt_str(login.client_id.as_bytes(), &mut body);
    mqtt_str(login.username.as_bytes(), &mut body);
    mqtt_str(login.password.as_bytes(), &mut body);
    let connect = mqtt_packet(0x10, &body);
    device
        .send(&Up::Data {
            stream: 0,
            bytes: &connect,
        })
        .await;
    assert_eq!(device.recv_data(0, 4).await.0, [0x20, 2, 0, 0], "CONNACK");

    // A QoS 0 PUBLISH over two chunks, a zero byte in its payload.
    let update = config.topics.iter().find(|t| t.name == "update").unwrap();
    let payload: Vec<u8> = (0..700u32).map(|i| (i % 256) as u8).collect();
    let mut body = Vec::new();
    mqtt_str(update.topic.as_bytes(), &mut body);
    body.extend_from_slice(&payload);
    let publish = mqtt_packet(0x30, &body);
    for chunk in publish.chunks(MAX_CHUNK) {
        device
            .send(&Up::Data {
                stream: 0,
                bytes: chunk,
            })
            .await;
    }
    let waiting = emulator.clone();
    let topic = update.topic;
    let uplink = tokio::task::spawn_blocking(move || {
        waiting.wait_for_uplink(pk, dn, WAIT, |u| u.topic == topic)
    })
    .await
    .unwrap()
    .expect("the emulator got the publish");
    assert_eq!(uplink.payload, payload);
    assert_eq!(uplink.refused, None);

    let summary = aliot_host::qemu::summarize(
        &emulator.uplinks(pk, dn),
        &emulator.logins(pk, dn),
        Some(update.topic),
    );
    assert!(summary.logged_in);
    assert_eq!(summary.update_publishes, 1);
    let stats = device.finish().await;
    assert_eq!(stats.bad_frames, 0);
}
