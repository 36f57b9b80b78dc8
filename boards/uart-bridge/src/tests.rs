//! Frames built by hand (postcard, then COBS), so the codec is checked against the bytes a
//! peer written from this description would send.

use super::*;

/// `Connect { stream: 3, host: "ab", port: 1883, tls: true }`: postcard tag 0, id 3, length 2,
/// "ab", port 1883 as a varint (0xDB 0x0E), true; COBS: the leading zero becomes code 1, the
/// seven bytes after it code 8, then the terminator.
const CONNECT_FRAME: [u8; 11] = [
    0x01, 0x08, 0x03, 0x02, b'a', b'b', 0xDB, 0x0E, 0x01, 0x00, 0x00,
];

#[test]
fn a_connect_encodes_to_the_documented_bytes() {
    let mut out = [0u8; MAX_FRAME];
    let message = Up::Connect {
        stream: 3,
        host: "ab",
        port: 1883,
        tls: true,
    };
    let n = encode(&message, &mut out).unwrap();
    assert_eq!(&out[..n], &CONNECT_FRAME[..10]);
}

#[test]
fn the_deframer_hands_over_frames_and_skips_empty_ones() {
    let mut d = Deframer::new();
    let mut frames = 0;
    // Two zeros between frames: the second frame is empty and skipped.
    for &b in CONNECT_FRAME.iter().chain(CONNECT_FRAME.iter()) {
        if let Some(frame) = d.push(b) {
            let frame = frame.unwrap();
            let got: Up<'_> = decode(frame).unwrap();
            assert_eq!(
                got,
                Up::Connect {
                    stream: 3,
                    host: "ab",
                    port: 1883,
                    tls: true
                }
            );
            frames += 1;
        }
    }
    assert_eq!(frames, 2);
}

#[test]
fn down_messages_decode_from_hand_built_frames() {
    // Data { stream: 1, bytes: [0x00, 0x10] }: tag 2, id 1, len 2, 0x00, 0x10 ->
    // COBS [0x04, 0x02, 0x01, 0x02, 0x02, 0x10] (the data's zero ends the first block).
    let mut frame = [0x04, 0x02, 0x01, 0x02, 0x02, 0x10];
    let got: Down<'_> = decode(&mut frame).unwrap();
    assert_eq!(
        got,
        Down::Data {
            stream: 1,
            bytes: &[0x00, 0x10]
        }
    );
    // Failed { stream: 7, reason: Tls }: tag 1, id 7, variant 2.
    let mut frame = [0x04, 0x01, 0x07, 0x02];
    assert_eq!(
        decode::<Down<'_>>(&mut frame).unwrap(),
        Down::Failed {
            stream: 7,
            reason: Failure::Tls
        }
    );
}

#[test]
fn a_frame_longer_than_the_limit_is_refused_and_the_next_one_still_decodes() {
    let mut d = Deframer::new();
    let mut results = Vec::new();
    for _ in 0..MAX_FRAME + 10 {
        assert!(d.push(0x55).is_none());
    }
    results.push(d.push(0).map(|r| r.map(|f| f.len())));
    assert_eq!(results, [Some(Err(FrameError::TooLong))]);
    // Closed { stream: 9 }: tag 3, id 9 -> COBS [0x03, 0x03, 0x09].
    let mut got = None;
    for b in [0x03, 0x03, 0x09, 0x00] {
        if let Some(frame) = d.push(b) {
            got = Some(decode::<Down<'_>>(frame.unwrap()).unwrap() == Down::Closed { stream: 9 });
        }
    }
    assert_eq!(got, Some(true));
}

#[test]
fn garbage_and_trailing_bytes_are_malformed() {
    // Tag 9 does not exist.
    let mut frame = [0x02, 0x09];
    assert_eq!(decode::<Down<'_>>(&mut frame), Err(FrameError::Malformed));
    // Closed { stream: 9 } and one byte more.
    let mut frame = [0x04, 0x03, 0x09, 0x01];
    assert_eq!(decode::<Down<'_>>(&mut frame), Err(FrameError::Malformed));
    // A COBS code pointing past the end.
    let mut frame = [0x09, 0x03];
    assert_eq!(decode::<Down<'_>>(&mut frame), Err(FrameError::Malformed));
}

#[test]
fn chunks_over_the_limit_are_refused_both_ways() {
    let big = [7u8; MAX_CHUNK + 1];
    let mut out = [0u8; 2 * MAX_FRAME];
    assert_eq!(
        encode(
            &Up::Data {
                stream: 0,
                bytes: &big
            },
            &mut out
        ),
        Err(FrameError::OverLimit)
    );
    // The same message built without the check decodes to OverLimit.
    let n = postcard::to_slice_cobs(
        &Down::Data {
            stream: 0,
            bytes: &big,
        },
        &mut out,
    )
    .unwrap()
    .len();
    assert_eq!(
        decode::<Down<'_>>(&mut out[..n - 1]),
        Err(FrameError::OverLimit)
    );
    // A whole chunk fits the frame limit.
    let full = [0u8; MAX_CHUNK];
    let n = encode(
        &Down::Data {
            stream: 0,
            bytes: &full,
        },
        &mut out,
    )
    .unwrap();
    assert!(n <= MAX_FRAME, "{n} > {MAX_FRAME}");
}

#[test]
fn the_longest_connect_fits_a_frame() {
    let host = core::str::from_utf8(&[b'h'; MAX_HOST_LEN]).unwrap();
    let mut out = [0u8; MAX_FRAME];
    let message = Up::Connect {
        stream: 255,
        host,
        port: u16::MAX,
        tls: true,
    };
    assert!(encode(&message, &mut out).is_ok());
}
