//! HTTPS registration against a scripted in-memory stream: the request bytes are compared
//! with hand-written ones (signs from spec §6.2 or computed here with `hmac` directly), the
//! answers are hand-written HTTP.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::task::{Context, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use futures_executor::block_on;
use hmac::{Hmac, KeyInit, Mac};

use super::*;
use crate::auth::register_sign_content;

const HOST: &str = "iot-auth.cn-shanghai.aliyuncs.com";
// Spec §6.2 V6: IOTKIT's example product, its fixed random, hmacsha256.
const PK: &str = "a1X2bEnP82z";
const DN: &str = "example1";
const PS: &[u8] = b"7jluWm1zql7bt8qK";
const RANDOM: &str = "8Ygb7ULYh53B6OA";
const V6_SIGN: &str = "37C9D9C4DCAB7FC75D65D25547A4E11080E59DD82F3255AAFC90D83498480E88";
const SECRET: &str = "oLyaKqVxtRvjH284LdhqVgVUx1UPy6zq";

fn request() -> HttpsRequest<'static> {
    HttpsRequest {
        host: HOST,
        product_key: PK,
        device_name: DN,
        random: RANDOM,
        sign_method: SignMethod::HmacSha256,
        product_secret: PS,
    }
}

/// A stream that records what is written and replays `reply` at most `piece` bytes a read,
/// then EOF. Reading again and again after EOF is a client bug (a busy loop): it panics.
struct Script {
    reply: VecDeque<u8>,
    piece: usize,
    written: Vec<u8>,
    consumed: usize,
    reads_after_eof: usize,
    fail_read: bool,
    fail_write: bool,
    /// Pend forever (instead of EOF) once the reply is out.
    hang_at_end: bool,
}

impl Script {
    fn new(reply: &[u8], piece: usize) -> Self {
        Self {
            reply: reply.iter().copied().collect(),
            piece,
            written: Vec::new(),
            consumed: 0,
            reads_after_eof: 0,
            fail_read: false,
            fail_write: false,
            hang_at_end: false,
        }
    }
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl Read for Script {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.fail_read {
            return Err(ErrorKind::ConnectionReset);
        }
        if self.reply.is_empty() {
            if self.hang_at_end {
                core::future::pending::<()>().await;
            }
            self.reads_after_eof += 1;
            assert!(
                self.reads_after_eof < 100,
                "the client keeps reading at EOF"
            );
            return Ok(0);
        }
        let n = self.piece.min(buf.len()).min(self.reply.len());
        for (dst, src) in buf.iter_mut().zip(self.reply.drain(..n)) {
            *dst = src;
        }
        self.consumed += n;
        Ok(n)
    }
}

