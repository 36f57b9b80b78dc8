//! Unit tests of [`Aliot`] against the scripted fake kernel.

use crate::fake::{FakeError, FakeKernel};
use crate::{Aliot, AppError, FRAME_BUF_LEN, Syscalls};
use aliot_abi::{
    ABI_MAJOR, ABI_MINOR, DisconnectReason, ErrorCode, Event, LinkStatus, MAX_PAYLOAD_LEN,
    MAX_TOPIC_LEN, Qos, Request, Response, TimeSource, WallClock,
};
use std::vec;
use std::vec::Vec;

const TOPIC: &str = "/a1NrfDemo01/nrf9160-dk-01/user/update";
const FILTER: &str = "/a1NrfDemo01/nrf9160-dk-01/user/get";

/// A fake that has already welcomed the app as slot 3.
fn welcomed() -> FakeKernel {
    let mut fake = FakeKernel::new();
    fake.expect_hello(3);
    fake
}

fn publish(topic: &'static str, payload: &'static [u8], token: u32) -> Request<'static> {
    Request::Publish {
        topic,
        payload,
        qos: Qos::AtLeastOnce,
        token,
    }
}

#[test]
fn new_sends_hello_and_keeps_the_app_id() {
    let mut fake = welcomed();
    let app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.app_id(), 3);
    fake.assert_done();
}

#[test]
fn new_rejects_a_kernel_of_another_abi_version() {
    let mut fake = FakeKernel::new();
    fake.expect(
        Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
        Response::Welcome {
            major: ABI_MAJOR + 1,
            minor: 0,
            app_id: 0,
        },
    );
    let err = Aliot::new(&mut fake).err().expect("version differs");
    assert_eq!(
        err,
        AppError::AbiMismatch {
            kernel: ABI_MAJOR + 1
        }
    );
}

#[test]
fn new_accepts_a_kernel_of_a_newer_minor() {
    let mut fake = FakeKernel::new();
    fake.expect(
        Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
        Response::Welcome {
            major: ABI_MAJOR,
            minor: ABI_MINOR + 1,
            app_id: 4,
        },
    );
    let app = Aliot::new(&mut fake).expect("a newer minor only appends");
    assert_eq!(app.app_id(), 4);
}

#[test]
fn new_reports_the_kernels_refusal() {
    let mut fake = FakeKernel::new();
    let hello = Request::Hello {
        major: ABI_MAJOR,
        minor: ABI_MINOR,
    };
    fake.expect(hello, Response::Error(ErrorCode::AbiMismatch));
    let err = Aliot::new(&mut fake).err().expect("refused");
    assert_eq!(err, AppError::Kernel(ErrorCode::AbiMismatch));
}

#[test]
fn new_rejects_an_answer_that_is_not_welcome() {
    let mut fake = FakeKernel::new();
    let hello = Request::Hello {
        major: ABI_MAJOR,
        minor: ABI_MINOR,
    };
    fake.expect(hello, Response::Ok);
    assert_eq!(
        Aliot::new(&mut fake).err(),
        Some(AppError::UnexpectedResponse)
    );
}

#[test]
fn publish_and_subscribe_share_one_token_counter() {
    let mut fake = welcomed();
    fake.expect(publish(TOPIC, b"a", 1), Response::Accepted { token: 1 })
        .expect(
            Request::Subscribe {
                filter: FILTER,
                qos: Qos::AtMostOnce,
                token: 2,
            },
            Response::Accepted { token: 2 },
        )
        .expect(publish(TOPIC, b"b", 3), Response::Accepted { token: 3 });
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.publish(TOPIC, b"a", Qos::AtLeastOnce), Ok(1));
    assert_eq!(app.subscribe(FILTER, Qos::AtMostOnce), Ok(2));
    assert_eq!(app.publish(TOPIC, b"b", Qos::AtLeastOnce), Ok(3));
    fake.assert_done();
}

#[test]
fn tokens_wrap_around() {
    let mut fake = welcomed();
    fake.expect(
        publish(TOPIC, b"x", u32::MAX),
        Response::Accepted { token: u32::MAX },
    )
    .expect(publish(TOPIC, b"y", 0), Response::Accepted { token: 0 });
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    app.next_token = u32::MAX;
    assert_eq!(app.publish(TOPIC, b"x", Qos::AtLeastOnce), Ok(u32::MAX));
    assert_eq!(app.publish(TOPIC, b"y", Qos::AtLeastOnce), Ok(0));
    fake.assert_done();
}

