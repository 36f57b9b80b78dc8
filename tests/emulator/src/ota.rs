//! OTA: jobs, the upgrade push, `thing/ota/firmware/get`, progress and version reports, and
//! signed, expiring firmware URLs (as an object store issues them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::Digest;
use serde::Serialize;

use crate::EmulatorError;
use crate::sign::{SignMethod, hmac_hex};
use crate::state::{Inner, Uplink, key};

/// Digest the job announces for its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OtaDigest {
    /// MD5 (`signMethod` "Md5").
    Md5,
    /// SHA-256 (`signMethod` "SHA256").
    Sha256,
}

/// An OTA job to create (the console's "batch upgrade").
#[derive(Debug, Clone)]
pub struct OtaJob {
    /// Product of the target devices.
    pub product_key: String,
    /// Target devices; empty = every device of the product.
    pub device_names: Vec<String>,
    /// Version the devices must report on `/ota/device/inform` for the job to succeed.
    pub version: String,
    /// Module name; `None` = the default module (omitted from the push).
    pub module: Option<String>,
    /// The firmware file.
    pub firmware: Vec<u8>,
    /// Digest announced in `sign`/`signMethod` (`md5` is always sent too).
    pub digest: OtaDigest,
    /// Spelling of `signMethod` to send instead of the default ("Md5" / "SHA256").
    pub sign_method_name: Option<String>,
    /// Download over HTTPS (true) or plain HTTP (false).
    pub https: bool,
    /// Validity of the download URL from the moment of each push (whole seconds; 0 = already
    /// expired, to test the device's handling of HTTP 400).
    pub url_ttl: Duration,
    /// `extData` object.
    pub ext_data: Option<serde_json::Value>,
    /// Replace the announced digest with a wrong one (tests the device's verification).
    pub corrupt_digest: bool,
    /// The file is a differential package (`isDiff` 1): the console's "差分" upload. The
    /// platform takes the vendor's package as it is; so does the emulator.
    pub diff: bool,
}

impl OtaJob {
    /// A job for the given devices with defaults: MD5, plain HTTP, URL valid one hour.
    pub fn new(product_key: &str, device_names: &[&str], version: &str, firmware: Vec<u8>) -> Self {
        OtaJob {
            product_key: product_key.to_string(),
            device_names: device_names.iter().map(|s| s.to_string()).collect(),
            version: version.to_string(),
            module: None,
            firmware,
            digest: OtaDigest::Md5,
            sign_method_name: None,
            https: false,
            url_ttl: Duration::from_secs(3600),
            ext_data: None,
            corrupt_digest: false,
            diff: false,
        }
    }
}

/// Identifier of an OTA job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct JobId(pub u64);

/// Where one device is in a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceOtaState {
    /// Not yet pushed (the device was offline).
    Pending,
    /// Upgrade message sent.
    Pushed,
    /// Last progress step reported (1..100).
    InProgress {
        /// Percent.
        step: i32,
    },
    /// The device reported a negative step (-1 upgrade, -2 download, -3 verify, -4 flash).
    Failed {
        /// The error step.
        step: i32,
        /// The device's description.
        desc: String,
    },
    /// The device reported the job's version on `/ota/device/inform`.
    Succeeded,
}

/// A job and its per-device state.
#[derive(Debug, Clone, Serialize)]
pub struct OtaJobStatus {
    /// Job id.
    pub id: JobId,
    /// Product.
    pub product_key: String,
    /// Target version.
    pub version: String,
    /// Module (`None` = default).
    pub module: Option<String>,
    /// Firmware size in bytes.
    pub size: usize,
    /// State by device name.
    pub devices: BTreeMap<String, DeviceOtaState>,
}

pub(crate) struct Job {
    status: OtaJobStatus,
    job: OtaJob,
    file: String,
    md5: String,
    sha256: String,
}

/// One firmware download the file server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadRecord {
    /// The file's name in the URL.
    pub file: String,
    /// HTTP status answered (200, 206, 416, 400...).
    pub status: u16,
    /// First byte of the body (0 for a whole-file answer).
    pub start: u64,
    /// Body bytes sent (fewer than announced when a fault cut the download).
    pub bytes: u64,
}

/// Largest firmware image the cloud API takes in one upload (`PUT /api/firmware/{name}`).
pub const MAX_FIRMWARE_UPLOAD: usize = 16 << 20;

/// How many uploaded images are kept at once (re-uploading a name replaces it), so the
/// memory an API client can claim stays bounded.
pub(crate) const MAX_UPLOADS: usize = 16;

/// An uploaded firmware image, as the upload answers it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FirmwareInfo {
    /// Name to give as `"firmware"` when creating a job.
    pub name: String,
    /// Size in bytes.
    pub size: usize,
    /// Lower-case hex MD5.
    pub md5: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// OTA jobs and firmware files.
