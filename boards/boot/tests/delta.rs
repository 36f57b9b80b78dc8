//! Differential packages (issue 9): `delta_maker` on real thumbv8m images, and the kernel's
//! patcher (`aliot_kernel::ota::delta::Patcher`) against hostile patches built here by hand:
//! the header from its table, the records from their layout, and the compressed stream with a
//! small heatshrink bit writer, so nothing relies on the codec under test.

use aliot_boot::delta_maker::{
    self, DEFAULT_LOOKAHEAD_BITS, DEFAULT_WINDOW_BITS, MemNew, MemOld, PatchStats,
};
use aliot_kernel::ota::delta::{HEADER_LEN, PatchError, PatchHeader, Patcher};
use sha2::{Digest, Sha256};

// ---- helpers ------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Up to `max - 1` random bytes.
    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// Heatshrink's bit stream, most significant bit first, padded with zero bits.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u8,
    n: u8,
}

impl Bits {
    fn push(&mut self, value: u32, bits: u8) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1) as u8;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc);
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    fn literal(&mut self, byte: u8) {
        self.push(1, 1);
        self.push(u32::from(byte), 8);
    }
    /// Repeats `count` bytes from `offset` back.
    fn backref(&mut self, offset: u32, count: u32, w: u8, l: u8) {
        self.push(0, 1);
        self.push(offset - 1, w);
        self.push(count - 1, l);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc << (8 - self.n));
        }
        self.out
    }
}

/// Literal-only heatshrink: decodes to `bytes` whatever the window and lookahead.
fn literals(bytes: &[u8]) -> Vec<u8> {
    let mut bits = Bits::default();
    for b in bytes {
        bits.literal(*b);
    }
    bits.finish()
}

/// The 84-byte header, written from the format's table (not with `PatchHeader::to_bytes`).
fn header_bytes(w: u8, l: u8, old: &[u8], new_len: u32, new_sha: [u8; 32]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"ALDP");
    h.extend_from_slice(&[1, 0]);
    h.extend_from_slice(&[w, l]);
    h.extend_from_slice(&(old.len() as u32).to_le_bytes());
    h.extend_from_slice(&Sha256::digest(old));
    h.extend_from_slice(&new_len.to_le_bytes());
    h.extend_from_slice(&new_sha);
    h.extend_from_slice(&[0; 4]);
    assert_eq!(h.len(), HEADER_LEN);
    h
}

/// A bsdiff control: mix, copy (u64 LE) and seek (sign and magnitude, LE).
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

/// A hand-made patch: header for `old` → `new`, records `records` (decoded bytes) as literals.
fn hand_patch(old: &[u8], new: &[u8], records: &[u8]) -> Vec<u8> {
    let mut p = header_bytes(10, 8, old, new.len() as u32, Sha256::digest(new).into());
    p.extend_from_slice(&literals(records));
    p
}

/// Feeds `patch` in pieces of the given sizes (cycled), then finishes. The first error, and
/// what the new image saw.
fn run(old: &[u8], patch: &[u8], pieces: &[usize]) -> (Result<(), PatchError>, MemNew) {
    run_into(old, patch, pieces, MemNew::new(u32::MAX))
}

fn run_into(
    old: &[u8],
    patch: &[u8],
    pieces: &[usize],
    mut new: MemNew,
) -> (Result<(), PatchError>, MemNew) {
    let result = delta_maker::feed_in_pieces(patch, pieces, &mut MemOld::new(old), &mut new);
    (result, new)
}

// ---- round trips --------------------------------------------------------------------------

fn fixture_pair(old: &str, new: &str) -> PatchStats {
    let (old, new) = (fixture(old), fixture(new));
    // They are images as the slots hold them.
    let h = aliot_boot::verify_image(&old, u32::MAX).expect("old fixture is an image");
    assert!(h.image_len() as usize == old.len());
    aliot_boot::verify_image(&new, u32::MAX).expect("new fixture is an image");
    assert!(old.len() < 64 * 1024 && new.len() < 64 * 1024);

    let patch =
        delta_maker::make_patch(&old, &new, DEFAULT_WINDOW_BITS, DEFAULT_LOOKAHEAD_BITS).unwrap();
    assert_eq!(delta_maker::apply_patch(&old, &patch).unwrap(), new);
    let (result, written) = run(&old, &patch, &[1]);
    assert_eq!(result, Ok(()));
    assert_eq!(written.data, new);
    let stats =
        PatchStats::measure(&patch, &new, DEFAULT_WINDOW_BITS, DEFAULT_LOOKAHEAD_BITS).unwrap();
    println!("{stats}");
    assert!(stats.patch < stats.compressed_new, "{stats}");
    stats
}

