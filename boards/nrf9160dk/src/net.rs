//! The kernel's [`Network`] over the nRF9160 modem (nrf-modem): the modem resolves names, runs
//! the TCP sockets and does TLS 1.2 itself, verifying the platform's certificate against the CA
//! provisioned in the manifest's security tag. No TLS stack runs on the M33 and the kernel
//! never sees a certificate.
//!
//! Every wait has a deadline: a connect (LTE link, DNS, TCP, TLS handshake) that has not
//! finished by [`CONNECT_TIMEOUT_MS`] is cancelled through nrf-modem's cancellation token, and
//! if the modem does not give up within [`CANCEL_GRACE_MS`] the attempt is dropped (its socket
//! closed). Reads and writes on an open stream are bounded by the kernel's runner, which races
//! each against its own deadline.
//!
//! UNTESTED ON HARDWARE: all of it; the types and the deadlines are checked by the build only.

use core::future::Future;
use core::net::SocketAddr;
use core::pin::pin;

use aliot_kernel::board::{NetError, Network};
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer, with_timeout};
use embedded_io_async::{ErrorType, Read, Write};
use nrf_modem::{CancellationToken, PeerVerification, TcpStream, TlsStream};

/// Longest time one connect may take, LTE link and DNS included. The runner's own connect
/// deadline may be shorter; then it wins.
pub const CONNECT_TIMEOUT_MS: u64 = 60_000;
/// How long a cancelled modem operation gets to wind down before it is dropped.
pub const CANCEL_GRACE_MS: u64 = 5_000;

/// Opens TCP and TLS streams through the modem.
pub struct ModemNetwork {
    security_tag: u32,
}

impl ModemNetwork {
    /// TLS streams verify the server against the CA certificate in `security_tag`.
    pub fn new(security_tag: u32) -> Self {
        Self { security_tag }
    }
}

/// A stream the modem carries: plain TCP (the platform's `securemode=3`) or TLS 1.2.
pub enum ModemStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS 1.2, negotiated by the modem.
    Tls(TlsStream),
}

impl ErrorType for ModemStream {
    type Error = nrf_modem::Error;
}

impl Read for ModemStream {
    /// Raced against Button 1's request to cut the connection ([`crate::status`]): the cut
    /// ends the read with `Disconnected`, and the kernel logs in again.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let read = async {
            match self {
                ModemStream::Tcp(s) => Read::read(s, buf).await,
                ModemStream::Tls(s) => Read::read(s, buf).await,
            }
        };
        match select(read, crate::status::cut_requested()).await {
            Either::First(result) => result,
            Either::Second(()) => Err(nrf_modem::Error::Disconnected),
        }
    }
}

impl Write for ModemStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        match self {
            ModemStream::Tcp(s) => Write::write(s, buf).await,
            ModemStream::Tls(s) => Write::write(s, buf).await,
        }
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Network for ModemNetwork {
    type Stream = ModemStream;

    async fn connect(&mut self, host: &str, port: u16, tls: bool) -> Result<ModemStream, NetError> {
        crate::status::forget_cut();
        let token = CancellationToken::new();
        let tags = [self.security_tag];
        let opened = if tls {
            // TlsStream::connect holds the LTE link, resolves `host` with the modem's resolver
            // and opens a TLS 1.2 socket (nrf-modem's `SocketProtocol::Tls1v2`) that requires
            // the peer's certificate to verify and to match `host` (SNI and hostname check).
            // Cipher suites: the modem's default TLS 1.2 list (RSA and ECDSA suites; the
            // platform's GlobalSign chain is RSA).
            bounded(
                &token,
                TlsStream::connect_with_cancellation(
                    host,
                    port,
                    PeerVerification::Enabled,
                    &tags,
                    None,
                    false,
                    &token,
                ),
            )
            .await
            .map(ModemStream::Tls)
        } else {
            let opened = bounded(&token, async {
                let ip = nrf_modem::get_host_by_name_with_cancellation(host, &token).await?;
                TcpStream::connect_with_cancellation(SocketAddr::new(ip, port), &token).await
            })
            .await;
            opened.map(ModemStream::Tcp)
        };
        opened.map_err(|e| {
            let kind = classify(&e, tls);
            defmt::warn!(
                "network: connect to {=str}:{=u16} ({=str}) failed: {}",
                host,
                port,
                if tls { "TLS" } else { "TCP" },
                e
            );
            kind
        })
    }
}

/// Why a bounded modem operation failed.
#[derive(Debug, defmt::Format)]
pub enum Failed {
    /// The modem said no.
    Modem(nrf_modem::Error),
    /// The deadline passed.
    TimedOut,
}

impl From<nrf_modem::Error> for Failed {
    fn from(e: nrf_modem::Error) -> Self {
        Failed::Modem(e)
    }
}

/// Runs `op` (which watches `token`) for at most [`CONNECT_TIMEOUT_MS`]; past it, cancels the
/// token and gives `op` [`CANCEL_GRACE_MS`] to return before dropping it.
async fn bounded<T, E: Into<Failed>>(
    token: &CancellationToken,
    op: impl Future<Output = Result<T, E>>,
) -> Result<T, Failed> {
    bounded_for(CONNECT_TIMEOUT_MS, token, op).await
}

/// [`bounded`] with its own deadline: `timeout_ms` from now.
pub async fn bounded_for<T, E: Into<Failed>>(
    timeout_ms: u64,
    token: &CancellationToken,
    op: impl Future<Output = Result<T, E>>,
) -> Result<T, Failed> {
    let mut op = pin!(op);
    match select(op.as_mut(), Timer::after_millis(timeout_ms)).await {
        Either::First(result) => result.map_err(Into::into),
        Either::Second(()) => {
            token.cancel();
            // Whatever it returns now, the deadline has passed.
            let _ = with_timeout(Duration::from_millis(CANCEL_GRACE_MS), op).await;
            Err(Failed::TimedOut)
        }
    }
}

/// The kernel's error for a modem failure.
fn classify(e: &Failed, tls: bool) -> NetError {
    use nrf_modem::Error as E;
    match e {
        Failed::TimedOut => NetError::Connect,
        Failed::Modem(E::AddressNotFound | E::HostnameNotAscii | E::HostnameTooLong) => {
            NetError::Dns
        }
        Failed::Modem(
            E::ModemNotInitialized
            | E::LteRegistrationDenied
            | E::SimFailure
            | E::TooManyLteLinks
            | E::InternalRuntimeMutexLocked,
        ) => NetError::Unavailable,
        // A TLS socket's connect covers TCP and the handshake; nrf-modem reports both as a
        // socket errno, so a refused TCP connect on a TLS socket reads as `Tls` too (the log
        // line has the modem's own error).
        Failed::Modem(_) if tls => NetError::Tls,
        Failed::Modem(_) => NetError::Connect,
    }
}
