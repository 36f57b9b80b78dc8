//! The factory record: the provisioned secret (the DeviceSecret, or the ProductSecret for
//! 一型一密) that `aliot-provision` writes into the lower half of the credentials partition,
//! and that the firmware only ever reads.
//!
//! # Why not the store's map
//!
//! [`super::CredentialStore`] keeps what a registration issues: the firmware rewrites it, so it
//! needs `sequential-storage`'s power-cut-safe map. The factory record is written once, by the
//! probe, before the first boot, and the firmware never writes it (it must never overwrite the
//! factory secret), so a checked header is all a reader needs. A build without registration
//! then links no map at all (issue 11: about 5 KB of flash on the nRF9160 DK).
//!
//! # Layout (at the start of the provisioned half)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "ALFR"
//! 4       1     layout version (1)
//! 5       1     0 (reserved)
//! 6       2     record length n, little-endian (1..=MAX_RECORD)
//! 8       n     the record (store/record.rs, its format version 1)
//! 8+n     4     CRC-32 (IEEE 802.3) of bytes 0..8+n, little-endian
//! ```
//!
//! The rest of the half is erased (0xFF). An erased start means nothing is provisioned.
//! The CRC is written here by hand: ten lines, and no CRC crate is among the dependencies
//! checked to build here; it guards against a torn or mistyped write, not an attacker (who can
//! write the flash can write any record).

use alloc::vec::Vec;

use embedded_storage::nor_flash::ReadNorFlash;
use zeroize::Zeroize;

use super::record::{self, MAX_RECORD};
use super::{StoreError, flash_error_kind, for_device};
use crate::config::FlashPartition;
use crate::registration::StoredCredentials;

/// The first four bytes of a factory record.
pub const FACTORY_MAGIC: [u8; 4] = *b"ALFR";
/// The layout this firmware writes and reads.
pub const FACTORY_LAYOUT: u8 = 1;
/// Bytes before the record.
const HEADER: usize = 8;
/// Bytes after it.
const CRC: usize = 4;
/// Bytes read at once: the longest factory record, rounded up to a 32-byte flash word.
const READ_BUF: usize = (HEADER + MAX_RECORD + CRC).div_ceil(32) * 32;

/// The factory record holding `creds`: the bytes to write at the start of the provisioned
/// half (the rest of it erased). `TooLarge` if a field is over its cap.
pub fn factory_record(creds: &StoredCredentials) -> Result<Vec<u8>, StoreError> {
    let mut rec = [0u8; MAX_RECORD];
    let encoded = record::encode(creds, &mut rec);
    let len = match encoded {
        Ok(len) => len,
        Err(e) => {
            rec.zeroize();
            return Err(e);
        }
    };
    let mut out = Vec::with_capacity(HEADER + len + CRC);
    out.extend_from_slice(&FACTORY_MAGIC);
    out.extend_from_slice(&[FACTORY_LAYOUT, 0]);
    // `len` is at most MAX_RECORD (262), so it fits.
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(rec.get(..len).unwrap_or_default());
    rec.zeroize();
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads the factory record at the start of `partition` of `flash`: `None` when nothing is
/// provisioned (erased) or the record is for another device than `product_key`/`device_name`
/// (logged); `Corrupt` for anything else that is not a whole, intact record; `Flash` when the
/// flash fails. The buffer that held the secret is cleared before this returns.
pub fn read_factory<F: ReadNorFlash>(
    flash: &mut F,
    partition: FlashPartition,
    product_key: &str,
    device_name: &str,
) -> Result<Option<StoredCredentials>, StoreError> {
    let mut buf = [0u8; READ_BUF];
    let result = read_into(flash, partition, &mut buf, product_key, device_name);
    buf.zeroize();
    result
}

fn read_into<F: ReadNorFlash>(
    flash: &mut F,
    partition: FlashPartition,
    buf: &mut [u8; READ_BUF],
    product_key: &str,
    device_name: &str,
) -> Result<Option<StoredCredentials>, StoreError> {
    // Whole read words only, and no further than the partition.
    let word = F::READ_SIZE.max(1);
    let want = READ_BUF.min(usize::try_from(partition.size).unwrap_or(usize::MAX));
    let len = want - want % word;
    let window = buf.get_mut(..len).ok_or(StoreError::BadPartition)?;
    flash.read(partition.offset, window).map_err(|e| {
        log_warn!("credential store: flash error: {}", flash_error_kind(&e));
        StoreError::Flash
    })?;
    let bytes = &*window;
    let (Some(magic), Some(&[layout, reserved, len_lo, len_hi])) =
        (bytes.get(..4), bytes.get(4..8))
    else {
        return Err(StoreError::BadPartition);
    };
    if bytes
        .get(..HEADER)
        .is_some_and(|h| h.iter().all(|&b| b == 0xFF))
    {
        return Ok(None);
    }
    if magic != FACTORY_MAGIC || layout != FACTORY_LAYOUT || reserved != 0 {
        log_warn!("credential store: the provisioned half holds no factory record");
        return Err(StoreError::Corrupt);
    }
    let n = usize::from(u16::from_le_bytes([len_lo, len_hi]));
    if n == 0 || n > MAX_RECORD {
        return Err(StoreError::Corrupt);
    }
    let signed = bytes.get(..HEADER + n).ok_or(StoreError::Corrupt)?;
    let stored_crc = bytes
        .get(HEADER + n..HEADER + n + CRC)
        .and_then(|c| <[u8; 4]>::try_from(c).ok())
        .ok_or(StoreError::Corrupt)?;
    if crc32(signed) != u32::from_le_bytes(stored_crc) {
        log_warn!("credential store: the factory record's CRC does not match");
        return Err(StoreError::Corrupt);
    }
    let creds = record::decode(signed.get(HEADER..).ok_or(StoreError::Corrupt)?)?;
    Ok(for_device(creds, product_key, device_name))
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: no table in flash.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests;
