//! URL parsing: OSS pre-signed URLs kept verbatim, every malformed shape refused, no panic.

use alloc::format;
use alloc::string::String;

use super::*;

const OSS: &str = "https://iotx-ota.oss-cn-shanghai.aliyuncs.com/ota/3b1d/fw-2.0.0.bin\
                   ?Expires=1626969897&OSSAccessKeyId=LTAI4FoorBar&Signature=ab%2Bcd%3D";

#[test]
fn an_oss_presigned_url_is_split_and_kept_verbatim() {
    let url = Url::parse(OSS).unwrap();
    assert_eq!(url.scheme, Scheme::Https);
    assert!(url.tls());
    assert_eq!(url.host, "iotx-ota.oss-cn-shanghai.aliyuncs.com");
    assert_eq!(url.authority, "iotx-ota.oss-cn-shanghai.aliyuncs.com");
    assert_eq!(url.port, 443);
    assert_eq!(
        url.target,
        "/ota/3b1d/fw-2.0.0.bin?Expires=1626969897&OSSAccessKeyId=LTAI4FoorBar&Signature=ab%2Bcd%3D"
    );
    assert_eq!(url.path(), "/ota/3b1d/fw-2.0.0.bin");
}

#[test]
fn ports_hosts_and_schemes() {
    let cases: &[(&str, Scheme, &str, &str, u16, &str)] = &[
        ("http://h/x", Scheme::Http, "h", "h", 80, "/x"),
        ("HTTP://h/x", Scheme::Http, "h", "h", 80, "/x"),
        ("HttpS://h", Scheme::Https, "h", "h", 443, "/"),
        (
            "http://127.0.0.1:8080/fw.bin",
            Scheme::Http,
            "127.0.0.1",
            "127.0.0.1:8080",
            8080,
            "/fw.bin",
        ),
        (
            "https://a.b_c-d.example:65535/?q",
            Scheme::Https,
            "a.b_c-d.example",
            "a.b_c-d.example:65535",
            65535,
            "/?q",
        ),
        ("http://h:1/p#frag", Scheme::Http, "h", "h:1", 1, "/p"),
        (
            "http://h/p?q=1#frag?x",
            Scheme::Http,
            "h",
            "h",
            80,
            "/p?q=1",
        ),
        ("http://h#frag", Scheme::Http, "h", "h", 80, "/"),
    ];
    for &(text, scheme, host, authority, port, target) in cases {
        let url = Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (url.scheme, url.host, url.authority, url.port, url.target),
            (scheme, host, authority, port, target),
            "{text}"
        );
    }
}

#[test]
fn malformed_urls_are_refused_with_the_reason() {
    let cases: &[(&str, UrlError)] = &[
        ("", UrlError::Scheme),
        ("ftp://h/x", UrlError::Scheme),
        ("http:/h/x", UrlError::Scheme),
        ("//h/x", UrlError::Scheme),
        ("https", UrlError::Scheme),
        ("httpsx://h/", UrlError::Scheme),
        (" http://h/", UrlError::Scheme),
        ("http://", UrlError::Host),
        ("http:///x", UrlError::Host),
        ("http://:80/x", UrlError::Host),
        ("http://h h/x", UrlError::Host),
        ("http://hé/x", UrlError::Host),
        ("http://h%41/x", UrlError::Host),
        ("http://user@h/x", UrlError::UserInfo),
        ("http://u:p@h:80/x", UrlError::UserInfo),
        ("http://[::1]/x", UrlError::Ipv6),
        ("http://[::1]:80/x", UrlError::Ipv6),
        ("http://::1/x", UrlError::Host),
        ("http://h:/x", UrlError::Port),
        ("http://h:0/x", UrlError::Port),
        ("http://h:65536/x", UrlError::Port),
        ("http://h:99999999999999999999/x", UrlError::Port),
        ("http://h:+80/x", UrlError::Port),
        ("http://h:8a/x", UrlError::Port),
        ("http://h?x=1", UrlError::Target),
        ("http://h/a b", UrlError::Target),
        ("http://h/a\r\nHost: evil", UrlError::Target),
        ("http://h/a\tb", UrlError::Target),
        ("http://h/é", UrlError::Target),
        ("http://h/x?q=\u{7f}", UrlError::Target),
    ];
    for &(text, want) in cases {
        assert_eq!(Url::parse(text), Err(want), "{text:?}");
    }
    let long = format!("http://{}/x", "a".repeat(254));
    assert_eq!(Url::parse(&long), Err(UrlError::Host));
    let longest = format!("http://{}/x", "a".repeat(253));
    assert!(Url::parse(&longest).is_ok());
}

/// Every prefix and every one-byte mutation of some URLs: an answer, never a panic, and a
/// parsed URL's parts always come from the input.
#[test]
fn no_input_panics() {
    let seeds = [
        OSS,
        "http://127.0.0.1:8080/fw.bin?a=b#c",
        "https://[::1]:443/x",
        "http://u@h:1/",
    ];
    let bytes = [
        b'/', b':', b'?', b'#', b'@', b'[', b']', b' ', b'%', 0u8, 0xff, b'0', b'a',
    ];
    for seed in seeds {
        for end in 0..=seed.len() {
            if let Some(prefix) = seed.get(..end) {
                check(prefix);
            }
        }
        for at in 0..seed.len() {
            for &b in &bytes {
                let mut mutated = seed.as_bytes().to_vec();
                mutated[at] = b;
                check(&String::from_utf8_lossy(&mutated));
                mutated.insert(at, b);
                check(&String::from_utf8_lossy(&mutated));
            }
        }
    }
}

fn check(text: &str) {
    if let Ok(url) = Url::parse(text) {
        assert!(
            text.contains(url.host) && text.contains(url.authority),
            "{text:?}"
        );
        assert!(url.target.starts_with('/'), "{text:?}");
        assert!(url.target == "/" || text.contains(url.target), "{text:?}");
        assert!(url.target.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
        assert!(!url.host.is_empty() && url.port != 0, "{text:?}");
    }
}

#[test]
fn the_query_never_shows_in_debug_or_redacted() {
    let url = Url::parse(OSS).unwrap();
    for shown in [format!("{url:?}"), format!("{}", url.redacted())] {
        assert!(!shown.contains("Signature"), "{shown}");
        assert!(!shown.contains("Expires"), "{shown}");
        assert!(shown.contains("/ota/3b1d/fw-2.0.0.bin?…"), "{shown}");
    }
    let plain = Url::parse("http://h:81/p").unwrap();
    assert_eq!(format!("{}", plain.redacted()), "http://h:81/p");
}
