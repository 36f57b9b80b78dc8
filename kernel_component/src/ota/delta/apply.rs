//! The patcher: header, old-image check, heatshrink decoding and bsdiff records, fed with the
//! patch as it downloads. It reads the running image by random access ([`OldImage`]) and
//! writes the new one in order ([`NewImage`]); its state is plain data, so after a cut the
//! download resumes by feeding the rest of the patch to the same patcher.

use sha2::{Digest as _, Sha256};

use super::PatchError;
use super::header::{HEADER_LEN, PatchHeader};
use super::inflate::Inflate;

/// The running image, read by random access (the active slot).
pub trait OldImage {
    /// Bytes readable (the slot's size).
    fn capacity(&self) -> u32;
    /// Reads `buf.len()` bytes at `offset` (within [`OldImage::capacity`]).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), PatchError>;
}

/// Where the new image goes, in order (the update slot).
pub trait NewImage {
    /// The new image will be `len` bytes: refuse what does not fit.
    fn begin(&mut self, len: u32) -> Result<(), PatchError>;
    /// The next bytes of the new image.
    fn write(&mut self, data: &[u8]) -> Result<(), PatchError>;
}

/// Bytes of the old image read at a time (checking its digest, adding the `mix` bytes).
const OLD_CHUNK: usize = 64;

/// Where the bsdiff records stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Reading a 24-byte control.
    Control { got: u8, buf: [u8; 24] },
    /// `left` bytes to add to the old image's.
    Mix { left: u64, copy: u64, seek: i64 },
    /// `left` bytes to take as they are.
    Copy { left: u64, seek: i64 },
}

/// See the module doc.
#[derive(Clone)]
pub struct Patcher {
    header_buf: [u8; HEADER_LEN],
    header_got: usize,
    header: Option<PatchHeader>,
    inflate: Inflate,
    body: Body,
}

/// Where the new image stands (apart from the decoder, so both can be borrowed at once).
#[derive(Clone)]
struct Body {
    record: Record,
    /// Position in the old image.
    old_pos: u64,
    /// Bytes of the new image written.
    written: u64,
    hasher: Sha256,
    /// The new image is complete and its digest matched.
    done: bool,
}

impl Default for Patcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Patcher {
    /// A patcher that has seen nothing.
    pub fn new() -> Self {
        Self {
            header_buf: [0; HEADER_LEN],
            header_got: 0,
            header: None,
            inflate: Inflate::new(4, 3),
            body: Body {
                record: Record::Control {
                    got: 0,
                    buf: [0; 24],
                },
                old_pos: 0,
                written: 0,
                hasher: Sha256::new(),
                done: false,
            },
        }
    }

    /// The header, once read and checked against the old image.
    pub fn header(&self) -> Option<&PatchHeader> {
        self.header.as_ref()
    }

    /// Bytes of the new image written so far.
    pub fn written(&self) -> u64 {
        self.body.written
    }

    /// Feeds the next bytes of the patch. The first [`HEADER_LEN`] bytes are the header: once
    /// complete it is checked, with the old image's length and SHA-256, before anything is
    /// written. After an error the patcher must not be fed again (start a new one).
    pub fn feed<O: OldImage, N: NewImage>(
        &mut self,
        mut data: &[u8],
        old: &mut O,
        new: &mut N,
    ) -> Result<(), PatchError> {
        if self.header.is_none() {
            let take = data.len().min(HEADER_LEN - self.header_got);
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self
                .header_buf
                .get_mut(self.header_got..self.header_got + take)
            {
                dst.copy_from_slice(head);
            }
            self.header_got += take;
            data = rest;
            if self.header_got < HEADER_LEN {
                return Ok(());
            }
            let header = PatchHeader::parse(&self.header_buf)?;
            check_old(&header, old)?;
            new.begin(header.new_len)?;
            self.inflate = Inflate::new(header.window_bits, header.lookahead_bits);
            self.header = Some(header);
            if header.new_len == 0 {
                self.body.finish_image(&header)?;
            }
        }
        let Some(header) = self.header else {
            return Ok(());
        };
        if self.body.done && !data.is_empty() {
            return Err(PatchError::TrailingData);
        }
        let body = &mut self.body;
        self.inflate.feed(data, &mut |bytes: &[u8]| {
            body.records(bytes, &header, old, new)
        })?;
        // Once the image is complete only the last byte's padding may follow: a whole byte
        // more, even one that decodes to nothing, is trailing data.
        if self.body.done && self.inflate.bits_since_token() >= 8 {
            return Err(PatchError::TrailingData);
        }
        Ok(())
    }

    /// After the whole patch was fed: the new image must be complete (its digest matched).
    pub fn finish(&self) -> Result<(), PatchError> {
        if self.body.done {
            Ok(())
        } else {
            Err(PatchError::Truncated)
        }
    }
}

