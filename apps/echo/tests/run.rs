//! The echo loop and the ACL probe against the scripted fake kernel.

use aliot_app::abi::{ErrorCode, Event, Qos, Request, Response};
use aliot_app::fake::{FakeError, FakeKernel, logs};
use aliot_app::manifest::topics;
use aliot_app::{Aliot, AppError};

fn probe(token: u32) -> Request<'static> {
    Request::Publish {
        topic: topics::GET,
        payload: b"acl-probe",
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn publish(topic: &'static str, payload: &'static [u8], token: u32) -> Request<'static> {
    Request::Publish {
        topic,
        payload,
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn subscribe_ceshi(token: u32) -> Request<'static> {
    Request::Subscribe {
        filter: topics::CESHI,
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn message(payload: &'static [u8]) -> Event<'static> {
    Event::Message {
        topic: topics::CESHI,
        payload,
        qos: Qos::AtLeastOnce,
    }
}

/// The probe's refusal is reported, then each message is echoed once; other events are not.
#[test]
fn reports_the_acl_answer_and_echoes_each_message() {
    let mut fake = FakeKernel::new();
    fake.expect_hello(1)
        .expect(probe(1), Response::Error(ErrorCode::NotPermitted))
        .expect(
            publish(topics::UPDATE_ERROR, b"acl:NotPermitted", 2),
            Response::Accepted { token: 2 },
        )
        .expect(subscribe_ceshi(3), Response::Accepted { token: 3 })
        .expect_event(
            60_000,
            Event::SubscribeResult {
                token: 3,
                granted: true,
            },
        )
        .expect_event(
            60_000,
            Event::PublishResult {
                token: 2,
                delivered: true,
            },
        )
        .expect_event(60_000, message(b"ping"))
        .expect(
            publish(topics::UPDATE, b"echo:ping", 4),
            Response::Accepted { token: 4 },
        )
        .expect_no_event(60_000)
        .expect_event(60_000, message(b"\xff\x00"))
        .expect(
            publish(topics::UPDATE, b"echo:\xff\x00", 5),
            Response::Accepted { token: 5 },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    echo::run(&mut app, &[("count", "2")]).expect("ran to its count");
    fake.assert_done();
}

/// If the kernel wrongly accepts the forbidden publish, the report says so.
#[test]
fn an_accepted_probe_is_reported_as_a_broken_acl() {
    logs::capture();
    let mut fake = FakeKernel::new();
    fake.expect_hello(1)
        .expect(probe(1), Response::Accepted { token: 1 })
        .expect(
            publish(topics::UPDATE_ERROR, b"acl:Accepted", 2),
            Response::Accepted { token: 2 },
        )
        .expect_transport_error(subscribe_ceshi(3));
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        echo::run(&mut app, &[]),
        Err(AppError::Transport(FakeError::Scripted))
    );
    fake.assert_done();
    let lines = logs::take();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR echo: the kernel accepted a publish")),
        "{lines:#?}"
    );
}

/// An echo the kernel refuses is skipped; the loop goes on with the next message.
#[test]
fn a_refused_echo_does_not_end_the_loop() {
    let mut fake = FakeKernel::new();
    fake.expect_hello(0)
        .expect(probe(1), Response::Error(ErrorCode::NotPermitted))
        .expect(
            publish(topics::UPDATE_ERROR, b"acl:NotPermitted", 2),
            Response::Accepted { token: 2 },
        )
        .expect(subscribe_ceshi(3), Response::Accepted { token: 3 })
        .expect_event(60_000, message(b"a"))
        .expect(
            publish(topics::UPDATE, b"echo:a", 4),
            Response::Error(ErrorCode::Busy),
        )
        .expect_event(60_000, message(b"b"))
        .expect(
            publish(topics::UPDATE, b"echo:b", 5),
            Response::Accepted { token: 5 },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    echo::run(&mut app, &[("count", "2")]).expect("ran to its count");
    fake.assert_done();
}

/// A refused report is logged; the app still goes on to echo.
#[test]
fn a_refused_report_is_logged_and_echoing_goes_on() {
    logs::capture();
    let mut fake = FakeKernel::new();
    fake.expect_hello(0)
        .expect(probe(1), Response::Error(ErrorCode::NotPermitted))
        .expect(
            publish(topics::UPDATE_ERROR, b"acl:NotPermitted", 2),
            Response::Error(ErrorCode::NotPermitted),
        )
        .expect(subscribe_ceshi(3), Response::Accepted { token: 3 })
        .expect_event(60_000, message(b"x"))
        .expect(
            publish(topics::UPDATE, b"echo:x", 4),
            Response::Accepted { token: 4 },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    echo::run(&mut app, &[("count", "1")]).expect("ran to its count");
    fake.assert_done();
    let lines = logs::take();
    assert!(
        lines.contains(&"ERROR echo: could not report acl:NotPermitted: NotPermitted".to_string()),
        "{lines:#?}"
    );
}
