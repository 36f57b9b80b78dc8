//! The patcher against streams built by hand: a literal-only heatshrink encoding (each byte
//! a `1` bit and its 8 bits) of bsdiff records written byte by byte, so every hostile case
//! can be made exactly. Round trips through the real diff and encoder are `aliot-boot`'s
//! tests (`aliot-imgtool diff`).

use alloc::vec;
use alloc::vec::Vec;

use sha2::{Digest as _, Sha256};

use super::inflate::Inflate;
use super::*;

/// Literal-only heatshrink: `1` then the byte, most significant bit first, zero-padded.
fn lit(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut n) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 9) | 0x100 | u32::from(*b);
        n += 9;
        while n >= 8 {
            out.push((acc >> (n - 8)) as u8);
            n -= 8;
            acc &= (1 << n) - 1;
        }
    }
    if n > 0 {
        out.push((acc << (8 - n)) as u8);
    }
    out
}

fn control(mix: u64, copy: u64, seek: i64) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&mix.to_le_bytes());
    c.extend_from_slice(&copy.to_le_bytes());
    let magnitude = seek.unsigned_abs();
    let raw = if seek < 0 {
        magnitude | 1 << 63
    } else {
        magnitude
    };
    c.extend_from_slice(&raw.to_le_bytes());
    c
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn header(old: &[u8], new: &[u8]) -> PatchHeader {
    PatchHeader {
        window_bits: 8,
        lookahead_bits: 4,
        old_len: old.len() as u32,
        old_sha256: sha(old),
        new_len: new.len() as u32,
        new_sha256: sha(new),
    }
}

fn patch(header: &PatchHeader, records: &[u8]) -> Vec<u8> {
    let mut p = header.to_bytes().to_vec();
    p.extend_from_slice(&lit(records));
    p
}

struct Old<'a>(&'a [u8]);

impl OldImage for Old<'_> {
    fn capacity(&self) -> u32 {
        self.0.len() as u32 + 100
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), PatchError> {
        // The slot past the image reads erased.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0.get(offset as usize + i).copied().unwrap_or(0xFF);
        }
        Ok(())
    }
}

#[derive(Default)]
struct New {
    began: Option<u32>,
    data: Vec<u8>,
}

