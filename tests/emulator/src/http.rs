//! The cloud-side HTTP JSON API (see README), firmware download with Range and expiring URLs,
//! and HTTPS dynamic registration (`POST /auth/register/device`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ntex::http::StatusCode;
use ntex::http::body::{Body, SizedStream};
use ntex::util::Bytes;
use ntex::web::{self, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::ota::{OtaDigest, OtaJob, UrlError};
use crate::sign::SignMethod;
use crate::state::{Shared, Uplink};
use crate::{EmulatorError, JobId, api};

/// What every HTTP handler gets: the shared state and whether the listener is HTTPS.
#[derive(Clone)]
pub(crate) struct HttpCtx {
    pub shared: Arc<Shared>,
    pub tls: bool,
}

type Ctx = web::types::State<HttpCtx>;
type DevPath = web::types::Path<(String, String)>;

/// Largest `POST /api/ota/jobs` body: room for a [`crate::ota::MAX_FIRMWARE_UPLOAD`] image
/// as base64 (4/3 of it) and the other fields; ntex's default JSON limit is 32 KiB.
const MAX_JOB_JSON: usize = crate::ota::MAX_FIRMWARE_UPLOAD / 3 * 4 + (64 << 10);

/// Registers every route (the README lists them).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/devices", web::get().to(list_devices))
        .route("/api/devices/{pk}/{dn}", web::get().to(get_device))
        .route("/api/devices/{pk}/{dn}/uplinks", web::get().to(get_uplinks))
        .route(
            "/api/devices/{pk}/{dn}/downlinks",
            web::get().to(get_downlinks),
        )
        .route("/api/devices/{pk}/{dn}/logins", web::get().to(get_logins))
        .route(
            "/api/devices/{pk}/{dn}/publish",
            web::post().to(post_publish),
        )
        .route("/api/devices/{pk}/{dn}/kick", web::post().to(post_kick))
        .route("/api/devices/{pk}/{dn}/drop", web::post().to(post_drop))
        .route("/api/devices/{pk}/{dn}/reset", web::post().to(post_reset))
        .route(
            "/api/devices/{pk}/{dn}/thing/properties",
            web::get().to(get_thing_properties),
        )
        .route(
            "/api/devices/{pk}/{dn}/thing/properties",
            web::post().to(post_thing_properties),
        )
        .route(
            "/api/devices/{pk}/{dn}/thing/events",
            web::get().to(get_thing_events),
        )
        .route(
            "/api/devices/{pk}/{dn}/thing/services/{identifier}",
            web::post().to(post_thing_service),
        )
        .route(
            "/api/products/{pk}/thing_model",
            web::put().to(put_thing_model),
        )
        .route("/api/products", web::get().to(list_products))
        .route("/api/products/{pk}/devices", web::post().to(post_device))
        .route("/api/ota/jobs", web::get().to(list_jobs))
        .service(
            web::resource("/api/ota/jobs")
                .state(web::types::JsonConfig::default().limit(MAX_JOB_JSON))
                .route(web::post().to(post_job)),
        )
        .service(
            web::resource("/api/firmware/{name}")
                .route(web::put().to(put_firmware))
                .route(web::post().to(put_firmware)),
        )
        .route("/api/ota/jobs/{id}", web::get().to(get_job))
        .route("/api/faults", web::post().to(post_faults))
        .route("/ota/{file}", web::get().to(download))
        .route("/auth/register/device", web::post().to(register_device));
}

fn error(status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(&serde_json::json!({"error": msg.into()}))
}

