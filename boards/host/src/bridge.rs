//! The host end of the UART bridge (`aliot-uart-bridge`): a board without a modem (QEMU's
//! `mps2-an505`) asks over a serial line for TCP/TLS connections, and this relay opens them
//! with the host board's own network ([`HostNetwork`]: same redirects, same TLS trust), so the
//! device reaches the built-in emulator exactly as the host board does.
//!
//! Why it looks like this:
//! * It runs on any `AsyncRead + AsyncWrite` line (QEMU's `-serial tcp:` socket in
//!   `aliot-qemu`, a plain socket in the tests), so it is tested without QEMU.
//! * Everything from the line is untrusted: a frame that does not decode is logged and
//!   dropped (COBS resynchronises at the next zero), every buffer is bounded ([`MAX_FRAME`],
//!   [`MAX_CHUNK`], bounded queues), and nothing the device sends can panic the relay.
//! * One task writes the line, one frame at a time, so frames never interleave. Each stream
//!   has its own task (connect with a deadline, then copy both ways).
//! * A stream the device closed or replaced is *detached* under a lock before anything else
//!   happens on the line: its task may still flush what the device sent (bounded), but it
//!   never sends another frame, so a reused id never gets a stale `Data` or `Closed`.
//! * The protocol has no flow control: a full queue toward a stream stops the relay reading
//!   the line, which pushes back on the device (see the protocol's crate docs).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aliot_kernel::board::{NetError, Network};
use aliot_uart_bridge::{Deframer, Down, Failure, MAX_CHUNK, MAX_FRAME, Up, decode, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::net::HostNetwork;

/// Default for [`RelayOptions::max_streams`].
pub const MAX_STREAMS: usize = 4;
/// Frames waiting for the line.
const DOWN_QUEUE: usize = 16;
/// Chunks waiting for one stream's peer.
const STREAM_QUEUE: usize = 8;

/// How the relay behaves.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// A `Connect` (TCP and TLS handshake) not done by then answers `Failed`.
    pub connect_deadline: Duration,
    /// A write to a stream's peer not done by then closes the stream.
    pub write_deadline: Duration,
    /// Most streams open at once; a `Connect` over it answers `Failed { Unavailable }`.
    pub max_streams: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            connect_deadline: Duration::from_secs(15),
            write_deadline: Duration::from_secs(30),
            max_streams: MAX_STREAMS,
        }
    }
}

/// What a relay saw, for the run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Frames from the device that decoded.
    pub frames: u64,
    /// Frames from the device that did not (dropped).
    pub bad_frames: u64,
    /// `Connect`s from the device (each answered `Connected` or `Failed`).
    pub connects: u64,
}

/// Whether a stream's task may still speak on the line (see the module doc).
type Gate = Arc<Mutex<bool>>;

/// A task aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One stream the device opened.
struct Stream {
    to_peer: mpsc::Sender<Vec<u8>>,
    gate: Gate,
    task: Task,
}

impl Stream {
    /// Stops it speaking on the line; its task flushes what it was given and ends.
    fn detach(self) -> Task {
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.task
    }
}

/// Encodes `message` as one frame; `None` (logged) when it is over the protocol's limits,
/// which the relay never builds.
fn frame(message: &Down<'_>) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_FRAME];
    match encode(message, &mut buf) {
        Ok(len) => buf.get(..len).map(<[u8]>::to_vec),
        Err(e) => {
            log::error!("bridge: cannot frame {message:?}: {e}");
            None
        }
    }
}

/// Sends `message` for a stream whose `gate` is open; `false` when the line is gone or the
/// stream was detached (then nothing was sent).
async fn send_gated(down: &mpsc::Sender<Vec<u8>>, gate: &Gate, message: &Down<'_>) -> bool {
    let Some(bytes) = frame(message) else {
        return false;
    };
    let Ok(permit) = down.reserve().await else {
        return false;
    };
    // Checked and sent under the lock: a detach is either before (nothing sent) or after
    // (this frame precedes anything the relay sends for a new stream with the same id).
    let live = gate.lock().unwrap_or_else(PoisonError::into_inner);
    if !*live {
        return false;
    }
    permit.send(bytes);
    true
}