impl Write for Script {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.fail_write {
            return Err(ErrorKind::BrokenPipe);
        }
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Runs a registration of `req` against `reply` with a `buf_len` buffer, and checks that the
/// buffer was wiped, whatever the outcome.
fn run_with(
    req: &HttpsRequest<'_>,
    script: &mut Script,
    buf_len: usize,
) -> Result<Secret, RegistrationError> {
    let mut buf = vec![0xA5u8; buf_len];
    let result = block_on(register(script, req, &mut buf));
    assert!(buf.iter().all(|&b| b == 0), "buf not zeroized");
    result
}

fn run(reply: &[u8], piece: usize) -> (Result<Secret, RegistrationError>, Script) {
    let mut script = Script::new(reply, piece);
    let result = run_with(&request(), &mut script, RECOMMENDED_BUF_LEN);
    (result, script)
}

/// What the emulator (ntex) sends for a JSON body: lowercase names, `content-length`.
fn http_200(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\
         date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn success_json() -> String {
    format!(
        r#"{{"code":200,"data":{{"productKey":"{PK}","deviceName":"{DN}","deviceSecret":"{SECRET}"}},"message":"success"}}"#
    )
}

/// `body` chunked in pieces of `size`, the second chunk with an extension, and a trailer.
fn chunked(head_names: &str, body: &str, size: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 200 OK\r\n{head_names}\r\n\r\n").into_bytes();
    for (i, chunk) in body.as_bytes().chunks(size).enumerate() {
        let ext = if i == 1 { ";name=value" } else { "" };
        out.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    out
}

fn secret_of(result: Result<Secret, RegistrationError>) -> Vec<u8> {
    match result {
        Ok(secret) => secret.expose().to_vec(),
        Err(e) => panic!("registration failed: {e:?}"),
    }
}

fn error_of(result: Result<Secret, RegistrationError>) -> RegistrationError {
    match result {
        Ok(_) => panic!("registration succeeded"),
        Err(e) => e,
    }
}

#[test]
fn sign_content_is_the_spec_order() {
    // Spec §6.2 V6 and V7.
    assert_eq!(
        register_sign_content(DN, PK, RANDOM),
        "deviceNameexample1productKeya1X2bEnP82zrandom8Ygb7ULYh53B6OA"
    );
    assert_eq!(
        register_sign_content(DN, PK, "123"),
        "deviceNameexample1productKeya1X2bEnP82zrandom123"
    );
}

#[test]
fn request_is_the_documented_form_with_the_v6_sign() {
    let (result, script) = run(&http_200(&success_json()), 1024);
    assert_eq!(secret_of(result), SECRET.as_bytes());
    let expected = "POST /auth/register/device HTTP/1.1\r\n\
        Host: iot-auth.cn-shanghai.aliyuncs.com\r\n\
        Content-Type: application/x-www-form-urlencoded\r\n\
        Content-Length: 157\r\n\
        Connection: close\r\n\
        \r\n\
        productKey=a1X2bEnP82z&deviceName=example1&random=8Ygb7ULYh53B6OA\
        &sign=37C9D9C4DCAB7FC75D65D25547A4E11080E59DD82F3255AAFC90D83498480E88\
        &signMethod=hmacsha256";
    assert_eq!(String::from_utf8_lossy(&script.written), expected);
    assert!(expected.contains(V6_SIGN));
}

#[test]
fn request_with_the_v7_sign() {
    // Spec §6.2 V7: as LuatOS signs (hmacmd5, random 123).
    let req = HttpsRequest {
        random: "123",
        sign_method: SignMethod::HmacMd5,
        ..request()
    };
    let mut script = Script::new(&http_200(&success_json()), 64);
    assert_eq!(
        secret_of(run_with(&req, &mut script, RECOMMENDED_BUF_LEN)),
        SECRET.as_bytes()
    );
    let body = "productKey=a1X2bEnP82z&deviceName=example1&random=123\
                &sign=F02D626CFF0C3DA34B0878DEF7724949&signMethod=hmacmd5";
    let written = String::from_utf8_lossy(&script.written).to_string();
    assert!(written.ends_with(&format!("\r\n\r\n{body}")), "{written}");
    assert!(
        written.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{written}"
    );
}

#[test]
fn form_values_are_url_encoded_and_signed_raw() {
    let dn = "lamp@home:1.2 x";
    let random = "r/1&2";
    let req = HttpsRequest {
        device_name: dn,
        random,
        sign_method: SignMethod::HmacSha1,
        ..request()
    };
    // The sign is over the raw values, computed here without the code under test.
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(PS).unwrap();
    mac.update(format!("deviceName{dn}productKey{PK}random{random}").as_bytes());
    let sign: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let answer = format!(r#"{{"code":200,"data":{{"deviceName":"{dn}","deviceSecret":"s"}}}}"#);
    let mut script = Script::new(&http_200(&answer), 1024);
    assert_eq!(
        secret_of(run_with(&req, &mut script, RECOMMENDED_BUF_LEN)),
        b"s"
    );
    let body = format!(
        "productKey=a1X2bEnP82z&deviceName=lamp%40home%3A1.2+x&random=r%2F1%262\
         &sign={sign}&signMethod=hmacsha1"
    );
    let written = String::from_utf8_lossy(&script.written).to_string();
    assert!(written.ends_with(&format!("\r\n\r\n{body}")), "{written}");
}

#[test]
fn success_with_content_length_in_any_piece_size() {
    for piece in [1, 2, 7, 100, 1024] {
        let (result, script) = run(&http_200(&success_json()), piece);
        assert_eq!(secret_of(result), SECRET.as_bytes(), "piece {piece}");
        assert_eq!(script.reply.len(), 0);
    }
}

#[test]
fn success_with_chunked_body_in_any_piece_size() {
    let names = [
        "transfer-encoding: chunked",
        "TRANSFER-ENCODING: Chunked\r\nContent-Type: application/json",
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
        "Content-Length: 3\r\nTransfer-Encoding: gzip, chunked",
    ];
    for head in names {
        for (size, piece) in [(5, 1), (26, 3), (7, 64), (1000, 1024)] {
            let (result, _) = run(&chunked(head, &success_json(), size), piece);
            assert_eq!(
                secret_of(result),
                SECRET.as_bytes(),
                "{head:?} size {size} piece {piece}"
            );
        }
    }
}

#[test]
fn success_read_to_close() {
    let mut reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    reply.extend_from_slice(success_json().as_bytes());
    let (result, _) = run(&reply, 9);
    assert_eq!(secret_of(result), SECRET.as_bytes());
}

#[test]
fn tolerant_answers_are_accepted() {
    for answer in [
        // `code` as a string.
        format!(r#"{{"code":"200","data":{{"deviceSecret":"{SECRET}"}}}}"#),
        // No `code` at all (LINKSDK looks only for the key).
        format!(r#"{{"data":{{"deviceSecret":"{SECRET}","productKey":"{PK}"}}}}"#),
        // The secret at the top level.
        format!(r#"{{"code":200,"deviceSecret":"{SECRET}","deviceName":"{DN}"}}"#),
        // Unknown fields, whitespace.
        format!(
            "{{ \"requestId\": \"x\", \"code\" : 200 , \"data\" : {{ \"deviceSecret\" : \"{SECRET}\", \"extra\": [1,2] }} }}"
        ),
    ] {
        let (result, _) = run(&http_200(&answer), 1024);
        assert_eq!(secret_of(result), SECRET.as_bytes(), "{answer}");
    }
}

#[test]
fn refusals_are_classified() {
    use RegistrationError::*;
    let cases: &[(u32, &str, RegistrationError)] = &[
        // The emulator's answers (api.rs https_register, auth.rs issue_secret).
        (401, "sign check failed", BadProductSecret),
        (404, "product a1X2bEnP82z not found", BadProductSecret),
        (
            404,
            "device a1X2bEnP82z/example1 is not pre-registered",
            UnknownDevice,
        ),
        (
            403,
            "device a1X2bEnP82z/example1 is not pre-registered",
            UnknownDevice,
        ),
        (
            403,
            "device a1X2bEnP82z/example1 is already activated; reset it before registering again",
            AlreadyActivated,
        ),
        (
            403,
            "dynamic registration is off for a1X2bEnP82z",
            Refused(403),
        ),
        (
            460,
            "missing productKey, deviceName, random or sign",
            Refused(460),
        ),
        (
            400,
            "dynamic registration is served over HTTPS only",
            Refused(400),
        ),
        // Any code whose message says the device is activated.
        (6288, "设备已激活", AlreadyActivated),
        (500, "Device Activated", AlreadyActivated),
        // ... but not that it is not.
        (403, "device is not activated", Refused(403)),
        (403, "device inactivated", Refused(403)),
        (404, "", UnknownDevice),
        (401, "", BadProductSecret),
    ];
    for (code, message, expected) in cases {
        let answer = format!(r#"{{"code":{code},"data":{{}},"message":"{message}"}}"#);
        let (result, _) = run(&http_200(&answer), 1024);
        assert_eq!(error_of(result), *expected, "{code} {message}");
    }
}

#[test]
fn http_errors_are_refusals() {
    use RegistrationError::*;
    let html = "<html><body>Internal Server Error</body></html>";
    let big = "x".repeat(4000);
    let activated = r#"{"code":403,"message":"already activated"}"#;
    let cases: Vec<(String, RegistrationError)> = vec![
        (
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{html}",
                html.len()
            ),
            Refused(500),
        ),
        (
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_string(),
            Refused(500),
        ),
        // A body too large to read still leaves the status.
        (
            format!(
                "HTTP/1.1 503 Unavailable\r\nContent-Length: {}\r\n\r\n{big}",
                big.len()
            ),
            Refused(503),
        ),
        // Closed before the announced body: the status still says it all.
        (
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\nabc".to_string(),
            Refused(502),
        ),
        (
            "HTTP/1.1 401 Unauthorized\r\n\r\n".to_string(),
            BadProductSecret,
        ),
        // A JSON body's code and message count.
        (
            format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{activated}",
                activated.len()
            ),
            AlreadyActivated,
        ),
        // A non-200 status is never a success, whatever the body says.
        (
            format!(
                "HTTP/1.1 500 Oops\r\nContent-Length: {}\r\n\r\n{}",
                success_json().len(),
                success_json()
            ),
            Refused(500),
        ),
    ];
    for (reply, expected) in cases {
        let (result, _) = run(reply.as_bytes(), 1024);
        assert_eq!(error_of(result), expected, "{reply}");
    }
}

#[test]
fn malformed_answers_are_bad_replies() {
    for reply in [
        http_200(r#"{"code":200,"data":{"deviceSecret":"#),
        http_200("deviceSecret=abc"),
        http_200(""),
        http_200(r#"{"code":"two hundred","data":{"deviceSecret":"s"}}"#),
        http_200(r#"{"code":99999999999,"data":{"deviceSecret":"s"}}"#),
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
    ] {
        let (result, _) = run(&reply, 1024);
        assert_eq!(
            error_of(result),
            RegistrationError::BadReply,
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
}

#[test]
fn missing_or_empty_secret_is_a_bad_reply() {
    for answer in [
        format!(
            r#"{{"code":200,"data":{{"productKey":"{PK}","deviceName":"{DN}"}},"message":"success"}}"#
        ),
        r#"{"code":200,"data":{"deviceSecret":""}}"#.to_string(),
        r#"{"code":200,"data":{"deviceSecret":12345}}"#.to_string(),
        r#"{"code":200,"data":"deviceSecret"}"#.to_string(),
        r#"{"message":"no code, no secret"}"#.to_string(),
        "[1,2,3]".to_string(),
    ] {
        let (result, _) = run(&http_200(&answer), 1024);
        assert_eq!(error_of(result), RegistrationError::BadReply, "{answer}");
    }
}

#[test]
fn an_answer_for_another_device_is_a_bad_reply() {
    for answer in [
        format!(
            r#"{{"code":200,"data":{{"productKey":"{PK}","deviceName":"other","deviceSecret":"{SECRET}"}}}}"#
        ),
        format!(
            r#"{{"code":200,"data":{{"productKey":"a1Other","deviceName":"{DN}","deviceSecret":"{SECRET}"}}}}"#
        ),
        format!(r#"{{"code":200,"deviceName":"Example1","deviceSecret":"{SECRET}"}}"#),
        format!(r#"{{"code":200,"data":{{"deviceName":null,"deviceSecret":"{SECRET}"}}}}"#),
    ] {
        let (result, _) = run(&http_200(&answer), 1024);
        assert_eq!(error_of(result), RegistrationError::BadReply, "{answer}");
    }
}

/// A success answer padded (in `message`) to exactly `len` bytes.
fn success_json_of_len(len: usize) -> String {
    let bare = success_json().replace("\"success\"", "\"\"");
    let padded = bare.replace(
        "\"message\":\"\"",
        &format!("\"message\":\"{}\"", "p".repeat(len - bare.len())),
    );
    assert_eq!(padded.len(), len);
    padded
}

#[test]
fn answers_larger_than_buf_are_bad_replies_without_reading_on() {
    // Room for the request (326 bytes) and for the JSON, not for the whitespace after it:
    // valid JSON all the same, so only the size check can refuse these.
    const BUF: usize = 400;
    let big = format!("{}{}", success_json(), " ".repeat(4000));
    let mut to_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    to_close.extend_from_slice(big.as_bytes());
    let long_head = format!(
        "HTTP/1.1 200 OK\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "p".repeat(BUF)
    );
    let many_headers = format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: 2\r\n\r\n{{}}",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    let mut huge_length =
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec();
    huge_length.extend_from_slice(big.as_bytes());
    for reply in [
        http_200(&big),
        chunked("Transfer-Encoding: chunked", &big, 100),
        to_close,
        long_head.into_bytes(),
        huge_length,
    ] {
        for piece in [7, 1024] {
            let mut script = Script::new(&reply, piece);
            let result = run_with(&request(), &mut script, BUF);
            assert_eq!(error_of(result), RegistrationError::BadReply);
            assert!(!script.written.is_empty());
            // The head, at most a buffer of body, a few framing bytes: not the 4000 after.
            assert!(
                script.consumed <= 2 * BUF + 16,
                "read {} bytes",
                script.consumed
            );
        }
    }
    let mut script = Script::new(many_headers.as_bytes(), 1024);
    assert_eq!(
        error_of(run_with(&request(), &mut script, RECOMMENDED_BUF_LEN)),
        RegistrationError::BadReply
    );
}

#[test]
fn bytes_after_the_announced_body_are_ignored() {
    let mut reply = http_200(&success_json());
    reply.extend_from_slice(b"HTTP/1.1 400 Junk\r\n\r\n<html>");
    let mut chunked_reply = chunked("Transfer-Encoding: chunked", &success_json(), 10);
    chunked_reply.extend_from_slice(b"trailing junk");
    for reply in [reply, chunked_reply] {
        for piece in [1, 1024] {
            assert_eq!(secret_of(run(&reply, piece).0), SECRET.as_bytes());
        }
    }
}

#[test]
fn answers_that_exactly_fill_buf_are_read() {
    // The whole body fills `buf`; only the chunked terminator or the EOF follows. (The
    // request, 326 bytes, must fit too.)
    const BUF: usize = 400;
    let body = success_json_of_len(BUF);
    let mut to_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    to_close.extend_from_slice(body.as_bytes());
    for reply in [
        http_200(&body),
        chunked("Transfer-Encoding: chunked", &body, 64),
        to_close,
    ] {
        for piece in [1, 50, 1024] {
            let mut script = Script::new(&reply, piece);
            let result = run_with(&request(), &mut script, BUF);
            assert!(
                result.is_ok(),
                "piece {piece}: {:?} {}",
                result.err(),
                String::from_utf8_lossy(&reply)
            );
        }
    }
}

#[test]
fn a_stream_closed_early_is_a_network_error() {
    let network = RegistrationError::Link(LinkError::Network);
    let full = http_200(&success_json());
    let chunked_full = chunked("Transfer-Encoding: chunked", &success_json(), 10);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(),
        full[..full.len() - 5].to_vec(),
        // Closed inside a chunk, between chunks, before the trailers' end.
        chunked_full[..chunked_full.len() - 40].to_vec(),
        chunked_full[..chunked_full.len() - 23].to_vec(),
        chunked_full[..chunked_full.len() - 2].to_vec(),
    ];
    for reply in cases {
        for piece in [1, 1024] {
            let (result, _) = run(&reply, piece);
            assert_eq!(
                error_of(result),
                network,
                "{}",
                String::from_utf8_lossy(&reply)
            );
        }
    }
}

#[test]
fn stream_errors_are_network_errors() {
    let network = RegistrationError::Link(LinkError::Network);
    let mut script = Script::new(&http_200(&success_json()), 1024);
    script.fail_read = true;
    assert_eq!(
        error_of(run_with(&request(), &mut script, RECOMMENDED_BUF_LEN)),
        network
    );
    let mut script = Script::new(&http_200(&success_json()), 1024);
    script.fail_write = true;
    assert_eq!(
        error_of(run_with(&request(), &mut script, RECOMMENDED_BUF_LEN)),
        network
    );
    assert_eq!(script.consumed, 0);
}

#[test]
fn an_unwritable_request_is_refused_before_anything_is_sent() {
    let cases = [
        // The request is 326 bytes.
        (request(), 325),
        (
            HttpsRequest {
                host: "iot-auth\r\nX-Injected: 1",
                ..request()
            },
            RECOMMENDED_BUF_LEN,
        ),
        (
            HttpsRequest {
                host: "",
                ..request()
            },
            RECOMMENDED_BUF_LEN,
        ),
    ];
    for (req, buf_len) in cases {
        let mut script = Script::new(&http_200(&success_json()), 1024);
        assert_eq!(
            error_of(run_with(&req, &mut script, buf_len)),
            RegistrationError::BadReply
        );
        assert!(script.written.is_empty());
    }
    // One more byte and it goes.
    let mut script = Script::new(&http_200(&success_json()), 1024);
    assert_eq!(
        secret_of(run_with(&request(), &mut script, 326)),
        SECRET.as_bytes()
    );
    assert_eq!(script.written.len(), 326);
}

#[test]
fn buf_is_wiped_when_the_future_is_dropped() {
    // The answer stops after the secret, and the stream then pends: the caller's deadline
    // drops the future with the secret in `buf`.
    let reply = http_200(&success_json());
    let cut = reply.len() - 30;
    let mut script = Script::new(&reply[..cut], 1024);
    script.hang_at_end = true;
    let mut buf = vec![0xA5u8; RECOMMENDED_BUF_LEN];
    {
        let req = request();
        let mut future = core::pin::pin!(register(&mut script, &req, &mut buf));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(script.consumed, cut, "the secret was read into buf");
    assert!(buf.iter().all(|&b| b == 0), "buf not zeroized on drop");
}

#[test]
fn neither_the_sign_nor_the_secret_is_logged() {
    // The binary's one capture logger (shared with the runner's tests).
    crate::test_log::install();
    let secret = "Zq9SecretNeverLogged0000000000Zq";
    let answer = format!(r#"{{"code":200,"data":{{"deviceSecret":"{secret}"}}}}"#);
    let (result, _) = run(&http_200(&answer), 1024);
    assert_eq!(secret_of(result), secret.as_bytes());
    // A refusal and a bad reply log too.
    let refused = format!(r#"{{"code":403,"message":"no","data":{{"deviceSecret":"{secret}"}}}}"#);
    assert_eq!(
        error_of(run(&http_200(&refused), 1024).0),
        RegistrationError::Refused(403)
    );
    let other = format!(r#"{{"code":200,"data":{{"deviceName":"x","deviceSecret":"{secret}"}}}}"#);
    assert_eq!(
        error_of(run(&http_200(&other), 1024).0),
        RegistrationError::BadReply
    );
    let lines = crate::test_log::lines();
    assert!(
        lines.iter().any(|l| l.contains("DeviceSecret received")),
        "the capture logger is not installed: {lines:?}"
    );
    for line in &lines {
        assert!(!line.contains(secret), "secret logged: {line}");
        assert!(!line.contains(V6_SIGN), "sign logged: {line}");
    }
}

#[test]
fn dechunker_decodes_across_every_split() {
    let encoded =
        b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\nafter";
    let decoded = b"Wikipedia in\r\n\r\nchunks.";
    for split in 0..encoded.len() {
        for second in split..encoded.len() {
            let mut dechunker = Dechunker::new();
            let mut out = Vec::new();
            for range in [0..split, split..second, second..encoded.len()] {
                let mut piece = encoded[range].to_vec();
                let n = dechunker.decode(&mut piece).unwrap();
                out.extend_from_slice(&piece[..n]);
            }
            assert!(dechunker.is_done());
            assert_eq!(out, decoded, "split at {split}, {second}");
        }
    }
    // Bare LF line ends.
    let mut dechunker = Dechunker::new();
    let mut bare = b"3\nabc\n0\n\n".to_vec();
    let n = dechunker.decode(&mut bare).unwrap();
    assert_eq!(&bare[..n], b"abc");
    assert!(dechunker.is_done());
}

#[test]
fn dechunker_refuses_bad_framing() {
    let ext = format!(
        "1;{}\r\na\r\n0\r\n\r\n",
        "e".repeat(MAX_CHUNK_META as usize + 1)
    );
    let trailer = format!("0\r\nT: {}\r\n\r\n", "t".repeat(MAX_CHUNK_META as usize));
    let cases: &[(&[u8], HttpError)] = &[
        (b"\r\n", HttpError::Malformed),
        (b"g\r\n", HttpError::Malformed),
        (b"3\r\nabcX", HttpError::Malformed),
        (b"3\r\nabc\rX", HttpError::Malformed),
        (b"3\rX", HttpError::Malformed),
        (b"00000000000000001\r\n", HttpError::Malformed),
        (b"FFFFFFFFFFFFFFFF0\r\n", HttpError::Malformed),
        (ext.as_bytes(), HttpError::TooLarge),
        (trailer.as_bytes(), HttpError::TooLarge),
    ];
    for (input, expected) in cases {
        let mut data = input.to_vec();
        assert_eq!(
            Dechunker::new().decode(&mut data),
            Err(*expected),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn request_head_for_other_uses() {
    // What the OTA download (issue 8) will send: no body, extra headers.
    let mut buf = [0u8; 128];
    let mut w = SliceWriter::new(&mut buf);
    write_request_head(
        &mut w,
        "GET",
        "ota.example",
        "/fw.bin",
        &[("Range", "bytes=0-1023")],
        None,
    )
    .unwrap();
    let len = w.len();
    assert_eq!(
        &buf[..len],
        b"GET /fw.bin HTTP/1.1\r\nHost: ota.example\r\nRange: bytes=0-1023\r\nConnection: close\r\n\r\n"
    );
    let mut small = [0u8; 20];
    let mut w = SliceWriter::new(&mut small);
    assert_eq!(
        write_request_head(&mut w, "GET", "h", "/", &[], None),
        Err(HttpError::TooLarge)
    );
    let mut w = SliceWriter::new(&mut buf);
    assert_eq!(
        write_request_head(&mut w, "GET", "h", "/a b", &[], None),
        Err(HttpError::InvalidRequest)
    );
    assert_eq!(
        write_request_head(&mut w, "GET", "h", "/", &[("X", "a\r\nB: c")], None),
        Err(HttpError::InvalidRequest)
    );
}