impl NewImage for New {
    fn begin(&mut self, len: u32) -> Result<(), PatchError> {
        self.began = Some(len);
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<(), PatchError> {
        self.data.extend_from_slice(data);
        Ok(())
    }
}

/// Feeds `patch` in pieces of `piece` bytes; the first error, or `finish`'s answer.
fn apply(old: &[u8], patch: &[u8], piece: usize) -> (Result<(), PatchError>, New) {
    let mut p = Patcher::new();
    let mut new = New::default();
    for chunk in patch.chunks(piece) {
        if let Err(e) = p.feed(chunk, &mut Old(old), &mut new) {
            return (Err(e), new);
        }
    }
    (p.finish(), new)
}

const OLD: &[u8] = b"the running firmware image, version one";

/// `mix` the first 11 bytes with one changed, `copy` a new tail, skip the rest.
fn good() -> (Vec<u8>, Vec<u8>) {
    let mut new = OLD[..11].to_vec();
    new[4] = b'R';
    new.extend_from_slice(b"+two");
    let mut records = control(11, 4, 0);
    let mut diff = vec![0u8; 11];
    diff[4] = b'R'.wrapping_sub(b'r');
    records.extend_from_slice(&diff);
    records.extend_from_slice(b"+two");
    (patch(&header(OLD, &new), &records), new)
}

#[test]
fn the_header_has_the_documented_bytes() {
    let h = PatchHeader {
        window_bits: 10,
        lookahead_bits: 8,
        old_len: 0x0102_0304,
        old_sha256: [0xAA; 32],
        new_len: 0x0A0B_0C0D,
        new_sha256: [0xBB; 32],
    };
    let mut expected = vec![b'A', b'L', b'D', b'P', 1, 0, 10, 8, 4, 3, 2, 1];
    expected.extend_from_slice(&[0xAA; 32]);
    expected.extend_from_slice(&[0x0D, 0x0C, 0x0B, 0x0A]);
    expected.extend_from_slice(&[0xBB; 32]);
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(h.to_bytes().to_vec(), expected);
    assert_eq!(PatchHeader::parse(&h.to_bytes()), Ok(h));
    let bad = |at: usize, value: u8| {
        let mut b = h.to_bytes();
        b[at] = value;
        PatchHeader::parse(&b)
    };
    assert_eq!(bad(0, b'X'), Err(PatchError::BadMagic));
    assert_eq!(bad(4, 2), Err(PatchError::UnsupportedVersion(2)));
    assert_eq!(bad(6, 11), Err(PatchError::BadCompression), "window > 10");
    assert_eq!(bad(6, 3), Err(PatchError::BadCompression), "window < 4");
    assert_eq!(
        bad(7, 10),
        Err(PatchError::BadCompression),
        "lookahead >= window"
    );
    assert_eq!(bad(7, 2), Err(PatchError::BadCompression), "lookahead < 3");
}

#[test]
fn back_references_repeat_the_window_in_any_piece_size() {
    // W=4, L=3: 'a', 'b', then index 1 (2 back) count 3 (4 bytes): "ababab".
    // 1 01100001 1 01100010 0 0001 011 -> padded to whole bytes.
    let bits = "1011000011011000100000101100000";
    let bytes: Vec<u8> = bits
        .as_bytes()
        .chunks(8)
        .map(|c| {
            let mut s = alloc::string::String::from_utf8(c.to_vec()).unwrap();
            while s.len() < 8 {
                s.push('0');
            }
            u8::from_str_radix(&s, 2).unwrap()
        })
        .collect();
    for piece in [1, 2, bytes.len()] {
        let mut inflate = Inflate::new(4, 3);
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            inflate
                .feed(chunk, &mut |b: &[u8]| -> Result<(), ()> {
                    out.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(out, b"ababab", "pieces of {piece}");
    }
}

#[test]
fn a_patch_rebuilds_the_new_image_in_any_piece_size() {
    let (patch, new) = good();
    for piece in [1, 3, 7, 84, 85, patch.len()] {
        let (result, out) = apply(OLD, &patch, piece);
        assert_eq!(result, Ok(()), "pieces of {piece}");
        assert_eq!(out.data, new);
        assert_eq!(out.began, Some(new.len() as u32));
    }
}

#[test]
fn a_patch_for_another_base_writes_nothing() {
    let (patch, _) = good();
    let other = b"another firmware image, version zero!!!";
    let (result, out) = apply(other, &patch, 1000);
    assert_eq!(result, Err(PatchError::WrongBase));
    assert_eq!((out.began, out.data.len()), (None, 0));
    // Same bytes, but the patch says the old image is longer than the slot.
    let mut h = header(OLD, b"x");
    h.old_len = 10_000;
    let (result, out) = apply(OLD, &patch_of(&h, &[]), 1000);
    assert_eq!(result, Err(PatchError::WrongBase));
    assert_eq!(out.began, None);
}

fn patch_of(h: &PatchHeader, records: &[u8]) -> Vec<u8> {
    patch(h, records)
}

#[test]
fn hostile_records_are_refused_before_they_are_written() {
    let new = b"0123456789";
    let h = header(OLD, new);
    let cases: [(&str, Vec<u8>, PatchError); 4] = [
        (
            "lengths past new_len",
            control(5, 6, 0),
            PatchError::OutOfRange,
        ),
        (
            "mix past the old image",
            control(0, 0, 35)
                .into_iter()
                .chain(control(5, 5, 0))
                .collect(),
            PatchError::OutOfRange,
        ),
        (
            "seek below zero",
            [control(0, 2, -1), b"01".to_vec()].concat(),
            PatchError::OutOfRange,
        ),
        (
            "huge lengths",
            control(u64::MAX, 1, 0),
            PatchError::OutOfRange,
        ),
    ];
    for (what, records, expected) in cases {
        let (result, out) = apply(OLD, &patch(&h, &records), 5);
        assert_eq!(result, Err(expected), "{what}");
        assert!(out.data.len() <= new.len(), "{what}");
    }
}

#[test]
fn truncated_trailing_and_wrong_digests_are_refused() {
    let (patch, _) = good();
    // Cut inside the records: feeding succeeds, finishing does not.
    let (result, _) = apply(OLD, &patch[..patch.len() - 6], 4);
    assert_eq!(result, Err(PatchError::Truncated));
    let (result, _) = apply(OLD, &patch[..40], 4);
    assert_eq!(result, Err(PatchError::Truncated), "inside the header");
    // A record after the end.
    let (_, new) = good();
    let mut records = control(0, new.len() as u64, 0);
    records.extend_from_slice(&new);
    records.extend_from_slice(&control(0, 0, 0));
    let (result, _) = apply(OLD, &self::patch(&header(OLD, &new), &records), 9);
    assert_eq!(result, Err(PatchError::TrailingData));
    // The right length, the wrong bytes.
    let mut records = control(0, new.len() as u64, 0);
    records.extend(new.iter().map(|b| b ^ 1));
    let (result, _) = apply(OLD, &self::patch(&header(OLD, &new), &records), 9);
    assert_eq!(result, Err(PatchError::NewDigest));
}

#[test]
fn random_bytes_after_a_valid_header_never_panic_nor_overflow() {
    let new = [7u8; 300];
    let h = header(OLD, &new);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2_000 {
        let mut p = h.to_bytes().to_vec();
        let len = (seed % 200) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            p.push(seed as u8);
        }
        let (_, out) = apply(OLD, &p, 1 + (seed % 17) as usize);
        assert!(out.data.len() <= new.len());
    }
}

#[test]
fn the_patcher_fits_in_about_a_kilobyte_and_a_half() {
    let size = core::mem::size_of::<Patcher>();
    assert!(size <= 1_600, "{size} bytes");
}