fn from_err(e: EmulatorError) -> HttpResponse {
    let status = match &e {
        EmulatorError::UnknownDevice(_) => StatusCode::NOT_FOUND,
        EmulatorError::NotOnline(_) | EmulatorError::NotSubscribed(_) => StatusCode::CONFLICT,
        EmulatorError::TopicNotAllowed(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(&serde_json::json!({"ok": true}))
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn list_devices(ctx: Ctx) -> HttpResponse {
    HttpResponse::Ok().json(&api::devices(&ctx.shared))
}

async fn get_device(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    match api::devices(&ctx.shared)
        .into_iter()
        .find(|d| d.product_key == pk && d.device_name == dn)
    {
        Some(d) => HttpResponse::Ok().json(&d),
        None => error(StatusCode::NOT_FOUND, format!("unknown device {pk}/{dn}")),
    }
}

/// An uplink as JSON: payload as (lossy) text and as base64.
#[derive(Serialize)]
struct UplinkView {
    topic: String,
    qos: u8,
    payload: String,
    payload_base64: String,
    at_ms: u64,
    refused: Option<String>,
    dup: bool,
    ack_held: bool,
}

fn view(u: Uplink) -> UplinkView {
    UplinkView {
        payload: String::from_utf8_lossy(&u.payload).to_string(),
        payload_base64: base64::engine::general_purpose::STANDARD.encode(&u.payload),
        at_ms: ms(u.at),
        topic: u.topic,
        qos: u.qos,
        refused: u.refused,
        dup: u.dup,
        ack_held: u.ack_held,
    }
}

async fn get_uplinks(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    let v: Vec<UplinkView> = api::uplinks(&ctx.shared, &pk, &dn)
        .into_iter()
        .map(view)
        .collect();
    HttpResponse::Ok().json(&v)
}

async fn get_downlinks(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    let v: Vec<UplinkView> = api::downlinks(&ctx.shared, &pk, &dn)
        .into_iter()
        .map(|d| {
            view(Uplink {
                topic: d.topic,
                qos: d.qos,
                payload: d.payload,
                at: d.at,
                refused: None,
                dup: false,
                ack_held: false,
            })
        })
        .collect();
    HttpResponse::Ok().json(&v)
}

async fn get_logins(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    let v: Vec<serde_json::Value> = api::logins(&ctx.shared, &pk, &dn)
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "at_ms": ms(l.at), "accepted": l.accepted, "reason": l.reason,
                "mqtt_version": l.mqtt_version, "tls": l.tls, "client_id": l.client_id,
                "keep_alive": l.keep_alive,
            })
        })
        .collect();
    HttpResponse::Ok().json(&v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    payload_base64: Option<String>,
    #[serde(default)]
    qos: u8,
}

async fn post_publish(ctx: Ctx, p: DevPath, body: web::types::Json<PublishBody>) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    let b = body.into_inner();
    let payload = match (b.payload, b.payload_base64) {
        (Some(t), None) => t.into_bytes(),
        (None, Some(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("payload_base64: {e}")),
        },
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "give payload or payload_base64, not both",
            );
        }
    };
    match api::publish_to_device(&ctx.shared, &pk, &dn, &b.topic, &payload, b.qos) {
        Ok(()) => ok(),
        Err(e) => from_err(e),
    }
}

/// `PUT /api/products/{pk}/thing_model`: the body is the console's TSL export.
async fn put_thing_model(
    ctx: Ctx,
    p: web::types::Path<String>,
    body: web::types::Json<serde_json::Value>,
) -> HttpResponse {
    match crate::thing::load_model(&ctx.shared, &p.into_inner(), &body.into_inner().to_string()) {
        Ok(()) => ok(),
        Err(e) => from_err(e),
    }
}

async fn get_thing_properties(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    HttpResponse::Ok().json(&crate::thing::properties(&ctx.shared, &pk, &dn))
}

async fn get_thing_events(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    let events: Vec<serde_json::Value> = crate::thing::events(&ctx.shared, &pk, &dn)
        .into_iter()
        .map(|e| {
            let at =
                e.at.duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
            serde_json::json!({"identifier": e.identifier, "params": e.params, "at_ms": at})
        })
        .collect();
    HttpResponse::Ok().json(&events)
}

/// `POST .../thing/properties`: the body is the `params` to set. Answers the request sent
/// (id, topic, reply topic) at once; the device's reply shows in its uplinks.
async fn post_thing_properties(
    ctx: Ctx,
    p: DevPath,
    body: web::types::Json<serde_json::Value>,
) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    match crate::thing::send_set(&ctx.shared, &pk, &dn, body.into_inner()) {
        Ok(sent) => HttpResponse::Ok().json(&sent),
        Err(e) => from_err(e),
    }
}

/// `POST .../thing/services/{identifier}`: the body is the service's input; as above.
async fn post_thing_service(
    ctx: Ctx,
    p: web::types::Path<(String, String, String)>,
    body: web::types::Json<serde_json::Value>,
) -> HttpResponse {
    let (pk, dn, identifier) = p.into_inner();
    match crate::thing::send_service(&ctx.shared, &pk, &dn, &identifier, body.into_inner()) {
        Ok(sent) => HttpResponse::Ok().json(&sent),
        Err(e) => from_err(e),
    }
}

async fn post_kick(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    HttpResponse::Ok()
        .json(&serde_json::json!({"was_online": api::end_session(&ctx.shared, &pk, &dn, false)}))
}