#[test]
fn fixture_small_change_is_a_small_patch() {
    let stats = fixture_pair("board-1.0.0.bin", "board-1.0.1.bin");
    assert!(stats.percent() < 10.0, "{stats}");
}

#[test]
fn fixture_shifted_addresses_round_trip() {
    let stats = fixture_pair("board-1.0.0.bin", "board-1.1.0.bin");
    assert!(stats.percent() < 50.0, "{stats}");
}

#[test]
fn random_data_with_edits_round_trips() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..40 {
        let len = rng.below(20_000);
        let old = if round % 3 == 0 {
            // Compressible: a few repeated patterns.
            (0..len).map(|i| (i % (7 + round)) as u8).collect()
        } else {
            rng.bytes(len)
        };
        let mut new = old.clone();
        for _ in 0..rng.below(12) {
            let at = rng.below(new.len() + 1);
            match rng.below(4) {
                0 if at < new.len() => new[at] = rng.next() as u8,
                1 => {
                    let ins = rng.some_bytes(300);
                    new.splice(at..at, ins);
                }
                2 => {
                    let end = (at + rng.below(300)).min(new.len());
                    new.drain(at..end);
                }
                _ => {
                    // Move a block: what relinking does.
                    let end = (at + rng.below(500)).min(new.len());
                    let block: Vec<u8> = new.drain(at..end).collect();
                    let to = rng.below(new.len() + 1);
                    new.splice(to..to, block);
                }
            }
        }
        let (w, l) = if round % 4 == 0 { (8, 4) } else { (10, 8) };
        let patch = delta_maker::make_patch(&old, &new, w, l).unwrap();
        let pieces = [1 + rng.below(100), 1 + rng.below(3), 1 + rng.below(5000)];
        let (result, written) = run(&old, &patch, &pieces);
        assert_eq!(result, Ok(()), "round {round}");
        assert_eq!(written.data, new, "round {round}");
    }
}

#[test]
fn a_cut_download_resumes_from_the_saved_state() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.1.0.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    for cut in [
        1,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
        patch.len() / 2,
        patch.len() - 1,
    ] {
        let mut mem_old = MemOld::new(&old);
        let mut before = MemNew::new(u32::MAX);
        let mut patcher = Patcher::new();
        patcher
            .feed(&patch[..cut], &mut mem_old, &mut before)
            .unwrap();
        // The state is plain data: a copy saved at the cut carries on from the same byte.
        let mut resumed = patcher.clone();
        let mut after = MemNew::new(u32::MAX);
        after.announced = before.announced;
        after.data = before.data.clone();
        drop(patcher);
        resumed
            .feed(&patch[cut..], &mut mem_old, &mut after)
            .unwrap();
        resumed.finish().unwrap();
        assert_eq!(after.data, new, "cut at {cut}");
    }
}

#[test]
fn hand_encoded_backreferences_decode_as_heatshrink_defines_them() {
    // W 8, L 4: "abc" then a back-reference 3 back, 7 bytes: "abcabcabca".
    let new = b"abcabcabca";
    let mut bits = Bits::default();
    for b in control(0, 10, 0) {
        bits.literal(b);
    }
    for b in b"abc" {
        bits.literal(*b);
    }
    bits.backref(3, 7, 8, 4);
    let mut patch = header_bytes(8, 4, b"", 10, Sha256::digest(new).into());
    patch.extend_from_slice(&bits.finish());
    assert_eq!(delta_maker::apply_patch(b"", &patch), Ok(new.to_vec()));

    // Before the first byte the window holds zeros (heatshrink's decoder starts it so).
    let new = [0u8; 5];
    let mut bits = Bits::default();
    for b in control(0, 5, 0) {
        bits.literal(b);
    }
    // 24 control bytes are in the window; 30 back is before the stream: zeros.
    bits.backref(30, 5, 8, 4);
    let mut patch = header_bytes(8, 4, b"", 5, Sha256::digest(new).into());
    patch.extend_from_slice(&bits.finish());
    assert_eq!(delta_maker::apply_patch(b"", &patch), Ok(new.to_vec()));
}

