//! The stored record (format version 1): hand-written because it is tiny, fixed and must stay
//! readable by every later firmware; a serde format would tie the bytes on flash to a crate's
//! encoding rules.
//!
//! ```text
//! offset  size   field
//! 0       1      format version (1)
//! 1       1      kind: 1 = DeviceSecret, 2 = Token
//! 2       1+n    ProductKey: length (0..=32), UTF-8 bytes
//! ..      1+n    DeviceName: length (0..=32), UTF-8 bytes
//! ..      1+n    clientId:   length (0..=64; 0 for a DeviceSecret), UTF-8 bytes
//! ..      1+n    secret or token: length (0..=128), bytes
//! ```
//!
//! Nothing may follow the last field. Every length byte is checked against its cap before the
//! bytes are read, so nothing is sized by what is on flash.

use alloc::string::String;

use super::StoreError;
use crate::credentials::Secret;
use crate::registration::{Issued, StoredCredentials};

/// The version this firmware writes and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;
/// Longest ProductKey stored (the platform's are 11 characters).
pub const MAX_PRODUCT_KEY: usize = 32;
/// Longest DeviceName stored (the platform allows 4 to 32 characters).
pub const MAX_DEVICE_NAME: usize = 32;
/// Longest clientId stored (spec §1: at most 64 characters).
pub const MAX_CLIENT_ID: usize = 64;
/// Longest DeviceSecret or device token stored.
pub const MAX_SECRET: usize = 128;
/// Longest record: version, kind, four length bytes and the four fields at their caps.
pub const MAX_RECORD: usize =
    2 + 4 + MAX_PRODUCT_KEY + MAX_DEVICE_NAME + MAX_CLIENT_ID + MAX_SECRET;

const KIND_DEVICE_SECRET: u8 = 1;
const KIND_TOKEN: u8 = 2;

/// Writes `creds` into `out`; returns the record's length. `TooLarge` if a field is over its cap.
pub fn encode(creds: &StoredCredentials, out: &mut [u8; MAX_RECORD]) -> Result<usize, StoreError> {
    let (kind, client_id, secret): (u8, &[u8], &[u8]) = match &creds.issued {
        Issued::DeviceSecret(secret) => (KIND_DEVICE_SECRET, &[], secret.expose()),
        Issued::Token { client_id, token } => (KIND_TOKEN, client_id.as_bytes(), token.expose()),
    };
    let mut writer = Writer { out, at: 0 };
    writer.bytes(&[FORMAT_VERSION, kind])?;
    writer.field(creds.product_key.as_bytes(), MAX_PRODUCT_KEY)?;
    writer.field(creds.device_name.as_bytes(), MAX_DEVICE_NAME)?;
    writer.field(client_id, MAX_CLIENT_ID)?;
    writer.field(secret, MAX_SECRET)?;
    Ok(writer.at)
}

/// Reads a record. `Corrupt` for an unknown version or kind, a length over its cap, text that
/// is not UTF-8, a short record or trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<StoredCredentials, StoreError> {
    let mut reader = Reader { bytes };
    let version = reader.byte()?;
    if version != FORMAT_VERSION {
        log_warn!(
            "credential store: record format version {} is not known",
            version
        );
        return Err(StoreError::Corrupt);
    }
    let kind = reader.byte()?;
    let product_key = reader.text(MAX_PRODUCT_KEY)?;
    let device_name = reader.text(MAX_DEVICE_NAME)?;
    let client_id = reader.text(MAX_CLIENT_ID)?;
    let secret = reader.field(MAX_SECRET)?;
    if !reader.bytes.is_empty() {
        return Err(StoreError::Corrupt);
    }
    let issued = match kind {
        KIND_DEVICE_SECRET if client_id.is_empty() => {
            Issued::DeviceSecret(Secret::new(secret.to_vec()))
        }
        KIND_TOKEN => Issued::Token {
            client_id,
            token: Secret::new(secret.to_vec()),
        },
        _ => return Err(StoreError::Corrupt),
    };
    Ok(StoredCredentials {
        product_key,
        device_name,
        issued,
    })
}

struct Writer<'a> {
    out: &'a mut [u8; MAX_RECORD],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(StoreError::TooLarge)?;
        self.out
            .get_mut(self.at..end)
            .ok_or(StoreError::TooLarge)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    fn field(&mut self, bytes: &[u8], max: usize) -> Result<(), StoreError> {
        if bytes.len() > max {
            return Err(StoreError::TooLarge);
        }
        let len = u8::try_from(bytes.len()).map_err(|_| StoreError::TooLarge)?;
        self.bytes(&[len])?;
        self.bytes(bytes)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if len > self.bytes.len() {
            return Err(StoreError::Corrupt);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        match self.take(1)? {
            [byte] => Ok(*byte),
            _ => Err(StoreError::Corrupt),
        }
    }

    fn field(&mut self, max: usize) -> Result<&'a [u8], StoreError> {
        let len = usize::from(self.byte()?);
        if len > max {
            return Err(StoreError::Corrupt);
        }
        self.take(len)
    }

    fn text(&mut self, max: usize) -> Result<String, StoreError> {
        let bytes = self.field(max)?;
        let text = core::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt)?;
        Ok(String::from(text))
    }
}
