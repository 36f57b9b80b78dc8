//! MD5 (RFC 1321), streaming, for the OTA download's digest ([`super::digest`]).
//!
//! By hand, not the `md-5` crate, for size (issue 11: our code within 128 KiB of flash on the
//! nRF9160's 256 KB): `md-5` unrolls its 64 steps, about 1.9 KB; one loop over them with the
//! constants in a table is about 0.7 KB (the DK's OTA build is 1 028 B smaller), fast enough
//! for a download over a modem. MD5 is the platform's default OTA `signMethod` (spec §3): an
//! integrity check of the downloaded file against the digest the job brought over the
//! device's MQTT session, not a security boundary, so MD5's collisions do not matter here.
//! The login's `hmacmd5` keeps the `md-5` crate (HMAC needs its `digest` traits).

/// A running MD5: [`Md5::update`] with the bytes in any pieces, then [`Md5::finalize`].
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    /// The bytes of the block being filled: the first `len % 64`.
    block: [u8; 64],
    /// Bytes hashed so far (MD5 takes the length modulo 2^64).
    len: u64,
}

/// The sine constants, `floor(abs(sin(i + 1)) * 2^32)`.
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// The left rotations: four per round, each used four times in its round.
const S: [u8; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// Nothing hashed yet.
    pub fn new() -> Self {
        Self {
            state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476],
            block: [0; 64],
            len: 0,
        }
    }

    /// Hashes `data`, the next bytes of the message.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = (self.len % 64) as usize;
            let (take, rest) = data.split_at(data.len().min(64 - used));
            if let Some(dst) = self.block.get_mut(used..used + take.len()) {
                dst.copy_from_slice(take);
            }
            self.len = self.len.wrapping_add(take.len() as u64);
            if self.len.is_multiple_of(64) {
                compress(&mut self.state, &self.block);
            }
            data = rest;
        }
    }

    /// The digest of everything hashed.
    pub fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.len % 64 != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_le_bytes());
        let mut out = [0; 16];
        for (dst, word) in out.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// One 64-byte block into `state`: RFC 1321 §3.4, its 64 steps as one loop.
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut x = [0u32; 16];
    for (word, bytes) in x.iter_mut().zip(block.chunks_exact(4)) {
        *word = bytes.try_into().map_or(0, u32::from_le_bytes);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for (i, &k) in K.iter().enumerate() {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), 5 * i + 1),
            2 => (b ^ c ^ d, 3 * i + 5),
            _ => (c ^ (b | !d), 7 * i),
        };
        // Both indices are in bounds by construction; `get` keeps the panic path out.
        let s = S.get((i / 16) * 4 + i % 4).copied().unwrap_or(0);
        let m = x.get(g % 16).copied().unwrap_or(0);
        let t = a
            .wrapping_add(f)
            .wrapping_add(k)
            .wrapping_add(m)
            .rotate_left(u32::from(s));
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(t);
    }
    for (word, add) in state.iter_mut().zip([a, b, c, d]) {
        *word = word.wrapping_add(add);
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use ::md5::Digest as _;

    use super::Md5;

    fn hex(digest: [u8; 16]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn md5_in_pieces(data: &[u8], piece: usize) -> [u8; 16] {
        let mut h = Md5::new();
        for chunk in data.chunks(piece.max(1)) {
            h.update(chunk);
        }
        h.finalize()
    }

    /// RFC 1321 appendix A.5.
    #[test]
    fn rfc1321_test_suite() {
        let suite: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in suite {
            for piece in [1, 3, 64, 1000] {
                assert_eq!(
                    hex(md5_in_pieces(input.as_bytes(), piece)),
                    want,
                    "{input:?}"
                );
            }
        }
    }

    /// Deterministic bytes that are not a simple pattern (xorshift).
    fn bytes(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[1]
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_md5_crate_over_lengths_and_pieces() {
        let mut lengths: Vec<usize> = (0..=200).collect();
        for boundary in [64usize, 128, 512, 4096] {
            for delta in [-9isize, -8, -1, 0, 1] {
                lengths.push(boundary.saturating_add_signed(delta));
            }
        }
        lengths.extend([1000, 4097, 65_536 + 55, 100_003]);
        for (n, &len) in lengths.iter().enumerate() {
            let data = bytes(len, n as u32 + 7);
            let want: [u8; 16] = ::md5::Md5::digest(&data).into();
            for piece in [1, 2, 7, 55, 56, 63, 64, 65, 128, 1000, usize::MAX] {
                if len > 4096 && piece < 55 {
                    continue; // the large inputs in pieces of every block boundary only
                }
                assert_eq!(
                    md5_in_pieces(&data, piece),
                    want,
                    "len {len}, piece {piece}"
                );
            }
        }
    }

    #[test]
    fn uneven_pieces_agree_too() {
        let data = bytes(10_000, 99);
        let want: [u8; 16] = ::md5::Md5::digest(&data).into();
        let mut h = Md5::new();
        let mut rest = &data[..];
        let mut piece = 0;
        while !rest.is_empty() {
            piece = (piece * 7 + 3) % 150;
            let (now, later) = rest.split_at(piece.min(rest.len()));
            h.update(now);
            rest = later;
        }
        assert_eq!(h.finalize(), want);
    }
}
