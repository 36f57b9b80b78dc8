//! The MQTT 3.1.1 packets a server sends, decoded from one whole packet.
//!
//! Written by hand instead of with `mqttrs` (issue 11: our code in 128 KiB of flash): `mqttrs`
//! decodes every packet type, the server's side ones a client never receives included, and
//! indexes its input without bounds checks, so it panicked on a truncated packet unless a shape
//! check ran first. Here every read is bounds-checked, and anything malformed or not meant for
//! a client is [`LinkError::Protocol`].

use crate::link::LinkError;

/// A packet from the server, borrowing the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// CONNACK with its return code (0 accepted; any other a refusal).
    Connack(u8),
    /// PUBLISH.
    Publish {
        topic: &'a str,
        payload: &'a [u8],
        qos: PubQos,
    },
    /// PUBACK.
    Puback(u16),
    /// PUBREC.
    Pubrec(u16),
    /// PUBREL.
    Pubrel(u16),
    /// PUBCOMP.
    Pubcomp(u16),
    /// SUBACK: at least one return code, each 0, 1, 2 or 0x80 (failure).
    Suback { pid: u16, codes: &'a [u8] },
    /// UNSUBACK.
    Unsuback(u16),
    /// PINGRESP.
    Pingresp,
}

/// A PUBLISH's QoS, with its packet identifier (never 0) when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubQos {
    Zero,
    One(u16),
    Two(u16),
}

/// SUBACK's failure return code (section 3.9.3).
pub(crate) const SUBACK_FAILURE: u8 = 0x80;

/// Decodes `packet`, exactly one whole packet (fixed header included).
pub(crate) fn decode(packet: &[u8]) -> Result<Packet<'_>, LinkError> {
    let (&first, rest) = packet.split_first().ok_or(LinkError::Protocol)?;
    let body = body(rest)?;
    let flags = first & 0x0F;
    // Flags are fixed for every type but PUBLISH; anything else is malformed [MQTT-2.2.2-2].
    let want_flags = match first >> 4 {
        3 => return publish(flags, body),
        // PUBREL's reserved flags are 0010 [MQTT-3.6.1-1].
        6 => 0b0010,
        _ => 0,
    };
    if flags != want_flags {
        return Err(LinkError::Protocol);
    }
    Ok(match (first >> 4, body) {
        // Connect acknowledge flags (session present) are not needed: the session is clean.
        (2, &[_flags, code]) => Packet::Connack(code),
        (4, &[hi, lo]) => Packet::Puback(pid(hi, lo)?),
        (5, &[hi, lo]) => Packet::Pubrec(pid(hi, lo)?),
        (6, &[hi, lo]) => Packet::Pubrel(pid(hi, lo)?),
        (7, &[hi, lo]) => Packet::Pubcomp(pid(hi, lo)?),
        (9, &[hi, lo, ref codes @ ..]) if !codes.is_empty() => {
            // Only these codes exist [MQTT-3.9.3-2].
            if codes.iter().any(|c| !matches!(*c, 0..=2 | SUBACK_FAILURE)) {
                return Err(LinkError::Protocol);
            }
            Packet::Suback {
                pid: pid(hi, lo)?,
                codes,
            }
        }
        (11, &[hi, lo]) => Packet::Unsuback(pid(hi, lo)?),
        (13, &[]) => Packet::Pingresp,
        // A wrong length for its type, or a type a server never sends (CONNECT, SUBSCRIBE,
        // UNSUBSCRIBE, PINGREQ, DISCONNECT, reserved 0 and 15).
        _ => return Err(LinkError::Protocol),
    })
}

/// The variable header and payload after the remaining length, which must be exactly what
/// follows it (section 2.2.3): at most four bytes, 7 bits each, least significant first.
fn body(rest: &[u8]) -> Result<&[u8], LinkError> {
    let mut len: usize = 0;
    for (i, &byte) in rest.iter().take(4).enumerate() {
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let body = rest.get(i + 1..).ok_or(LinkError::Protocol)?;
            return if body.len() == len {
                Ok(body)
            } else {
                Err(LinkError::Protocol)
            };
        }
    }
    // Truncated, or a fifth length byte.
    Err(LinkError::Protocol)
}

/// A PUBLISH's body: topic name, packet identifier for QoS 1 and 2, payload (section 3.3.2).
/// DUP and RETAIN are not needed by a client and are left unchecked.
fn publish(flags: u8, body: &[u8]) -> Result<Packet<'_>, LinkError> {
    let [hi, lo, rest @ ..] = body else {
        return Err(LinkError::Protocol);
    };
    let (topic, rest) = rest
        .split_at_checked(usize::from(u16::from_be_bytes([*hi, *lo])))
        .ok_or(LinkError::Protocol)?;
    // The topic name is a UTF-8 string [MQTT-3.3.2-1]; ill-formed UTF-8 ends the connection
    // [MQTT-1.5.3-1].
    let topic = core::str::from_utf8(topic).map_err(|_| LinkError::Protocol)?;
    let (qos, payload) = match ((flags >> 1) & 0b11, rest) {
        (0, payload) => (PubQos::Zero, payload),
        (1, &[hi, lo, ref payload @ ..]) => (PubQos::One(pid(hi, lo)?), payload),
        (2, &[hi, lo, ref payload @ ..]) => (PubQos::Two(pid(hi, lo)?), payload),
        // QoS 3 is malformed [MQTT-3.3.1-4]; or the packet identifier is missing.
        _ => return Err(LinkError::Protocol),
    };
    Ok(Packet::Publish {
        topic,
        payload,
        qos,
    })
}

