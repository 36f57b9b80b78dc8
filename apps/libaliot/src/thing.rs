//! Alink JSON, the thing model's message format (doc-detail/89301), for the typed API that
//! `build.rs` generates from the manifest's TSL (`aliot_app::thing_model`).
//!
//! Encoding and decoding go through `serde-json-core` (no_std, no allocation) into and out of
//! buffers the caller sizes, so nothing here grows with what the cloud sends. What is written
//! is the documented form (`{"id":"7","version":"1.0","params":{..},"method":".."}`, the id a
//! decimal string); what is read is tolerant where the platform and its SDKs differ: the id
//! as a string or a number, `method`, `version` and `data` optional, unknown fields ignored.
//!
//! Hand-written: the generic envelope only. The per-model types (properties with their
//! ranges, events, service inputs and outputs) are generated (`aliot_manifest::thing_api`).

use serde::{Deserialize, Serialize};

use crate::{Aliot, AppError, Qos, Syscalls};

/// The Alink protocol version every request carries.
pub const ALINK_VERSION: &str = "1.0";

/// Success, in a reply's `code`.
pub const CODE_OK: u32 = 200;
/// "请求参数错误": a request the device could not read or whose values it refuses (the
/// platform's code for invalid parameters, doc-detail/120329).
pub const CODE_BAD_PARAMS: u32 = 460;

/// Why an Alink message could not be built or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThingError {
    /// The encoded message does not fit the buffer (or the app's payload limit).
    TooLong,
    /// Not JSON, or not the shape this message has (a field of the wrong type, a missing one).
    Malformed,
    /// A value outside the thing model's range (the identifier, dotted for struct fields).
    OutOfRange(&'static str),
}

/// A reply to a request the device sent (`..._reply` topics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The request's id.
    pub id: u32,
    /// The platform's code ([`CODE_OK`] on success).
    pub code: u32,
}

/// An RRPC message id: the last level of `/sys/pk/dn/rrpc/request/<id>`, which the response
/// topic repeats (letters and digits, at most 32).
pub type RrpcId = heapless::String<32>;

/// Where a reply goes: the request's id, and the RRPC message id when the request came over
/// RRPC (a synchronous service), whose response topic then carries the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The request's id.
    pub id: u32,
    /// The RRPC message id, if it came over RRPC.
    pub rrpc: Option<RrpcId>,
}

/// A request from the cloud (a property set, a service call) with its typed parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<P> {
    /// Its id, which the reply repeats.
    pub id: u32,
    /// Its parameters.
    pub params: P,
    /// The RRPC message id, if it came over RRPC.
    pub rrpc: Option<RrpcId>,
}

impl<P> Request<P> {
    /// Where its reply goes.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            id: self.id,
            rrpc: self.rrpc.clone(),
        }
    }
}

/// The message id in the last level of an RRPC request topic, if it is one (1 to 32 letters
/// and digits; anything else is not answered, as its response topic could not be named).
pub fn rrpc_id(level: &str) -> Option<RrpcId> {
    let ok =
        !level.is_empty() && level.len() <= 32 && level.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return None;
    }
    let mut id = RrpcId::new();
    id.push_str(level).ok()?;
    Some(id)
}

/// `prefix` (`/sys/pk/dn/rrpc/response/`) followed by `id`: the topic an RRPC answer goes to.
pub fn rrpc_response_topic(prefix: &str, id: &RrpcId) -> Option<heapless::String<160>> {
    let mut t = heapless::String::new();
    t.push_str(prefix).ok()?;
    t.push_str(id).ok()?;
    Some(t)
}

/// The `method` of an Alink request, if it has a readable one.
pub fn decode_method(payload: &[u8]) -> Option<heapless::String<64>> {
    #[derive(Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: &'a str,
    }
    let (m, _) = serde_json_core::from_slice::<Method<'_>>(payload).ok()?;
    let mut out = heapless::String::new();
    out.push_str(m.method).ok()?;
    Some(out)
}

/// Numbers requests with ids unique per device (Alink: a decimal string, 0..=4294967295).
#[derive(Debug, Default)]
pub struct Ids {
    next: u32,
}