async fn post_drop(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    HttpResponse::Ok()
        .json(&serde_json::json!({"was_online": api::end_session(&ctx.shared, &pk, &dn, true)}))
}

async fn post_reset(ctx: Ctx, p: DevPath) -> HttpResponse {
    let (pk, dn) = p.into_inner();
    match api::reset_registration(&ctx.shared, &pk, &dn) {
        Ok(()) => ok(),
        Err(e) => from_err(e),
    }
}

async fn list_products(ctx: Ctx) -> HttpResponse {
    HttpResponse::Ok().json(&api::products(&ctx.shared))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDevice {
    name: String,
    #[serde(default)]
    secret: Option<String>,
}

async fn post_device(
    ctx: Ctx,
    p: web::types::Path<String>,
    body: web::types::Json<NewDevice>,
) -> HttpResponse {
    let pk = p.into_inner();
    let b = body.into_inner();
    match api::add_device(&ctx.shared, &pk, &b.name, b.secret) {
        // Like the platform's RegisterDevice API, the answer carries the new DeviceSecret.
        Ok(secret) => HttpResponse::Ok().json(
            &serde_json::json!({"product_key": pk, "device_name": b.name, "device_secret": secret}),
        ),
        Err(e) => from_err(e),
    }
}

async fn list_jobs(ctx: Ctx) -> HttpResponse {
    HttpResponse::Ok().json(&api::ota_jobs(&ctx.shared))
}

async fn get_job(ctx: Ctx, p: web::types::Path<u64>) -> HttpResponse {
    match api::ota_job(&ctx.shared, JobId(p.into_inner())) {
        Some(j) => HttpResponse::Ok().json(&j),
        None => error(StatusCode::NOT_FOUND, "unknown job"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    product_key: String,
    #[serde(default)]
    device_names: Vec<String>,
    version: String,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    firmware_base64: Option<String>,
    /// Name of an image uploaded with `PUT /api/firmware/{name}` (instead of the base64).
    #[serde(default)]
    firmware: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    https: bool,
    #[serde(default)]
    url_ttl_secs: Option<u64>,
    #[serde(default)]
    ext_data: Option<serde_json::Value>,
    /// A differential package (`isDiff` 1).
    #[serde(default)]
    is_diff: bool,
}

async fn post_job(ctx: Ctx, body: web::types::Json<NewJob>) -> HttpResponse {
    let b = body.into_inner();
    let firmware = match (&b.firmware_base64, &b.firmware) {
        (Some(b64), None) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("firmware_base64: {e}")),
        },
        (None, Some(name)) => match crate::ota::upload(&ctx.shared.lock(), name) {
            Some(f) => f.to_vec(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no uploaded firmware named {name:?}"),
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give firmware_base64 or firmware (an uploaded name), one of them",
            );
        }
    };
    let digest = match b.digest.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("md5") => OtaDigest::Md5,
        Some("sha256") => OtaDigest::Sha256,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("digest {other:?}: use md5 or sha256"),
            );
        }
    };
    let names: Vec<&str> = b.device_names.iter().map(String::as_str).collect();
    let mut job = OtaJob::new(&b.product_key, &names, &b.version, firmware);
    job.module = b.module;
    job.digest = digest;
    job.https = b.https;
    job.ext_data = b.ext_data;
    job.diff = b.is_diff;
    if let Some(t) = b.url_ttl_secs {
        job.url_ttl = Duration::from_secs(t);
    }
    match api::create_ota_job(&ctx.shared, job) {
        Ok(id) => HttpResponse::Ok().json(&serde_json::json!({"id": id.0})),
        Err(e) => from_err(e),
    }
}

/// `PUT` (or `POST`) `/api/firmware/{name}`: the body is the raw image (any content type, so
/// `curl --data-binary @image.bin` works), up to [`crate::ota::MAX_FIRMWARE_UPLOAD`] bytes:
/// 413 beyond, on the announced `Content-Length` before reading, or once the body passes it.
/// Read by hand rather than with ntex's `Bytes` extractor, which answers an overflow with 400.
/// Answers `{name, size, md5, sha256}`; a job then names the image as `"firmware"`.
async fn put_firmware(
    ctx: Ctx,
    req: HttpRequest,
    p: web::types::Path<String>,
    mut body: web::types::Payload,
) -> HttpResponse {
    let max = crate::ota::MAX_FIRMWARE_UPLOAD;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("firmware images are at most {max} bytes"),
        )
    };
    let announced = req
        .headers()
        .get("content-length")
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let mut data = Vec::with_capacity(announced.map_or(0, |n| n as usize));
    while let Some(chunk) = body.recv().await {
        match chunk {
            Ok(c) if data.len() + c.len() > max => return too_large(),
            Ok(c) => data.extend_from_slice(&c),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
        }
    }
    let name = p.into_inner();
    match crate::ota::store_upload(&mut ctx.shared.lock(), &name, data) {
        Ok(info) => HttpResponse::Ok().json(&info),
        Err(e) => from_err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    refuse_connections_ms: Option<u64>,
    #[serde(default)]
    cut_downloads_after: Option<Option<u64>>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    drop_connection: Option<(String, String)>,
    #[serde(default)]
    hold_pubacks: Option<(String, String)>,
    #[serde(default)]
    release_pubacks: Option<(String, String)>,
    #[serde(default)]
    strict_ranges: Option<bool>,
}

