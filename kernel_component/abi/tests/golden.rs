//! Golden bytes: the exact postcard encoding of every variant. A failure here means the wire
//! contract changed; if that was intended, bump `ABI_MAJOR` (or, for an append, `ABI_MINOR`) and update the bytes.

use aliot_abi::*;

fn bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

#[track_caller]
fn golden<'a, T>(value: T, expected: &'a [u8])
where
    T: serde::Serialize + serde::Deserialize<'a> + PartialEq + core::fmt::Debug,
{
    assert_eq!(bytes(&value), expected, "encoding of {value:?}");
    let back: T = postcard::from_bytes(expected).unwrap();
    assert_eq!(back, value, "decoding of {expected:?}");
}

#[test]
fn abi_version_is_pinned() {
    assert_eq!((ABI_MAJOR, ABI_MINOR), (2, 3));
    assert_eq!(REQUEST_VARIANTS, 7);
}

#[test]
fn a_request_of_a_newer_minor_is_recognisable_by_its_tag() {
    // The first byte of every request is its variant tag; the kernel answers `Unsupported` to
    // tags at or past REQUEST_VARIANTS, `Malformed` to anything else it cannot decode.
    assert_eq!(bytes(&Request::Time)[0], REQUEST_VARIANTS - 1);
    assert!(postcard::from_bytes::<Request>(&[REQUEST_VARIANTS]).is_err());
}

#[test]
fn requests() {
    golden(Request::Hello { major: 2, minor: 0 }, &[0, 2, 0]);
    golden(
        Request::Hello {
            major: 300,
            minor: 1,
        },
        &[0, 0xac, 0x02, 1],
    );
    golden(
        Request::Publish {
            topic: "/a/b",
            payload: b"hi",
            qos: Qos::AtLeastOnce,
            token: 7,
        },
        &[1, 4, b'/', b'a', b'/', b'b', 2, b'h', b'i', 1, 7],
    );
    golden(
        Request::Publish {
            topic: "t",
            payload: &[],
            qos: Qos::AtMostOnce,
            token: 128,
        },
        &[1, 1, b't', 0, 0, 0x80, 0x01],
    );
    golden(
        Request::Subscribe {
            filter: "/x/#",
            qos: Qos::AtLeastOnce,
            token: 3,
        },
        &[2, 4, b'/', b'x', b'/', b'#', 1, 3],
    );
    golden(Request::Unsubscribe { filter: "/x" }, &[3, 2, b'/', b'x']);
    golden(Request::Status, &[4]);
    golden(
        Request::WaitEvent { timeout_ms: 20_000 },
        &[5, 0xa0, 0x9c, 0x01],
    );
    // Minor 3.
    golden(Request::Time, &[6]);
}

#[test]
fn responses() {
    golden(Response::Ok, &[0]);
    golden(
        Response::Welcome {
            major: 2,
            minor: 0,
            app_id: 2,
        },
        &[1, 2, 0, 2],
    );
    golden(Response::Accepted { token: 9 }, &[2, 9]);
    golden(
        Response::Status(LinkStatus {
            connected: true,
            connects: 3,
            pending_publishes: 1,
            registration: Registration::NotNeeded,
            ota: OtaStatus::Idle,
        }),
        &[3, 1, 3, 1, 0, 0],
    );
    golden(
        Response::Status(LinkStatus {
            connected: false,
            connects: 0,
            pending_publishes: 0,
            registration: Registration::Failed(RegistrationFailure::AlreadyActivated),
            ota: OtaStatus::Failed { step: -3 },
        }),
        // An i8 is one byte, two's complement: -3 is 0xFD.
        &[3, 0, 0, 0, 3, 0, 4, 0xFD],
    );
    for (state, bytes) in [
        (OtaStatus::Idle, &[0u8][..]),
        (OtaStatus::Downloading { percent: 42 }, &[1, 42]),
        (OtaStatus::Verifying, &[2]),
        (OtaStatus::PendingReboot, &[3]),
        (OtaStatus::Failed { step: -1 }, &[4, 0xFF]),
    ] {
        golden(state, bytes);
    }
    for (state, byte) in [
        (Registration::NotNeeded, 0),
        (Registration::Registering, 1),
        (Registration::Registered, 2),
    ] {
        golden(state, &[byte]);
    }
    for (i, failure) in [
        RegistrationFailure::AlreadyActivated,
        RegistrationFailure::BadProductSecret,
        RegistrationFailure::UnknownDevice,
        RegistrationFailure::Refused,
        RegistrationFailure::Network,
        RegistrationFailure::Timeout,
        RegistrationFailure::BadReply,
        RegistrationFailure::Storage,
    ]
    .into_iter()
    .enumerate()
    {
        golden(Registration::Failed(failure), &[3, i as u8]);
    }
    golden(Response::Event(Event::Connected), &[4, 0]);
    golden(Response::NoEvent, &[5]);
    golden(Response::Error(ErrorCode::NotPermitted), &[6, 2]);
    // Minor 3: the time, or none yet.
    golden(Response::Time(None), &[7, 0]);
    golden(
        Response::Time(Some(WallClock {
            unix_ms: 1_764_547_200_123,
            source: TimeSource::Platform,
            accuracy_ms: 150,
        })),
        // 1 764 547 200 123 as a varint (7 bits a byte, low first), then the source's tag and
        // 150 as a varint.
        &[7, 1, 0xFB, 0x88, 0xD6, 0xB9, 0xAD, 0x33, 0, 0x96, 0x01],
    );
    golden(TimeSource::Network, &[1]);
}

