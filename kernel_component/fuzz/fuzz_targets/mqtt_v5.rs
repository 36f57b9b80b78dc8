//! Bytes from the server into the MQTT 5 link (`link::v5`), driven as the runner drives it:
//! CONNECT, a SUBSCRIBE, a QoS 1 and a QoS 0 PUBLISH and an UNSUBSCRIBE on the wire, then
//! `ready` + `receive` (+ `acknowledge`, + another PUBLISH) until the link ends. The link
//! must return data or an error, never panic, never wait for more than the server sent, and
//! never report an acknowledgement for something it did not send (see
//! `aliot_kernel_fuzz::drive_link` for the checks).
//!
//! Input: one flags byte, then the server's bytes. Flags: bit 0 clear = a canned accepting
//! CONNACK goes first (the fuzzer spends its time after CONNACK), set = the input's bytes
//! must hold the CONNACK too; bit 1 = acknowledge QoS 1 messages; bit 2 = one more QoS 1
//! PUBLISH after every packet received; bits 3-7 = bytes per transport read
//! (`aliot_kernel_fuzz::chunk`).

#![no_main]

use aliot_kernel::link::v5::V5Link;
use aliot_kernel_fuzz::{Replay, chunk, drive_link, server_bytes};
use libfuzzer_sys::fuzz_target;

/// An accepting CONNACK.
const CONNACK: [u8; 5] = [0x20, 0x03, 0x00, 0x00, 0x00];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, server)) = data.split_first() else {
        return;
    };
    let bytes = server_bytes(flags, &CONNACK, server);
    let mut link = V5Link::new(Replay::new(&bytes, chunk(flags >> 3)));
    drive_link(&mut link, bytes.len(), flags);
});
