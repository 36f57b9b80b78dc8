//! Checks the layout of an MQTT 5 packet before `rust-mqtt` parses it.
//!
//! `rust-mqtt` 0.6 trusts one length it reads: `BodyReader::skip` (io/read.rs:195) subtracts
//! the skipped length from the packet's remaining length unchecked. It is reached through
//! `UserProperty::skip` for every user property beyond `MAX_USER_PROPERTIES` in CONNACK,
//! PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, SUBACK/UNSUBACK, DISCONNECT and AUTH. When such a
//! property claims more bytes than the packet has left, a debug build panics on the overflow
//! and a release build reads on past the packet, swallowing the packets after it.
//!
//! [`check`] therefore walks every property of every packet type `rust-mqtt` reads properties
//! from, and accepts the packet only if each property's length lies inside the property
//! section and the section inside the packet [MQTT-2.2.2]. (The 3.1.1 link's own codec checks
//! every length as it decodes.) On the way it records where a PUBLISH's topic and payload are,
//! so the link can hand them out from its own buffer.
//!
//! Everything else (reason codes, flags, which property is allowed where, duplicates) is left
//! to `rust-mqtt`, which checks it without trusting lengths.
//!
//! Written by hand: no crate validates MQTT 5 property sections without decoding them.

use core::ops::Range;

use crate::link::LinkError;

/// Where the parts of a checked packet are (offsets into the whole packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// Length of the fixed header.
    pub(super) header_len: usize,
    /// For a PUBLISH: its topic and payload.
    pub(super) publish: Option<PublishLayout>,
}

/// Topic and payload of a checked PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PublishLayout {
    /// The topic name (without its length prefix).
    pub(super) topic: Range<usize>,
    /// The payload: everything after the properties.
    pub(super) payload: Range<usize>,
}

/// A read position in a packet body; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        (n <= self.left()).then(|| self.pos += n)
    }

    fn u8(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    fn u16(&mut self) -> Option<usize> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Some(usize::from(u16::from_be_bytes([hi, lo])))
    }

    /// A Variable Byte Integer [MQTT-1.5.5]: at most four bytes.
    fn varint(&mut self) -> Option<usize> {
        let mut value = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= usize::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A property section [MQTT-2.2.2]: its length, then properties that fill it exactly.
    fn properties(&mut self) -> Option<()> {
        let len = self.varint()?;
        let end = self.pos.checked_add(len)?;
        let mut section = Cursor {
            bytes: self.bytes.get(..end)?,
            pos: self.pos,
        };
        while section.left() > 0 {
            section.property()?;
        }
        self.pos = end;
        Some(())
    }

    /// One property: identifier, then a value of the size its type has [MQTT-2.2.2.2].
    fn property(&mut self) -> Option<()> {
        match self.u8()? {
            // Byte.
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self.skip(1),
            // Two Byte Integer.
            0x13 | 0x21 | 0x22 | 0x23 => self.skip(2),
            // Four Byte Integer.
            0x02 | 0x11 | 0x18 | 0x27 => self.skip(4),
            // Variable Byte Integer (Subscription Identifier).
            0x0B => self.varint().map(|_| ()),
            // UTF-8 Encoded String or Binary Data: two-byte length, then the bytes.
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                let n = self.u16()?;
                self.skip(n)
            }
            // UTF-8 String Pair (User Property).
            0x26 => {
                let n = self.u16()?;
                self.skip(n)?;
                let n = self.u16()?;
                self.skip(n)
            }
            // Not a property identifier: malformed.
            _ => None,
        }
    }

    fn at_end(&self) -> Option<()> {
        (self.left() == 0).then_some(())
    }
}

/// Checks one whole packet (as `link/reader.rs` delimits it); see the module docs.
pub(super) fn check(packet: &[u8]) -> Result<Layout, LinkError> {
    layout(packet).ok_or(LinkError::Protocol)
}

