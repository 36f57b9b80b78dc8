//! `[modem] psm` and `[modem] edrx` end as the AT commands the nRF9160 DK sends after attach,
//! with the timers encoded as hand-computed from 3GPP TS 24.008 (the encoders' own vectors are
//! in `src/power.rs`).

use std::path::Path;

fn manifest(modem: &str) -> aliot_manifest::Manifest {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(dir.join("device.toml"))
        .expect("device.toml")
        .replace("[kernel]\n", &format!("[modem]\n{modem}\n\n[kernel]\n"));
    aliot_manifest::parse(&text, dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn without_psm_or_edrx_nothing_is_sent() {
    let m = manifest("security_tag = 7");
    assert_eq!(m.modem.psm, None);
    assert_eq!(m.modem.edrx, None);
    assert!(m.modem.after_attach().is_empty());
}

#[test]
fn psm_and_edrx_become_cpsms_and_cedrxs() {
    let m = manifest("psm = { tau = \"12h\", active = \"10s\" }\nedrx = \"81.92s\"");
    // 12 h = 1 h x 12 (unit 001, value 01100); 10 s = 2 s x 5 (unit 000, value 00101).
    assert_eq!(
        m.modem.after_attach(),
        [
            "AT+CPSMS=1,,,\"00101100\",\"00000101\"",
            "AT+CEDRXS=2,4,\"0101\""
        ]
    );
    let psm = m.modem.psm.expect("psm");
    assert_eq!((psm.tau_secs, psm.active_secs), (43_200, 10));
}