#[test]
fn the_patcher_state_is_a_fixed_budget() {
    // On thumbv8m.main-none-eabihf it is 1368 bytes (tests/fixtures/src/build.sh measures it);
    // here on the host, with 8-byte usize, a little more. The 1 KB heatshrink window is most.
    let size = core::mem::size_of::<Patcher>();
    println!("size_of::<Patcher>() on this host: {size} bytes");
    assert!(size <= 1024 + 512, "{size}");
}

/// Decodes `stream` with heatshrink-lib's own decoder (the reference implementation's port).
fn reference_decode<const W: usize, const L: usize, const WIN: usize>(stream: &[u8]) -> Vec<u8> {
    use heatshrink::decoder::HeatshrinkDecoder;
    use heatshrink::{Poll, SinkError};
    let mut decoder = Box::new(HeatshrinkDecoder::<W, L, 64, WIN>::new());
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    let mut input = stream;
    loop {
        if !input.is_empty() {
            match decoder.sink(input) {
                Ok(n) => input = &input[n..],
                Err(SinkError::Full) => {}
                Err(SinkError::Misuse) => panic!("decoder misuse"),
            }
        }
        loop {
            match decoder.poll(&mut buf).unwrap() {
                Poll::More(n) => out.extend_from_slice(&buf[..n]),
                Poll::Empty(n) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
            }
        }
        if input.is_empty() {
            return out;
        }
    }
}

#[test]
fn the_kernel_decoder_agrees_with_heatshrink_lib_on_any_stream() {
    use aliot_kernel::ota::delta::inflate::Inflate;
    let mut rng = Rng(0x5eed_0000_0000_0001);
    for round in 0..600 {
        let (w, l) = [(10u8, 8u8), (8, 4), (4, 3), (10, 9)][round % 4];
        let stream = if round % 2 == 0 {
            rng.some_bytes(400)
        } else {
            // Mostly back-references, reaching before the first byte too.
            let mut bits = Bits::default();
            for _ in 0..rng.below(200) {
                if rng.below(3) == 0 {
                    bits.literal(rng.next() as u8);
                } else {
                    let offset = 1 + rng.below(1 << w) as u32;
                    let count = 1 + rng.below(1 << l) as u32;
                    bits.backref(offset, count, w, l);
                }
            }
            bits.finish()
        };
        let reference = match (w, l) {
            (10, 8) => reference_decode::<10, 8, 1024>(&stream),
            (8, 4) => reference_decode::<8, 4, 256>(&stream),
            (4, 3) => reference_decode::<4, 3, 16>(&stream),
            _ => reference_decode::<10, 9, 1024>(&stream),
        };
        let mut ours = Vec::new();
        let mut inflate = Inflate::new(w, l);
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at((1 + rng.below(50)).min(rest.len()));
            inflate
                .feed(piece, &mut |bytes: &[u8]| -> Result<(), ()> {
                    ours.extend_from_slice(bytes);
                    Ok(())
                })
                .unwrap();
            rest = tail;
        }
        assert_eq!(ours, reference, "round {round}: W {w} L {l}");
    }
}

// ---- the header ---------------------------------------------------------------------------

#[test]
fn header_golden_bytes() {
    let header = PatchHeader {
        window_bits: 10,
        lookahead_bits: 8,
        old_len: 0x0001_2345,
        old_sha256: [0xa1; 32],
        new_len: 0x0001_2400,
        new_sha256: [0xb2; 32],
    };
    #[rustfmt::skip]
    let mut expected = vec![
        b'A', b'L', b'D', b'P', // magic
        0x01, 0x00,             // format version 1
        0x0a, 0x08,             // W 10, L 8
        0x45, 0x23, 0x01, 0x00, // old length
    ];
    expected.extend_from_slice(&[0xa1; 32]);
    expected.extend_from_slice(&[0x00, 0x24, 0x01, 0x00]);
    expected.extend_from_slice(&[0xb2; 32]);
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(header.to_bytes().to_vec(), expected);
    assert_eq!(
        PatchHeader::parse(&expected.clone().try_into().unwrap()),
        Ok(header)
    );
}

