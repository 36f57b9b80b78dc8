//! The MQTT 3.1.1 packets a client sends, encoded into a fixed buffer.
//!
//! Written by hand instead of with `mqttrs` (issue 11: our code in 128 KiB of flash): the
//! link sends nine packet shapes, none with a will or retain; a general codec's encoder for
//! every packet type cost flash the device never runs. Every write is bounds-checked: a packet
//! that does not fit is [`LinkError::TooLarge`], never a panic.

use aliot_abi::Qos;

use crate::link::LinkError;

/// A packet the client writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// CONNECT with clean session, user name and password, no will.
    Connect {
        client_id: &'a str,
        username: &'a str,
        password: &'a [u8],
        keep_alive: u16,
    },
    /// PUBLISH, never retained. `pid` is ignored for QoS 0.
    Publish {
        topic: &'a str,
        payload: &'a [u8],
        qos: Qos,
        pid: u16,
        dup: bool,
    },
    /// SUBSCRIBE of one or more filters.
    Subscribe {
        pid: u16,
        filters: &'a [(&'a str, Qos)],
    },
    /// UNSUBSCRIBE of one or more filters.
    Unsubscribe { pid: u16, filters: &'a [&'a str] },
    /// PUBACK, PUBREC or PUBCOMP (see [`Ack`]).
    Ack(Ack, u16),
    /// PINGREQ.
    Pingreq,
    /// DISCONNECT.
    Disconnect,
}

/// The acknowledgements a client sends: two bytes of packet identifier, no flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ack {
    /// For an incoming QoS 1 PUBLISH.
    Puback = 4,
    /// For an incoming QoS 2 PUBLISH.
    Pubrec = 5,
    /// For an incoming PUBREL.
    Pubcomp = 7,
}

/// Largest remaining length the four-byte encoding holds (section 2.2.3).
const MAX_REMAINING: usize = 268_435_455;

/// Encodes `packet` at the start of `buf`; returns its length.
///
/// [`LinkError::TooLarge`] if it does not fit `buf` (or a string its 16-bit length);
/// [`LinkError::Protocol`] for a packet identifier 0 [MQTT-2.3.1-1] or a SUBSCRIBE or
/// UNSUBSCRIBE without a filter [MQTT-3.8.3-3] [MQTT-3.10.3-2]: kernel bugs, not the network's.
pub(crate) fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, LinkError> {
    let mut out = Cursor { buf, at: 0 };
    match *packet {
        Packet::Connect {
            client_id,
            username,
            password,
            keep_alive,
        } => {
            let body = 10 + field_len(client_id) + field_len(username) + password.len() + 2;
            out.header(0x10, body)?;
            // Protocol name "MQTT", level 4 [MQTT-3.1.2-1] [MQTT-3.1.2-2]; flags: user name,
            // password, clean session (the kernel resends and resubscribes itself).
            out.put(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0b1100_0010])?;
            out.put(&keep_alive.to_be_bytes())?;
            // Payload order: client id, user name, password [MQTT-3.1.3-1].
            out.field(client_id.as_bytes())?;
            out.field(username.as_bytes())?;
            out.field(password)?;
        }
        Packet::Publish {
            topic,
            payload,
            qos,
            pid,
            dup,
        } => {
            let (first, pid_len) = match qos {
                // DUP must be 0 for QoS 0 [MQTT-3.3.1-2].
                Qos::AtMostOnce => (0x30, 0),
                Qos::AtLeastOnce => (0x32 | if dup { 0x08 } else { 0 }, 2),
            };
            out.header(first, field_len(topic) + pid_len + payload.len())?;
            out.field(topic.as_bytes())?;
            if qos == Qos::AtLeastOnce {
                out.pid(pid)?;
            }
            out.put(payload)?;
        }
        Packet::Subscribe { pid, filters } => {
            let body = filters.iter().map(|(f, _)| field_len(f) + 1).sum::<usize>();
            // Reserved flags 0010 [MQTT-3.8.1-1].
            out.header(0x82, 2 + nonempty(body)?)?;
            out.pid(pid)?;
            for &(filter, qos) in filters {
                out.field(filter.as_bytes())?;
                out.put(&[match qos {
                    Qos::AtMostOnce => 0,
                    Qos::AtLeastOnce => 1,
                }])?;
            }
        }
        Packet::Unsubscribe { pid, filters } => {
            let body = filters.iter().map(|f| field_len(f)).sum::<usize>();
            // Reserved flags 0010 [MQTT-3.10.1-1].
            out.header(0xA2, 2 + nonempty(body)?)?;
            out.pid(pid)?;
            for filter in filters {
                out.field(filter.as_bytes())?;
            }
        }
        Packet::Ack(ack, pid) => {
            out.header((ack as u8) << 4, 2)?;
            out.pid(pid)?;
        }
        Packet::Pingreq => out.header(0xC0, 0)?,
        Packet::Disconnect => out.header(0xE0, 0)?,
    }
    Ok(out.at)
}

