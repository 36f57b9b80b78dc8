//! The hand-written head parser against `httparse` 1.10 (what it replaced, default options)
//! over a corpus of valid and invalid heads: the fuzz seeds' responses, hand-written edge
//! cases, every prefix of each, single-byte mutations and generated heads. Both must agree on
//! the status, the headers and the head's length, on "incomplete", and on refusing (with
//! `httparse`'s `TooManyHeaders` as [`HttpError::TooLarge`], anything else as
//! [`HttpError::Malformed`]).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Partial,
    Refused(HttpError),
    Head {
        status: u16,
        len: usize,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

fn ours(data: &[u8]) -> Outcome {
    match parse(data) {
        Ok(None) => Outcome::Partial,
        Err(e) => Outcome::Refused(e),
        Ok(Some(head)) => Outcome::Head {
            status: head.status,
            len: head.len,
            headers: head
                .headers()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
        },
    }
}

fn httparse(data: &[u8]) -> Outcome {
    let mut headers = [::httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = ::httparse::Response::new(&mut headers);
    match response.parse(data) {
        Ok(::httparse::Status::Partial) => Outcome::Partial,
        Err(::httparse::Error::TooManyHeaders) => Outcome::Refused(HttpError::TooLarge),
        Err(_) => Outcome::Refused(HttpError::Malformed),
        Ok(::httparse::Status::Complete(len)) => Outcome::Head {
            status: response.code.unwrap(),
            len,
            headers: response
                .headers
                .iter()
                .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
                .collect(),
        },
    }
}

fn agree(data: &[u8]) -> Outcome {
    let ours = ours(data);
    assert_eq!(
        ours,
        httparse(data),
        "on {:?}",
        String::from_utf8_lossy(data)
    );
    ours
}

/// Heads that probe each rule (most are then cut and mutated too).
fn hand_written() -> Vec<Vec<u8>> {
    let mut heads: Vec<Vec<u8>> = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.0 404 Not Found\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
        b"HTTP/1.1 200 OK\r\nA: b\n\r\n",
        b"\r\n\nHTTP/1.1 200 OK\r\n\r\n",
        b"\rHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 200\n\n",
        b"HTTP/1.1 200 \r\n\r\n",
        b"HTTP/1.1 200  Two  spaces\t\r\n\r\n",
        b"HTTP/1.1 200 \xe6\x88\x90\xe5\x8a\x9f\r\nX: \xff\x80\r\n\r\n",
        b"HTTP/1.1 200 O\x7fK\r\n\r\n",
        b"HTTP/1.1 200 O\x00K\r\n\r\n",
        b"HTTP/1.1 200 OK\rX\n\r\n",
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200x\r\n\r\n",
        b"HTTP/1.1 999 ?\r\n\r\n",
        b"HTTP/1.1 000 ?\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName:value\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName: \t value \t \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName:\r\nOther:   \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n Name: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNa(me: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x1bb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a:b: c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n\rX",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: all the tchars\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ]
    .iter()
    .map(|h| h.to_vec())
    .collect();
    // Around the header count limit: at it, one past it, one past it but cut.
    for n in [
        MAX_HEADERS - 1,
        MAX_HEADERS,
        MAX_HEADERS + 1,
        MAX_HEADERS + 2,
    ] {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        heads.push(head.clone());
        head.extend_from_slice(b"\r\n");
        heads.push(head);
    }
    heads
}

/// The responses in the fuzz seeds of the targets that read HTTP heads: from each `HTTP/` on.
fn seed_heads() -> Vec<Vec<u8>> {
    let mut heads = Vec::new();
    for target in ["download_http", "registration_https"] {
        let dir = format!("{}/fuzz/seeds/{target}", env!("CARGO_MANIFEST_DIR"));
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for entry in entries {
            let seed = std::fs::read(entry.unwrap().path()).unwrap();
            let starts = seed.windows(5).enumerate().filter(|(_, w)| w == b"HTTP/");
            for (at, _) in starts {
                heads.push(seed[at..].to_vec());
                // A byte of the framing before it (a length prefix, or the seeds' mode bytes).
                heads.push(seed[at.saturating_sub(1)..].to_vec());
            }
        }
    }
    heads
}

#[test]
fn agrees_with_httparse_on_the_corpus_and_every_prefix() {
    let corpus: Vec<Vec<u8>> = hand_written().into_iter().chain(seed_heads()).collect();
    let mut complete = 0;
    for head in &corpus {
        for end in 0..=head.len() {
            if let Outcome::Head { .. } = agree(&head[..end]) {
                complete += 1;
            }
        }
    }
    // The corpus holds heads that are complete (not only refusals and fragments).
    assert!(complete > 1000, "{complete}");
}

#[test]
fn agrees_with_httparse_on_single_byte_changes() {
    let corpus: Vec<Vec<u8>> = hand_written().into_iter().chain(seed_heads()).collect();
    let replacements = [
        b'\r', b'\n', b' ', b'\t', b':', b'0', b'a', b'(', 0, 0x7f, 0x80, 0xff,
    ];
    for head in &corpus {
        // The head and a little of what follows it.
        let len = match httparse(head) {
            Outcome::Head { len, .. } => (len + 8).min(head.len()),
            _ => head.len().min(400),
        };
        let mut changed = head[..len].to_owned();
        for at in 0..len {
            let was = changed[at];
            for &b in &replacements {
                changed[at] = b;
                agree(&changed);
            }
            changed[at] = was;
        }
        // Each byte removed.
        for at in 0..len {
            let mut cut = head[..len].to_vec();
            cut.remove(at);
            agree(&cut);
        }
    }
}

#[test]
fn agrees_with_httparse_on_generated_heads() {
    // Pieces a head is made of, good and bad, strung together by a fixed pseudo-random walk.
    let pieces: [&[u8]; 24] = [
        b"HTTP/1.1 ",
        b"HTTP/1.0 ",
        b"HTTP/1.",
        b"200",
        b"20",
        b" OK",
        b"\r\n",
        b"\n",
        b"\r",
        b"Content-Length",
        b"Transfer-Encoding",
        b": ",
        b":",
        b" ",
        b"\t",
        b"chunked",
        b"12",
        b"x",
        b"\x80",
        b"\x00",
        b"(",
        b"\r\n\r\n",
        b"\n\n",
        b"Range: bytes 1-2/3",
    ];
    let mut x: u32 = 0x2545_f491;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut complete = 0;
    for _ in 0..20_000 {
        let mut head = Vec::new();
        if next() % 4 != 0 {
            head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        }
        for _ in 0..next() % 24 {
            head.extend_from_slice(pieces[next() as usize % pieces.len()]);
        }
        if let Outcome::Head { .. } = agree(&head) {
            complete += 1;
        }
    }
    assert!(complete > 100, "{complete}");
}

#[test]
fn lf_only_and_mixed_line_ends_are_read() {
    let head = parse(b"HTTP/1.1 206 Partial\nContent-Range: bytes 0-1/2\r\n\nxy")
        .unwrap()
        .unwrap();
    assert_eq!((head.status, head.len), (206, 50));
    let headers: Vec<_> = head.headers().collect();
    assert_eq!(headers, [(&b"Content-Range"[..], &b"bytes 0-1/2"[..])]);
}

#[test]
fn obsolete_line_folding_is_refused() {
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
        Err(HttpError::Malformed)
    );
}