#[test]
fn make_patch_writes_the_header_of_its_images() {
    let old = b"the running image, version one".to_vec();
    let new = b"the running image, version two!".to_vec();
    let patch = delta_maker::make_patch(&old, &new, 9, 5).unwrap();
    let expected = header_bytes(9, 5, &old, new.len() as u32, Sha256::digest(&new).into());
    assert_eq!(&patch[..HEADER_LEN], &expected[..]);
}

// ---- hostile patches ----------------------------------------------------------------------

/// Nothing reached the update slot: not even `begin`.
fn untouched(new: &MemNew) -> bool {
    new.announced.is_none() && new.writes == 0 && new.data.is_empty()
}

#[test]
fn wrong_base_is_refused_before_anything_is_written() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();

    // Same length, one byte different.
    let mut other = old.clone();
    other[old.len() / 2] ^= 1;
    // A slot shorter than the header's old length, and another build altogether.
    let shorter = old[..old.len() - 1].to_vec();
    let another = fixture("board-1.1.0.bin");
    for (name, base) in [
        ("one byte", &other),
        ("shorter", &shorter),
        ("another build", &another),
    ] {
        for pieces in [&[usize::MAX][..], &[1], &[HEADER_LEN, 5]] {
            let (result, written) = run(base, &patch, pieces);
            assert_eq!(result, Err(PatchError::WrongBase), "{name}");
            assert!(untouched(&written), "{name}: {written:?}");
        }
    }
}

#[test]
fn the_old_image_is_the_slots_first_old_len_bytes() {
    // The active slot is larger than the image in it: what follows the image is not hashed.
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    let mut slot = old.clone();
    slot.extend_from_slice(&[0xff; 4096]);
    let (result, written) = run(&slot, &patch, &[500]);
    assert_eq!(result, Ok(()));
    assert_eq!(written.data, new);
}

#[test]
fn a_new_image_larger_than_the_slot_is_refused_before_writing() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    let slot = MemNew::new(new.len() as u32 - 1);
    let (result, written) = run_into(&old, &patch, &[usize::MAX], slot);
    assert_eq!(result, Err(PatchError::NewTooLarge));
    assert_eq!(written.writes, 0);
}

#[test]
fn truncated_patches_are_refused_at_finish() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    for cut in (0..patch.len()).step_by(7).chain([patch.len() - 1]) {
        let (result, written) = run(&old, &patch[..cut], &[13]);
        assert_eq!(result, Err(PatchError::Truncated), "cut at {cut}");
        assert!(written.data.len() < new.len());
    }
}

#[test]
fn bad_magic_version_and_compression_are_refused() {
    let old = b"old image".to_vec();
    let new = b"new image".to_vec();
    let good = hand_patch(&old, &new, &[control(0, 9, 0), new.clone()].concat());
    assert_eq!(run(&old, &good, &[1]).0, Ok(()));

    let cases: [(usize, u8, PatchError); 8] = [
        (0, b'X', PatchError::BadMagic),
        (3, b'Q', PatchError::BadMagic),
        (4, 2, PatchError::UnsupportedVersion(2)),
        (5, 1, PatchError::UnsupportedVersion(0x0101)),
        (6, 11, PatchError::BadCompression), // window larger than the device's 1 KB
        (6, 3, PatchError::BadCompression),  // window below heatshrink's minimum
        (7, 10, PatchError::BadCompression), // lookahead not below the window
        (7, 2, PatchError::BadCompression),  // lookahead below heatshrink's minimum
    ];
    for (at, value, want) in cases {
        let mut bad = good.clone();
        bad[at] = value;
        let (result, written) = run(&old, &bad, &[5]);
        assert_eq!(result, Err(want), "byte {at} = {value}");
        assert!(untouched(&written));
    }
}

