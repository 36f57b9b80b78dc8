//! The kernel's `Network` on this board: streams carried over UART0 to the host's bridge
//! (`aliot-qemu`, boards/host), which opens the real TCP connection and does the TLS, as the
//! nRF9160's modem would (protocol: the `aliot-uart-bridge` crate). Also the board's clock
//! (SysTick ticks) and its stand-in entropy.
//!
//! One stream at a time (the protocol's flow control relies on it, see `aliot-uart-bridge`):
//! a new `connect` abandons the previous stream. Frames for an abandoned stream are dropped.
//! The stream's rules live in `aliot_uart_bridge::device::OneStream`, tested on the host; this
//! module only moves bytes between it and the UART.
//! Everything is polled: the executor (`embassy_futures::block_on`) busy-polls, so every
//! future here returns `Pending` after waking itself.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use aliot_cortex_m33::systick;
use aliot_kernel::board::{Clock, Entropy, NetError, Network};
use aliot_uart_bridge::device::{OneStream, State};
use aliot_uart_bridge::{Deframer, Down, Failure, MAX_CHUNK, MAX_FRAME, Up, decode, encode};
use cortex_m_semihosting::hprintln;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use crate::uart::Uart;

/// How long the bridge gets to answer a `Connect` (it has its own TCP and TLS deadlines).
const CONNECT_DEADLINE_MS: u64 = 30_000;

/// Milliseconds per SysTick tick (the runtime's slice).
pub const TICK_MS: u64 = crate::SLICE_MS as u64;

/// The line and the one stream on it.
pub struct Line {
    uart: Uart,
    deframer: Deframer,
    stream: OneStream,
    /// Frames that did not decode (logged once each).
    bad_frames: u32,
}

impl Line {
    /// The line over `uart`, no stream yet.
    pub fn new(uart: Uart) -> Line {
        Line {
            uart,
            deframer: Deframer::new(),
            stream: OneStream::new(),
            bad_frames: 0,
        }
    }

    /// Frames that did not decode so far.
    pub fn bad_frames(&self) -> u32 {
        self.bad_frames
    }

    /// Send one message (frames are short; the UART waits for room byte by byte).
    fn send(&mut self, message: &Up<'_>) {
        let mut frame = [0u8; MAX_FRAME];
        match encode(message, &mut frame) {
            Ok(n) => self.uart.write_all(frame.get(..n).unwrap_or_default()),
            Err(e) => hprintln!("bridge: cannot encode a frame: {}", e),
        }
    }

    /// Read what the line holds, while the stream can take a whole chunk more.
    fn pump(&mut self) {
        while self.stream.can_take_chunk() {
            let Some(byte) = self.uart.try_read() else {
                return;
            };
            let message = match self.deframer.push(byte) {
                None => continue,
                Some(Ok(frame)) => decode::<Down<'_>>(frame),
                Some(Err(e)) => Err(e),
            };
            match message {
                Ok(message) => self.stream.apply(message),
                Err(e) => {
                    self.bad_frames = self.bad_frames.saturating_add(1);
                    hprintln!("bridge: dropped a frame from the host: {}", e);
                }
            }
        }
    }

    /// Close the current stream (this side), if `id` is it.
    fn close(&mut self, id: u8) {
        if self.stream.end(id) {
            self.send(&Up::Close { stream: id });
        }
    }
}

/// The kernel's network: streams over the bridge.
pub struct BridgeNetwork<'l> {
    line: &'l RefCell<Line>,
}

impl<'l> BridgeNetwork<'l> {
    /// A network over `line`.
    pub fn new(line: &'l RefCell<Line>) -> Self {
        Self { line }
    }
}

impl<'l> Network for BridgeNetwork<'l> {
    type Stream = BridgeStream<'l>;

    async fn connect(
        &mut self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<Self::Stream, NetError> {
        let stream = {
            let mut line = self.line.borrow_mut();
            let old = line.stream.id();
            line.close(old);
            let stream = line.stream.begin();
            line.send(&Up::Connect {
                stream,
                host,
                port,
                tls,
            });
            stream
        };
        let deadline = TickClock.now_ms() + CONNECT_DEADLINE_MS;
        let outcome = poll_fn(|cx| {
            let mut line = self.line.borrow_mut();
            line.pump();
            match line.stream.state() {
                State::Open => Poll::Ready(Ok(())),
                State::Failed(reason) => Poll::Ready(Err(match reason {
                    Failure::Dns => NetError::Dns,
                    Failure::Connect => NetError::Connect,
                    Failure::Tls => NetError::Tls,
                    Failure::Unavailable => NetError::Unavailable,
                })),
                State::Closed | State::Idle => Poll::Ready(Err(NetError::Connect)),
                State::Connecting if TickClock.now_ms() >= deadline => {
                    Poll::Ready(Err(NetError::Unavailable))
                }
                State::Connecting => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        })
        .await;
        match outcome {
            Ok(()) => Ok(BridgeStream {
                line: self.line,
                stream,
            }),
            Err(e) => {
                self.line.borrow_mut().close(stream);
                Err(e)
            }
        }
    }
}

/// One stream over the bridge; dropping it closes it.
pub struct BridgeStream<'l> {
    line: &'l RefCell<Line>,
    stream: u8,
}

impl Drop for BridgeStream<'_> {
    fn drop(&mut self) {
        self.line.borrow_mut().close(self.stream);
    }
}

impl ErrorType for BridgeStream<'_> {
    type Error = ErrorKind;
}

impl Read for BridgeStream<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            let mut line = self.line.borrow_mut();
            if !line.stream.is_current(self.stream) {
                return Poll::Ready(Err(ErrorKind::NotConnected));
            }
            line.pump();
            if line.stream.held() > 0 {
                return Poll::Ready(Ok(line.stream.take(buf)));
            }
            if line.stream.state() == State::Closed {
                return Poll::Ready(Ok(0));
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }
}

impl Write for BridgeStream<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut line = self.line.borrow_mut();
        if !line.stream.is_current(self.stream) || line.stream.state() != State::Open {
            return Err(ErrorKind::NotConnected);
        }
        let n = buf.len().min(MAX_CHUNK);
        let stream = self.stream;
        line.send(&Up::Data {
            stream,
            bytes: buf.get(..n).unwrap_or_default(),
        });
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Time from SysTick: one tick per slice ([`TICK_MS`]).
#[derive(Debug, Clone, Copy)]
pub struct TickClock;

impl Clock for TickClock {
    fn now_ms(&self) -> u64 {
        u64::from(systick::ticks()) * TICK_MS
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        poll_fn(|cx| {
            if self.now_ms() >= deadline_ms {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }
}

/// Backoff jitter only: QEMU's AN505 has no TRNG, so this is xorshift32 seeded from the tick
/// count. Not for secrets (this board's manifest needs no nonce: 一机一密; a registering
/// device on the nRF9160 uses the chip's CryptoCell TRNG).
pub struct TickEntropy {
    state: u32,
}

impl TickEntropy {
    /// Seeded from the current tick count.
    pub fn new() -> Self {
        Self {
            state: systick::ticks() | 1,
        }
    }
}

impl Entropy for TickEntropy {
    fn random_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }
}
