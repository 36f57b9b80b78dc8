//! The firmware image format: a fixed 512-byte header in front of the payload.
//!
//! Why our own header: `embassy-boot` swaps partitions but knows nothing about what is in
//! them, so nothing would stop a truncated or corrupt download from being swapped in and run.
//! The header plays the role MCUboot's image header plays (MCUboot `bootutil/image.h`): it
//! says how long the payload is, what firmware version it is (the string the device reports
//! on `/ota/device/inform` after the update, spec §3: an upgrade only counts once the new
//! version is reported), and the payload's SHA-256, so that both the downloader (while the
//! download streams into the update slot) and the boot stage (before it jumps) can refuse a
//! bad image. The cloud's own `md5`/`sign` digest (spec §3) covers the file as downloaded;
//! this digest is ours and is checked again at every boot.
//!
//! The header is 512 bytes so that the payload (the application's vector table) that follows
//! it stays aligned for the Cortex-M33 `VTOR` (the nRF9160's table has 16 + 65 entries, so
//! it needs 512-byte alignment); MCUboot's `--header-size 0x200` is there for the same reason.
//!
//! # Layout (all integers little-endian)
//!
//! | Bytes      | Field            | Contents                                                   |
//! |------------|------------------|------------------------------------------------------------|
//! | 0..4       | magic            | `41 4C 49 4D` (ASCII `ALIM`, "aliot image")                |
//! | 4..6       | header version   | u16, `1` ([`HEADER_VERSION`]); anything else is refused     |
//! | 6..8       | flags            | u16, no flag is defined in version 1: must be `0`           |
//! | 8..12      | payload length   | u32, bytes of payload after the header                      |
//! | 12..44     | firmware version | 1..=32 bytes of printable ASCII (`0x21..=0x7E` but not `"` or `\`, so it goes into Alink JSON unescaped), then NUL (`00`) up to byte 44 |
//! | 44..76     | payload digest   | SHA-256 of the payload bytes                               |
//! | 76..480    | reserved         | all `00`                                                    |
//! | 480..512   | header digest    | SHA-256 of bytes 0..480                                     |
//!
//! Checks run in this order so that the error names the first thing wrong: length, magic,
//! header version, header digest (a header whose digest fails says nothing reliable about
//! its other fields), flags, reserved bytes, version string.

use heapless::String;
use sha2::{Digest, Sha256};

/// Bytes of header in front of every payload.
pub const HEADER_LEN: usize = 512;
/// `ALIM`.
pub const MAGIC: [u8; 4] = *b"ALIM";
/// The only header version this crate reads and writes.
pub const HEADER_VERSION: u16 = 1;
/// Most bytes of a firmware version string.
pub const VERSION_LEN: usize = 32;

const OFF_VERSION: usize = 12;
const OFF_DIGEST: usize = 44;
const OFF_RESERVED: usize = 76;
const OFF_HEADER_DIGEST: usize = 480;

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// A parsed, checked image header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    /// Header format version (always [`HEADER_VERSION`] once parsed).
    pub header_version: u16,
    /// Flags (always 0 in version 1).
    pub flags: u16,
    /// Bytes of payload after the header.
    pub payload_len: u32,
    /// The firmware version the image reports once it runs.
    pub version: String<VERSION_LEN>,
    /// SHA-256 of the payload.
    pub payload_sha256: Sha256Digest,
}

/// Why an image or header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// A header version this build does not know.
    UnsupportedHeaderVersion(u16),
    /// The header's own SHA-256 (bytes 480..512) does not match bytes 0..480.
    BadHeaderChecksum,
    /// Flags this build does not know.
    UnsupportedFlags(u16),
    /// A reserved byte is not zero.
    ReservedNotZero,
    /// The version field is empty, has a byte outside the allowed set, or text after a NUL.
    BadVersionString,
    /// The version given to [`ImageHeader::new`] is longer than [`VERSION_LEN`].
    VersionTooLong,
    /// Header + payload is larger than the slot.
    TooLarge {
        /// Header + payload bytes the header announces.
        image_len: u64,
        /// Bytes in the slot.
        slot_len: u32,
    },
    /// The payload is larger than a u32 can say.
    PayloadTooLarge,
    /// More bytes arrived than the header announces.
    TooLong,
    /// The stream ended before the announced payload length.
    Incomplete {
        /// Image bytes received (header included).
        received: u64,
        /// Image bytes the header announces (header included).
        expected: u64,
    },
    /// The payload's SHA-256 is not the one in the header.
    DigestMismatch,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "{len} bytes, a header needs {HEADER_LEN}"),
            Self::BadMagic => f.write_str("bad magic (not an aliot image)"),
            Self::UnsupportedHeaderVersion(v) => write!(f, "unsupported header version {v}"),
            Self::BadHeaderChecksum => f.write_str("header checksum mismatch"),
            Self::UnsupportedFlags(fl) => write!(f, "unsupported flags {fl:#06x}"),
            Self::ReservedNotZero => f.write_str("reserved header bytes are not zero"),
            Self::BadVersionString => f.write_str("bad firmware version string"),
            Self::VersionTooLong => write!(f, "firmware version longer than {VERSION_LEN} bytes"),
            Self::TooLarge {
                image_len,
                slot_len,
            } => write!(
                f,
                "image of {image_len} bytes does not fit a {slot_len}-byte slot"
            ),
            Self::PayloadTooLarge => f.write_str("payload larger than 4 GiB"),
            Self::TooLong => f.write_str("more bytes than the header announces"),
            Self::Incomplete { received, expected } => {
                write!(f, "image incomplete: {received} of {expected} bytes")
            }
            Self::DigestMismatch => f.write_str("payload SHA-256 mismatch"),
        }
    }
}

