//! The pushed MQTT registration answers (`registration::mqtt::parse_answer`: `/ext/register`'s
//! `deviceSecret`, `/ext/regnwl`'s `clientId` + `deviceToken`) on arbitrary bytes, for both
//! 一型一密 modes and for a 一机一密 device (which takes none).
//!
//! Input: one byte choosing the mode, then the payload. Checked: no panic; what is taken is
//! non-empty, at most `MAX_ISSUED_LEN` bytes, and a `regnwl` client id is ASCII without `|` or
//! `,` (it goes into the CONNECT's client id); a 一机一密 device takes nothing.

#![no_main]

use aliot_kernel::config::{AuthMode, DeviceConfig};
use aliot_kernel::registration::Issued;
use aliot_kernel::registration::mqtt::{MAX_ISSUED_LEN, parse_answer};
use aliot_kernel_fuzz::DEVICE;
use libfuzzer_sys::fuzz_target;

static REGISTER: DeviceConfig = DeviceConfig {
    auth: AuthMode::ProductSecretRegister,
    ..DEVICE
};
static REGNWL: DeviceConfig = DeviceConfig {
    auth: AuthMode::ProductSecretNoPreRegister,
    ..DEVICE
};

fn issued(value: &[u8]) {
    assert!(!value.is_empty() && value.len() <= MAX_ISSUED_LEN);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let config = match mode % 3 {
        0 => &REGISTER,
        1 => &REGNWL,
        _ => &DEVICE,
    };
    match parse_answer(config, payload) {
        Ok(Issued::DeviceSecret(secret)) => {
            assert_eq!(config.auth, AuthMode::ProductSecretRegister);
            issued(secret.expose());
        }
        Ok(Issued::Token { client_id, token }) => {
            assert_eq!(config.auth, AuthMode::ProductSecretNoPreRegister);
            issued(client_id.as_bytes());
            issued(token.expose());
            assert!(client_id.is_ascii() && !client_id.contains(['|', ',']));
        }
        Err(_) => {}
    }
});
