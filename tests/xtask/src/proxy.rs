//! A TCP proxy on 127.0.0.1 that delivers every chunk a fixed time after it arrived, in each
//! direction: a link with a known round-trip time, so "round trips to ready" can be counted
//! from a wall-clock time (elapsed / (2 × delay)) on a loopback machine.
//!
//! Each direction of each connection is a reader thread stamping chunks and a writer thread
//! sending each at its stamp plus the delay, so chunks in flight overlap as on a real link
//! (the delay is latency, not a bandwidth limit). Every blocking read has a timeout so the
//! threads notice [`DelayProxy`] being dropped.
//!
//! It also counts the client's flights: chunks towards the server that follow data from the
//! server (or start the connection). Each flight the client must wait for costs a round trip
//! whatever the link, so this is the protocol's count of round trips, free of the timing
//! noise of a shared machine.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Bound on the proxy's own connect to the upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The proxy; stops accepting and ends its connections when dropped.
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    turns: Arc<Turns>,
}

/// The flights of the last connection.
#[derive(Debug, Default)]
struct Turns {
    /// Client flights so far.
    flights: AtomicU32,
    /// Direction of the last chunk: 0 none, [`TO_SERVER`], [`TO_CLIENT`].
    last: AtomicU8,
}

const TO_SERVER: u8 = 1;
const TO_CLIENT: u8 = 2;

impl Turns {
    fn chunk(&self, direction: u8) {
        if self.last.swap(direction, Ordering::SeqCst) != direction && direction == TO_SERVER {
            self.flights.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl DelayProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`, every
    /// byte `delay` late in each direction.
    pub fn start(upstream: SocketAddr, delay: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let turns = Arc::new(Turns::default());
        let counter = turns.clone();
        let acceptor = std::thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            counter.flights.store(0, Ordering::SeqCst);
                            counter.last.store(0, Ordering::SeqCst);
                            let turns = counter.clone();
                            if let Err(e) = connection(client, upstream, delay, flag.clone(), turns)
                            {
                                eprintln!("delay proxy: {e}");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => {
                            eprintln!("delay proxy: accept: {e}");
                            return;
                        }
                    }
                }
            })?;
        Ok(Self {
            addr,
            stop,
            acceptor: Some(acceptor),
            turns,
        })
    }

    /// The client's flights on the last connection so far (see the module's doc).
    pub fn flights(&self) -> u32 {
        self.turns.flights.load(Ordering::SeqCst)
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    stop: Arc<AtomicBool>,
    turns: Arc<Turns>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT)?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(POLL))?;
    }
    let both = (client.try_clone()?, server.try_clone()?);
    pump(
        both.0,
        both.1,
        delay,
        stop.clone(),
        turns.clone(),
        TO_SERVER,
    )?;
    pump(server, client, delay, stop, turns, TO_CLIENT)?;
    Ok(())
}

/// Moves `from` → `to`, each chunk `delay` after it was read.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    stop: Arc<AtomicBool>,
    turns: Arc<Turns>,
    direction: u8,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::Builder::new()
        .name("delay-proxy-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while !stop.load(Ordering::SeqCst) {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        turns.chunk(direction);
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            // Dropping `tx` tells the writer the stream ended.
        })?;
    std::thread::Builder::new()
        .name("delay-proxy-write".into())
        .spawn(move || {
            while let Ok((at, chunk)) = rx.recv() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_the_proxy_unchanged_both_ways() {
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let upstream = server.local_addr().expect("addr");
        let echo = std::thread::spawn(move || {
            let (mut s, _) = server.accept().expect("accept");
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).expect("read");
            s.write_all(&buf).expect("write");
        });
        let proxy = DelayProxy::start(upstream, Duration::from_millis(20)).expect("proxy");
        let mut c = TcpStream::connect(proxy.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        c.write_all(b"hello").expect("write");
        let mut back = [0u8; 5];
        c.read_exact(&mut back).expect("read back");
        assert_eq!(&back, b"hello");
        echo.join().expect("echo");
        // One flight: the client waited for the answer once.
        assert_eq!(proxy.flights(), 1);
    }
}
