//! The host board's network: tokio TCP (with `TCP_NODELAY`: without it a loopback QoS 1 round
//! trip waits ~40 ms for Nagle) and rustls for TLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aliot_kernel::board::{Address, NetError, Network};
use embedded_io_adapters::tokio_1::FromTokio;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// How long a TCP connect may take before the attempt counts as failed.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP stream, plain or wrapped in TLS.
pub enum HostStream {
    /// Plain TCP (securemode=3).
    Plain(TcpStream),
    /// TLS over TCP (securemode=2).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for HostStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HostStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            HostStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HostStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            HostStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            HostStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HostStream::Plain(s) => Pin::new(s).poll_flush(cx),
            HostStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HostStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            HostStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens streams for the capsule. `address` replaces the manifest's host:port (used for the
/// built-in emulator and for tests); the TLS server name stays the manifest's host unless
/// the address is given. Cloning is cheap (the TLS configuration is shared).
#[derive(Clone)]
pub struct HostNetwork {
    tls: TlsConnector,
    address: Option<(String, u16)>,
    /// `(host, port)` → address: endpoints dialled elsewhere (e.g. the HTTPS registration
    /// endpoint to the emulator's HTTPS port), checked before `address`.
    redirects: Vec<((String, u16), (String, u16))>,
}

/// Trust store: the given PEM file, else the Mozilla roots (which include Alibaba's
/// GlobalSign Root CA R1, valid until 2028-01-28).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("bad PEM in CA file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("CA file {} holds no certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl HostNetwork {
    /// A network using `tls` for TLS connections, optionally redirected to `address`.
    pub fn new(tls: Arc<ClientConfig>, address: Option<(String, u16)>) -> Self {
        Self {
            tls: TlsConnector::from(tls),
            address,
            redirects: Vec::new(),
        }
    }

    /// Dial `to` whenever the capsule asks for `from` (before the general redirect).
    pub fn redirect(&mut self, from: (String, u16), to: (String, u16)) {
        self.redirects.push((from, to));
    }

    /// Where a connection to `host:port` really goes.
    fn target<'a>(&'a self, host: &'a str, port: u16) -> (&'a str, u16) {
        if let Some((_, (h, p))) = self
            .redirects
            .iter()
            .find(|((h, p), _)| h == host && *p == port)
        {
            return (h.as_str(), *p);
        }
        match &self.address {
            Some((h, p)) => (h.as_str(), *p),
            None => (host, port),
        }
    }
}

impl Network for HostNetwork {
    type Stream = FromTokio<HostStream>;

    async fn connect(
        &mut self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<Self::Stream, NetError> {
        let (host, port) = self.target(host, port);
        let tcp = match tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => return Err(NetError::Dns),
            Ok(Err(e)) => {
                log::debug!("connect {host}:{port}: {e}");
                return Err(NetError::Connect);
            }
            Err(_) => return Err(NetError::Connect),
        };
        // Small MQTT packets must leave at once; Nagle would hold them for an ACK.
        let _ = tcp.set_nodelay(true);
        log::info!(
            "connected to {host}:{port}{}",
            if tls { " (TLS)" } else { "" }
        );
        if !tls {
            return Ok(FromTokio::new(HostStream::Plain(tcp)));
        }
        let name = ServerName::try_from(host.to_owned()).map_err(|_| NetError::Dns)?;
        match self.tls.connect(name, tcp).await {
            Ok(stream) => Ok(FromTokio::new(HostStream::Tls(Box::new(stream)))),
            Err(e) => {
                log::warn!("TLS handshake with {host}:{port} failed: {e}");
                Err(NetError::Tls)
            }
        }
    }

    fn describe<'a>(&'a self, host: &'a str, port: u16) -> impl std::fmt::Display + 'a {
        let (host, port) = self.target(host, port);
        Address { host, port }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialled_address_is_the_redirected_one() {
        let tls = tls_config(None).unwrap();
        let direct = HostNetwork::new(tls.clone(), None);
        assert_eq!(
            direct
                .describe("pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883)
                .to_string(),
            "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:1883"
        );
        let redirected = HostNetwork::new(tls, Some(("127.0.0.1".into(), 41234)));
        assert_eq!(
            redirected.describe("emulator.invalid", 1883).to_string(),
            "127.0.0.1:41234"
        );
        let mut both = redirected;
        both.redirect(
            ("iot-auth.cn-shanghai.aliyuncs.com".into(), 443),
            ("localhost".into(), 41235),
        );
        assert_eq!(
            both.describe("iot-auth.cn-shanghai.aliyuncs.com", 443)
                .to_string(),
            "localhost:41235"
        );
        assert_eq!(
            both.describe("emulator.invalid", 1883).to_string(),
            "127.0.0.1:41234"
        );
    }
}
