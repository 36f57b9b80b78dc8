//! An OTA job as the platform announces it (spec §3), checked before anything is downloaded.
//!
//! The push on `/ota/device/upgrade/${pk}/${dn}` and the answer on
//! `/sys/${pk}/${dn}/thing/ota/firmware/get_reply` carry the same `data` object. Tolerant on
//! input, as the spec asks: `code` may be the string `"1000"` or a number, `signMethod` is
//! compared case-insensitively (`MD5`, `Md5`, `SHA256`, `Sha256`), `digestsign` and `extData`
//! are optional and ignored, a missing `module` means the default module, and `sign` falls
//! back to `md5` when only that is given. What is refused is refused with the progress code
//! the platform expects (-1 upgrade failed, -2 download failed, -3 verification failed).
//! `isDiff` 1 (as 1, "1" or true) marks a differential package ([`super::delta`]).

use alloc::borrow::Cow;
use alloc::string::{String, ToString};

use crate::flat_json::{Member, members, unescape};

/// The file's digest, as the job gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// MD5 (16 bytes).
    Md5([u8; 16]),
    /// SHA-256 (32 bytes).
    Sha256([u8; 32]),
}

/// A job this device can take: a full image for its module, small enough for its update slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The version the image carries (reported on `/ota/device/inform` once it runs).
    pub version: String,
    /// The file's size in bytes.
    pub size: u32,
    /// Where to download it (an OSS pre-signed URL; never shown to apps or logs).
    pub url: String,
    /// What the file must hash to.
    pub digest: Digest,
    /// The module the job is for.
    pub module: String,
    /// `isDiff` 1: the file is a differential package ([`super::delta`]) to apply to the
    /// running image, not an image.
    pub diff: bool,
}

/// Why a job is refused: each maps to the progress `step` the platform expects and a `desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobError {
    /// Not JSON, or a field of the wrong type, or `url`/`version`/`size` missing.
    Malformed,
    /// Larger than the update slot.
    TooLarge {
        /// The file's size.
        size: u64,
        /// The slot's size.
        slot: u32,
    },
    /// `signMethod` other than MD5 or SHA256.
    UnknownSignMethod,
    /// `sign` is not hex of the method's length (32 for MD5, 64 for SHA256).
    BadSign,
    /// The job is for another module.
    OtherModule,
}

impl JobError {
    /// The progress `step` to report (spec §3): every refusal before a download is -1
    /// (upgrade failed); -2, -3 and -4 belong to the download, the digest and the flash.
    pub fn step(self) -> i8 {
        -1
    }

    /// The `desc` to report: says what was wrong, never the URL or a signature.
    pub fn desc(self) -> String {
        match self {
            JobError::Malformed => "the upgrade message could not be read".into(),
            JobError::TooLarge { size, slot } => {
                alloc::format!(
                    "the image ({size} bytes) is larger than the update slot ({slot} bytes)"
                )
            }
            JobError::UnknownSignMethod => "unsupported signMethod; allowed: MD5 or SHA256".into(),
            JobError::BadSign => "the sign is not a hex digest of the signMethod's length".into(),
            JobError::OtherModule => "the job is for another module".into(),
        }
    }
}

/// Reads a push or a `firmware/get` answer. `Ok(None)` when it carries no job (an empty or
/// missing `data`: nothing to do); `Err` for a job this device must refuse, with the reason.
pub fn parse(payload: &[u8], module: &str, slot_size: u32) -> Result<Option<Job>, JobError> {
    let Some(data) = Data::read(payload).map_err(|()| JobError::Malformed)? else {
        return Ok(None);
    };
    let job_module = data
        .module
        .as_ref()
        .and_then(Value::text)
        .filter(|m| !m.is_empty())
        .unwrap_or("default");
    if job_module != module {
        return Err(JobError::OtherModule);
    }
    let diff = data.is_diff.as_ref().is_some_and(Value::is_one);
    let size = data
        .size
        .as_ref()
        .and_then(Value::number)
        .ok_or(JobError::Malformed)?;
    if size > u64::from(slot_size) {
        return Err(JobError::TooLarge {
            size,
            slot: slot_size,
        });
    }
    let text = |v: &'_ Option<Value<'_>>| v.as_ref().and_then(Value::text).map(str::to_string);
    let url = text(&data.url)
        .filter(|u| !u.is_empty())
        .ok_or(JobError::Malformed)?;
    let version = text(&data.version)
        .filter(|v| !v.is_empty())
        .ok_or(JobError::Malformed)?;
    let method = data
        .sign_method
        .as_ref()
        .and_then(Value::text)
        .unwrap_or("MD5");
    let sign = data
        .sign
        .as_ref()
        .and_then(Value::text)
        .or_else(|| data.md5.as_ref().and_then(Value::text))
        .ok_or(JobError::BadSign)?;
    let digest = if method.eq_ignore_ascii_case("md5") {
        Digest::Md5(hex(sign).ok_or(JobError::BadSign)?)
    } else if method.eq_ignore_ascii_case("sha256") {
        Digest::Sha256(hex(sign).ok_or(JobError::BadSign)?)
    } else {
        return Err(JobError::UnknownSignMethod);
    };
    Ok(Some(Job {
        version,
        // Checked against the slot (a u32) above.
        size: u32::try_from(size).map_err(|_| JobError::Malformed)?,
        url,
        digest,
        module: job_module.to_string(),
        diff,
    }))
}