async fn post_faults(ctx: Ctx, body: web::types::Json<Faults>) -> HttpResponse {
    let f = body.into_inner();
    if let Some(ms) = f.refuse_connections_ms {
        api::refuse_connections_for(&ctx.shared, Duration::from_millis(ms));
    }
    if let Some(cut) = f.cut_downloads_after {
        api::cut_downloads_after(&ctx.shared, cut);
    }
    if let Some(ms) = f.latency_ms {
        api::set_packet_latency(&ctx.shared, Duration::from_millis(ms));
    }
    if let Some(on) = f.strict_ranges {
        api::set_strict_ranges(&ctx.shared, on);
    }
    if let Some((pk, dn)) = f.drop_connection {
        api::end_session(&ctx.shared, &pk, &dn, true);
    }
    for (device, on) in [(f.hold_pubacks, true), (f.release_pubacks, false)] {
        if let Some((pk, dn)) = device
            && !api::hold_pubacks(&ctx.shared, &pk, &dn, on)
        {
            return from_err(EmulatorError::NotOnline(format!("{pk}/{dn}")));
        }
    }
    ok()
}

#[derive(Deserialize)]
struct DownloadQuery {
    #[serde(rename = "Expires")]
    expires: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
}

/// What a download answers for its `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    /// 200 with the whole object (no Range, or one the object store ignores).
    Whole,
    /// 206 with bytes `start..=end`.
    Partial(u64, u64),
    /// 416 `InvalidRange`.
    Unsatisfiable,
}

/// One `bytes=` range as written; `None` = malformed.
#[derive(Clone, Copy)]
enum RangeSpec {
    /// `a-b`.
    FromTo(u64, u64),
    /// `a-`.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

fn parse_one(spec: &str) -> Option<RangeSpec> {
    let (a, b) = spec.trim().split_once('-')?;
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => num(n).map(RangeSpec::Suffix),
        (s, "") => num(s).map(RangeSpec::From),
        (s, e) => match (num(s), num(e)) {
            (Some(s), Some(e)) if s <= e => Some(RangeSpec::FromTo(s, e)),
            _ => None, // `b < a` is invalid syntax (RFC 7233 2.1): ignored, as malformed
        },
    }
}

/// Decides a `Range` header against an object of `len` bytes, as the object store (OSS) does.
///
/// By default (OSS's documented compatibility behaviour, help.aliyun.com document 39571) a
/// range it cannot serve exactly as written (malformed, start at or past the end, end past the
/// end, suffix longer than the object) is ignored: 200 with the whole object. With
/// `x-oss-range-behavior: standard` (`standard`) it follows RFC 7233: an end past the end is
/// cut to the last byte, a suffix longer than the object is the whole object as 206, a start
/// at or past the end (or `-0`) answers 416, and a malformed header is still ignored. Of
/// several ranges OSS serves only the first (document 39571); under `standard` they answer
/// 416 (document 202447 lists them among InvalidRange causes; UNCONFIRMED).
fn decide_range(h: &str, len: u64, standard: bool) -> RangeAnswer {
    let Some(specs) = h.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    let mut specs = specs.split(',');
    let Some(spec) = specs.next().and_then(parse_one) else {
        return RangeAnswer::Whole;
    };
    let more = specs.next().is_some();
    let last = len.checked_sub(1);
    let exact = match (spec, last) {
        (_, None) => None,
        (RangeSpec::FromTo(s, e), Some(l)) => (e <= l).then_some((s, e)),
        (RangeSpec::From(s), Some(l)) => (s <= l).then_some((s, l)),
        (RangeSpec::Suffix(n), Some(l)) => (n >= 1 && n <= len).then(|| (len - n, l)),
    };
    if !standard {
        return match exact {
            Some((s, e)) => RangeAnswer::Partial(s, e),
            None => RangeAnswer::Whole,
        };
    }
    if more {
        return RangeAnswer::Unsatisfiable;
    }
    match (spec, last) {
        (_, None) => RangeAnswer::Unsatisfiable,
        (RangeSpec::FromTo(s, e), Some(l)) if s <= l => RangeAnswer::Partial(s, e.min(l)),
        (RangeSpec::From(s), Some(l)) if s <= l => RangeAnswer::Partial(s, l),
        (RangeSpec::Suffix(n), Some(l)) if n >= 1 => RangeAnswer::Partial(len.saturating_sub(n), l),
        _ => RangeAnswer::Unsatisfiable,
    }
}

