//! The provisioned half's factory record (`aliot_kernel::store::read_factory`) on arbitrary
//! flash contents: what the nRF9160 DK reads at boot before it can log in.
//!
//! Input: one byte choosing the flash's read word (1, 4 or 32 bytes), then the partition's
//! bytes (the rest of it erased). Checked: no panic; only whole, aligned words are read; a
//! record that is accepted writes back (`factory_record`) as exactly the bytes it was read
//! from, so nothing but an intact record for this device is ever taken.

#![no_main]

use std::convert::Infallible;

use aliot_kernel::config::FlashPartition;
use aliot_kernel::store::{factory_record, read_factory};
use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};
use libfuzzer_sys::fuzz_target;

const PART: FlashPartition = FlashPartition {
    offset: 0x1000,
    size: 0x1000,
    erase_page: 0x1000,
};

/// The partition in RAM, read in whole `READ`-byte words.
struct Ram<const READ: usize>(Vec<u8>);

impl<const READ: usize> ErrorType for Ram<READ> {
    type Error = Infallible;
}

impl<const READ: usize> ReadNorFlash for Ram<READ> {
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), Infallible> {
        assert_eq!(offset as usize % READ, 0, "unaligned offset");
        assert_eq!(out.len() % READ, 0, "unaligned length");
        let at = offset as usize;
        out.copy_from_slice(&self.0[at..at + out.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.0.len()
    }
}

fn check<const READ: usize>(content: &[u8]) {
    let mut bytes = vec![0xFF; (PART.offset + PART.size) as usize];
    let n = content.len().min(PART.size as usize);
    bytes[PART.offset as usize..PART.offset as usize + n].copy_from_slice(&content[..n]);
    let mut flash = Ram::<READ>(bytes);
    if let Ok(Some(creds)) = read_factory(&mut flash, PART, "a1ExamplePk", "nrf9160-0004") {
        let again = factory_record(&creds).expect("an accepted record encodes");
        assert_eq!(
            &content[..again.len().min(n)],
            &again[..],
            "read from other bytes"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&word, content)) = data.split_first() else {
        return;
    };
    match word % 3 {
        0 => check::<1>(content),
        1 => check::<4>(content),
        _ => check::<32>(content),
    }
});
