//! Whole HTTP responses to the HTTPS registration (`registration::https::register`): the
//! response head (`https::head`, framing), the body (Content-Length, chunked with `Dechunker`, or
//! to the close) and the JSON answer, over a stream that replays the input.
//!
//! Input: one byte choosing the buffer size and the bytes per read, then the server's bytes.
//! Checked: no panic, no hang (the stream never blocks, so `register` must finish in one
//! poll); the request went out before anything was read; a DeviceSecret taken is non-empty;
//! the buffer, which held the signed request and the answer, is all zeros afterwards.

#![no_main]

use aliot_kernel::config::SignMethod;
use aliot_kernel::registration::https::{HttpsRequest, RECOMMENDED_BUF_LEN, register};
use aliot_kernel_fuzz::{Replay, chunk, once};
use libfuzzer_sys::fuzz_target;

const REQUEST: HttpsRequest<'static> = HttpsRequest {
    host: "iot-auth.cn-shanghai.aliyuncs.com",
    product_key: "a1NrfDemo01",
    device_name: "nrf9160-dk-01",
    random: "8Ygb7ULYh53B6OA",
    sign_method: SignMethod::HmacSha256,
    product_secret: b"demoProductSecret0123456789abcde",
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, server)) = data.split_first() else {
        return;
    };
    let len = match mode & 3 {
        0 => RECOMMENDED_BUF_LEN,
        1 => 512,
        2 => 2048,
        _ => 300,
    };
    let mut buf = vec![0xAA; len];
    let mut stream = Replay::new(server, chunk(mode >> 2));
    let result = once(register(&mut stream, &REQUEST, &mut buf));
    if let Ok(secret) = &result {
        assert!(!secret.is_empty());
    }
    if len >= 512 {
        assert!(
            stream
                .written
                .starts_with(b"POST /auth/register/device HTTP/1.1\r\n")
        );
    }
    assert!(buf.iter().all(|&b| b == 0), "buffer not wiped");
});