#[test]
fn events() {
    golden(Event::Connected, &[0]);
    golden(
        Event::Disconnected {
            reason: DisconnectReason::Network,
        },
        &[1, 0],
    );
    golden(
        Event::Disconnected {
            reason: DisconnectReason::AuthRejected,
        },
        &[1, 1],
    );
    golden(
        Event::Disconnected {
            reason: DisconnectReason::ServerClosed,
        },
        &[1, 2],
    );
    golden(
        Event::Disconnected {
            reason: DisconnectReason::KeepAliveTimeout,
        },
        &[1, 3],
    );
    golden(
        Event::Disconnected {
            reason: DisconnectReason::Protocol,
        },
        &[1, 4],
    );
    golden(
        Event::Message {
            topic: "/t",
            payload: b"ok",
            qos: Qos::AtMostOnce,
        },
        &[2, 2, b'/', b't', 2, b'o', b'k', 0],
    );
    golden(
        Event::PublishResult {
            token: 5,
            delivered: true,
        },
        &[3, 5, 1],
    );
    golden(
        Event::PublishResult {
            token: 5,
            delivered: false,
        },
        &[3, 5, 0],
    );
    golden(
        Event::SubscribeResult {
            token: 1,
            granted: false,
        },
        &[4, 1, 0],
    );
    golden(Event::Overflow { dropped: 2 }, &[5, 2]);
}

#[test]
fn error_codes() {
    let all = [
        ErrorCode::Malformed,
        ErrorCode::AbiMismatch,
        ErrorCode::NotPermitted,
        ErrorCode::InvalidTopic,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotConnected,
        ErrorCode::Busy,
        ErrorCode::NotSubscribed,
        ErrorCode::Unsupported,
    ];
    for (i, code) in all.into_iter().enumerate() {
        golden(code, &[i as u8]);
    }
}

#[test]
fn cobs_frames_round_trip_and_end_in_zero() {
    let mut buf = [0u8; MAX_COBS_FRAME_LEN];
    let payload = [0u8; 300];
    let req = Request::Publish {
        topic: "/a/b",
        payload: &payload,
        qos: Qos::AtLeastOnce,
        token: 1,
    };
    let frame = encode_frame(&req, &mut buf).unwrap();
    assert_eq!(*frame.last().unwrap(), 0);
    assert!(
        !frame[..frame.len() - 1].contains(&0),
        "COBS body must hold no zero"
    );
    let mut copy = frame.to_vec();
    let back: Request = decode_frame(&mut copy).unwrap();
    assert_eq!(back, req);
}

#[test]
fn largest_message_fits_the_frame_bound() {
    let topic = "t".repeat(MAX_TOPIC_LEN);
    let payload = vec![0xffu8; MAX_PAYLOAD_LEN];
    let ev = Response::Event(Event::Message {
        topic: &topic,
        payload: &payload,
        qos: Qos::AtLeastOnce,
    });
    assert!(bytes(&ev).len() <= MAX_FRAME_LEN);
    let mut buf = vec![0u8; MAX_COBS_FRAME_LEN];
    encode_frame(&ev, &mut buf).unwrap();
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(postcard::from_bytes::<Request>(&[9]).is_err());
    assert!(postcard::from_bytes::<Request>(&[1, 200]).is_err());
    assert!(postcard::from_bytes::<Response>(&[]).is_err());
}

/// Minors 1 and 2 appended `LinkStatus::registration` and `LinkStatus::ota`: an app built
/// against minor 0 (this copy of its types) still decodes a minor-2 Status answer, field for
/// field.
#[test]
fn minor_0_app_decodes_a_minor_2_status() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct LinkStatusV0 {
        connected: bool,
        connects: u32,
        pending_publishes: u16,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[allow(dead_code)] // only the tags before Status matter
    enum ResponseV0 {
        Ok,
        Welcome,
        Accepted,
        Status(LinkStatusV0),
    }
    let now = bytes(&Response::Status(LinkStatus {
        connected: true,
        connects: 7,
        pending_publishes: 2,
        registration: Registration::Failed(RegistrationFailure::Storage),
        ota: OtaStatus::Downloading { percent: 7 },
    }));
    assert_eq!(now.len(), 8, "{now:?}");
    let old: ResponseV0 = postcard::from_bytes(&now).unwrap();
    assert_eq!(
        old,
        ResponseV0::Status(LinkStatusV0 {
            connected: true,
            connects: 7,
            pending_publishes: 2,
        })
    );
}
