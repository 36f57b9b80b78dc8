//! The image header and the streaming verifier, against bytes built by hand.

use aliot_boot::image::{
    HEADER_LEN, ImageError, ImageHeader, ImageVerifier, parse_header, verify_image,
};
use sha2::{Digest, Sha256};

/// SHA-256("abc") (FIPS 180-2 appendix B.1).
const SHA256_ABC: [u8; 32] = [
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
];

/// SHA-256 of bytes 0..480 of [`golden_header`], pinned so that a change of layout shows.
const GOLDEN_HEADER_DIGEST: &str =
    "2182742019b75e682695f6f5ee6cb224f33df7207b89afc81323e3e671fe1431";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The header of payload `abc`, version `1.2.3`, byte by byte as the module doc lays it out.
fn golden_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&[0x41, 0x4C, 0x49, 0x4D]); // magic "ALIM"
    h.extend_from_slice(&[0x01, 0x00]); // header version 1
    h.extend_from_slice(&[0x00, 0x00]); // flags
    h.extend_from_slice(&[0x03, 0x00, 0x00, 0x00]); // payload length 3
    h.extend_from_slice(b"1.2.3"); // version ...
    h.extend_from_slice(&[0u8; 27]); // ... NUL-padded to 32
    h.extend_from_slice(&SHA256_ABC); // payload digest
    h.extend_from_slice(&[0u8; 404]); // reserved 76..480
    assert_eq!(h.len(), 480);
    let d = Sha256::digest(&h);
    h.extend_from_slice(&d);
    assert_eq!(h.len(), HEADER_LEN);
    h
}

fn golden_image() -> Vec<u8> {
    let mut i = golden_header();
    i.extend_from_slice(b"abc");
    i
}

/// Rewrites the header digest after a test edited bytes 0..480.
fn reseal(h: &mut [u8]) {
    let d = Sha256::digest(&h[..480]);
    h[480..512].copy_from_slice(&d);
}

#[test]
fn golden_bytes() {
    let golden = golden_header();
    assert_eq!(hex(&golden[480..]), GOLDEN_HEADER_DIGEST);
    let made = ImageHeader::new("1.2.3", b"abc").unwrap();
    assert_eq!(made.to_bytes().as_slice(), golden.as_slice());
    let parsed = parse_header(&golden).unwrap();
    assert_eq!(parsed, made);
    assert_eq!(parsed.version.as_str(), "1.2.3");
    assert_eq!(parsed.payload_len, 3);
    assert_eq!(parsed.payload_sha256, SHA256_ABC);
    assert_eq!(parsed.header_version, 1);
    assert_eq!(parsed.flags, 0);
    assert_eq!(verify_image(&golden_image(), 4096), Ok(made));
}

#[test]
fn every_truncation_is_too_short() {
    let golden = golden_header();
    for len in 0..HEADER_LEN {
        assert_eq!(
            parse_header(&golden[..len]),
            Err(ImageError::TooShort { len }),
            "len {len}"
        );
    }
    // Bytes after the header are the payload's business.
    let image = golden_image();
    assert!(parse_header(&image).is_ok());
}

#[test]
fn specific_errors() {
    let golden = golden_header();
    let mut h = golden.clone();
    h[0] = b'X';
    assert_eq!(parse_header(&h), Err(ImageError::BadMagic));

    let mut h = golden.clone();
    h[4] = 2;
    assert_eq!(
        parse_header(&h),
        Err(ImageError::UnsupportedHeaderVersion(2))
    );
    reseal(&mut h);
    assert_eq!(
        parse_header(&h),
        Err(ImageError::UnsupportedHeaderVersion(2))
    );

    let mut h = golden.clone();
    h[8] = 4; // length changed, digest not recomputed
    assert_eq!(parse_header(&h), Err(ImageError::BadHeaderChecksum));
    let mut h = golden.clone();
    h[511] ^= 1;
    assert_eq!(parse_header(&h), Err(ImageError::BadHeaderChecksum));

    let mut h = golden.clone();
    h[7] = 0x80;
    reseal(&mut h);
    assert_eq!(parse_header(&h), Err(ImageError::UnsupportedFlags(0x8000)));

    let mut h = golden.clone();
    h[479] = 1;
    reseal(&mut h);
    assert_eq!(parse_header(&h), Err(ImageError::ReservedNotZero));

    for bad in [
        &b"\0\0\0"[..],
        b"1 2",
        b"1\"2",
        b"1\\2",
        b"1.\xff",
        b"1\x7f",
    ] {
        let mut h = golden.clone();
        h[12..44].fill(0);
        h[12..12 + bad.len()].copy_from_slice(bad);
        reseal(&mut h);
        assert_eq!(
            parse_header(&h),
            Err(ImageError::BadVersionString),
            "{bad:?}"
        );
    }
    // Text after the NUL padding.
    let mut h = golden.clone();
    h[43] = b'x';
    reseal(&mut h);
    assert_eq!(parse_header(&h), Err(ImageError::BadVersionString));
    // All 32 bytes used: fine.
    let mut h = golden.clone();
    h[12..44].fill(b'9');
    reseal(&mut h);
    assert_eq!(parse_header(&h).unwrap().version.as_str(), "9".repeat(32));
}

