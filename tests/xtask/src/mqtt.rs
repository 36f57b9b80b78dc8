//! MQTT on the wire, for the wire-cost row: the smallest packets the specification allows for
//! a QoS 1 publish (the baseline), and a splitter that cuts a byte stream into packets and
//! counts the transport writes each packet took (the figure).
//!
//! The minimum, by clause:
//!
//! * Fixed header: one byte of type and flags, then the Remaining Length as a Variable Byte
//!   Integer of 1 to 4 bytes, 7 bits a byte (3.1.1 §2.2, §2.2.3; 5.0 §2.1.1, §2.1.4, §1.5.5).
//! * PUBLISH variable header: the Topic Name, a UTF-8 string with a 2-byte length prefix
//!   (3.1.1 §3.3.2.1, §1.5.3; 5.0 §3.3.2.1, §1.5.4), then the 2-byte Packet Identifier, present
//!   at QoS 1 (3.1.1 §3.3.2.2; 5.0 §3.3.2.2). MQTT 5 adds the Property Length, a Variable
//!   Byte Integer, 1 byte for no properties (5.0 §3.3.2.3.1). The payload follows with no
//!   length of its own (3.1.1 §3.3.3; 5.0 §3.3.3).
//! * With a Topic Alias (5.0 §3.3.2.3.4): the Topic Name may be zero-length once the alias is
//!   set, and the property costs 3 bytes (identifier 0x23 and a Two Byte Integer).
//! * PUBACK: fixed header and the 2-byte Packet Identifier, Remaining Length 2 (3.1.1 §3.4);
//!   in MQTT 5 the Reason Code and Property Length may be omitted for Success without
//!   properties, so the minimum is the same 4 bytes (5.0 §3.4.2.1).
//! * One transport write per packet is the floor for a client that writes packets whole.

/// The MQTT versions the rows compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
    /// MQTT 5.0, the topic replaced by an alias already set.
    V5Alias,
}

/// Bytes of a Variable Byte Integer encoding `n` (3.1.1 §2.2.3, 5.0 §1.5.5).
pub fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The smallest QoS 1 PUBLISH of `payload_len` bytes on a topic of `topic_len` bytes.
pub fn min_publish(version: Version, topic_len: usize, payload_len: usize) -> usize {
    let variable = match version {
        // Topic Name, Packet Identifier.
        Version::V311 => 2 + topic_len + 2,
        // Topic Name, Packet Identifier, Property Length 0.
        Version::V5 => 2 + topic_len + 2 + 1,
        // Empty Topic Name, Packet Identifier, Property Length 3, Topic Alias (0x23, u16).
        Version::V5Alias => 2 + 2 + 1 + 3,
    };
    let remaining = variable + payload_len;
    1 + varint_len(remaining) + remaining
}

/// The smallest PUBACK (both versions: §3.4 and 5.0 §3.4.2.1).
pub const MIN_PUBACK: usize = 4;

/// Control packet types (the fixed header's high nibble), as the rows name them.
pub mod kind {
    /// CONNECT.
    pub const CONNECT: u8 = 1;
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
}

/// One whole packet seen on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Its type (see [`kind`]).
    pub kind: u8,
    /// All its bytes, fixed header included.
    pub len: usize,
    /// Transport calls (writes, or reads) that carried at least one of its bytes.
    pub calls: usize,
}

