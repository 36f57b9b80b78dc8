//! MQTT over TLS: CA file, server certificate for localhost, TLS-1.2-only switch.

mod common;

use std::sync::Arc;

use aliot_emulator::{Emulator, EmulatorConfig};
use common::*;

fn tls13_only(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).expect("ca");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("cert")).expect("root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[test]
fn tls_login_on_both_versions_is_recorded_as_tls() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    assert!(emu.ca_pem_path().exists());
    for v in [4u8, 5] {
        let c = TestClient::connect(
            v,
            emu.tls_addr().port(),
            &sdk_creds(PK, DN, DS),
            Some(client_tls(emu.ca_pem_path(), false)),
        );
        assert_eq!(c.connack(), Ok(()));
        assert!(emu.wait_online(PK, DN, WAIT));
        c.publish(
            &format!("/{PK}/{DN}/user/update"),
            1,
            format!("tls-{v}").as_bytes(),
        );
        assert!(
            emu.wait_for_uplink(PK, DN, WAIT, |u| u.payload == format!("tls-{v}").as_bytes())
                .is_some()
        );
        c.disconnect();
        assert!(emu.wait_offline(PK, DN, WAIT));
    }
    let l = emu.logins(PK, DN);
    assert_eq!(l.len(), 2);
    assert!(l.iter().all(|r| r.tls && r.accepted));
}

#[test]
fn plain_client_on_tls_port_gets_nothing() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = TestClient::connect(4, emu.tls_addr().port(), &sdk_creds(PK, DN, DS), None);
    assert!(c.connack().is_err());
    assert!(!emu.is_online(PK, DN));
}

#[test]
fn tls12_only_refuses_a_tls13_only_client() {
    let mut cfg = EmulatorConfig::demo();
    cfg.tls12_only = true;
    let emu = Emulator::start(cfg).expect("start");
    let port = emu.tls_addr().port();
    let c = TestClient::connect(
        4,
        port,
        &sdk_creds(PK, DN, DS),
        Some(tls13_only(emu.ca_pem_path())),
    );
    assert!(c.connack().is_err(), "TLS 1.3-only client must fail");
    let c = TestClient::connect(
        4,
        port,
        &sdk_creds(PK, DN, DS),
        Some(client_tls(emu.ca_pem_path(), true)),
    );
    assert_eq!(c.connack(), Ok(()));
    // and without the switch, TLS 1.3 works
    let emu2 = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = TestClient::connect(
        4,
        emu2.tls_addr().port(),
        &sdk_creds(PK, DN, DS),
        Some(tls13_only(emu2.ca_pem_path())),
    );
    assert_eq!(c.connack(), Ok(()));
}

#[test]
fn ca_dir_is_reused_across_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = EmulatorConfig::demo();
    cfg.ca_dir = Some(dir.path().to_path_buf());
    let emu = Emulator::start(cfg.clone()).expect("start");
    let ca = emu.ca_pem_path().to_path_buf();
    assert_eq!(ca, dir.path().join("ca.pem"));
    let client_cfg = client_tls(&ca, false); // trust taken before the restart
    drop(emu);
    let emu = Emulator::start(cfg).expect("restart");
    let c = TestClient::connect(
        5,
        emu.tls_addr().port(),
        &sdk_creds(PK, DN, DS),
        Some(client_cfg),
    );
    assert_eq!(c.connack(), Ok(()));
}

#[test]
fn a_foreign_ca_is_not_trusted() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let other = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = TestClient::connect(
        4,
        emu.tls_addr().port(),
        &sdk_creds(PK, DN, DS),
        Some(client_tls(other.ca_pem_path(), false)),
    );
    assert!(c.connack().is_err());
}

#[test]
fn certificate_is_valid_for_127_0_0_1_too() {
    use std::io::Write;
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let cfg = client_tls(emu.ca_pem_path(), false);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("ip name");
    let mut conn = rustls::ClientConnection::new(cfg, name).expect("client");
    let mut sock = std::net::TcpStream::connect(emu.tls_addr()).expect("tcp");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .expect("handshake with an IP server name");
    }
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.flush().expect("flush");
}