#[test]
fn publish_reports_the_kernels_error_code() {
    let mut fake = welcomed();
    fake.expect(
        publish(FILTER, b"x", 1),
        Response::Error(ErrorCode::NotPermitted),
    );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        app.publish(FILTER, b"x", Qos::AtLeastOnce),
        Err(AppError::Kernel(ErrorCode::NotPermitted))
    );
}

#[test]
fn publish_rejects_an_accept_of_another_token() {
    let mut fake = welcomed();
    fake.expect(publish(TOPIC, b"x", 1), Response::Accepted { token: 7 });
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        app.publish(TOPIC, b"x", Qos::AtLeastOnce),
        Err(AppError::UnexpectedResponse)
    );
}

#[test]
fn publish_rejects_answers_of_the_wrong_kind() {
    let wrong: [Response<'static>; 3] = [
        Response::Ok,
        Response::NoEvent,
        Response::Event(Event::Connected),
    ];
    for response in wrong {
        let mut fake = welcomed();
        fake.expect(publish(TOPIC, b"x", 1), response.clone());
        let mut app = Aliot::new(&mut fake).expect("welcomed");
        assert_eq!(
            app.publish(TOPIC, b"x", Qos::AtLeastOnce),
            Err(AppError::UnexpectedResponse),
            "answer {response:?}"
        );
    }
}

#[test]
fn subscribe_reports_errors_and_wrong_answers() {
    let sub = |token| Request::Subscribe {
        filter: FILTER,
        qos: Qos::AtLeastOnce,
        token,
    };
    let mut fake = welcomed();
    fake.expect(sub(1), Response::Error(ErrorCode::Busy))
        .expect(sub(2), Response::Ok)
        .expect(sub(3), Response::Accepted { token: 3 });
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        app.subscribe(FILTER, Qos::AtLeastOnce),
        Err(AppError::Kernel(ErrorCode::Busy))
    );
    assert_eq!(
        app.subscribe(FILTER, Qos::AtLeastOnce),
        Err(AppError::UnexpectedResponse)
    );
    assert_eq!(app.subscribe(FILTER, Qos::AtLeastOnce), Ok(3));
    fake.assert_done();
}

#[test]
fn unsubscribe_expects_ok() {
    let unsub = Request::Unsubscribe { filter: FILTER };
    let mut fake = welcomed();
    fake.expect(unsub.clone(), Response::Ok)
        .expect(unsub.clone(), Response::Error(ErrorCode::NotSubscribed))
        .expect(unsub, Response::Accepted { token: 1 });
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.unsubscribe(FILTER), Ok(()));
    assert_eq!(
        app.unsubscribe(FILTER),
        Err(AppError::Kernel(ErrorCode::NotSubscribed))
    );
    assert_eq!(app.unsubscribe(FILTER), Err(AppError::UnexpectedResponse));
    fake.assert_done();
}

#[test]
fn status_returns_the_link_state() {
    let link = LinkStatus {
        connected: true,
        connects: 4,
        pending_publishes: 2,
        registration: aliot_abi::Registration::Registered,
        ota: aliot_abi::OtaStatus::Downloading { percent: 30 },
    };
    let mut fake = welcomed();
    fake.expect(Request::Status, Response::Status(link))
        .expect(Request::Status, Response::NoEvent);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.status(), Ok(link));
    assert_eq!(app.status(), Err(AppError::UnexpectedResponse));
    fake.assert_done();
}

#[test]
fn time_returns_the_kernel_s_wall_clock_or_none_yet() {
    let now = WallClock {
        unix_ms: 1_764_547_200_123,
        source: TimeSource::Platform,
        accuracy_ms: 40,
    };
    let mut fake = welcomed();
    fake.expect(Request::Time, Response::Time(None))
        .expect(Request::Time, Response::Time(Some(now)))
        .expect(Request::Time, Response::Error(ErrorCode::Unsupported))
        .expect(Request::Time, Response::NoEvent);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.time(), Ok(None));
    assert_eq!(app.time(), Ok(Some(now)));
    assert_eq!(
        app.time(),
        Err(AppError::Kernel(ErrorCode::Unsupported)),
        "a kernel older than minor 3"
    );
    assert_eq!(app.time(), Err(AppError::UnexpectedResponse));
    fake.assert_done();
}