pub(crate) struct OtaState {
    jobs: Vec<Job>,
    files: BTreeMap<String, Arc<Vec<u8>>>,
    /// Images uploaded through the API, by name, until a job uses them (they stay for reuse).
    uploads: BTreeMap<String, Arc<Vec<u8>>>,
    /// Key that signs download URLs (so a tampered URL is refused, as by the object store).
    url_key: String,
    next_id: u64,
}

impl Default for OtaState {
    fn default() -> Self {
        OtaState {
            jobs: Vec::new(),
            files: BTreeMap::new(),
            uploads: BTreeMap::new(),
            url_key: crate::state::random_secret(),
            next_id: 1,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn url_signature(key: &str, file: &str, expires: u64) -> String {
    hmac_hex(
        SignMethod::HmacSha1,
        key.as_bytes(),
        format!("{file}\n{expires}").as_bytes(),
    )
}

/// Why a download URL is not served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Unknown file (404).
    NotFound,
    /// `Expires` in the past (400, as the object store answers).
    Expired,
    /// Missing or wrong `Signature`/`Expires` (403).
    BadSignature,
}

/// Checks a download request and returns the file.
pub(crate) fn fetch_file(
    g: &Inner,
    file: &str,
    expires: Option<&str>,
    signature: Option<&str>,
) -> Result<Arc<Vec<u8>>, UrlError> {
    let data = g.ota.files.get(file).cloned().ok_or(UrlError::NotFound)?;
    let exp = expires
        .and_then(|e| e.parse::<u64>().ok())
        .ok_or(UrlError::BadSignature)?;
    let sig = signature.ok_or(UrlError::BadSignature)?;
    if !crate::sign::hex_matches(&url_signature(&g.ota.url_key, file, exp), sig.as_bytes()) {
        return Err(UrlError::BadSignature);
    }
    if unix_now() >= exp {
        return Err(UrlError::Expired);
    }
    Ok(data)
}

fn base(https: bool, g: &crate::state::Bases) -> String {
    if https {
        g.https.clone()
    } else {
        g.http.clone()
    }
}

/// The `data` object of an upgrade push / firmware-get reply, with a fresh URL.
fn job_data(ota: &OtaState, j: &Job, bases: &crate::state::Bases) -> serde_json::Value {
    let expires = unix_now() + j.job.url_ttl.as_secs();
    let sig = url_signature(&ota.url_key, &j.file, expires);
    let url = format!(
        "{}/ota/{}?Expires={expires}&Signature={sig}",
        base(j.job.https, bases),
        j.file
    );
    let (mut sign, method) = match j.job.digest {
        OtaDigest::Md5 => (j.md5.clone(), "Md5"),
        OtaDigest::Sha256 => (j.sha256.clone(), "SHA256"),
    };
    let mut md5 = j.md5.clone();
    if j.job.corrupt_digest {
        sign = "0".repeat(sign.len());
        md5 = "0".repeat(md5.len());
    }
    let mut data = serde_json::json!({
        "size": j.job.firmware.len(),
        "version": j.job.version,
        "url": url,
        "sign": sign,
        "signMethod": j.job.sign_method_name.clone().unwrap_or_else(|| method.to_string()),
        "md5": md5,
        "isDiff": i32::from(j.job.diff),
        "extData": j.job.ext_data.clone().unwrap_or_else(|| serde_json::json!({})),
    });
    if let Some(m) = &j.job.module {
        data["module"] = serde_json::Value::String(m.clone());
    }
    data
}

fn push_message(ota: &OtaState, j: &Job, bases: &crate::state::Bases) -> Vec<u8> {
    let id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({"code": "1000", "data": job_data(ota, j, bases), "id": id, "message": "success"})
        .to_string()
        .into_bytes()
}

/// Upgrade pushes to send now: `(productKey, deviceName, message)`.
pub(crate) type Pushes = Vec<(String, String, Vec<u8>)>;

/// Creates a job; returns it with the pushes for the targets that are online now.
pub(crate) fn create_job(
    g: &mut Inner,
    job: OtaJob,
    bases: &crate::state::Bases,
) -> Result<(JobId, Pushes), EmulatorError> {
    let Some(product) = g.registry.product(&job.product_key) else {
        return Err(EmulatorError::UnknownDevice(job.product_key.clone()));
    };
    let targets: Vec<String> = if job.device_names.is_empty() {
        product.devices.iter().map(|d| d.name.clone()).collect()
    } else {
        for dn in &job.device_names {
            if product.device(dn).is_none() {
                return Err(EmulatorError::UnknownDevice(format!(
                    "{}/{dn}",
                    job.product_key
                )));
            }
        }
        job.device_names.clone()
    };
    if job.version.is_empty() || job.firmware.is_empty() {
        return Err(EmulatorError::InvalidRequest(
            "OTA job needs a version and a non-empty file".into(),
        ));
    }
    let id = JobId(g.ota.next_id);
    g.ota.next_id += 1;
    let file = format!(
        "job-{}-{}.bin",
        id.0,
        job.version
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
    );
    let md5 = hex::encode(md5::Md5::digest(&job.firmware));
    let sha256 = hex::encode(sha2::Sha256::digest(&job.firmware));
    g.ota
        .files
        .insert(file.clone(), Arc::new(job.firmware.clone()));
    let status = OtaJobStatus {
        id,
        product_key: job.product_key.clone(),
        version: job.version.clone(),
        module: job.module.clone(),
        size: job.firmware.len(),
        devices: targets
            .iter()
            .map(|d| (d.clone(), DeviceOtaState::Pending))
            .collect(),
    };
    log::info!(
        "OTA job {} created: {} -> version {} module {:?}, {} bytes, {} devices",
        id.0,
        job.product_key,
        job.version,
        job.module,
        job.firmware.len(),
        targets.len()
    );
    g.ota.jobs.push(Job {
        status,
        job,
        file,
        md5,
        sha256,
    });
    let mut pushes = Vec::new();
    for dn in targets {
        if g.conns.contains_key(&key(
            &g.ota.jobs[g.ota.jobs.len() - 1].status.product_key,
            &dn,
        )) {
            let Some(j) = g.ota.jobs.last() else { break };
            let pk = j.status.product_key.clone();
            let msg = push_message(&g.ota, j, bases);
            if let Some(j) = g.ota.jobs.last_mut() {
                j.status.devices.insert(dn.clone(), DeviceOtaState::Pushed);
            }
            pushes.push((pk, dn, msg));
        }
    }
    Ok((id, pushes))
}

/// Stores an uploaded image under `name` (`[A-Za-z0-9._-]{1,64}`, replacing one of the same
/// name), at most [`MAX_FIRMWARE_UPLOAD`] bytes and [`MAX_UPLOADS`] images.
pub(crate) fn store_upload(
    g: &mut Inner,
    name: &str,
    data: Vec<u8>,
) -> Result<FirmwareInfo, EmulatorError> {
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(EmulatorError::InvalidRequest(format!(
            "firmware name {name:?} must match [A-Za-z0-9._-]{{1,64}}"
        )));
    }
    if data.is_empty() || data.len() > MAX_FIRMWARE_UPLOAD {
        return Err(EmulatorError::InvalidRequest(format!(
            "firmware of {} bytes: must be 1..={MAX_FIRMWARE_UPLOAD}",
            data.len()
        )));
    }
    if !g.ota.uploads.contains_key(name) && g.ota.uploads.len() >= MAX_UPLOADS {
        return Err(EmulatorError::InvalidRequest(format!(
            "already {MAX_UPLOADS} uploaded images; re-use a name"
        )));
    }
    let info = FirmwareInfo {
        name: name.to_string(),
        size: data.len(),
        md5: hex::encode(md5::Md5::digest(&data)),
        sha256: hex::encode(sha2::Sha256::digest(&data)),
    };
    log::info!("firmware {name} uploaded: {} bytes", data.len());
    g.ota.uploads.insert(name.to_string(), Arc::new(data));
    Ok(info)
}

/// An uploaded image, by name.
pub(crate) fn upload(g: &Inner, name: &str) -> Option<Arc<Vec<u8>>> {
    g.ota.uploads.get(name).cloned()
}

/// Status of one job.
pub(crate) fn job_status(g: &Inner, id: JobId) -> Option<OtaJobStatus> {
    g.ota
        .jobs
        .iter()
        .find(|j| j.status.id == id)
        .map(|j| j.status.clone())
}

/// Status of every job.
pub(crate) fn all_jobs(g: &Inner) -> Vec<OtaJobStatus> {
    g.ota.jobs.iter().map(|j| j.status.clone()).collect()
}

/// Upgrade pushes waiting for the device's next login (marked pushed).
pub(crate) fn pending_pushes(
    g: &mut Inner,
    pk: &str,
    dn: &str,
    bases: &crate::state::Bases,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let topic = format!("/ota/device/upgrade/{pk}/{dn}");
    for i in 0..g.ota.jobs.len() {
        let j = &g.ota.jobs[i];
        if j.status.product_key == pk && j.status.devices.get(dn) == Some(&DeviceOtaState::Pending)
        {
            let msg = push_message(&g.ota, j, bases);
            g.ota.jobs[i]
                .status
                .devices
                .insert(dn.to_string(), DeviceOtaState::Pushed);
            log::info!(
                "OTA job {}: push to {pk}/{dn} at login",
                g.ota.jobs[i].status.id.0
            );
            out.push((topic.clone(), msg));
        }
    }
    out
}

fn module_of(params: &serde_json::Value) -> Option<String> {
    params
        .get("module")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty() && *m != "default")
        .map(str::to_string)
}

