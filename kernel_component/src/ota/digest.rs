//! The file's digest, computed while the download streams through (spec §3: "updates
//! MD5/SHA256 incrementally and verifies at the end", as LINKSDK does).
//!
//! A [`Hasher`] counts the bytes it has seen and takes only the next one in order
//! ([`Hasher::update_at`]): a resumed download continues the same hasher from where it
//! stopped, a restart from 0 (a server that ignored the Range) calls [`Hasher::reset`], and
//! a byte seen twice or skipped is an error rather than a false mismatch at the end (the
//! IOTKIT PR#142 class of bug, spec §7 item 5: a context not re-initialised between tries).

use sha2::Digest as _;
use sha2::Sha256;

use super::job::Digest;
use super::md5::Md5;

/// A streaming MD5 or SHA-256 of the file, with the job's expected value.
#[derive(Clone)]
pub struct Hasher {
    state: State,
    expected: Digest,
    seen: u32,
}

#[derive(Clone)]
enum State {
    Md5(Md5),
    Sha256(Sha256),
}

/// [`Hasher::update_at`] got bytes that are not the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder {
    /// The offset the hasher expected.
    pub expected: u32,
    /// The offset it got.
    pub got: u32,
}

impl Hasher {
    /// A hasher for `expected`'s algorithm, at offset 0.
    pub fn new(expected: Digest) -> Self {
        Self {
            state: fresh(expected),
            expected,
            seen: 0,
        }
    }

    /// Back to offset 0 (a restart of the download from the first byte).
    pub fn reset(&mut self) {
        self.state = fresh(self.expected);
        self.seen = 0;
    }

    /// Bytes hashed so far: the offset of the next byte.
    pub fn seen(&self) -> u32 {
        self.seen
    }

    /// Hashes `data`, which must start at file offset `offset` == [`Hasher::seen`]. Nothing
    /// is hashed otherwise; nor when the count would pass `u32::MAX`.
    pub fn update_at(&mut self, offset: u32, data: &[u8]) -> Result<(), OutOfOrder> {
        let next = u32::try_from(data.len())
            .ok()
            .and_then(|len| self.seen.checked_add(len));
        match next {
            Some(next) if offset == self.seen => {
                match &mut self.state {
                    State::Md5(h) => h.update(data),
                    State::Sha256(h) => h.update(data),
                }
                self.seen = next;
                Ok(())
            }
            _ => Err(OutOfOrder {
                expected: self.seen,
                got: offset,
            }),
        }
    }

    /// Whether what was hashed matches the job's digest (the caller checks the length).
    pub fn finish(self) -> bool {
        match (self.state, self.expected) {
            (State::Md5(h), Digest::Md5(want)) => h.finalize() == want,
            (State::Sha256(h), Digest::Sha256(want)) => h.finalize().as_slice() == want.as_slice(),
            _ => false,
        }
    }
}

fn fresh(expected: Digest) -> State {
    match expected {
        Digest::Md5(_) => State::Md5(Md5::new()),
        Digest::Sha256(_) => State::Sha256(Sha256::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1321 / FIPS 180-2 test vectors for "abc".
    const MD5_ABC: [u8; 16] = [
        0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f,
        0x72,
    ];
    const SHA256_ABC: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];

    fn digest_of(expected: Digest, pieces: &[(u32, &[u8])]) -> bool {
        let mut h = Hasher::new(expected);
        for &(at, piece) in pieces {
            h.update_at(at, piece).unwrap();
        }
        h.finish()
    }

    #[test]
    fn known_vectors_match_in_any_split() {
        for expected in [Digest::Md5(MD5_ABC), Digest::Sha256(SHA256_ABC)] {
            assert!(digest_of(expected, &[(0, b"abc")]));
            assert!(digest_of(expected, &[(0, b"a"), (1, b""), (1, b"bc")]));
            assert!(!digest_of(expected, &[(0, b"abd")]));
            assert!(!digest_of(expected, &[(0, b"ab")]));
        }
        let mut wrong = SHA256_ABC;
        wrong[31] ^= 1;
        assert!(!digest_of(Digest::Sha256(wrong), &[(0, b"abc")]));
        let mut wrong = MD5_ABC;
        wrong[0] ^= 0x80;
        assert!(!digest_of(Digest::Md5(wrong), &[(0, b"abc")]));
    }

    #[test]
    fn bytes_out_of_order_are_refused_and_reset_starts_over() {
        let mut h = Hasher::new(Digest::Md5(MD5_ABC));
        h.update_at(0, b"ab").unwrap();
        assert_eq!(
            h.update_at(1, b"bc"),
            Err(OutOfOrder {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            h.update_at(3, b"c"),
            Err(OutOfOrder {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(h.seen(), 2);
        // A restart: the bytes seen before are forgotten.
        h.reset();
        assert_eq!(h.seen(), 0);
        h.update_at(0, b"abc").unwrap();
        assert!(h.finish());
    }
}