/// The module a job names (`None` for the default module, or for a message that is not a
/// job): a refusal is reported with it, so the platform files it under that job.
pub fn announced_module(payload: &[u8]) -> Option<String> {
    let data = Data::read(payload).ok()??;
    let module = data.module.as_ref()?.text()?;
    (!module.is_empty()).then(|| module.to_string())
}

/// The members of `data` this parser reads; the last of a name counts, as in `serde_json`'s
/// map. Read with [`crate::flat_json`] rather than `serde_json` (issue 11: 21 KB less flash on
/// the nRF9160 DK without its float parsing, number tables and error messages, for eight
/// members).
///
/// What `serde_json` refused is refused here too where it matters: text that is not one JSON
/// object, a `data` that is neither an object nor `null` (or given twice), a bad escape in
/// a member read here, a number that is not a JSON integer. More tolerant only where nothing
/// depends on it: members not read here are checked for their shape, not every character
/// (an invalid escape in `extData` is not refused), nesting has no depth limit (it is counted,
/// not recursed), and a decimal string's surrounding whitespace is trimmed as ASCII.
#[derive(Default)]
struct Data<'a> {
    module: Option<Value<'a>>,
    is_diff: Option<Value<'a>>,
    size: Option<Value<'a>>,
    url: Option<Value<'a>>,
    version: Option<Value<'a>>,
    sign_method: Option<Value<'a>>,
    sign: Option<Value<'a>>,
    md5: Option<Value<'a>>,
}

impl<'a> Data<'a> {
    /// The `data` object of `payload`; `Ok(None)` for a missing, `null` or empty one.
    fn read(payload: &'a [u8]) -> Result<Option<Self>, ()> {
        let text = core::str::from_utf8(payload).map_err(drop)?;
        let mut data = None;
        members(text, |key, value| {
            if key != "data" {
                return Ok(());
            }
            // serde's derive refused a field given twice.
            match data.replace(value) {
                None => Ok(()),
                Some(_) => Err(()),
            }
        })?;
        let object = match data {
            None | Some(Member::Null) => return Ok(None),
            Some(Member::Object(object)) => object,
            Some(_) => return Err(()),
        };
        let mut fields = Data::default();
        let mut empty = true;
        members(object, |key, value| {
            empty = false;
            let slot = match key {
                "module" => &mut fields.module,
                "isDiff" => &mut fields.is_diff,
                "size" => &mut fields.size,
                "url" => &mut fields.url,
                "version" => &mut fields.version,
                "signMethod" => &mut fields.sign_method,
                "sign" => &mut fields.sign,
                "md5" => &mut fields.md5,
                _ => return Ok(()),
            };
            *slot = Some(Value::read(value)?);
            Ok(())
        })?;
        Ok((!empty).then_some(fields))
    }
}

/// A member's value as the job reads it: strings unescaped, numbers and literals as written.
enum Value<'a> {
    Text(Cow<'a, str>),
    Literal(&'a str),
    Other,
}

impl<'a> Value<'a> {
    /// `Err` for a string with an escape JSON does not define.
    fn read(member: Member<'a>) -> Result<Self, ()> {
        Ok(match member {
            Member::Str(s) => Value::Text(Cow::Borrowed(s)),
            Member::Escaped(raw) => Value::Text(Cow::Owned(unescape(raw).ok_or(())?)),
            Member::Literal(literal) => Value::Literal(literal),
            Member::Null | Member::Object(_) | Member::Array => Value::Other,
        })
    }

    /// A string's text (`None` for anything else).
    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// A non-negative integer given as a number or a decimal string.
    fn number(&self) -> Option<u64> {
        match self {
            Value::Text(text) => text.trim_ascii().parse().ok(),
            Value::Literal(literal) => integer(literal),
            Value::Other => None,
        }
    }

    /// `isDiff` as 1, "1" or true.
    fn is_one(&self) -> bool {
        matches!(self, Value::Literal("true")) || self.number() == Some(1)
    }
}

/// A JSON number that `serde_json` reads as a `u64`: digits only (no sign, fraction or
/// exponent), no leading zero, at most `u64::MAX` (a larger one became a float there).
fn integer(literal: &str) -> Option<u64> {
    let digits = literal.as_bytes();
    let leading_zero = digits.len() > 1 && digits.starts_with(b"0");
    if digits.is_empty() || leading_zero || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    literal.parse().ok()
}

/// Exactly `N` bytes of hex, either case.
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi)?, digit(*lo)?),
            _ => return None,
        };
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