#[test]
fn next_event_hands_out_events_and_timeouts() {
    let mut fake = welcomed();
    fake.expect_event(
        500,
        Event::Message {
            topic: FILTER,
            payload: b"{\"on\":1}",
            qos: Qos::AtLeastOnce,
        },
    )
    .expect_event(
        0,
        Event::Disconnected {
            reason: DisconnectReason::KeepAliveTimeout,
        },
    )
    .expect_no_event(1000)
    .expect(Request::WaitEvent { timeout_ms: 1 }, Response::Ok)
    .expect(
        Request::WaitEvent { timeout_ms: 2 },
        Response::Error(ErrorCode::AbiMismatch),
    );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        app.next_event(500),
        Ok(Some(Event::Message {
            topic: FILTER,
            payload: b"{\"on\":1}",
            qos: Qos::AtLeastOnce,
        }))
    );
    assert_eq!(
        app.next_event(0),
        Ok(Some(Event::Disconnected {
            reason: DisconnectReason::KeepAliveTimeout
        }))
    );
    assert_eq!(app.next_event(1000), Ok(None));
    assert_eq!(app.next_event(1), Err(AppError::UnexpectedResponse));
    assert_eq!(
        app.next_event(2),
        Err(AppError::Kernel(ErrorCode::AbiMismatch))
    );
    fake.assert_done();
}

#[test]
fn garbage_frames_are_decode_errors() {
    let garbage: [&[u8]; 4] = [
        &[],                       // nothing at all
        &[0x00],                   // an empty frame
        &[0x03, 0xff, 0xff, 0x00], // tag 255: no such variant
        &[0x02, 0x02],             // Welcome cut short, no terminator
    ];
    for frame in garbage {
        let mut fake = welcomed();
        fake.expect_raw(Request::Status, frame);
        let mut app = Aliot::new(&mut fake).expect("welcomed");
        assert_eq!(app.status(), Err(AppError::Decode), "frame {frame:02x?}");
        fake.assert_done();
    }
}

#[test]
fn transport_errors_are_passed_through() {
    let mut fake = welcomed();
    fake.expect_transport_error(Request::Status);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.status(), Err(AppError::Transport(FakeError::Scripted)));
}

#[test]
fn largest_publish_and_largest_event_fit_the_one_buffer() {
    let topic: Vec<u8> = vec![b't'; MAX_TOPIC_LEN];
    let topic = std::str::from_utf8(&topic).expect("ascii");
    let payload = vec![0u8; MAX_PAYLOAD_LEN]; // zeros: the worst case for COBS overhead
    let mut fake = welcomed();
    fake.expect(
        Request::Publish {
            topic,
            payload: &payload,
            qos: Qos::AtLeastOnce,
            token: 1,
        },
        Response::Accepted { token: 1 },
    )
    .expect_event(
        10,
        Event::Message {
            topic,
            payload: &payload,
            qos: Qos::AtMostOnce,
        },
    );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.publish(topic, &payload, Qos::AtLeastOnce), Ok(1));
    match app.next_event(10) {
        Ok(Some(Event::Message {
            topic: t,
            payload: p,
            ..
        })) => {
            assert_eq!(t, topic);
            assert_eq!(p, &payload[..]);
        }
        other => panic!("expected the big message, got {other:?}"),
    }
    fake.assert_done();
}

#[test]
fn a_request_larger_than_the_buffer_is_an_encode_error() {
    let payload = vec![1u8; FRAME_BUF_LEN];
    let mut fake = welcomed();
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        app.publish(TOPIC, &payload, Qos::AtMostOnce),
        Err(AppError::Encode)
    );
    fake.assert_done(); // nothing was sent
}

/// A backend that claims to have written more than the buffer holds.
struct Boastful;

impl Syscalls for Boastful {
    type Error = ();

    fn exchange(&mut self, _: &[u8], response_buf: &mut [u8]) -> Result<usize, ()> {
        Ok(response_buf.len() + 1)
    }
}

#[test]
fn a_backend_overstating_the_response_length_is_a_decode_error() {
    assert_eq!(Aliot::new(Boastful).err(), Some(AppError::Decode));
}

#[test]
fn the_clock_comes_from_the_backend() {
    let mut fake = FakeKernel::with_clock(100);
    fake.expect_hello(0).after_ms(5).expect_no_event(250);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.now_ms(), 105);
    assert_eq!(app.next_event(250), Ok(None));
    assert_eq!(app.now_ms(), 355);
}

#[test]
fn without_a_backend_clock_only_timed_out_waits_count() {
    let mut fake = welcomed();
    fake.expect_no_event(300)
        .expect_event(700, Event::Connected)
        .expect_no_event(700);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(app.now_ms(), 0);
    assert_eq!(app.next_event(300), Ok(None));
    assert_eq!(app.now_ms(), 300);
    assert_eq!(app.next_event(700), Ok(Some(Event::Connected)));
    assert_eq!(app.now_ms(), 300);
    assert_eq!(app.next_event(700), Ok(None));
    assert_eq!(app.now_ms(), 1000);
    fake.assert_done();
}