fn version_byte_ok(b: u8) -> bool {
    (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\'
}

fn check_version(v: &str) -> Result<(), ImageError> {
    if v.len() > VERSION_LEN {
        return Err(ImageError::VersionTooLong);
    }
    if v.is_empty() || !v.bytes().all(version_byte_ok) {
        return Err(ImageError::BadVersionString);
    }
    Ok(())
}

impl ImageHeader {
    /// The header for `payload` with firmware version `version`.
    pub fn new(version: &str, payload: &[u8]) -> Result<Self, ImageError> {
        check_version(version)?;
        let payload_len = u32::try_from(payload.len()).map_err(|_| ImageError::PayloadTooLarge)?;
        let mut v = String::new();
        v.push_str(version)
            .map_err(|_| ImageError::VersionTooLong)?;
        Ok(Self {
            header_version: HEADER_VERSION,
            flags: 0,
            payload_len,
            version: v,
            payload_sha256: Sha256::digest(payload).into(),
        })
    }

    /// Header + payload bytes.
    pub fn image_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// `Ok` when header + payload fit a slot of `slot_len` bytes.
    pub fn fits(&self, slot_len: u32) -> Result<(), ImageError> {
        if self.image_len() > u64::from(slot_len) {
            return Err(ImageError::TooLarge {
                image_len: self.image_len(),
                slot_len,
            });
        }
        Ok(())
    }

    /// The 512 header bytes (see the module doc for the layout).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let (fixed, digest) = out.split_at_mut(OFF_HEADER_DIGEST);
        let (head, rest) = fixed.split_at_mut(OFF_VERSION);
        let (version, rest) = rest.split_at_mut(VERSION_LEN);
        let (payload_digest, _reserved) = rest.split_at_mut(32);
        let mut h = [0u8; OFF_VERSION];
        h[..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&self.header_version.to_le_bytes());
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        head.copy_from_slice(&h);
        for (dst, src) in version.iter_mut().zip(self.version.as_bytes()) {
            *dst = *src;
        }
        payload_digest.copy_from_slice(&self.payload_sha256);
        let hd: Sha256Digest = Sha256::digest(&*fixed).into();
        digest.copy_from_slice(&hd);
        out
    }
}

/// Parses and checks the header at the start of `bytes` (bytes after the first
/// [`HEADER_LEN`] are ignored). Never panics; the error names the first thing wrong.
pub fn parse_header(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
    let Some((h, _)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(ImageError::TooShort { len: bytes.len() });
    };
    let (fixed, digest) = h.split_at(OFF_HEADER_DIGEST);
    let (head, rest) = fixed.split_at(OFF_VERSION);
    let (version, rest) = rest.split_at(VERSION_LEN);
    let (payload_digest, reserved) = rest.split_at(OFF_RESERVED - OFF_DIGEST);
    let [m0, m1, m2, m3, v0, v1, f0, f1, l0, l1, l2, l3] = *head else {
        // `head` is exactly OFF_VERSION (12) bytes by construction.
        return Err(ImageError::TooShort { len: bytes.len() });
    };
    if [m0, m1, m2, m3] != MAGIC {
        return Err(ImageError::BadMagic);
    }
    let header_version = u16::from_le_bytes([v0, v1]);
    if header_version != HEADER_VERSION {
        return Err(ImageError::UnsupportedHeaderVersion(header_version));
    }
    let computed: Sha256Digest = Sha256::digest(fixed).into();
    if computed.as_slice() != digest {
        return Err(ImageError::BadHeaderChecksum);
    }
    let flags = u16::from_le_bytes([f0, f1]);
    if flags != 0 {
        return Err(ImageError::UnsupportedFlags(flags));
    }
    if reserved.iter().any(|&b| b != 0) {
        return Err(ImageError::ReservedNotZero);
    }
    let text_len = version.iter().position(|&b| b == 0).unwrap_or(VERSION_LEN);
    let (text, padding) = version.split_at(text_len);
    if padding.iter().any(|&b| b != 0) {
        return Err(ImageError::BadVersionString);
    }
    let text = core::str::from_utf8(text).map_err(|_| ImageError::BadVersionString)?;
    check_version(text)?;
    let mut v = String::new();
    v.push_str(text).map_err(|_| ImageError::BadVersionString)?;
    let mut payload_sha256 = [0u8; 32];
    payload_sha256.copy_from_slice(payload_digest);
    Ok(ImageHeader {
        header_version,
        flags,
        payload_len: u32::from_le_bytes([l0, l1, l2, l3]),
        version: v,
        payload_sha256,
    })
}