impl Body {
    /// Runs decoded bytes through the bsdiff records.
    fn records<O: OldImage, N: NewImage>(
        &mut self,
        mut bytes: &[u8],
        header: &PatchHeader,
        old: &mut O,
        new: &mut N,
    ) -> Result<(), PatchError> {
        while !bytes.is_empty() {
            if self.done {
                return Err(PatchError::TrailingData);
            }
            match self.record {
                Record::Control { got, mut buf } => {
                    let at = usize::from(got);
                    let take = bytes.len().min(24 - at);
                    let (head, rest) = bytes.split_at(take);
                    if let Some(dst) = buf.get_mut(at..at + take) {
                        dst.copy_from_slice(head);
                    }
                    bytes = rest;
                    let got = at + take;
                    self.record = if got < 24 {
                        Record::Control {
                            got: got as u8,
                            buf,
                        }
                    } else {
                        self.control(&buf, header)?
                    };
                }
                Record::Mix { left, copy, seek } => {
                    let take = bytes
                        .len()
                        .min(OLD_CHUNK)
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    let (diff, rest) = bytes.split_at(take);
                    let mut mixed = [0u8; OLD_CHUNK];
                    let (mixed, _) = mixed.split_at_mut(take);
                    let at = u32::try_from(self.old_pos).map_err(|_| PatchError::OutOfRange)?;
                    old.read(at, mixed)?;
                    for (m, d) in mixed.iter_mut().zip(diff) {
                        *m = m.wrapping_add(*d);
                    }
                    self.emit(mixed, header, new)?;
                    self.old_pos += take as u64;
                    bytes = rest;
                    let left = left - take as u64;
                    self.record = if left > 0 {
                        Record::Mix { left, copy, seek }
                    } else {
                        Record::Copy { left: copy, seek }
                    };
                    self.end_of_record()?;
                }
                Record::Copy { left, seek } => {
                    let take = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let (literal, rest) = bytes.split_at(take);
                    self.emit(literal, header, new)?;
                    bytes = rest;
                    self.record = Record::Copy {
                        left: left - take as u64,
                        seek,
                    };
                    self.end_of_record()?;
                }
            }
        }
        Ok(())
    }

    /// A complete control: checked against the header before any of its bytes come.
    fn control(&mut self, buf: &[u8; 24], header: &PatchHeader) -> Result<Record, PatchError> {
        let (mix, rest) = buf.split_at(8);
        let (copy, seek) = rest.split_at(8);
        let mix = u64::from_le_bytes(eight(mix));
        let copy = u64::from_le_bytes(eight(copy));
        let raw = u64::from_le_bytes(eight(seek));
        let magnitude = i64::try_from(raw & !(1 << 63)).map_err(|_| PatchError::OutOfRange)?;
        let seek = if raw & (1 << 63) == 0 {
            magnitude
        } else {
            -magnitude
        };
        let new_end = self
            .written
            .checked_add(mix)
            .and_then(|n| n.checked_add(copy))
            .ok_or(PatchError::OutOfRange)?;
        if new_end > u64::from(header.new_len) {
            return Err(PatchError::OutOfRange);
        }
        let old_end = self
            .old_pos
            .checked_add(mix)
            .ok_or(PatchError::OutOfRange)?;
        if old_end > u64::from(header.old_len) {
            return Err(PatchError::OutOfRange);
        }
        let record = Record::Mix {
            left: mix,
            copy,
            seek,
        };
        Ok(match record {
            Record::Mix {
                left: 0,
                copy,
                seek,
            } => Record::Copy { left: copy, seek },
            other => other,
        })
    }

    /// A record whose bytes are all written moves the old position by its seek.
    fn end_of_record(&mut self) -> Result<(), PatchError> {
        if let Record::Copy { left: 0, seek } = self.record {
            let pos = i128::from(self.old_pos) + i128::from(seek);
            self.old_pos = u64::try_from(pos).map_err(|_| PatchError::OutOfRange)?;
            self.record = Record::Control {
                got: 0,
                buf: [0; 24],
            };
        }
        Ok(())
    }

    fn emit<N: NewImage>(
        &mut self,
        bytes: &[u8],
        header: &PatchHeader,
        new: &mut N,
    ) -> Result<(), PatchError> {
        if bytes.is_empty() {
            return Ok(());
        }
        new.write(bytes)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        if self.written == u64::from(header.new_len) {
            self.finish_image(header)?;
        }
        Ok(())
    }

    fn finish_image(&mut self, header: &PatchHeader) -> Result<(), PatchError> {
        let digest: [u8; 32] = core::mem::take(&mut self.hasher).finalize().into();
        if digest != header.new_sha256 {
            return Err(PatchError::NewDigest);
        }
        self.done = true;
        Ok(())
    }
}

/// The old image must be the running one: its length fits the slot and its SHA-256 matches.
fn check_old<O: OldImage>(header: &PatchHeader, old: &mut O) -> Result<(), PatchError> {
    if header.old_len > old.capacity() {
        return Err(PatchError::WrongBase);
    }
    let mut hasher = Sha256::new();
    let mut buf = [0u8; OLD_CHUNK];
    let mut at = 0u32;
    while at < header.old_len {
        let n = (header.old_len - at).min(OLD_CHUNK as u32);
        let (chunk, _) = buf.split_at_mut(n as usize);
        old.read(at, chunk)?;
        hasher.update(&*chunk);
        at += n;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != header.old_sha256 {
        return Err(PatchError::WrongBase);
    }
    Ok(())
}

fn eight(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}
