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

use alloc::string::{String, ToString};

use serde::Deserialize;
use serde_json::Value;

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

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
}

/// Reads a push or a `firmware/get` answer. `Ok(None)` when it carries no job (an empty or
/// missing `data`: nothing to do); `Err` for a job this device must refuse, with the reason.
pub fn parse(payload: &[u8], module: &str, slot_size: u32) -> Result<Option<Job>, JobError> {
    let envelope: Envelope = serde_json::from_slice(payload).map_err(|_| JobError::Malformed)?;
    let data = match envelope.data {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) if map.is_empty() => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(JobError::Malformed),
    };
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    let job_module = text("module")
        .filter(|m| !m.is_empty())
        .unwrap_or("default");
    if job_module != module {
        return Err(JobError::OtherModule);
    }
    let diff = is_diff(data.get("isDiff"));
    let size = data
        .get("size")
        .and_then(number)
        .ok_or(JobError::Malformed)?;
    if size > u64::from(slot_size) {
        return Err(JobError::TooLarge {
            size,
            slot: slot_size,
        });
    }
    let url = text("url")
        .filter(|u| !u.is_empty())
        .ok_or(JobError::Malformed)?;
    let version = text("version")
        .filter(|v| !v.is_empty())
        .ok_or(JobError::Malformed)?;
    let method = text("signMethod").unwrap_or("MD5");
    let sign = text("sign")
        .or_else(|| text("md5"))
        .ok_or(JobError::BadSign)?;
    let digest = if method.eq_ignore_ascii_case("md5") {
        Digest::Md5(hex(sign).ok_or(JobError::BadSign)?)
    } else if method.eq_ignore_ascii_case("sha256") {
        Digest::Sha256(hex(sign).ok_or(JobError::BadSign)?)
    } else {
        return Err(JobError::UnknownSignMethod);
    };
    Ok(Some(Job {
        version: version.to_string(),
        // Checked against the slot (a u32) above.
        size: u32::try_from(size).map_err(|_| JobError::Malformed)?,
        url: url.to_string(),
        digest,
        module: job_module.to_string(),
        diff,
    }))
}

/// The module a job names (`None` for the default module, or for a message that is not a
/// job): a refusal is reported with it, so the platform files it under that job.
pub fn announced_module(payload: &[u8]) -> Option<String> {
    let envelope: Envelope = serde_json::from_slice(payload).ok()?;
    let module = envelope.data?.get("module")?.as_str()?.to_string();
    (!module.is_empty()).then_some(module)
}

/// `isDiff` as 1, "1" or true.
fn is_diff(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(v) => number(v) == Some(1),
        None => false,
    }
}

/// A non-negative integer given as a number or a decimal string.
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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
