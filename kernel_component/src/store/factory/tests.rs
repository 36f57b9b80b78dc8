use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;

use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};

use super::*;
use crate::credentials::Secret;
use crate::registration::Issued;

/// Flash in RAM that reads whole `READ`-byte words only (as the NVMC's contract allows).
struct RamFlash<const READ: usize> {
    bytes: Vec<u8>,
    reads: usize,
}

impl<const READ: usize> RamFlash<READ> {
    fn with(at: usize, content: &[u8], size: usize) -> Self {
        let mut bytes = vec![0xFF; size];
        bytes[at..at + content.len()].copy_from_slice(content);
        Self { bytes, reads: 0 }
    }
}

impl<const READ: usize> ErrorType for RamFlash<READ> {
    type Error = core::convert::Infallible;
}

impl<const READ: usize> ReadNorFlash for RamFlash<READ> {
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), Infallible> {
        assert_eq!(offset as usize % READ, 0, "unaligned read offset");
        assert_eq!(out.len() % READ, 0, "unaligned read length");
        let at = offset as usize;
        out.copy_from_slice(&self.bytes[at..at + out.len()]);
        self.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

const PART: FlashPartition = FlashPartition {
    offset: 0x2000,
    size: 0x2000,
    erase_page: 0x1000,
};

fn device(secret: &str) -> StoredCredentials {
    StoredCredentials {
        product_key: "a1ExamplePk".into(),
        device_name: "nrf9160-0004".into(),
        issued: Issued::DeviceSecret(Secret::from(String::from(secret))),
    }
}

fn read<const R: usize>(flash: &mut RamFlash<R>) -> Result<Option<StoredCredentials>, StoreError> {
    read_factory(flash, PART, "a1ExamplePk", "nrf9160-0004")
}

#[test]
fn crc32_is_the_ieee_crc() {
    // The CRC catalogue's check value for CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn the_record_is_laid_out_as_documented() {
    let bytes = factory_record(&device("s3")).unwrap();
    // Record (record.rs): version 1, kind 1, "a1ExamplePk", "nrf9160-0004", no clientId, "s3".
    let mut rec = vec![1u8, 1, 11];
    rec.extend_from_slice(b"a1ExamplePk");
    rec.push(12);
    rec.extend_from_slice(b"nrf9160-0004");
    rec.extend_from_slice(&[0, 2]);
    rec.extend_from_slice(b"s3");
    let mut want = b"ALFR".to_vec();
    want.extend_from_slice(&[1, 0, rec.len() as u8, 0]);
    want.extend_from_slice(&rec);
    let crc = crc32(&want);
    want.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes, want);
}

#[test]
fn a_written_record_reads_back_with_any_read_word() {
    let bytes = factory_record(&device("the-device-secret")).unwrap();
    let mut one = RamFlash::<1>::with(PART.offset as usize, &bytes, 0x4000);
    let mut four = RamFlash::<4>::with(PART.offset as usize, &bytes, 0x4000);
    let mut thirty_two = RamFlash::<32>::with(PART.offset as usize, &bytes, 0x4000);
    for got in [read(&mut one), read(&mut four), read(&mut thirty_two)] {
        let creds = got.unwrap().expect("a record");
        assert_eq!(creds.product_key, "a1ExamplePk");
        assert_eq!(creds.device_name, "nrf9160-0004");
        match creds.issued {
            Issued::DeviceSecret(s) => assert_eq!(s.expose(), b"the-device-secret"),
            Issued::Token { .. } => panic!("a token"),
        }
    }
    assert_eq!(one.reads, 1, "one read of the whole window");
}

#[test]
fn a_token_record_reads_back() {
    let creds = StoredCredentials {
        issued: Issued::Token {
            client_id: "cid".into(),
            token: Secret::from(String::from("tok")),
        },
        ..device("")
    };
    let bytes = factory_record(&creds).unwrap();
    let mut flash = RamFlash::<4>::with(PART.offset as usize, &bytes, 0x4000);
    match read(&mut flash).unwrap().expect("a record").issued {
        Issued::Token { client_id, token } => {
            assert_eq!(client_id, "cid");
            assert_eq!(token.expose(), b"tok");
        }
        Issued::DeviceSecret(_) => panic!("a DeviceSecret"),
    }
}

#[test]
fn an_erased_half_holds_nothing() {
    let mut flash = RamFlash::<4>::with(0, &[], 0x4000);
    assert!(read(&mut flash).unwrap().is_none());
}

#[test]
fn a_record_for_another_device_is_ignored() {
    let bytes = factory_record(&device("s")).unwrap();
    let mut flash = RamFlash::<4>::with(PART.offset as usize, &bytes, 0x4000);
    let got = read_factory(&mut flash, PART, "a1ExamplePk", "another-device").unwrap();
    assert!(got.is_none());
}

#[test]
fn damaged_records_are_refused() {
    let good = factory_record(&device("secret")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut magic = good.clone();
    magic[0] = b'X';
    cases.push(("magic", magic));
    let mut layout = good.clone();
    layout[4] = 2;
    cases.push(("layout", layout));
    let mut reserved = good.clone();
    reserved[5] = 1;
    cases.push(("reserved", reserved));
    let mut flipped = good.clone();
    flipped[12] ^= 0x01;
    cases.push(("a record byte", flipped));
    let mut crc = good.clone();
    let last = crc.len() - 1;
    crc[last] ^= 0x80;
    cases.push(("the CRC", crc));
    let mut zero = good.clone();
    zero[6] = 0;
    zero[7] = 0;
    cases.push(("length 0", zero));
    let mut long = good.clone();
    long[6..8].copy_from_slice(&((MAX_RECORD + 1) as u16).to_le_bytes());
    cases.push(("length over the cap", long));
    for (what, bytes) in cases {
        let mut flash = RamFlash::<4>::with(PART.offset as usize, &bytes, 0x4000);
        assert_eq!(read(&mut flash).err(), Some(StoreError::Corrupt), "{what}");
    }
}

#[test]
fn a_record_cut_by_the_end_of_the_partition_is_refused() {
    let bytes = factory_record(&device("a-longer-secret-than-fits")).unwrap();
    let small = FlashPartition { size: 32, ..PART };
    let mut flash = RamFlash::<4>::with(PART.offset as usize, &bytes, 0x4000);
    let got = read_factory(&mut flash, small, "a1ExamplePk", "nrf9160-0004");
    assert_eq!(got.err(), Some(StoreError::Corrupt));
}

#[test]
fn a_field_over_its_cap_is_not_written() {
    let long = "x".repeat(record::MAX_SECRET + 1);
    assert_eq!(
        factory_record(&device(&long)).err(),
        Some(StoreError::TooLarge)
    );
}