fn step_of(params: &serde_json::Value) -> Option<i32> {
    match params.get("step")? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        _ => None,
    }
}

/// Reactions of the OTA service to an accepted uplink: version and progress bookkeeping, and
/// the `thing/ota/firmware/get` reply.
pub(crate) fn on_uplink(
    g: &mut Inner,
    pk: &str,
    dn: &str,
    up: &Uplink,
    bases: &crate::state::Bases,
) -> Vec<(String, Vec<u8>)> {
    let json = || serde_json::from_slice::<serde_json::Value>(&up.payload).ok();
    if up.topic == format!("/ota/device/inform/{pk}/{dn}") {
        let Some(v) = json() else { return Vec::new() };
        let params = v.get("params").cloned().unwrap_or_default();
        let Some(version) = params
            .get("version")
            .and_then(|x| x.as_str())
            .map(str::to_string)
        else {
            return Vec::new();
        };
        let module = module_of(&params);
        if let Some(d) = g.registry.device_mut(pk, dn) {
            d.versions.insert(
                module.clone().unwrap_or_else(|| "default".into()),
                version.clone(),
            );
        }
        for j in g
            .ota
            .jobs
            .iter_mut()
            .filter(|j| j.status.product_key == pk && j.status.module == module)
        {
            if j.status.version == version
                && let Some(st) = j.status.devices.get_mut(dn)
                && *st != DeviceOtaState::Succeeded
            {
                *st = DeviceOtaState::Succeeded;
                log::info!(
                    "OTA job {}: {pk}/{dn} reports {version}: succeeded",
                    j.status.id.0
                );
            }
        }
        return Vec::new();
    }
    if up.topic == format!("/ota/device/progress/{pk}/{dn}") {
        let Some(v) = json() else { return Vec::new() };
        let params = v.get("params").cloned().unwrap_or_default();
        let Some(step) = step_of(&params) else {
            return Vec::new();
        };
        let desc = params
            .get("desc")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_string();
        let module = module_of(&params);
        // The newest unfinished job of this device (and module) gets the report.
        if let Some(j) = g.ota.jobs.iter_mut().rev().find(|j| {
            j.status.product_key == pk
                && j.status.module == module
                && matches!(
                    j.status.devices.get(dn),
                    Some(DeviceOtaState::Pushed | DeviceOtaState::InProgress { .. })
                )
        }) && let Some(st) = j.status.devices.get_mut(dn)
        {
            *st = if step < 0 {
                DeviceOtaState::Failed { step, desc }
            } else {
                DeviceOtaState::InProgress { step }
            };
            log::info!("OTA job {}: {pk}/{dn} progress {step}", j.status.id.0);
        }
        return Vec::new();
    }
    if up.topic == format!("/sys/{pk}/{dn}/thing/ota/firmware/get") {
        let v = json().unwrap_or_default();
        let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
        let module = v.get("params").map(module_of).unwrap_or(None);
        let found = g.ota.jobs.iter().rev().position(|j| {
            j.status.product_key == pk
                && j.status.module == module
                && j.status
                    .devices
                    .get(dn)
                    // A finished job (succeeded or failed) is not handed out again.
                    .is_some_and(|s| {
                        matches!(
                            s,
                            DeviceOtaState::Pending
                                | DeviceOtaState::Pushed
                                | DeviceOtaState::InProgress { .. }
                        )
                    })
        });
        let reply = match found {
            Some(rev_idx) => {
                let idx = g.ota.jobs.len() - 1 - rev_idx;
                let data = job_data(&g.ota, &g.ota.jobs[idx], bases);
                if let Some(st) = g.ota.jobs[idx].status.devices.get_mut(dn)
                    && *st == DeviceOtaState::Pending
                {
                    *st = DeviceOtaState::Pushed;
                }
                serde_json::json!({"id": id, "code": 200, "data": data, "message": "success"})
            }
            // UNCONFIRMED: what the platform answers when no firmware is pending.
            None => serde_json::json!({"id": id, "code": 200, "data": {}, "message": "success"}),
        };
        return vec![(
            format!("/sys/{pk}/{dn}/thing/ota/firmware/get_reply"),
            reply.to_string().into_bytes(),
        )];
    }
    Vec::new()
}