/// Checks an image as it streams in (the OTA download into the update slot, or a slot read
/// back at boot): feed it with [`update`](Self::update) in chunks of any size, then
/// [`finish`](Self::finish). Fixed memory: the header buffer and one SHA-256 state.
#[derive(Clone)]
pub struct ImageVerifier {
    slot_len: u32,
    header_buf: [u8; HEADER_LEN],
    header_got: usize,
    header: Option<ImageHeader>,
    payload_got: u64,
    hasher: Sha256,
    failed: Option<ImageError>,
}

impl ImageVerifier {
    /// A verifier for an image that must fit a slot of `slot_len` bytes (header included).
    pub fn new(slot_len: u32) -> Self {
        Self {
            slot_len,
            header_buf: [0; HEADER_LEN],
            header_got: 0,
            header: None,
            payload_got: 0,
            hasher: Sha256::new(),
            failed: None,
        }
    }

    /// The header, once its 512 bytes have arrived and passed the checks.
    pub fn header(&self) -> Option<&ImageHeader> {
        self.header.as_ref()
    }

    /// Image bytes still expected: the rest of the header until it is parsed (at least that
    /// many more follow), then the rest of the payload. 0 once complete or after an error.
    pub fn bytes_needed(&self) -> u64 {
        if self.failed.is_some() {
            return 0;
        }
        match &self.header {
            None => (HEADER_LEN - self.header_got) as u64,
            Some(h) => u64::from(h.payload_len) - self.payload_got,
        }
    }

    /// Feeds the next bytes. The header is checked as soon as it is complete (so a bad or
    /// oversized image is refused before the payload is written anywhere); bytes beyond the
    /// announced length are an error. After an error, every call returns the same error.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), ImageError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.header.is_none() {
            let take = data.len().min(HEADER_LEN - self.header_got);
            let (now, rest) = data.split_at(take);
            if let Some(dst) = self
                .header_buf
                .get_mut(self.header_got..self.header_got + take)
            {
                dst.copy_from_slice(now);
            }
            self.header_got += take;
            data = rest;
            if self.header_got == HEADER_LEN {
                let parsed = parse_header(&self.header_buf).and_then(|h| {
                    h.fits(self.slot_len)?;
                    Ok(h)
                });
                match parsed {
                    Ok(h) => self.header = Some(h),
                    Err(e) => return Err(self.fail(e)),
                }
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let Some(h) = &self.header else {
            return Ok(());
        };
        if data.len() as u64 > u64::from(h.payload_len) - self.payload_got {
            return Err(self.fail(ImageError::TooLong));
        }
        self.hasher.update(data);
        self.payload_got += data.len() as u64;
        Ok(())
    }

    /// Ends the stream: `Ok(header)` when the announced payload arrived whole and its SHA-256
    /// is the header's.
    pub fn finish(self) -> Result<ImageHeader, ImageError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(h) = self.header else {
            return Err(ImageError::TooShort {
                len: self.header_got,
            });
        };
        if self.payload_got != u64::from(h.payload_len) {
            return Err(ImageError::Incomplete {
                received: HEADER_LEN as u64 + self.payload_got,
                expected: h.image_len(),
            });
        }
        let digest: Sha256Digest = self.hasher.finalize().into();
        if digest != h.payload_sha256 {
            return Err(ImageError::DigestMismatch);
        }
        Ok(h)
    }

    fn fail(&mut self, e: ImageError) -> ImageError {
        self.failed = Some(e);
        e
    }
}

impl Default for ImageVerifier {
    /// A verifier with no slot limit beyond what a u32 can say.
    fn default() -> Self {
        Self::new(u32::MAX)
    }
}

/// Checks a whole image held in memory (the host tool; tests).
pub fn verify_image(image: &[u8], slot_len: u32) -> Result<ImageHeader, ImageError> {
    let mut v = ImageVerifier::new(slot_len);
    v.update(image)?;
    v.finish()
}