#[test]
fn a_control_past_the_new_length_is_refused_before_its_bytes() {
    let old = vec![7u8; 32];
    let new = vec![1u8; 10];
    for records in [
        control(0, 11, 0),                                         // copy past new_len
        control(11, 0, 0),                                         // mix past new_len
        control(6, 5, 0),                                          // the sum past new_len
        control(u64::MAX, 2, 0),                                   // the sum overflows
        [control(0, 4, 0), vec![1; 4], control(0, 7, 0)].concat(), // the second one
    ] {
        let mut stream = records.clone();
        stream.extend_from_slice(&[1; 16]);
        let patch = hand_patch(&old, &new, &stream);
        let (result, written) = run(&old, &patch, &[3]);
        assert_eq!(result, Err(PatchError::OutOfRange));
        assert!(written.data.len() <= 4, "{}", written.data.len());
    }
}

#[test]
fn a_mix_reading_past_the_old_image_is_refused() {
    let old = vec![7u8; 16];
    let new = vec![8u8; 40];
    for records in [
        control(17, 0, 0),
        [control(10, 0, 0), vec![1; 10], control(7, 0, 0)].concat(),
        // The seek moves past the end (allowed), then a mix reads there.
        [control(0, 1, 20), vec![8], control(1, 0, 0)].concat(),
        // Or to the last byte, and the mix reads two.
        [control(0, 1, 15), vec![8], control(2, 0, 0)].concat(),
    ] {
        let mut stream = records.clone();
        stream.extend_from_slice(&[1; 20]);
        let patch = hand_patch(&old, &new, &stream);
        let (result, written) = run(&old, &patch, &[2]);
        assert_eq!(result, Err(PatchError::OutOfRange));
        assert!(written.data.len() <= 10);
    }
}

#[test]
fn a_seek_to_a_negative_position_is_refused() {
    let old = vec![7u8; 16];
    let new = vec![8u8; 8];
    for records in [
        control(0, 1, -1),
        [control(4, 0, -4), vec![1; 4], control(0, 1, -1)].concat(),
        control(0, 1, i64::MIN + 1),
    ] {
        let mut stream = records.clone();
        stream.extend_from_slice(&[1; 8]);
        let patch = hand_patch(&old, &new, &stream);
        let (result, _) = run(&old, &patch, &[1]);
        assert_eq!(result, Err(PatchError::OutOfRange));
    }
}

#[test]
fn data_after_the_new_image_is_refused() {
    let old = b"old".to_vec();
    let new = b"new image".to_vec();
    let complete = [control(0, 9, 0), new.clone()].concat();
    assert_eq!(
        run(&old, &hand_patch(&old, &new, &complete), &[4]).0,
        Ok(())
    );
    // Another control after the end.
    let extra = [complete.clone(), control(0, 0, 0)].concat();
    assert_eq!(
        run(&old, &hand_patch(&old, &new, &extra), &[4]).0,
        Err(PatchError::TrailingData)
    );
    // One more literal byte after a real patch's stream.
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let mut patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    patch.extend_from_slice(&[0xff, 0xff]);
    assert_eq!(run(&old, &patch, &[64]).0, Err(PatchError::TrailingData));
}

#[test]
fn a_new_image_with_another_digest_is_refused() {
    let old = b"old".to_vec();
    let new = b"new image".to_vec();
    let mut patch = header_bytes(10, 8, &old, 9, Sha256::digest(b"new imagE").into());
    patch.extend_from_slice(&literals(&[control(0, 9, 0), new].concat()));
    assert_eq!(run(&old, &patch, &[7]).0, Err(PatchError::NewDigest));
}

#[test]
fn corrupted_compressed_bytes_are_refused_or_harmless() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    let mut refused = 0;
    let mut tried = 0;
    for at in HEADER_LEN..patch.len() {
        for bit in [0, 3, 7] {
            let mut bad = patch.clone();
            bad[at] ^= 1 << bit;
            let (result, written) = run(&old, &bad, &[100]);
            tried += 1;
            match result {
                // A flip in the last byte's padding, or a back-reference to equal bytes,
                // can decode to the same stream: then the image is the right one.
                Ok(()) => assert_eq!(written.data, new, "byte {at} bit {bit}"),
                Err(e) => {
                    assert_ne!(e, PatchError::Write, "byte {at} bit {bit}");
                    refused += 1;
                }
            }
        }
    }
    // bsdiff's diff bytes are mostly zeros, so many back-references point into zeros and a flip
    // of their index bits changes nothing (about a third here); the rest must be refused.
    println!("{refused} of {tried} single-bit flips refused, the others decode the same");
    assert!(refused * 2 >= tried, "{refused} of {tried} refused");
}

