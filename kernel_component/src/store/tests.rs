//! Host tests of the credential store, over a mock NOR flash written here (not the crate's
//! own), seen through [`BlockingFlash`] as the boards' flashes are.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use futures_executor::block_on;

use super::*;
use crate::credentials::Secret;
use crate::registration::Issued;

// ---------------------------------------------------------------------------------------------
// Mock flash

/// Word size of the mock (nRF9160 NVMC: 4-byte words).
const WORD: usize = 4;

/// NOR flash in RAM with a power switch, read in units of `READ` bytes (the nRF9160: 4; the
/// host's file flash: 1), written in 4-byte words.
///
/// Writes only clear bits; erase sets a page to 0xFF. A word may be written once between
/// erases (the strict reading of the `NorFlash` contract; the nRF9160 allows two), and a
/// second write is counted as a violation. Every word written or erased is one step; with
/// [`CutFlash::cut_after`]`(n)` the power fails at step `n`: that word is torn (a write
/// programs only some of its zero bits, an erase sets only some bits) and every operation
/// after it fails until [`CutFlash::power_on`].
#[derive(Clone)]
struct CutFlash<const PAGE: usize, const READ: usize = WORD> {
    data: Vec<u8>,
    writes: Vec<u8>,
    steps: u64,
    cut_at: Option<u64>,
    powered: bool,
    was_cut: bool,
    violations: u32,
    erased_pages: u32,
    /// A word address whose first byte silently stays erased when written (a bad cell).
    stuck_word: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MockError {
    PowerCut,
    NotAligned,
    OutOfBounds,
    Rewrite,
}

impl NorFlashError for MockError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MockError::NotAligned => NorFlashErrorKind::NotAligned,
            MockError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            MockError::PowerCut | MockError::Rewrite => NorFlashErrorKind::Other,
        }
    }
}

impl<const PAGE: usize, const READ: usize> CutFlash<PAGE, READ> {
    fn new(pages: usize) -> Self {
        Self {
            data: vec![0xFF; pages * PAGE],
            writes: vec![0; pages * PAGE / WORD],
            steps: 0,
            cut_at: None,
            powered: true,
            was_cut: false,
            violations: 0,
            erased_pages: 0,
            stuck_word: None,
        }
    }

    /// The power fails at the `n`-th word written or erased from now (0: the next one).
    fn cut_after(&mut self, n: u64) {
        self.cut_at = Some(self.steps + n);
    }

    fn power_on(&mut self) {
        self.powered = true;
        self.cut_at = None;
    }

    /// Noise for a torn word, the same for the same step.
    fn noise(&self) -> u32 {
        let mut x = self.steps.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x ^ (x >> 32)) as u32
    }

    /// True (and the power off) when this step is the cut.
    fn cut_now(&mut self) -> bool {
        if self.cut_at == Some(self.steps) {
            self.powered = false;
            self.was_cut = true;
            self.cut_at = None;
            true
        } else {
            false
        }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, MockError> {
        if !self.powered {
            return Err(MockError::PowerCut);
        }
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MockError::NotAligned);
        }
        if start + len > self.data.len() {
            return Err(MockError::OutOfBounds);
        }
        Ok(start)
    }
}

impl<const PAGE: usize, const READ: usize> ErrorType for CutFlash<PAGE, READ> {
    type Error = MockError;
}