fn failure(e: NetError) -> Failure {
    match e {
        NetError::Dns => Failure::Dns,
        NetError::Connect => Failure::Connect,
        NetError::Tls => Failure::Tls,
        NetError::Unavailable => Failure::Unavailable,
    }
}

/// Relays between the device on `line` and the network until the line ends (EOF or an
/// error; the error is returned). Every stream is closed when it returns.
pub async fn relay<L>(
    line: L,
    network: HostNetwork,
    options: RelayOptions,
) -> io::Result<RelayStats>
where
    L: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut from_line, to_line) = tokio::io::split(line);
    let (down, down_rx) = mpsc::channel(DOWN_QUEUE);
    let mut writer = tokio::spawn(write_line(to_line, down_rx));
    let mut relay = Relay {
        network,
        options,
        down,
        streams: HashMap::new(),
        draining: Vec::new(),
        stats: RelayStats::default(),
    };
    let mut deframer = Deframer::new();
    let mut buf = [0u8; 1024];
    let ended = loop {
        let read = tokio::select! {
            read = from_line.read(&mut buf) => read,
            written = &mut writer => {
                break match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(io::Error::other(e)),
                };
            }
        };
        let n = match read {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        for &byte in buf.get(..n).unwrap_or_default() {
            match deframer.push(byte) {
                None => {}
                Some(Err(e)) => relay.bad_frame(e),
                Some(Ok(bytes)) => match decode::<Up<'_>>(bytes) {
                    Ok(message) => relay.handle(message).await,
                    Err(e) => relay.bad_frame(e),
                },
            }
        }
    };
    writer.abort();
    let stats = relay.stats;
    drop(relay);
    log::info!(
        "bridge: line closed ({} frames, {} dropped, {} connects)",
        stats.frames,
        stats.bad_frames,
        stats.connects
    );
    ended.map(|()| stats)
}

/// Writes frames to the line in order, each whole before the next.
async fn write_line<W: AsyncWrite + Unpin>(
    mut line: W,
    mut frames: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(bytes) = frames.recv().await {
        line.write_all(&bytes).await?;
        line.flush().await?;
    }
    Ok(())
}

/// The relay's state between frames.
struct Relay {
    network: HostNetwork,
    options: RelayOptions,
    down: mpsc::Sender<Vec<u8>>,
    streams: HashMap<u8, Stream>,
    /// Detached streams still flushing (bounded by the write deadline); aborted at the end.
    draining: Vec<Task>,
    stats: RelayStats,
}

impl Relay {
    fn bad_frame(&mut self, e: aliot_uart_bridge::FrameError) {
        self.stats.bad_frames += 1;
        log::warn!("bridge: dropped a frame from the device: {e}");
    }

    /// Answers for the relay itself (not a stream's task).
    async fn answer(&self, message: &Down<'_>) {
        if let Some(bytes) = frame(message) {
            // The line's writer is gone only when the line is: the relay ends right after.
            let _ = self.down.send(bytes).await;
        }
    }

    fn detach(&mut self, stream: u8) {
        if let Some(old) = self.streams.remove(&stream) {
            self.draining.retain(|t| !t.0.is_finished());
            self.draining.push(old.detach());
        }
    }

    async fn handle(&mut self, message: Up<'_>) {
        self.stats.frames += 1;
        match message {
            Up::Connect {
                stream,
                host,
                port,
                tls,
            } => {
                self.stats.connects += 1;
                self.detach(stream);
                let open = self
                    .streams
                    .values()
                    .filter(|s| !s.task.0.is_finished())
                    .count();
                if open >= self.options.max_streams {
                    log::warn!(
                        "bridge: stream {stream}: refused {host}:{port}, {open} streams already open"
                    );
                    let reason = Failure::Unavailable;
                    self.answer(&Down::Failed { stream, reason }).await;
                    return;
                }
                log::info!(
                    "bridge: stream {stream}: connect {host}:{port}{}",
                    if tls { " (TLS)" } else { "" }
                );
                let (to_peer, from_device) = mpsc::channel(STREAM_QUEUE);
                let gate = Arc::new(Mutex::new(true));
                let job = StreamJob {
                    stream,
                    host: host.to_owned(),
                    port,
                    tls,
                    network: self.network.clone(),
                    options: self.options,
                    from_device,
                    down: self.down.clone(),
                    gate: gate.clone(),
                };
                let task = Task(tokio::spawn(job.run()));
                self.streams.insert(
                    stream,
                    Stream {
                        to_peer,
                        gate,
                        task,
                    },
                );
            }
            Up::Data { stream, bytes } => match self.streams.get(&stream) {
                // A task that ended has said Closed or Failed already: the device was told.
                Some(s) => {
                    let _ = s.to_peer.send(bytes.to_vec()).await;
                }
                None => {
                    log::debug!("bridge: data for stream {stream}, which is not open");
                    self.answer(&Down::Closed { stream }).await;
                }
            },
            Up::Close { stream } => {
                log::info!("bridge: stream {stream}: closed by the device");
                self.detach(stream);
            }
        }
    }
}