/// Body of a cut download: the first bytes, then the connection is closed under the client,
/// short of `Content-Length` (a stream error would make ntex append a 500 response instead).
struct CutStream {
    data: Option<Bytes>,
    io: Option<ntex::io::IoRef>,
}

impl futures_util::Stream for CutStream {
    type Item = Result<Bytes, Rc<dyn std::error::Error>>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let Some(d) = self.data.take() {
            return std::task::Poll::Ready(Some(Ok(d)));
        }
        // Give the write buffer a moment to reach the socket, then drop the link (a graceful
        // close would wait for the unfinished body).
        if let Some(io) = self.io.take() {
            ntex::rt::spawn(async move {
                ntex::time::sleep(std::time::Duration::from_millis(50)).await;
                io.terminate();
            });
        }
        std::task::Poll::Pending
    }
}

async fn download(
    ctx: Ctx,
    req: HttpRequest,
    p: web::types::Path<String>,
    q: web::types::Query<DownloadQuery>,
) -> HttpResponse {
    let file = p.into_inner();
    let response = answer_download(&ctx, &req, &file, &q);
    let sent = match (
        response.status().as_u16(),
        ctx.shared.lock().faults.cut_downloads_after,
    ) {
        (200 | 206, cut) => {
            let announced = ntex::http::body::MessageBody::size(response.body());
            let announced = match announced {
                ntex::http::body::BodySize::Sized(n) => n,
                _ => 0,
            };
            cut.map_or(announced, |c| c.min(announced))
        }
        _ => 0,
    };
    let start = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ctx.shared
        .lock()
        .downloads
        .push(crate::ota::DownloadRecord {
            file,
            status: response.status().as_u16(),
            start,
            bytes: sent,
        });
    response
}

fn answer_download(ctx: &Ctx, req: &HttpRequest, file: &str, q: &DownloadQuery) -> HttpResponse {
    let file = file.to_owned();
    let (data, cut, strict) = {
        let g = ctx.shared.lock();
        let r = crate::ota::fetch_file(&g, &file, q.expires.as_deref(), q.signature.as_deref());
        (r, g.faults.cut_downloads_after, g.faults.strict_ranges)
    };
    let data = match data {
        Ok(d) => d,
        Err(UrlError::NotFound) => {
            return oss_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            );
        }
        Err(UrlError::Expired) => {
            log::warn!("download of {file} refused: URL expired");
            return oss_error(
                StatusCode::BAD_REQUEST,
                "AccessDenied",
                "Request has expired.",
            );
        }
        Err(UrlError::BadSignature) => {
            return oss_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature does not match.",
            );
        }
    };
    let len = data.len() as u64;
    let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
    let standard = strict
        || header("x-oss-range-behavior")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("standard"));
    let answer = header("range").map_or(RangeAnswer::Whole, |h| decide_range(h, len, standard));
    if let Some(h) = header("range")
        && answer == RangeAnswer::Whole
    {
        log::info!("download {file}: Range {h:?} ignored (whole object, as the object store)");
    }
    let (status, start, end) = match answer {
        RangeAnswer::Whole => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeAnswer::Partial(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        RangeAnswer::Unsatisfiable => {
            return HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                .header("content-range", format!("bytes */{len}"))
                .content_type("application/xml")
                .body(oss_error_xml(
                    "InvalidRange",
                    "The requested range cannot be satisfied",
                ));
        }
    };
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    log::info!(
        "download {file}: {} bytes {start}-{end} over {}{}",
        body_len,
        if ctx.tls { "HTTPS" } else { "HTTP" },
        cut.map(|c| format!(" (cut after {c})")).unwrap_or_default()
    );
    let slice = Bytes::copy_from_slice(
        data.get(start as usize..(start + body_len) as usize)
            .unwrap_or(&[]),
    );
    let mut b = HttpResponse::build(status);
    b.header("accept-ranges", "bytes")
        .content_type("application/octet-stream");
    if status == StatusCode::PARTIAL_CONTENT {
        b.header("content-range", format!("bytes {start}-{end}/{len}"));
    }
    // Always a sized body (Content-Length), as the object store sends; a cut closes the
    // connection short of Content-Length.
    match cut {
        Some(n) if n < body_len => {
            let stream = CutStream {
                data: Some(slice.slice(..n as usize)),
                io: req.io().cloned(),
            };
            b.body(Body::from(SizedStream::new(body_len, stream)))
        }
        _ => b.body(slice),
    }
}