impl<const PAGE: usize, const READ: usize> ReadNorFlash for CutFlash<PAGE, READ> {
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        let start = self.check(offset, bytes.len(), READ)?;
        bytes.copy_from_slice(&self.data[start..start + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const PAGE: usize, const READ: usize> NorFlash for CutFlash<PAGE, READ> {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(MockError::OutOfBounds)?;
        let start = self.check(from, len, PAGE)?;
        for word in (start..start + len).step_by(WORD) {
            if self.cut_now() {
                let noise = self.noise().to_le_bytes();
                for (byte, n) in self.data[word..word + WORD].iter_mut().zip(noise) {
                    *byte |= n;
                }
                return Err(MockError::PowerCut);
            }
            self.data[word..word + WORD].fill(0xFF);
            self.writes[word / WORD] = 0;
            self.steps += 1;
        }
        self.erased_pages += (len / PAGE) as u32;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        let start = self.check(offset, bytes.len(), WORD)?;
        for (i, chunk) in bytes.chunks_exact(WORD).enumerate() {
            let word = start + i * WORD;
            if self.cut_now() {
                let noise = self.noise().to_le_bytes();
                for ((byte, new), n) in self.data[word..word + WORD]
                    .iter_mut()
                    .zip(chunk)
                    .zip(noise)
                {
                    *byte &= *new | n;
                }
                return Err(MockError::PowerCut);
            }
            if self.writes[word / WORD] >= 1 {
                self.violations += 1;
                return Err(MockError::Rewrite);
            }
            self.writes[word / WORD] += 1;
            for (byte, new) in self.data[word..word + WORD].iter_mut().zip(chunk) {
                *byte &= *new;
            }
            if self.stuck_word == Some(word as u32) {
                self.data[word] = 0xFF;
            }
            self.steps += 1;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

type Store<const PAGE: usize, const READ: usize = WORD> =
    CredentialStore<BlockingFlash<CutFlash<PAGE, READ>>>;

/// A small page, so rotations come after a few saves.
const SMALL: usize = 1024;
/// The nRF9160's page.
const NRF: usize = 4096;

const PK: &str = "a1B2c3D4e5F";
const DN: &str = "sensor-0001";

fn partition(first_page: u32, pages: u32, page: usize) -> FlashPartition {
    FlashPartition {
        offset: first_page * page as u32,
        size: pages * page as u32,
        erase_page: page as u32,
    }
}

fn store<const PAGE: usize, const READ: usize>(
    flash: CutFlash<PAGE, READ>,
    part: FlashPartition,
) -> Store<PAGE, READ> {
    CredentialStore::new(BlockingFlash::new(flash), part).unwrap()
}

fn flash_of<const PAGE: usize, const READ: usize>(
    store: Store<PAGE, READ>,
) -> CutFlash<PAGE, READ> {
    store.into_flash().into_inner()
}

fn device_secret(pk: &str, dn: &str, secret: &[u8]) -> StoredCredentials {
    StoredCredentials {
        product_key: pk.to_string(),
        device_name: dn.to_string(),
        issued: Issued::DeviceSecret(Secret::new(secret.to_vec())),
    }
}

fn token(pk: &str, dn: &str, client_id: &str, token: &[u8]) -> StoredCredentials {
    StoredCredentials {
        product_key: pk.to_string(),
        device_name: dn.to_string(),
        issued: Issued::Token {
            client_id: client_id.to_string(),
            token: Secret::new(token.to_vec()),
        },
    }
}

/// The `i`-th of a series of distinct records of varied kinds and lengths.
fn nth(i: usize) -> StoredCredentials {
    let secret: Vec<u8> = (0..(8 + (i * 37) % 120)).map(|b| (b + i) as u8).collect();
    if i.is_multiple_of(3) {
        token(PK, DN, &format!("client-{i}"), &secret)
    } else {
        device_secret(PK, DN, &secret)
    }
}

fn same(a: &StoredCredentials, b: &StoredCredentials) -> bool {
    a.product_key == b.product_key
        && a.device_name == b.device_name
        && match (&a.issued, &b.issued) {
            (Issued::DeviceSecret(x), Issued::DeviceSecret(y)) => x.expose() == y.expose(),
            (
                Issued::Token {
                    client_id: c1,
                    token: t1,
                },
                Issued::Token {
                    client_id: c2,
                    token: t2,
                },
            ) => c1 == c2 && t1.expose() == t2.expose(),
            _ => false,
        }
}

/// For assertion messages (test secrets are not secret).
fn describe(result: &Result<Option<StoredCredentials>, StoreError>) -> String {
    match result {
        Err(e) => format!("Err({e:?})"),
        Ok(None) => "Ok(None)".to_string(),
        Ok(Some(c)) => match &c.issued {
            Issued::DeviceSecret(s) => format!(
                "Ok({}/{} secret {:02x?})",
                c.product_key,
                c.device_name,
                s.expose()
            ),
            Issued::Token { client_id, token } => format!(
                "Ok({}/{} token {client_id} {:02x?})",
                c.product_key,
                c.device_name,
                token.expose()
            ),
        },
    }
}

fn assert_loads<const PAGE: usize, const READ: usize>(
    store: &mut Store<PAGE, READ>,
    expected: &StoredCredentials,
) {
    let loaded = block_on(store.load(&expected.product_key, &expected.device_name));
    assert!(
        matches!(&loaded, Ok(Some(c)) if same(c, expected)),
        "loaded {}",
        describe(&loaded)
    );
}

/// The record bytes, built by hand from the layout in `record.rs`.
fn record_bytes(kind: u8, pk: &str, dn: &str, client_id: &str, secret: &[u8]) -> Vec<u8> {
    let mut out = vec![1, kind];
    for field in [pk.as_bytes(), dn.as_bytes(), client_id.as_bytes(), secret] {
        out.push(field.len() as u8);
        out.extend_from_slice(field);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Record format

#[test]
fn record_format_is_as_documented() {
    let mut out = [0u8; MAX_RECORD];
    let len = record::encode(&device_secret(PK, DN, b"0123456789abcdef"), &mut out).unwrap();
    let mut expected = vec![1u8, 1, 11];
    expected.extend_from_slice(b"a1B2c3D4e5F");
    expected.push(11);
    expected.extend_from_slice(b"sensor-0001");
    expected.push(0);
    expected.push(16);
    expected.extend_from_slice(b"0123456789abcdef");
    assert_eq!(&out[..len], &expected[..]);

    let len = record::encode(&token("pk", "dn", "cid", b"tok"), &mut out).unwrap();
    assert_eq!(
        &out[..len],
        &[
            1, 2, 2, b'p', b'k', 2, b'd', b'n', 3, b'c', b'i', b'd', 3, b't', b'o', b'k'
        ][..]
    );
    let back = record::decode(&out[..len]).unwrap();
    assert!(same(&back, &token("pk", "dn", "cid", b"tok")));

    // The largest record is MAX_RECORD bytes.
    let big = token(
        &"p".repeat(MAX_PRODUCT_KEY),
        &"d".repeat(MAX_DEVICE_NAME),
        &"c".repeat(MAX_CLIENT_ID),
        &[7; MAX_SECRET],
    );
    assert_eq!(record::encode(&big, &mut out).unwrap(), MAX_RECORD);
    assert!(same(&record::decode(&out).unwrap(), &big));
}

#[test]
fn records_that_do_not_parse_are_corrupt() {
    let good = record_bytes(1, PK, DN, "", b"secret");
    assert!(record::decode(&good).is_ok());
    // Every strict prefix is short; one byte more is trailing garbage.
    for len in 0..good.len() {
        assert_eq!(
            record::decode(&good[..len]).err(),
            Some(StoreError::Corrupt),
            "prefix {len}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("trailing byte", trailing),
        ("version 0", [&[0u8][..], &good[1..]].concat()),
        ("version 2", [&[2u8][..], &good[1..]].concat()),
        ("version 0xff", [&[0xFFu8][..], &good[1..]].concat()),
        ("kind 0", record_bytes(0, PK, DN, "", b"s")),
        ("kind 3", record_bytes(3, PK, DN, "", b"s")),
        (
            "device secret with client id",
            record_bytes(1, PK, DN, "c", b"s"),
        ),
        (
            "product key too long",
            record_bytes(1, &"p".repeat(33), DN, "", b"s"),
        ),
        (
            "device name too long",
            record_bytes(1, PK, &"d".repeat(33), "", b"s"),
        ),
        (
            "client id too long",
            record_bytes(2, PK, DN, &"c".repeat(65), b"s"),
        ),
        ("secret too long", record_bytes(1, PK, DN, "", &[1; 129])),
        ("length past the end", vec![1, 1, 200, b'a']),
    ];
    for (what, bytes) in cases {
        assert_eq!(
            record::decode(&bytes).err(),
            Some(StoreError::Corrupt),
            "{what}"
        );
    }
    // Text that is not UTF-8.
    let mut bad = record_bytes(2, PK, DN, "cid", b"t");
    bad[3] = 0xC3; // first byte of the product key: a lone lead byte
    assert_eq!(record::decode(&bad).err(), Some(StoreError::Corrupt));
}

// ---------------------------------------------------------------------------------------------
// Store

#[test]
fn round_trip_both_kinds_and_other_devices_get_none() {
    // The partition is pages 1..3 of a 4-page flash: nothing outside it may change.
    let part = partition(1, 2, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(4), part);
    assert!(matches!(block_on(s.load(PK, DN)), Ok(None)));

    let secret = device_secret(PK, DN, b"0123456789abcdef0123456789abcdef");
    block_on(s.save(&secret)).unwrap();
    assert_loads(&mut s, &secret);

    let tok = token(PK, DN, "cid.0001", &[0xA5; 48]);
    block_on(s.save(&tok)).unwrap();
    assert_loads(&mut s, &tok);
    // After a reboot too.
    let mut s = store(flash_of(s), part);
    assert_loads(&mut s, &tok);

    // Another ProductKey or DeviceName: nothing for them.
    assert!(matches!(block_on(s.load("otherPK0000", DN)), Ok(None)));
    assert!(matches!(block_on(s.load(PK, "sensor-0002")), Ok(None)));
    assert!(matches!(block_on(s.load(PK, "")), Ok(None)));

    let flash = flash_of(s);
    assert!(flash.data[..SMALL].iter().all(|b| *b == 0xFF));
    assert!(flash.data[3 * SMALL..].iter().all(|b| *b == 0xFF));
    assert_eq!(flash.violations, 0);
}

#[test]
fn on_flash_item_is_the_record_and_its_footprint_is_measured() {
    let part = partition(0, 2, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(2), part);
    let a = device_secret(PK, "device-name-0016", &[0x33; 32]);
    let b = token(PK, DN, "cid", b"tok");
    block_on(s.save(&a)).unwrap();
    block_on(s.save(&b)).unwrap();
    let flash = flash_of(s);
    let d = &flash.data;
    let a_bytes = record_bytes(1, PK, "device-name-0016", "", &[0x33; 32]);
    let b_bytes = record_bytes(2, PK, DN, "cid", b"tok");
    assert_eq!(a_bytes.len(), 65);
    // Page 0: a 4-byte state word, then the item: data CRC (4), length (2), length CRC (2),
    // then the key byte and the record.
    let first = 4;
    assert_eq!(&d[first + 4..first + 6], &(66u16).to_le_bytes());
    assert_eq!(d[first + 8], CREDENTIALS_KEY);
    assert_eq!(&d[first + 9..first + 9 + 65], &a_bytes[..]);
    // The next item starts 8 + 68 = 76 bytes later: the flash cost of this record.
    let second = first + 76;
    assert_eq!(
        &d[second + 4..second + 6],
        &((1 + b_bytes.len()) as u16).to_le_bytes()
    );
    assert_eq!(&d[second + 9..second + 9 + b_bytes.len()], &b_bytes[..]);
    assert_eq!(
        Map::<BlockingFlash<CutFlash<SMALL>>>::item_overhead_size(),
        8,
        "item header"
    );
}

#[test]
fn too_large_fields_are_refused_and_the_old_record_stays() {
    let part = partition(0, 2, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(2), part);
    let old = device_secret(PK, DN, b"old-secret");
    block_on(s.save(&old)).unwrap();
    let before = flash_of(s);
    let mut s = store(before.clone(), part);

    let too_large = [
        device_secret(&"p".repeat(MAX_PRODUCT_KEY + 1), DN, b"s"),
        device_secret(PK, &"d".repeat(MAX_DEVICE_NAME + 1), b"s"),
        device_secret(PK, DN, &[1; MAX_SECRET + 1]),
        token(PK, DN, &"c".repeat(MAX_CLIENT_ID + 1), b"t"),
        token(PK, DN, "cid", &[1; MAX_SECRET + 1]),
    ];
    for creds in &too_large {
        assert_eq!(block_on(s.save(creds)), Err(StoreError::TooLarge));
    }
    assert_loads(&mut s, &old);
    let after = flash_of(s);
    assert_eq!(before.data, after.data, "nothing was written");

    // At the caps exactly, it fits.
    let mut s = store(after, part);
    let biggest = token(
        &"p".repeat(MAX_PRODUCT_KEY),
        &"d".repeat(MAX_DEVICE_NAME),
        &"c".repeat(MAX_CLIENT_ID),
        &[9; MAX_SECRET],
    );
    block_on(s.save(&biggest)).unwrap();
    assert_loads(&mut s, &biggest);
}

#[test]
fn fresh_and_wiped_partitions_hold_nothing() {
    let part = partition(0, 3, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(3), part);
    assert!(matches!(block_on(s.load(PK, DN)), Ok(None)));
    block_on(s.save(&nth(1))).unwrap();
    block_on(s.wipe()).unwrap();
    assert!(matches!(block_on(s.load(PK, DN)), Ok(None)));
    let flash = flash_of(s);
    assert!(
        flash.data.iter().all(|b| *b == 0xFF),
        "wipe erases everything"
    );
}

#[test]
fn garbage_partition_gives_a_clear_result_and_wipe_recovers_it() {
    let part = partition(1, 2, SMALL);
    let mut outcomes = Vec::new();
    for seed in 0..64u64 {
        let mut flash = CutFlash::<SMALL>::new(4);
        // Seed 0: all zeroes (every page reads as closed); the others: pseudo-random bytes.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for byte in &mut flash.data[SMALL..3 * SMALL] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = if seed == 0 { 0 } else { x as u8 };
        }
        let mut s = store(flash, part);
        let loaded = block_on(s.load(PK, DN));
        assert!(
            matches!(loaded, Ok(None) | Err(StoreError::Corrupt)),
            "seed {seed}: {}",
            describe(&loaded)
        );
        if seed == 0 {
            assert!(matches!(loaded, Err(StoreError::Corrupt)));
        }
        outcomes.push(loaded.is_ok());
        // A save on garbage may fail, but must not panic or report success falsely.
        if block_on(s.save(&nth(seed as usize))).is_ok() {
            assert_loads(&mut s, &nth(seed as usize));
        }
        block_on(s.wipe()).unwrap();
        assert!(matches!(block_on(s.load(PK, DN)), Ok(None)));
        block_on(s.save(&nth(7))).unwrap();
        assert_loads(&mut s, &nth(7));
        let flash = flash_of(s);
        assert!(flash.data[..SMALL].iter().all(|b| *b == 0xFF));
        assert!(flash.data[3 * SMALL..].iter().all(|b| *b == 0xFF));
    }
    assert!(outcomes.contains(&false), "some garbage reads as corrupt");
}

#[test]
fn unknown_version_on_flash_is_corrupt_and_a_save_replaces_it() {
    let part = partition(0, 2, SMALL);
    // Written by "a newer firmware": the same key, format version 2.
    let mut future = record_bytes(1, PK, DN, "", b"secret");
    future[0] = 2;
    let mut map = MapStorage::<u8, _, _>::new(
        BlockingFlash::new(CutFlash::<SMALL>::new(2)),
        MapConfig::try_new(0..2 * SMALL as u32).unwrap(),
        Cache::new_uncached(),
    );
    let mut buf = [0u8; WORK_BUFFER];
    block_on(map.store_item(&mut buf, &CREDENTIALS_KEY, &&future[..])).unwrap();
    let mut s = store(map.destroy().0.into_inner(), part);
    assert_eq!(block_on(s.load(PK, DN)).err(), Some(StoreError::Corrupt));
    let new = nth(4);
    block_on(s.save(&new)).unwrap();
    assert_loads(&mut s, &new);
}

#[test]
fn a_record_that_does_not_read_back_is_reported_and_the_old_one_stays() {
    let part = partition(0, 2, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(2), part);
    let old = nth(1);
    block_on(s.save(&old)).unwrap();
    let mut flash = flash_of(s);
    // The next item goes after the state word and the first item; a cell in its data is bad.
    let old_len = record::encode(&old, &mut [0; MAX_RECORD]).unwrap();
    let next_item = 4 + 8 + (1 + old_len).next_multiple_of(WORD);
    flash.stuck_word = Some((next_item + 8 + 4) as u32);
    let mut s = store(flash, part);
    let new = nth(2);
    assert_eq!(block_on(s.save(&new)), Err(StoreError::ReadBack));
    assert_loads(&mut s, &old);
}

#[test]
fn partitions_that_do_not_fit_the_flash_are_refused() {
    let bad = |flash: CutFlash<SMALL>, part: FlashPartition| {
        matches!(
            CredentialStore::new(BlockingFlash::new(flash), part),
            Err(StoreError::BadPartition)
        )
    };
    let p = SMALL as u32;
    let part = |offset, size, erase_page| FlashPartition {
        offset,
        size,
        erase_page,
    };
    assert!(
        bad(CutFlash::new(4), part(4, 2 * p, p)),
        "offset not aligned"
    );
    assert!(
        bad(CutFlash::new(4), part(0, 2 * p + 4, p)),
        "size not aligned"
    );
    assert!(bad(CutFlash::new(4), part(0, p, p)), "one page");
    assert!(bad(CutFlash::new(4), part(0, 0, p)), "no page");
    assert!(
        bad(CutFlash::new(4), part(0, 2 * p, 2 * p)),
        "erase page differs"
    );
    assert!(bad(CutFlash::new(4), part(0, 2 * p, 0)), "erase page zero");
    assert!(
        bad(CutFlash::new(4), part(3 * p, 2 * p, p)),
        "past the flash"
    );
    assert!(
        bad(CutFlash::new(4), part(u32::MAX - p + 1, 2 * p, p)),
        "overflows"
    );
    assert!(
        !bad(CutFlash::new(4), part(2 * p, 2 * p, p)),
        "the last two pages fit"
    );
    // A 512-byte page cannot hold two of the largest records.
    assert!(matches!(
        CredentialStore::new(
            BlockingFlash::new(CutFlash::<512>::new(4)),
            partition(0, 2, 512)
        ),
        Err(StoreError::BadPartition)
    ));
    // The partition check on its own (the crate checks the page count too).
    assert!(check_partition(&partition(0, 1, NRF), NRF, 4, 2 * NRF, 8).is_err());
    // A 32-byte flash word still fits the work buffer.
    assert!(check_partition(&partition(0, 2, NRF), NRF, 32, 2 * NRF, 32).is_ok());
    assert!(check_partition(&partition(0, 2, NRF), NRF, 1024, 2 * NRF, 32).is_err());
}

#[test]
fn buffers_are_zeroized_after_every_operation() {
    let part = partition(0, 2, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(2), part);
    let creds = token(PK, DN, "cid", &[0xEE; 64]);
    let clear =
        |s: &Store<SMALL>| s.record.iter().all(|b| *b == 0) && s.work.0.iter().all(|b| *b == 0);
    block_on(s.save(&creds)).unwrap();
    assert!(clear(&s), "after save");
    assert!(block_on(s.load(PK, DN)).unwrap().is_some());
    assert!(clear(&s), "after load");
    assert!(block_on(s.load(PK, "other")).unwrap().is_none());
    assert!(clear(&s), "after a load for another device");
    let mut flash = flash_of(s);
    flash.cut_after(3);
    let mut s = store(flash, part);
    assert!(block_on(s.save(&creds)).is_err());
    assert!(clear(&s), "after a failed save");
}

#[test]
fn works_on_a_flash_read_byte_by_byte_like_the_host_file_flash() {
    // The host board's file flash reads single bytes and writes 4-byte words.
    let part = partition(0, 2, SMALL);
    let mut s = store(CutFlash::<SMALL, 1>::new(2), part);
    for i in 0..40 {
        block_on(s.save(&nth(i))).unwrap();
    }
    assert_loads(&mut s, &nth(39));
    let base = flash_of(s);
    assert!(base.erased_pages > 0);
    // Power cut at every step of one more save, on pages that have already rotated.
    let new = nth(40);
    for n in 0.. {
        let mut flash = base.clone();
        flash.cut_after(n);
        let mut s = store(flash, part);
        let saved = block_on(s.save(&new));
        let mut flash = flash_of(s);
        if !flash.was_cut {
            saved.unwrap();
            break;
        }
        flash.power_on();
        let mut s = store(flash, part);
        let loaded = block_on(s.load(PK, DN));
        assert!(
            matches!(&loaded, Ok(Some(c)) if same(c, &nth(39)) || same(c, &new)),
            "cut at {n}: {}",
            describe(&loaded)
        );
    }
    let mut s = store(base, part);
    block_on(s.wipe()).unwrap();
    assert!(matches!(block_on(s.load(PK, DN)), Ok(None)));
}

#[test]
fn errors_display_without_secrets() {
    let all = [
        StoreError::Flash,
        StoreError::Corrupt,
        StoreError::TooLarge,
        StoreError::BadPartition,
        StoreError::ReadBack,
    ];
    let texts: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    for (i, text) in texts.iter().enumerate() {
        assert!(text.starts_with("credential store: "), "{text}");
        assert!(!texts[..i].contains(text), "distinct: {text}");
    }
}

#[test]
fn many_saves_rotate_pages_and_the_last_record_survives() {
    fn run<const PAGE: usize>(pages: u32) {
        let part = partition(0, pages, PAGE);
        let mut s = store(CutFlash::<PAGE>::new(pages as usize), part);
        for i in 0..400 {
            block_on(s.save(&nth(i))).unwrap();
            assert_loads(&mut s, &nth(i));
            if i % 50 == 49 {
                s = store(flash_of(s), part);
                assert_loads(&mut s, &nth(i));
            }
        }
        let flash = flash_of(s);
        // 400 records of ~110 bytes are ~11 pages: more than a full turn of the partition.
        assert!(
            flash.erased_pages > pages,
            "{pages} pages: {} erased",
            flash.erased_pages
        );
        assert_eq!(flash.violations, 0);
    }
    run::<NRF>(2);
    run::<NRF>(4);
}

// ---------------------------------------------------------------------------------------------
// Power cuts

/// A flash with `prefill` records saved (the last one being the "old" record), or empty.
fn prefilled(pages: u32, prefill: usize) -> (CutFlash<SMALL>, Option<StoredCredentials>) {
    let part = partition(0, pages, SMALL);
    let mut s = store(CutFlash::<SMALL>::new(pages as usize), part);
    for i in 0..prefill {
        block_on(s.save(&nth(100 + i))).unwrap();
    }
    let old = prefill.checked_sub(1).map(|i| nth(100 + i));
    (flash_of(s), old)
}

/// Cuts the power at every step of `save(new)` on `base`, until a save completes uncut.
/// After each cut: reboot, and the load must give exactly the old or the new record (`None`
/// only when there was no old one); a further save must succeed and load. When that first
/// load repairs the partition (the crate writes or erases in a load that finds an interrupted
/// operation), the power is cut at every step of the repair too, and the load after that must
/// give the same record. Returns the number of cut points in the save and in repairs.
fn cut_every_step_of_save(
    base: &CutFlash<SMALL>,
    pages: u32,
    old: Option<&StoredCredentials>,
) -> (u64, u64) {
    let part = partition(0, pages, SMALL);
    let new = token(PK, DN, "cid-new", &[0x5A; 40]);
    let newer = device_secret(PK, DN, &[0x77; 32]);
    let mut seen_new = false;
    let mut repair_cuts = 0;
    for n in 0.. {
        let mut flash = base.clone();
        flash.cut_after(n);
        let mut s = store(flash, part);
        let saved = block_on(s.save(&new));
        let mut flash = flash_of(s);
        if !flash.was_cut {
            saved.unwrap();
            assert_eq!(flash.violations, 0);
            return (n, repair_cuts);
        }
        assert_eq!(saved, Err(StoreError::Flash), "cut at {n}");
        flash.power_on();
        let rebooted = flash.clone();
        let mut s = store(flash, part);
        let loaded = block_on(s.load(PK, DN));
        let is_new = matches!(&loaded, Ok(Some(c)) if same(c, &new));
        let ok = match &loaded {
            Ok(Some(_)) if is_new => true,
            // Once the new record was seen, a later cut must not bring the old one back.
            Ok(Some(c)) => !seen_new && old.is_some_and(|old| same(c, old)),
            Ok(None) => !seen_new && old.is_none(),
            Err(_) => false,
        };
        assert!(ok, "cut at {n}: loaded {}", describe(&loaded));
        seen_new |= is_new;

        let mut after_load = flash_of(s);
        let repair_steps = after_load.steps - rebooted.steps;
        for m in 0..repair_steps {
            let mut flash = rebooted.clone();
            flash.cut_after(m);
            let mut s = store(flash, part);
            let _ = block_on(s.load(PK, DN));
            let mut flash = flash_of(s);
            assert!(flash.was_cut);
            flash.power_on();
            let mut s = store(flash, part);
            let again = block_on(s.load(PK, DN));
            let same_result = match (&again, &loaded) {
                (Ok(Some(a)), Ok(Some(b))) => same(a, b),
                (Ok(None), Ok(None)) => true,
                _ => false,
            };
            assert!(
                same_result,
                "cut at {n}, repair cut at {m}: {} then {}",
                describe(&loaded),
                describe(&again)
            );
            repair_cuts += 1;
        }

        after_load.cut_at = None;
        let mut s = store(after_load, part);
        block_on(s.save(&newer)).unwrap_or_else(|e| panic!("cut at {n}: next save: {e:?}"));
        assert_loads(&mut s, &newer);
        let mut s = store(flash_of(s), part);
        assert_loads(&mut s, &newer);
        assert_eq!(flash_of(s).violations, 0, "cut at {n}");
    }
    unreachable!()
}

#[test]
fn power_cut_at_any_step_of_a_save_keeps_the_old_or_the_new_record() {
    let mut total = 0;
    let mut longest = 0;
    let mut repairs = 0;
    for pages in [2u32, 3] {
        // From an empty partition, then from 1..=30 saved records: past a full turn of the
        // pages, so cuts fall into page closes, copies of the live record and erases.
        for prefill in 0..=30 {
            let (base, old) = prefilled(pages, prefill);
            let (cuts, repair_cuts) = cut_every_step_of_save(&base, pages, old.as_ref());
            total += cuts;
            longest = longest.max(cuts);
            repairs += repair_cuts;
        }
    }
    // A plain append is ~20 word writes; a save that rotates also erases a 256-word page.
    assert!(
        longest > (SMALL / WORD) as u64,
        "longest save: {longest} steps"
    );
    assert!(total > 2000, "{total} cut points");
    // Cuts in erases leave half-erased pages, which the next load repairs.
    assert!(repairs > 10_000, "{repairs} cut points in repairs");
}

#[test]
fn power_cut_at_any_step_of_a_wipe_leaves_the_old_record_or_none() {
    let mut total = 0;
    let mut runs = 0;
    let mut save_cuts = 0;
    // Prefills that leave the partially written page first, in the middle and last, some
    // after the map has wrapped round (older copies in other pages).
    for (pages, prefill) in [(2, 1), (2, 12), (2, 20), (3, 1), (3, 20), (3, 30), (3, 40)] {
        runs += 1;
        let part = partition(0, pages, SMALL);
        let (base, old) = prefilled(pages, prefill);
        let old = old.unwrap();
        let new = nth(999);
        let mut seen_none = false;
        for n in 0.. {
            let mut flash = base.clone();
            flash.cut_after(n);
            let mut s = store(flash, part);
            let wiped = block_on(s.wipe());
            let mut flash = flash_of(s);
            if !flash.was_cut {
                wiped.unwrap();
                total += n;
                break;
            }
            assert_eq!(wiped, Err(StoreError::Flash));
            flash.power_on();
            let mut s = store(flash, part);
            let loaded = block_on(s.load(PK, DN));
            let ok = match &loaded {
                Ok(Some(c)) => !seen_none && same(c, &old),
                Ok(None) => {
                    seen_none = true;
                    true
                }
                Err(_) => false,
            };
            assert!(ok, "prefill {prefill}, cut at {n}: {}", describe(&loaded));

            // The next save (which may first erase a half-erased page) cut at every step:
            // what loads after it is what loaded before it, or the new record.
            let before_save = flash_of(s);
            let mut s = store(before_save.clone(), part);
            block_on(s.save(&new)).unwrap_or_else(|e| panic!("cut at {n}: next save: {e:?}"));
            assert_loads(&mut s, &new);
            let flash = flash_of(s);
            assert_eq!(flash.violations, 0);
            for m in 0..flash.steps - before_save.steps {
                let mut flash = before_save.clone();
                flash.cut_after(m);
                let mut s = store(flash, part);
                assert_eq!(block_on(s.save(&new)), Err(StoreError::Flash));
                let mut flash = flash_of(s);
                flash.power_on();
                let mut s = store(flash, part);
                let again = block_on(s.load(PK, DN));
                let ok = match (&again, &loaded) {
                    (Ok(Some(a)), _) if same(a, &new) => true,
                    (Ok(Some(a)), Ok(Some(b))) => same(a, b),
                    (Ok(None), Ok(None)) => true,
                    _ => false,
                };
                assert!(
                    ok,
                    "prefill {prefill}, cut at {n}, save cut at {m}: {}",
                    describe(&again)
                );
                block_on(s.save(&new)).unwrap();
                assert_loads(&mut s, &new);
                assert_eq!(flash_of(s).violations, 0);
                save_cuts += 1;
            }
        }
    }
    // Each wipe erases every page word by word (and may write one state word).
    assert!(
        total >= runs * 2 * (SMALL / WORD) as u64,
        "{total} cut points"
    );
    // After most cuts the next save first erases a half-erased page.
    assert!(
        save_cuts > 10_000,
        "{save_cuts} cut points in the next saves"
    );
}

#[test]
fn the_partition_splits_into_provisioned_and_registered_halves_of_whole_pages() {
    let p = FlashPartition {
        offset: 0xF_A000,
        size: 5 * 4096,
        erase_page: 4096,
    };
    let (low, high) = provisioned_and_registered(p).unwrap();
    assert_eq!((low.offset, low.size), (0xF_A000, 2 * 4096));
    assert_eq!((high.offset, high.size), (0xF_C000, 3 * 4096));
    assert_eq!(low.erase_page, 4096);
    assert!(
        provisioned_and_registered(FlashPartition {
            size: 3 * 4096,
            ..p
        })
        .is_none()
    );
    assert!(provisioned_and_registered(FlashPartition { erase_page: 0, ..p }).is_none());
}