#[test]
#[should_panic(expected = "got an unexpected request")]
fn the_fake_panics_on_a_request_it_did_not_expect() {
    let mut fake = welcomed();
    fake.expect(Request::Status, Response::NoEvent);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    let _ = app.unsubscribe(FILTER);
}

#[test]
#[should_panic(expected = "the script is used up")]
fn the_fake_panics_when_its_script_is_used_up() {
    let mut fake = welcomed();
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    let _ = app.status();
}

#[test]
#[should_panic(expected = "1 scripted exchange(s) never happened")]
fn the_fake_reports_unused_expectations() {
    let mut fake = welcomed();
    fake.expect(Request::Status, Response::NoEvent);
    let _app = Aliot::new(&mut fake).expect("welcomed");
    fake.assert_done();
}

#[test]
fn the_fake_refuses_a_response_larger_than_the_offered_buffer() {
    let mut fake = welcomed();
    fake.expect_raw(Request::Status, &[1u8; 64]);
    let mut sys = &mut fake;
    assert!(Aliot::new(&mut sys).is_ok());
    let mut frame = [0u8; 8];
    let request = aliot_abi::encode_frame(&Request::Status, &mut frame)
        .expect("fits")
        .to_vec();
    let mut small = [0u8; 16];
    assert_eq!(
        sys.exchange(&request, &mut small),
        Err(FakeError::ResponseTooLarge {
            needed: 64,
            available: 16
        })
    );
}

#[test]
fn manifest_topics_are_expanded_for_this_device() {
    use crate::manifest::{DEVICE_NAME, PRODUCT_KEY, apps, topics};
    let prefix = std::format!("/{PRODUCT_KEY}/{DEVICE_NAME}/user/");
    for topic in [
        topics::UPDATE,
        topics::UPDATE_ERROR,
        topics::GET,
        topics::CESHI,
    ] {
        assert!(topic.starts_with(&prefix), "{topic} is not under {prefix}");
        assert!(!topic.contains("${"), "{topic} is not expanded");
    }
    assert_eq!(apps::publish_test::NAME, "publish_test");
    assert_eq!(apps::echo::NAME, "echo");
}

/// A backend that answers over the request in the same buffer, like the Cortex-M SVC: it
/// checks the request frame and writes a fixed answer frame at the buffer's front.
struct InPlace {
    expect: &'static [u8],
    answer: &'static [u8],
    /// Claim this many bytes more than written (a broken kernel).
    overclaim: usize,
}

impl Syscalls for InPlace {
    type Error = ();

    fn exchange(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, ()> {
        panic!("Aliot must use exchange_in_place");
    }

    fn exchange_in_place(
        &mut self,
        buf: &mut [u8],
        request_len: usize,
    ) -> Result<core::ops::Range<usize>, ()> {
        assert_eq!(&buf[..request_len], self.expect);
        buf[..self.answer.len()].copy_from_slice(self.answer);
        Ok(0..self.answer.len() + self.overclaim)
    }
}

#[test]
fn a_backend_may_answer_over_the_request() {
    // Hello { 2, 3 } = postcard [00 02 03] = COBS [01 03 02 03 00];
    // Welcome { 2, 3, app_id: 5 } = [01 02 03 05] = COBS [05 01 02 03 05 00].
    assert_eq!((ABI_MAJOR, ABI_MINOR), (2, 3));
    let mut backend = InPlace {
        expect: &[0x01, 0x03, 0x02, 0x03, 0x00],
        answer: &[0x05, 0x01, 0x02, 0x03, 0x05, 0x00],
        overclaim: 0,
    };
    // Through `&mut`, which must forward the in-place exchange too.
    let app = Aliot::new(&mut backend).expect("welcomed");
    assert_eq!(app.app_id(), 5);
}

#[test]
fn an_answer_claimed_past_the_buffer_is_a_decode_error() {
    let err = Aliot::new(InPlace {
        expect: &[0x01, 0x03, 0x02, 0x03, 0x00],
        answer: &[0x05, 0x01, 0x02, 0x03, 0x05, 0x00],
        overclaim: FRAME_BUF_LEN,
    })
    .err()
    .expect("broken backend");
    assert_eq!(err, AppError::Decode);
}