fn oss_error_xml(code: &str, msg: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message></Error>"
    )
}

fn oss_error(status: StatusCode, code: &str, msg: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/xml")
        .body(oss_error_xml(code, msg))
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(rename = "productKey")]
    product_key: Option<String>,
    #[serde(rename = "deviceName")]
    device_name: Option<String>,
    random: Option<String>,
    sign: Option<String>,
    #[serde(rename = "signMethod")]
    sign_method: Option<String>,
}

fn reg_answer(code: u32, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(&serde_json::json!({"code": code, "data": {}, "message": message}))
}

async fn register_device(ctx: Ctx, body: web::types::Form<RegisterForm>) -> HttpResponse {
    if !ctx.tls {
        return reg_answer(400, "dynamic registration is served over HTTPS only");
    }
    let f = body.into_inner();
    let (Some(pk), Some(dn), Some(random), Some(sign)) =
        (f.product_key, f.device_name, f.random, f.sign)
    else {
        return reg_answer(460, "missing productKey, deviceName, random or sign");
    };
    let method = match f.sign_method.as_deref() {
        None => SignMethod::HmacSha256,
        Some(m) => match SignMethod::parse(m) {
            Some(m) => m,
            None => return reg_answer(460, "unknown signMethod"),
        },
    };
    match api::https_register(&ctx.shared, &pk, &dn, &random, method, &sign) {
        Ok(secret) => HttpResponse::Ok().json(&serde_json::json!({
            "code": 200,
            "data": {"productKey": pk, "deviceName": dn, "deviceSecret": secret},
            "message": "success",
        })),
        Err((code, msg)) => reg_answer(code, &msg),
    }
}

#[cfg(test)]
mod tests {
    use super::{RangeAnswer::*, decide_range};

    /// OSS's documented examples (document 39571) on a 1000-byte object, both behaviours.
    #[test]
    fn ranges_as_the_object_store() {
        let oss = |h| decide_range(h, 1000, false);
        let std = |h| decide_range(h, 1000, true);
        for (h, default, standard) in [
            ("bytes=0-499", Partial(0, 499), Partial(0, 499)),
            ("bytes=500-999", Partial(500, 999), Partial(500, 999)),
            ("bytes=-500", Partial(500, 999), Partial(500, 999)),
            ("bytes=500-", Partial(500, 999), Partial(500, 999)),
            ("bytes=0-", Partial(0, 999), Partial(0, 999)),
            ("bytes=999-", Partial(999, 999), Partial(999, 999)),
            ("bytes=-1000", Partial(0, 999), Partial(0, 999)),
            ("byte=0-499", Whole, Whole),
            ("bytes=0-1000", Whole, Partial(0, 999)),
            ("bytes=500-2000", Whole, Partial(500, 999)),
            ("bytes=1000-2000", Whole, Unsatisfiable),
            ("bytes=1000-", Whole, Unsatisfiable),
            ("bytes=1001-", Whole, Unsatisfiable),
            ("bytes=-2000", Whole, Partial(0, 999)),
            ("bytes=-0", Whole, Unsatisfiable),
            ("bytes=5-4", Whole, Whole),
            ("bytes=x-", Whole, Whole),
            ("bytes=-", Whole, Whole),
            ("bytes=+1-2", Whole, Whole),
            ("bytes=99999999999999999999-", Whole, Whole),
            ("bytes=0-499,500-999", Partial(0, 499), Unsatisfiable),
        ] {
            assert_eq!(oss(h), default, "{h} default");
            assert_eq!(std(h), standard, "{h} standard");
        }
        assert_eq!(decide_range("bytes=0-", 0, false), Whole);
        assert_eq!(decide_range("bytes=0-", 0, true), Unsatisfiable);
    }
}