fn layout(packet: &[u8]) -> Option<Layout> {
    let first = *packet.first()?;
    let header_len = 2 + packet
        .iter()
        .skip(1)
        .take(3)
        .take_while(|b| **b & 0x80 != 0)
        .count();
    let mut body = Cursor {
        bytes: packet.get(header_len..)?,
        pos: 0,
    };
    let mut publish = None;
    match first >> 4 {
        // CONNACK: flags, reason code, properties.
        2 => {
            body.skip(2)?;
            body.properties()?;
            body.at_end()?;
        }
        // PUBLISH: topic, packet identifier when QoS > 0, properties, payload.
        3 => {
            let qos = (first >> 1) & 0b11;
            if qos == 3 {
                return None;
            }
            let topic_len = body.u16()?;
            let topic_start = header_len + body.pos;
            body.skip(topic_len)?;
            let topic = topic_start..header_len + body.pos;
            if qos > 0 {
                body.skip(2)?;
            }
            body.properties()?;
            publish = Some(PublishLayout {
                topic,
                payload: header_len + body.pos..packet.len(),
            });
        }
        // PUBACK, PUBREC, PUBREL, PUBCOMP: packet identifier, then an optional reason code,
        // then optional properties [MQTT-3.4.2.1].
        4..=7 => {
            body.skip(2)?;
            if body.left() > 0 {
                body.skip(1)?;
            }
            if body.left() > 0 {
                body.properties()?;
                body.at_end()?;
            }
        }
        // SUBACK, UNSUBACK: packet identifier, properties, at least one reason code.
        9 | 11 => {
            body.skip(2)?;
            body.properties()?;
            if body.left() == 0 {
                return None;
            }
        }
        // DISCONNECT, AUTH: optional reason code, then optional properties.
        14 | 15 => {
            if body.left() > 0 {
                body.skip(1)?;
            }
            if body.left() > 0 {
                body.properties()?;
                body.at_end()?;
            }
        }
        // PINGRESP has no body; packets only a client sends carry nothing `rust-mqtt` reads
        // (it refuses them from the fixed header).
        _ => {}
    }
    Some(Layout {
        header_len,
        publish,
    })
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128);
        let mut out = vec![first, body.len() as u8];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn the_rust_mqtt_skip_overflow_input_is_refused() {
        // Five user properties, the last claiming a 255-byte name with 3 bytes left: the
        // packet `rust-mqtt` 0.6 panics on (debug) or reads past (release).
        let bytes = [
            0x30, 0x1d, 0x00, 0x01, 0x74, 0x19, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00,
            0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00,
            0xff, 0x00, 0x00,
        ];
        assert_eq!(check(&bytes), Err(LinkError::Protocol));
    }

    #[test]
    fn publish_layout_finds_topic_and_payload() {
        // QoS 1, topic "a/b", pid 7, a content type property, payload "hi".
        let mut body = vec![0, 3, b'a', b'/', b'b', 0, 7];
        body.extend_from_slice(&[5, 0x03, 0, 2, b'j', b's']);
        body.extend_from_slice(b"hi");
        let bytes = packet(0x32, &body);
        let layout = check(&bytes).unwrap();
        assert_eq!(layout.header_len, 2);
        let publish = layout.publish.unwrap();
        assert_eq!(&bytes[publish.topic], b"a/b");
        assert_eq!(&bytes[publish.payload], b"hi");
    }

    #[test]
    fn every_property_type_is_sized_right() {
        let mut props = Vec::new();
        props.extend_from_slice(&[0x01, 1]); // byte
        props.extend_from_slice(&[0x02, 0, 0, 0, 9]); // four-byte integer
        props.extend_from_slice(&[0x23, 0, 1]); // two-byte integer
        props.extend_from_slice(&[0x0B, 0x80, 0x01]); // variable byte integer
        props.extend_from_slice(&[0x09, 0, 1, 0xFF]); // binary data
        props.extend_from_slice(&[0x26, 0, 1, b'k', 0, 1, b'v']); // string pair
        let mut body = vec![0, 1, b't', props.len() as u8];
        body.extend_from_slice(&props);
        assert!(check(&packet(0x30, &body)).is_ok());
    }

    #[test]
    fn lengths_past_the_section_or_packet_are_refused() {
        let cases: [(&str, u8, &[u8]); 9] = [
            (
                "string past the section",
                0x30,
                &[0, 1, b't', 3, 0x1F, 0, 5, 0, 0, 0],
            ),
            (
                "pair value past the packet",
                0x30,
                &[0, 1, b't', 7, 0x26, 0, 1, b'k', 0, 9, b'v'],
            ),
            ("section past the packet", 0x30, &[0, 1, b't', 9, 0x01, 1]),
            (
                "integer cut by the section",
                0x30,
                &[0, 1, b't', 2, 0x02, 0, 0, 0, 0],
            ),
            ("unknown identifier", 0x30, &[0, 1, b't', 2, 0x7F, 0]),
            ("topic past the packet", 0x30, &[0, 9, b't']),
            ("QoS 1 without pid", 0x32, &[0, 1, b't']),
            ("SUBACK without reason code", 0x90, &[0, 1, 0]),
            (
                "PUBACK with bytes after its properties",
                0x40,
                &[0, 1, 0, 0, 0],
            ),
        ];
        for (what, first, body) in cases {
            assert_eq!(
                check(&packet(first, body)),
                Err(LinkError::Protocol),
                "{what}"
            );
        }
        // CONNACK, DISCONNECT and AUTH properties are walked too.
        for (first, body) in [
            (0x20u8, &[0, 0, 4, 0x1F, 0, 9, b'x'][..]),
            (0xE0, &[0x8E, 4, 0x1C, 0, 9, b'x']),
            (0xF0, &[0x18, 4, 0x15, 0, 9, b'x']),
            (0xB0, &[0, 1, 4, 0x26, 0, 9, b'x', 0]),
        ] {
            assert_eq!(
                check(&packet(first, body)),
                Err(LinkError::Protocol),
                "{first:#x}"
            );
        }
    }

    #[test]
    fn short_forms_are_accepted() {
        for (first, body) in [
            (0x40u8, &[0, 1][..]),    // PUBACK, success
            (0x40, &[0, 1, 0x87]),    // PUBACK, reason only
            (0x40, &[0, 1, 0x87, 0]), // PUBACK, empty properties
            (0xE0, &[]),              // DISCONNECT, normal
            (0xE0, &[0x8E]),          // DISCONNECT, reason only
            (0xD0, &[]),              // PINGRESP
            (0x20, &[0, 0, 0]),       // CONNACK
            (0x90, &[0, 1, 0, 1]),    // SUBACK
        ] {
            assert!(
                check(&packet(first, body)).is_ok(),
                "{first:#x} {body:02x?}"
            );
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut seed: u32 = 0x9E37_79B9;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..20_000 {
            let len = next() as usize % 40;
            let mut bytes = vec![next() as u8, len as u8];
            bytes.extend((0..len).map(|_| next() as u8));
            let _ = check(&bytes);
        }
    }
}