/// A packet identifier, which is never 0 [MQTT-2.3.1-1].
fn pid(hi: u8, lo: u8) -> Result<u16, LinkError> {
    match u16::from_be_bytes([hi, lo]) {
        0 => Err(LinkError::Protocol),
        pid => Ok(pid),
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn server_packets_decode() {
        let cases: [(&[u8], Packet<'_>); 11] = [
            (&[0x20, 2, 0, 0], Packet::Connack(0)),
            (&[0x20, 2, 1, 5], Packet::Connack(5)),
            (&[0x20, 2, 0, 0xC8], Packet::Connack(0xC8)),
            (&[0x40, 2, 0x12, 0x34], Packet::Puback(0x1234)),
            (&[0x50, 2, 0, 1], Packet::Pubrec(1)),
            (&[0x62, 2, 0xFF, 0xFF], Packet::Pubrel(0xFFFF)),
            (&[0x70, 2, 0, 7], Packet::Pubcomp(7)),
            (
                &[0x90, 3, 0, 5, 1],
                Packet::Suback {
                    pid: 5,
                    codes: &[1],
                },
            ),
            (
                &[0x90, 5, 0, 6, 0x80, 0, 2],
                Packet::Suback {
                    pid: 6,
                    codes: &[0x80, 0, 2],
                },
            ),
            (&[0xB0, 2, 0, 9], Packet::Unsuback(9)),
            (&[0xD0, 0], Packet::Pingresp),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(bytes), Ok(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn publish_at_each_qos() {
        // DUP and RETAIN set on the QoS 0 one: ignored.
        let bytes = [0x39, 6, 0, 2, b'a', b'/', b'h', b'i'];
        assert_eq!(
            decode(&bytes),
            Ok(Packet::Publish {
                topic: "a/",
                payload: b"hi",
                qos: PubQos::Zero,
            })
        );
        let bytes = [0x32, 6, 0, 1, b't', 0x01, 0x02, b'p'];
        assert_eq!(
            decode(&bytes),
            Ok(Packet::Publish {
                topic: "t",
                payload: b"p",
                qos: PubQos::One(0x0102),
            })
        );
        // Empty topic and payload; QoS 2.
        let bytes = [0x34, 4, 0, 0, 0, 3];
        assert_eq!(
            decode(&bytes),
            Ok(Packet::Publish {
                topic: "",
                payload: b"",
                qos: PubQos::Two(3),
            })
        );
    }

    #[test]
    fn a_two_byte_remaining_length_is_read() {
        // 2 + 1 + 197 = 200 = 0x48 + 1 * 128.
        let mut bytes = vec![0x30, 0xC8, 0x01, 0, 1, b't'];
        bytes.extend_from_slice(&[0xAB; 197]);
        match decode(&bytes) {
            Ok(Packet::Publish { topic, payload, .. }) => {
                assert_eq!(topic, "t");
                assert_eq!(payload, &[0xAB; 197][..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_packets_are_protocol_errors() {
        let cases: &[&[u8]] = &[
            // Empty, or a header alone.
            &[],
            &[0x40],
            // Remaining length: longer or shorter than the body, truncated, five bytes.
            &[0x40, 3, 0, 1],
            &[0x40, 1, 0, 1],
            &[0x30, 0x80],
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            // Bad flags.
            &[0x21, 2, 0, 0],
            &[0x48, 2, 0, 1],
            &[0x60, 2, 0, 1],
            &[0x92, 3, 0, 1, 0],
            &[0xD1, 0],
            // Wrong body length for the type.
            &[0x20, 0],
            &[0x20, 3, 0, 0, 0],
            &[0x40, 1, 0],
            &[0x90, 2, 0, 1],
            &[0xB0, 3, 0, 1, 0],
            &[0xD0, 1, 0],
            // Packet identifier 0.
            &[0x40, 2, 0, 0],
            &[0x62, 2, 0, 0],
            &[0x90, 3, 0, 0, 1],
            &[0xB0, 2, 0, 0],
            &[0x32, 5, 0, 1, b't', 0, 0],
            // SUBACK with a reserved return code.
            &[0x90, 3, 0, 1, 3],
            &[0x90, 4, 0, 1, 0x80, 0x81],
            // PUBLISH: no topic length, topic past the end, no packet identifier, QoS 3,
            // invalid UTF-8 topic.
            &[0x30, 1, 0],
            &[0x30, 4, 0, 9, b'a', b'b'],
            &[0x32, 3, 0, 1, b'a'],
            &[0x32, 4, 0, 1, b'a', 1],
            &[0x36, 5, 0, 1, b'a', 0, 1],
            &[0x30, 3, 0, 1, 0xFF],
            &[0x30, 4, 0, 2, 0xC3, 0x28],
            // Client-only and reserved types.
            &[0x00, 0],
            &[0x10, 0],
            &[0x82, 0],
            &[0xA2, 0],
            &[0xC0, 0],
            &[0xE0, 0],
            &[0xF0, 0],
        ];
        for bytes in cases {
            assert_eq!(decode(bytes), Err(LinkError::Protocol), "{bytes:02x?}");
        }
    }

    #[test]
    fn every_prefix_and_every_byte_never_panics() {
        let whole: Vec<u8> = vec![0x32, 8, 0, 3, b'a', b'/', b'b', 0, 7, b'x'];
        for end in 0..whole.len() {
            assert_eq!(decode(&whole[..end]), Err(LinkError::Protocol), "{end}");
        }
        for at in 0..whole.len() {
            for value in 0..=255u8 {
                let mut bytes = whole.clone();
                bytes[at] = value;
                let _ = decode(&bytes);
            }
        }
    }
}