impl Ids {
    /// Ids from 1.
    pub const fn new() -> Self {
        Self { next: 1 }
    }

    /// The next id (wraps after 4294967295, skipping 0).
    pub fn next_id(&mut self) -> u32 {
        let id = self.next.max(1);
        self.next = id.wrapping_add(1);
        id
    }
}

/// The decimal form of an id, as Alink sends it.
fn id_text(id: u32) -> heapless::String<20> {
    decimal(u64::from(id))
}

/// `n` in decimal (at most 20 digits).
fn decimal(mut n: u64) -> heapless::String<20> {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is a single digit.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = heapless::String::new();
    for &d in &digits[at..] {
        // Twenty digits always fit.
        let _ = out.push(char::from(d));
    }
    out
}

#[derive(Serialize)]
struct RequestOut<'a, P> {
    id: &'a str,
    version: &'static str,
    params: &'a P,
    method: &'a str,
}

/// Writes a request (`thing.event.property.post`, `thing.event.<id>.post`) into `buf`;
/// returns its length.
pub fn encode_request<P: Serialize>(
    buf: &mut [u8],
    id: u32,
    method: &str,
    params: &P,
) -> Result<usize, ThingError> {
    let id = id_text(id);
    let msg = RequestOut {
        id: &id,
        version: ALINK_VERSION,
        params,
        method,
    };
    serde_json_core::to_slice(&msg, buf).map_err(|_| ThingError::TooLong)
}

#[derive(Serialize)]
struct ReplyOut<'a, D> {
    id: &'a str,
    code: u32,
    data: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    version: &'static str,
}

/// Writes a reply to a cloud request (`..._reply` topics) into `buf`; returns its length.
/// `data` is the service's output (`{}` for a property set).
pub fn encode_reply<D: Serialize>(
    buf: &mut [u8],
    id: u32,
    code: u32,
    data: &D,
    message: Option<&str>,
) -> Result<usize, ThingError> {
    let id = id_text(id);
    let msg = ReplyOut {
        id: &id,
        code,
        data,
        message,
        version: ALINK_VERSION,
    };
    serde_json_core::to_slice(&msg, buf).map_err(|_| ThingError::TooLong)
}

/// An empty JSON object, the `data` of a property set's reply.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Empty {}

// The id is read twice over if need be: once as the documented string, then as a number
// (serde-json-core cannot read "either"; it has no `deserialize_any`).
#[derive(Deserialize)]
struct ReplyStrId<'a> {
    #[serde(borrow)]
    id: &'a str,
    code: u32,
}

#[derive(Deserialize)]
struct ReplyNumId {
    id: u32,
    code: u32,
}

#[derive(Deserialize)]
struct RequestStrId<'a, P> {
    #[serde(borrow)]
    id: &'a str,
    params: P,
}

#[derive(Deserialize)]
struct RequestNumId<P> {
    id: u32,
    params: P,
}

fn parse_id(text: &str) -> Result<u32, ThingError> {
    let ok = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(ThingError::Malformed);
    }
    text.parse().map_err(|_| ThingError::Malformed)
}

/// Reads a reply (`{"id":"7","code":200,"data":{},..}`).
pub fn decode_reply(payload: &[u8]) -> Result<Reply, ThingError> {
    if let Ok((r, _)) = serde_json_core::from_slice::<ReplyStrId<'_>>(payload) {
        return Ok(Reply {
            id: parse_id(r.id)?,
            code: r.code,
        });
    }
    let (r, _) =
        serde_json_core::from_slice::<ReplyNumId>(payload).map_err(|_| ThingError::Malformed)?;
    Ok(Reply {
        id: r.id,
        code: r.code,
    })
}

/// Reads a request's id alone, so that a request whose parameters cannot be read still gets
/// its error reply.
pub fn decode_request_id(payload: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct StrId<'a> {
        #[serde(borrow)]
        id: &'a str,
    }
    #[derive(Deserialize)]
    struct NumId {
        id: u32,
    }
    if let Ok((r, _)) = serde_json_core::from_slice::<StrId<'_>>(payload) {
        return parse_id(r.id).ok();
    }
    serde_json_core::from_slice::<NumId>(payload)
        .ok()
        .map(|(r, _)| r.id)
}

