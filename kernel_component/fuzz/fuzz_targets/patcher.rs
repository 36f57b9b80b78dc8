//! The differential-package patcher on arbitrary input (issue 9): it must return `Ok` or
//! `Err`, never panic, never read outside the old image, never write past the header's new
//! length, and call `write` only after the old image checked out.
//!
//! The first input byte picks the piece size the patch is fed in and whether the rest is a
//! whole patch (header included: mostly refused at the header) or a body behind a valid header
//! for the fixed old image (so the fuzzer spends its time in the decoder and the records).

#![no_main]

use aliot_kernel::ota::delta::{NewImage, OldImage, PatchError, PatchHeader, Patcher};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const OLD: &[u8] =
    b"the running firmware image: some code, some data, some zeros \0\0\0\0\0\0\0\0 and the end";

struct Old;

impl OldImage for Old {
    fn capacity(&self) -> u32 {
        OLD.len() as u32 + 64
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), PatchError> {
        let end = offset as usize + buf.len();
        assert!(end <= self.capacity() as usize, "read past the slot");
        for (i, b) in buf.iter_mut().enumerate() {
            *b = OLD.get(offset as usize + i).copied().unwrap_or(0xFF);
        }
        Ok(())
    }
}

#[derive(Default)]
struct New {
    len: Option<u32>,
    written: usize,
}

impl NewImage for New {
    fn begin(&mut self, len: u32) -> Result<(), PatchError> {
        if len > 4096 {
            return Err(PatchError::NewTooLarge);
        }
        self.len = Some(len);
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<(), PatchError> {
        let len = self.len.expect("write before begin");
        self.written += data.len();
        assert!(self.written <= len as usize, "wrote past the new length");
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(mode & 0x3F) + 1;
    let patch: Vec<u8> = if mode & 0x40 == 0 {
        rest.to_vec()
    } else {
        let new_len = rest.first().map_or(0, |b| u32::from(*b) * 8);
        let header = PatchHeader {
            window_bits: 4 + (mode >> 7) * 6,
            lookahead_bits: 3,
            old_len: OLD.len() as u32,
            old_sha256: Sha256::digest(OLD).into(),
            new_len,
            new_sha256: [0; 32],
        };
        let mut p = header.to_bytes().to_vec();
        p.extend_from_slice(rest.get(1..).unwrap_or(&[]));
        p
    };
    let mut patcher = Patcher::new();
    let mut new = New::default();
    for chunk in patch.chunks(piece) {
        if patcher.feed(chunk, &mut Old, &mut new).is_err() {
            return;
        }
    }
    let _ = patcher.finish();
});
