//! TLS material: a CA and a server certificate for `localhost` / 127.0.0.1, made with rcgen,
//! and the rustls server configuration (optionally TLS 1.2 only).
//!
//! The CA key is kept beside `ca.pem` (as `ca-key.pem`) so a restarted emulator with the same
//! `ca_dir` issues a new server certificate that clients holding the old `ca.pem` still trust.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::EmulatorError;

fn tls_err(e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Tls(e.to_string())
}

fn ca_params() -> Result<CertificateParams, EmulatorError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    p.distinguished_name
        .push(DnType::CommonName, "aliot-emulator local CA");
    p.distinguished_name
        .push(DnType::OrganizationName, "aliot-emulator");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// The CA file written for clients, and the rustls server configuration.
pub(crate) struct TlsSetup {
    pub ca_pem_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Loads or creates the CA in `ca_dir`, issues a fresh server certificate and builds the config.
pub(crate) fn setup(ca_dir: &Path, tls12_only: bool) -> Result<TlsSetup, EmulatorError> {
    std::fs::create_dir_all(ca_dir).map_err(tls_err)?;
    let ca_pem_path = ca_dir.join("ca.pem");
    let ca_key_path = ca_dir.join("ca-key.pem");
    let params = ca_params()?;
    let ca_key = match std::fs::read_to_string(&ca_key_path) {
        Ok(pem) if ca_pem_path.exists() => KeyPair::from_pem(&pem).map_err(tls_err)?,
        _ => {
            let key = KeyPair::generate().map_err(tls_err)?;
            let cert = params.self_signed(&key).map_err(tls_err)?;
            std::fs::write(&ca_key_path, key.serialize_pem()).map_err(tls_err)?;
            std::fs::write(&ca_pem_path, cert.pem()).map_err(tls_err)?;
            key
        }
    };
    let issuer = Issuer::new(params, ca_key);

    let mut sp = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(tls_err)?;
    sp.distinguished_name.push(DnType::CommonName, "localhost");
    let server_key = KeyPair::generate().map_err(tls_err)?;
    let server_cert = sp.signed_by(&server_key, &issuer).map_err(tls_err)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let chain = vec![CertificateDer::from(server_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    Ok(TlsSetup {
        ca_pem_path,
        server_config: Arc::new(config),
    })
}