#[test]
fn too_large_for_the_slot() {
    let image = golden_image();
    assert_eq!(
        verify_image(&image, 514),
        Err(ImageError::TooLarge {
            image_len: 515,
            slot_len: 514
        })
    );
    assert!(verify_image(&image, 515).is_ok());
    let h = parse_header(&image).unwrap();
    assert_eq!(
        h.fits(100),
        Err(ImageError::TooLarge {
            image_len: 515,
            slot_len: 100
        })
    );
    // The streaming verifier refuses as soon as the header is in, before any payload.
    let mut v = ImageVerifier::new(514);
    assert_eq!(
        v.update(&image[..HEADER_LEN]),
        Err(ImageError::TooLarge {
            image_len: 515,
            slot_len: 514
        })
    );
    assert_eq!(v.bytes_needed(), 0);
    assert!(v.update(b"a").is_err());
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

#[test]
fn random_bytes_and_bit_flips_never_panic_and_never_pass() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for i in 0..20_000 {
        let len = (rng.next() % 1100) as usize;
        let mut b = vec![0u8; len];
        rng.fill(&mut b);
        if i % 2 == 0 && len >= 4 {
            b[..4].copy_from_slice(b"ALIM"); // get past the magic half of the time
            if len >= 6 {
                b[4..6].copy_from_slice(&[1, 0]);
            }
        }
        assert!(parse_header(&b).is_err());
        assert!(verify_image(&b, u32::MAX).is_err());
    }
    // Every single-bit flip of a valid header is caught.
    let golden = golden_header();
    for byte in 0..HEADER_LEN {
        for bit in 0..8 {
            let mut h = golden.clone();
            h[byte] ^= 1 << bit;
            assert!(parse_header(&h).is_err(), "byte {byte} bit {bit}");
        }
    }
}

#[test]
fn streaming_every_split() {
    let payload: Vec<u8> = (0..700u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut image = ImageHeader::new("9.9.9-rc1", &payload)
        .unwrap()
        .to_bytes()
        .to_vec();
    image.extend_from_slice(&payload);
    let expect = parse_header(&image).unwrap();
    // Every single split point, and every pair of split points on a coarser grid.
    for a in 0..=image.len() {
        let mut v = ImageVerifier::new(4096);
        v.update(&image[..a]).unwrap();
        v.update(&image[a..]).unwrap();
        assert_eq!(v.bytes_needed(), 0);
        assert_eq!(v.finish().as_ref(), Ok(&expect), "split at {a}");
    }
    for a in (0..=image.len()).step_by(13) {
        for b in (a..=image.len()).step_by(17) {
            let mut v = ImageVerifier::new(4096);
            for part in [&image[..a], &image[a..b], &image[b..]] {
                v.update(part).unwrap();
            }
            assert_eq!(v.finish().as_ref(), Ok(&expect), "splits at {a}, {b}");
        }
    }
    // Every chunk size.
    for chunk in 1..=image.len() {
        let mut v = ImageVerifier::new(4096);
        for c in image.chunks(chunk) {
            v.update(c).unwrap();
        }
        assert_eq!(v.finish().as_ref(), Ok(&expect), "chunk {chunk}");
    }
}

#[test]
fn streaming_errors() {
    let payload = [0x5Au8; 100];
    let mut image = ImageHeader::new("1.0", &payload)
        .unwrap()
        .to_bytes()
        .to_vec();
    image.extend_from_slice(&payload);
    // Every truncation is incomplete (or too short before the header is in).
    for len in 0..image.len() {
        let mut v = ImageVerifier::new(4096);
        v.update(&image[..len]).unwrap();
        let e = v.finish().unwrap_err();
        if len < HEADER_LEN {
            assert_eq!(e, ImageError::TooShort { len });
        } else {
            assert_eq!(
                e,
                ImageError::Incomplete {
                    received: len as u64,
                    expected: image.len() as u64
                }
            );
        }
    }
    // Every flipped payload byte is a digest mismatch.
    for i in HEADER_LEN..image.len() {
        let mut bad = image.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            verify_image(&bad, 4096),
            Err(ImageError::DigestMismatch),
            "byte {i}"
        );
    }
    // One byte too many.
    let mut long = image.clone();
    long.push(0);
    let mut v = ImageVerifier::new(4096);
    assert_eq!(v.update(&long), Err(ImageError::TooLong));
    assert_eq!(v.finish(), Err(ImageError::TooLong));
    // A bad header fails on the update that completes it.
    let mut bad = image.clone();
    bad[0] = 0;
    let mut v = ImageVerifier::new(4096);
    v.update(&bad[..511]).unwrap();
    assert!(v.header().is_none());
    assert_eq!(v.update(&bad[511..]), Err(ImageError::BadMagic));
}