/// Reads a request with parameters of type `P` (a property set, a service's input).
pub fn decode_request<'a, P: Deserialize<'a>>(payload: &'a [u8]) -> Result<Request<P>, ThingError> {
    if let Ok((r, _)) = serde_json_core::from_slice::<RequestStrId<'a, P>>(payload) {
        return Ok(Request {
            id: parse_id(r.id)?,
            params: r.params,
            rrpc: None,
        });
    }
    let (r, _) = serde_json_core::from_slice::<RequestNumId<P>>(payload)
        .map_err(|_| ThingError::Malformed)?;
    Ok(Request {
        id: r.id,
        params: r.params,
        rrpc: None,
    })
}

/// A TSL `bool`: 0 or 1 on the wire (Alink), `bool` in Rust. Reads 0 and 1 only: the JSON
/// reader here (`serde-json-core`) cannot take "a number or a literal" in one field.
pub mod bool01 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes 0 or 1.
    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(*v))
    }

    /// Reads 0 or 1.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(serde::de::Error::custom("a bool is 0 or 1")),
        }
    }

    /// As [`serialize`], for an optional value.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes 0, 1 or null.
        pub fn serialize<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_u8(u8::from(*b)),
                None => s.serialize_none(),
            }
        }

        /// Reads 0, 1 or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
            match Option::<u8>::deserialize(d)? {
                None => Ok(None),
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                Some(_) => Err(serde::de::Error::custom("a bool is 0 or 1")),
            }
        }
    }
}

/// A TSL `date`: UTC milliseconds since 1970-01-01, a decimal string on the wire (the form the
/// TSL documents, `"1764547200000"`). Read from that form only: the JSON reader here
/// (`serde-json-core`) cannot take "a string or a number" in one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Date(pub u64);

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&decimal(self.0))
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Digits;
        impl serde::de::Visitor<'_> for Digits {
            type Value = Date;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a date: UTC milliseconds as a string of digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Date, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom("a date is a string of digits"));
                }
                v.parse()
                    .map(Date)
                    .map_err(|_| E::custom("a date beyond u64"))
            }
        }
        d.deserialize_str(Digits)
    }
}

/// Whether `v` lies in `min..=max` (NaN does not).
pub fn in_range<T: PartialOrd>(v: T, min: T, max: T) -> bool {
    min <= v && v <= max
}

/// Encodes a request and publishes it at QoS 1 to `topic`; returns the request's id, which
/// the platform's reply on `..._reply` repeats. Refuses it when it does not fit `buf` (size
/// `buf` with the app's `MAX_PAYLOAD`).
pub fn publish_request<S: Syscalls, P: Serialize>(
    app: &mut Aliot<S>,
    ids: &mut Ids,
    buf: &mut [u8],
    topic: &str,
    method: &str,
    params: &P,
) -> Result<u32, ThingSendError<S::Error>> {
    let id = ids.next_id();
    let len = encode_request(buf, id, method, params).map_err(ThingSendError::Thing)?;
    let body = buf
        .get(..len)
        .ok_or(ThingSendError::Thing(ThingError::TooLong))?;
    app.publish(topic, body, Qos::AtLeastOnce)
        .map_err(ThingSendError::App)?;
    Ok(id)
}

/// Encodes a reply and publishes it at QoS 1 to `topic`.
pub fn publish_reply<S: Syscalls, D: Serialize>(
    app: &mut Aliot<S>,
    buf: &mut [u8],
    topic: &str,
    id: u32,
    code: u32,
    data: &D,
    message: Option<&str>,
) -> Result<(), ThingSendError<S::Error>> {
    let len = encode_reply(buf, id, code, data, message).map_err(ThingSendError::Thing)?;
    let body = buf
        .get(..len)
        .ok_or(ThingSendError::Thing(ThingError::TooLong))?;
    app.publish(topic, body, Qos::AtLeastOnce)
        .map_err(ThingSendError::App)?;
    Ok(())
}

/// Why a thing-model message was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum ThingSendError<E> {
    /// Refused before sending: out of range, too long.
    Thing(ThingError),
    /// The kernel or the syscall backend refused it.
    App(AppError<E>),
}

#[cfg(test)]
mod tests;