// ---- robustness ---------------------------------------------------------------------------

/// Checks one hostile patch: never a panic (the test would fail), never more than the
/// header's new length written (`MemNew` refuses it with `Write`, which must never come).
fn robust(old: &[u8], patch: &[u8], rng: &mut Rng) {
    let pieces = [1 + rng.below(3), 1 + rng.below(90), 1 + rng.below(3000)];
    let (result, written) = run(old, patch, &pieces);
    assert_ne!(result, Err(PatchError::Write), "wrote past the new length");
    if let Some(len) = written.announced {
        assert!(written.data.len() <= len as usize);
    } else {
        assert_eq!(written.writes, 0);
    }
}

#[test]
fn random_mutations_never_panic_or_overrun() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.1.0.bin"));
    let patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..3000 {
        let mut bad = patch.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly the compressed stream; sometimes the header's lengths.
            let at = if rng.below(10) == 0 {
                rng.below(HEADER_LEN)
            } else {
                HEADER_LEN + rng.below(bad.len() - HEADER_LEN)
            };
            match rng.below(6) {
                0 => bad[at] ^= 1 << rng.below(8),
                1 => bad[at] = rng.next() as u8,
                2 => bad.truncate(at.max(1)),
                3 => {
                    let mut ins = rng.some_bytes(40);
                    ins.push(rng.next() as u8);
                    bad.splice(at..at, ins);
                }
                4 => {
                    let end = (at + 1 + rng.below(40)).min(bad.len());
                    bad.drain(at..end);
                }
                _ => {
                    let end = (at + 1 + rng.below(200)).min(bad.len());
                    let dup = bad[at..end].to_vec();
                    bad.splice(at..at, dup);
                }
            }
            if bad.len() <= HEADER_LEN {
                break;
            }
        }
        // Keep the header's old image right most of the time, so the records are reached.
        if bad.len() >= HEADER_LEN && rng.below(4) != 0 {
            bad[..HEADER_LEN].copy_from_slice(&patch[..HEADER_LEN]);
        }
        robust(&old, &bad, &mut rng);
    }
}

#[test]
fn random_records_never_panic_or_overrun() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let old = rng.bytes(300);
    for _ in 0..3000 {
        let new_len = rng.below(400) as u32;
        let mut records = Vec::new();
        for _ in 0..rng.below(6) {
            let small = |rng: &mut Rng| rng.below(200) as u64;
            let huge = |rng: &mut Rng| rng.next();
            let mix = if rng.below(8) == 0 {
                huge(&mut rng)
            } else {
                small(&mut rng)
            };
            let copy = if rng.below(8) == 0 {
                huge(&mut rng)
            } else {
                small(&mut rng)
            };
            let seek = match rng.below(4) {
                0 => rng.next() as i64,
                1 => -(rng.below(400) as i64),
                _ => rng.below(400) as i64,
            };
            records.extend_from_slice(&control(mix, copy, seek));
            let body = rng.below(300);
            records.extend_from_slice(&rng.bytes(body));
        }
        let (w, l) = [(10, 8), (4, 3), (8, 4), (10, 9)][rng.below(4)];
        // Random bits as the stream (back-references anywhere), or the records as literals.
        let stream = if rng.below(3) == 0 {
            rng.some_bytes(600)
        } else {
            literals(&records)
        };
        let mut patch = header_bytes(w, l, &old, new_len, rng.bytes(32).try_into().unwrap());
        patch.extend_from_slice(&stream);
        robust(&old, &patch, &mut rng);
    }
}

/// Bytes after the end that do not complete a heatshrink token decode to nothing; the patcher
/// once accepted one (or two) of them after a complete patch, though the format says nothing
/// follows the new image. It now counts the bits read since the last token.
#[test]
fn one_trailing_byte_is_refused() {
    let (old, new) = (fixture("board-1.0.0.bin"), fixture("board-1.0.1.bin"));
    let mut patch = delta_maker::make_patch(&old, &new, 10, 8).unwrap();
    patch.push(0);
    assert_eq!(run(&old, &patch, &[64]).0, Err(PatchError::TrailingData));
}