/// Cuts a stream into packets from the fixed headers alone. Fed one transport call's bytes
/// at a time, so it can tell how many calls each packet took.
#[derive(Debug, Default)]
pub struct Splitter {
    /// The current packet's first byte, once seen.
    first: Option<u8>,
    /// Remaining Length decoded so far, its multiplier, and whether it is complete.
    remaining: usize,
    shift: u32,
    header_len: usize,
    length_done: bool,
    /// Body bytes still to come.
    left: usize,
    /// Calls that touched the current packet.
    calls: usize,
    /// The last call that touched the current packet.
    touched_in: Option<u64>,
    /// Calls so far.
    call: u64,
    /// A Remaining Length over 4 bytes: the stream is not MQTT; everything after is ignored.
    broken: bool,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream stopped looking like MQTT.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The bytes of one transport call; each packet completed by them goes to `done`.
    pub fn feed(&mut self, bytes: &[u8], mut done: impl FnMut(Packet)) {
        self.call += 1;
        let mut rest = bytes;
        while !rest.is_empty() && !self.broken {
            if self.touched_in != Some(self.call) {
                self.touched_in = Some(self.call);
                self.calls += 1;
            }
            if self.first.is_none() {
                self.first = rest.first().copied();
                self.header_len = 1;
                rest = rest.get(1..).unwrap_or_default();
                continue;
            }
            if !self.length_done {
                let Some(&b) = rest.first() else { break };
                rest = rest.get(1..).unwrap_or_default();
                self.header_len += 1;
                self.remaining |= usize::from(b & 0x7f) << self.shift;
                self.shift += 7;
                if b & 0x80 == 0 {
                    self.length_done = true;
                    self.left = self.remaining;
                } else if self.shift >= 28 {
                    self.broken = true;
                    break;
                }
            } else {
                let take = self.left.min(rest.len());
                self.left -= take;
                rest = rest.get(take..).unwrap_or_default();
            }
            if self.length_done && self.left == 0 {
                done(Packet {
                    kind: self.first.unwrap_or(0) >> 4,
                    len: self.header_len + self.remaining,
                    calls: self.calls,
                });
                *self = Self {
                    call: self.call,
                    ..Self::default()
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `feed` each piece; the packets in order.
    fn split(pieces: &[&[u8]]) -> Vec<Packet> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, |packet| out.push(packet));
        }
        out
    }

    /// A QoS 1 PUBLISH of "hi" on "a/b", packet id 1, MQTT 3.1.1, written out by hand:
    /// 0x32 (PUBLISH, QoS 1), Remaining Length 9, topic length 3, "a/b", id 0x0001, "hi".
    const PUBLISH_311: &[u8] = &[
        0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, b'h', b'i',
    ];
    /// The same in MQTT 5: Property Length 0 after the packet id, Remaining Length 10.
    const PUBLISH_5: &[u8] = &[
        0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, 0x00, b'h', b'i',
    ];
    /// MQTT 5 with Topic Alias 1 already set: empty topic, Property Length 3, 0x23 0x0001.
    const PUBLISH_5_ALIAS: &[u8] = &[
        0x32, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x03, 0x23, 0x00, 0x01, b'h', b'i',
    ];
    /// PUBACK for id 1 (both versions, 5.0 §3.4.2.1).
    const PUBACK: &[u8] = &[0x40, 0x02, 0x00, 0x01];

    #[test]
    fn the_minimum_is_the_length_of_the_smallest_packet_written_by_hand() {
        assert_eq!(min_publish(Version::V311, 3, 2), PUBLISH_311.len());
        assert_eq!(min_publish(Version::V5, 3, 2), PUBLISH_5.len());
        assert_eq!(min_publish(Version::V5Alias, 3, 2), PUBLISH_5_ALIAS.len());
        assert_eq!(MIN_PUBACK, PUBACK.len());
        // And the splitter, which measures the figure, reads the same lengths.
        for bytes in [PUBLISH_311, PUBLISH_5, PUBLISH_5_ALIAS, PUBACK] {
            let packets = split(&[bytes]);
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].len, bytes.len());
        }
    }

    #[test]
    fn a_remaining_length_of_128_takes_two_bytes() {
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
        // 64-byte payload on a 38-byte topic (the bench's): 3.1.1 remaining 106, one byte.
        assert_eq!(min_publish(Version::V311, 38, 64), 108);
        assert_eq!(min_publish(Version::V5, 38, 64), 109);
        assert_eq!(min_publish(Version::V5Alias, 38, 64), 74);
        // Remaining Length 124 + 4 = 128: the length takes two bytes.
        let payload = vec![b'x'; 124];
        let mut bytes = vec![0x32, 0x80, 0x01, 0x00, 0x00, 0x00, 0x01];
        bytes.extend_from_slice(&payload);
        assert_eq!(min_publish(Version::V311, 0, 124), bytes.len());
        assert_eq!(split(&[&bytes])[0].len, bytes.len());
    }

    #[test]
    fn the_splitter_counts_the_calls_each_packet_took() {
        let mut two = PUBLISH_311.to_vec();
        two.extend_from_slice(PUBACK);
        // Both packets in one call: one call each.
        let packets = split(&[&two]);
        assert_eq!(
            packets,
            vec![
                Packet {
                    kind: kind::PUBLISH,
                    len: 11,
                    calls: 1
                },
                Packet {
                    kind: kind::PUBACK,
                    len: 4,
                    calls: 1
                },
            ]
        );
        // The PUBLISH in three calls (header, topic, rest), the last also starting the PUBACK.
        let (a, b) = two.split_at(2);
        let (b, c) = b.split_at(5);
        let (c, d) = c.split_at(6);
        let packets = split(&[a, b, c, d]);
        assert_eq!(packets[0].calls, 3);
        assert_eq!(packets[1].calls, 2);
        // Byte by byte.
        let bytes: Vec<&[u8]> = PUBLISH_311.chunks(1).collect();
        assert_eq!(split(&bytes)[0].calls, PUBLISH_311.len());
    }

    #[test]
    fn a_stream_that_is_not_mqtt_stops_the_splitter() {
        let mut s = Splitter::new();
        let mut n = 0;
        s.feed(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00], |_| n += 1);
        assert!(s.broken());
        assert_eq!(n, 0);
    }
}