/// One stream's task: see [`StreamJob::run`].
struct StreamJob {
    stream: u8,
    host: String,
    port: u16,
    tls: bool,
    network: HostNetwork,
    options: RelayOptions,
    from_device: mpsc::Receiver<Vec<u8>>,
    down: mpsc::Sender<Vec<u8>>,
    gate: Gate,
}

impl StreamJob {
    /// Connects (answering `Connected` or `Failed`), then copies both ways until the peer
    /// closes or fails (`Closed`) or the device detaches the stream (then it flushes what the
    /// device sent and shuts the connection down, saying nothing more).
    async fn run(mut self) {
        let stream = self.stream;
        let connect = self.network.connect(&self.host, self.port, self.tls);
        let mut peer = match tokio::time::timeout(self.options.connect_deadline, connect).await {
            Ok(Ok(peer)) => peer.into_inner(),
            Ok(Err(e)) => return self.failed(failure(e)).await,
            Err(_) => {
                log::warn!(
                    "bridge: stream {stream}: {}:{} not connected within {:?}",
                    self.host,
                    self.port,
                    self.options.connect_deadline
                );
                return self.failed(Failure::Connect).await;
            }
        };
        if !send_gated(&self.down, &self.gate, &Down::Connected { stream }).await {
            return self.drain(&mut peer).await;
        }
        let mut buf = [0u8; MAX_CHUNK];
        loop {
            tokio::select! {
                read = peer.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => 0,
                        Ok(n) => n,
                        Err(e) => {
                            log::info!("bridge: stream {stream}: {e}");
                            0
                        }
                    };
                    if n == 0 {
                        log::info!("bridge: stream {stream}: closed by the peer");
                        send_gated(&self.down, &self.gate, &Down::Closed { stream }).await;
                        return;
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    if !send_gated(&self.down, &self.gate, &Down::Data { stream, bytes }).await {
                        return self.drain(&mut peer).await;
                    }
                }
                chunk = self.from_device.recv() => match chunk {
                    Some(bytes) => {
                        if let Err(e) = self.write(&mut peer, &bytes).await {
                            log::info!("bridge: stream {stream}: {e}");
                            send_gated(&self.down, &self.gate, &Down::Closed { stream }).await;
                            return;
                        }
                    }
                    None => return self.drain(&mut peer).await,
                },
            }
        }
    }

    async fn failed(&self, reason: Failure) {
        let stream = self.stream;
        log::warn!(
            "bridge: stream {stream}: {}:{} failed: {reason:?}",
            self.host,
            self.port
        );
        send_gated(&self.down, &self.gate, &Down::Failed { stream, reason }).await;
    }

    /// One chunk to the peer, within the write deadline.
    async fn write<P: AsyncWrite + Unpin>(&self, peer: &mut P, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            peer.write_all(bytes).await?;
            peer.flush().await
        };
        tokio::time::timeout(self.options.write_deadline, write)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "write deadline")))
    }

    /// Detached: what the device sent before closing goes out, then the connection is shut
    /// down (TLS says close_notify), all within one write deadline.
    async fn drain<P: AsyncWrite + Unpin>(&mut self, peer: &mut P) {
        let deadline = self.options.write_deadline;
        let from_device = &mut self.from_device;
        let flush = async {
            while let Some(bytes) = from_device.recv().await {
                peer.write_all(&bytes).await?;
            }
            peer.flush().await?;
            peer.shutdown().await
        };
        if let Ok(Err(e)) | Err(e) = tokio::time::timeout(deadline, flush)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "drain deadline"))
        {
            log::debug!("bridge: stream {}: closing: {e}", self.stream);
        }
    }
}