/// Bytes of a length-prefixed string.
fn field_len(s: &str) -> usize {
    2 + s.len()
}

/// `body`, unless no filter made it up.
fn nonempty(body: usize) -> Result<usize, LinkError> {
    if body == 0 {
        Err(LinkError::Protocol)
    } else {
        Ok(body)
    }
}

/// Writes front to back into a buffer, every write checked.
struct Cursor<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let end = self.at + bytes.len();
        self.buf
            .get_mut(self.at..end)
            .ok_or(LinkError::TooLarge)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    /// The first byte and the remaining length, 7 bits per byte, least significant first
    /// (section 2.2.3).
    fn header(&mut self, first: u8, remaining: usize) -> Result<(), LinkError> {
        if remaining > MAX_REMAINING {
            return Err(LinkError::TooLarge);
        }
        self.put(&[first])?;
        let mut left = remaining;
        loop {
            let byte = (left % 128) as u8;
            left /= 128;
            if left == 0 {
                return self.put(&[byte]);
            }
            self.put(&[byte | 0x80])?;
        }
    }

    /// A string or binary field: 16-bit big-endian length, then the bytes (section 1.5.3).
    fn field(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let len = u16::try_from(bytes.len()).map_err(|_| LinkError::TooLarge)?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    /// A packet identifier, which must not be 0 [MQTT-2.3.1-1].
    fn pid(&mut self, pid: u16) -> Result<(), LinkError> {
        if pid == 0 {
            return Err(LinkError::Protocol);
        }
        self.put(&pid.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn encoded(packet: &Packet<'_>) -> Result<Vec<u8>, LinkError> {
        let mut buf = vec![0u8; 512];
        let len = encode(packet, &mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }

    #[test]
    fn connect_is_laid_out_as_the_spec_says() {
        let packet = Packet::Connect {
            client_id: "c",
            username: "u&p",
            password: b"pw",
            keep_alive: 0x012C,
        };
        #[rustfmt::skip]
        let want = [
            0x10, 22,
            0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0x01, 0x2C,
            0, 1, b'c',
            0, 3, b'u', b'&', b'p',
            0, 2, b'p', b'w',
        ];
        assert_eq!(encoded(&packet), Ok(want.to_vec()));
    }

    #[test]
    fn publish_qos0_drops_dup_and_qos1_carries_pid_and_dup() {
        let qos0 = Packet::Publish {
            topic: "a",
            payload: b"xy",
            qos: Qos::AtMostOnce,
            pid: 9,
            dup: true,
        };
        assert_eq!(encoded(&qos0), Ok(vec![0x30, 5, 0, 1, b'a', b'x', b'y']));
        let qos1 = Packet::Publish {
            topic: "a",
            payload: b"",
            qos: Qos::AtLeastOnce,
            pid: 0xBEEF,
            dup: true,
        };
        assert_eq!(encoded(&qos1), Ok(vec![0x3A, 5, 0, 1, b'a', 0xBE, 0xEF]));
        let fresh = Packet::Publish {
            topic: "a",
            payload: b"",
            qos: Qos::AtLeastOnce,
            pid: 0xBEEF,
            dup: false,
        };
        assert_eq!(encoded(&fresh), Ok(vec![0x32, 5, 0, 1, b'a', 0xBE, 0xEF]));
    }

    #[test]
    fn remaining_length_takes_two_bytes_from_128() {
        let payload = [0u8; 200];
        let packet = Packet::Publish {
            topic: "t",
            payload: &payload,
            qos: Qos::AtMostOnce,
            pid: 0,
            dup: false,
        };
        let bytes = encoded(&packet).unwrap();
        // 3 + 200 = 203 = 0x4B + 1 * 128.
        assert_eq!(bytes[..5], [0x30, 0xCB, 0x01, 0, 1]);
        assert_eq!(bytes.len(), 3 + 203);
    }

    #[test]
    fn subscribe_and_unsubscribe_take_several_filters() {
        let filters = [("a/#", Qos::AtLeastOnce), ("b", Qos::AtMostOnce)];
        let packet = Packet::Subscribe {
            pid: 0x0102,
            filters: &filters,
        };
        #[rustfmt::skip]
        let want = [0x82, 12, 0x01, 0x02, 0, 3, b'a', b'/', b'#', 1, 0, 1, b'b', 0];
        assert_eq!(encoded(&packet), Ok(want.to_vec()));
        let packet = Packet::Unsubscribe {
            pid: 3,
            filters: &["a/#", "b"],
        };
        #[rustfmt::skip]
        let want = [0xA2, 10, 0, 3, 0, 3, b'a', b'/', b'#', 0, 1, b'b'];
        assert_eq!(encoded(&packet), Ok(want.to_vec()));
    }

    #[test]
    fn acks_ping_and_disconnect() {
        let cases: [(Packet<'_>, &[u8]); 5] = [
            (Packet::Ack(Ack::Puback, 0x0A0B), &[0x40, 2, 0x0A, 0x0B]),
            (Packet::Ack(Ack::Pubrec, 1), &[0x50, 2, 0, 1]),
            (Packet::Ack(Ack::Pubcomp, 0xFFFF), &[0x70, 2, 0xFF, 0xFF]),
            (Packet::Pingreq, &[0xC0, 0]),
            (Packet::Disconnect, &[0xE0, 0]),
        ];
        for (packet, want) in cases {
            assert_eq!(encoded(&packet), Ok(want.to_vec()), "{packet:?}");
        }
    }

    #[test]
    fn pid_zero_and_no_filters_are_refused() {
        let cases = [
            Packet::Ack(Ack::Puback, 0),
            Packet::Subscribe {
                pid: 0,
                filters: &[("a", Qos::AtMostOnce)],
            },
            Packet::Subscribe {
                pid: 1,
                filters: &[],
            },
            Packet::Unsubscribe {
                pid: 1,
                filters: &[],
            },
            Packet::Publish {
                topic: "t",
                payload: b"",
                qos: Qos::AtLeastOnce,
                pid: 0,
                dup: false,
            },
        ];
        for packet in cases {
            assert_eq!(encoded(&packet), Err(LinkError::Protocol), "{packet:?}");
        }
    }

    #[test]
    fn what_does_not_fit_is_too_large_at_every_size() {
        let packet = Packet::Connect {
            client_id: "id",
            username: "user",
            password: b"password",
            keep_alive: 60,
        };
        let whole = encoded(&packet).unwrap();
        for len in 0..whole.len() {
            let mut buf = vec![0u8; len];
            assert_eq!(encode(&packet, &mut buf), Err(LinkError::TooLarge), "{len}");
        }
        let mut buf = vec![0u8; whole.len()];
        assert_eq!(encode(&packet, &mut buf), Ok(whole.len()));
        assert_eq!(buf, whole);
    }

    #[test]
    fn a_string_past_16_bits_is_too_large() {
        let topic = "t".repeat(70_000);
        let packet = Packet::Publish {
            topic: &topic,
            payload: b"",
            qos: Qos::AtMostOnce,
            pid: 0,
            dup: false,
        };
        let mut buf = vec![0u8; 80_000];
        assert_eq!(encode(&packet, &mut buf), Err(LinkError::TooLarge));
    }
}
