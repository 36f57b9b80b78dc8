//! The sensor against the scripted fake kernel, every Alink message written out by hand
//! (doc-detail/89301's shapes), not produced by the generated code under test.

use aliot_app::Aliot;
use aliot_app::abi::{Event, Qos, Request, Response, TimeSource, WallClock};
use aliot_app::fake::FakeKernel;

const SYS: &str = "/sys/a1NrfDemo01/nrf9160-dk-01/thing";

fn topic(path: &str) -> &'static str {
    Box::leak(format!("{SYS}/{path}").into_boxed_str())
}

fn subscribe(path: &str, token: u32) -> Request<'static> {
    Request::Subscribe {
        filter: topic(path),
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn subscribe_rrpc(token: u32) -> Request<'static> {
    Request::Subscribe {
        filter: "/sys/a1NrfDemo01/nrf9160-dk-01/rrpc/request/+",
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn publish(path: &str, payload: &'static str, token: u32) -> Request<'static> {
    Request::Publish {
        topic: topic(path),
        payload: payload.as_bytes(),
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn message(path: &str, payload: &'static str) -> Event<'static> {
    Event::Message {
        topic: topic(path),
        payload: payload.as_bytes(),
        qos: Qos::AtLeastOnce,
    }
}

fn ok(token: u32) -> Response<'static> {
    Response::Accepted { token }
}

/// The start every run shares: greeted as app 3, the four thing-model filters subscribed
/// (tokens 1 to 4), the wall-clock time asked once (known: not asked again), and the first post (id 1, token 5) with the reading of tick 0 and
/// `report_interval` as `interval` says.
fn started<'a>(fake: &'a mut FakeKernel, interval: &str) -> &'a mut FakeKernel {
    let post: &'static str = Box::leak(
        format!(
            r#"{{"id":"1","version":"1.0","params":{{"temperature":20.0,"humidity":40,"report_interval":{interval}}},"method":"thing.event.property.post"}}"#
        )
        .into_boxed_str(),
    );
    fake.expect_hello(3)
        .expect(subscribe("event/+/post_reply", 1), ok(1))
        .expect(subscribe("service/property/set", 2), ok(2))
        .expect(subscribe("service/+", 3), ok(3))
        .expect(subscribe_rrpc(4), ok(4))
        .expect(
            Request::Time,
            Response::Time(Some(WallClock {
                unix_ms: 1_764_547_200_000,
                source: TimeSource::Platform,
                accuracy_ms: 20,
            })),
        )
        .expect(publish("event/property/post", post, 5), ok(5))
}

/// Posts on schedule, applies a property set and posts at once, answers calibrate, refuses an
/// out-of-range set and a malformed call with code 460 and keeps going (its interval unchanged).
#[test]
fn posts_applies_a_set_answers_a_call_and_refuses_bad_requests() {
    let mut fake = FakeKernel::with_clock(0);
    started(&mut fake, "30")
        .expect_event(
            30_000,
            message(
                "event/property/post_reply",
                r#"{"code":200,"data":{},"id":"1","message":"success","method":"thing.event.property.post","version":"1.0"}"#,
            ),
        )
        .expect_event(
            30_000,
            message(
                "service/property/set",
                r#"{"method":"thing.service.property.set","id":"77","params":{"report_interval":10},"version":"1.0"}"#,
            ),
        )
        .expect(
            publish(
                "service/property/set_reply",
                r#"{"id":"77","code":200,"data":{},"version":"1.0"}"#,
                6,
            ),
            ok(6),
        )
        .expect(
            publish(
                "event/property/post",
                r#"{"id":"2","version":"1.0","params":{"temperature":20.1,"humidity":41,"report_interval":10},"method":"thing.event.property.post"}"#,
                7,
            ),
            ok(7),
        )
        .expect_event(
            10_000,
            message(
                "service/calibrate",
                r#"{"id":"78","params":{"offset":-1.5},"method":"thing.service.calibrate","version":"1.0"}"#,
            ),
        )
        .expect(
            publish(
                "service/calibrate_reply",
                r#"{"id":"78","code":200,"data":{"applied":1},"version":"1.0"}"#,
                8,
            ),
            ok(8),
        )
        .expect_event(
            10_000,
            message("service/property/set", r#"{"id":"79","params":{"report_interval":2}}"#),
        )
        .expect(
            publish(
                "service/property/set_reply",
                r#"{"id":"79","code":460,"data":{},"message":"report_interval","version":"1.0"}"#,
                9,
            ),
            ok(9),
        )
        .expect_event(
            10_000,
            message("service/calibrate", r#"{"id":"80","params":{"offset":"x"}}"#),
        )
        .expect(
            publish(
                "service/calibrate_reply",
                r#"{"id":"80","code":460,"data":{},"message":"malformed request","version":"1.0"}"#,
                10,
            ),
            ok(10),
        )
        // Not JSON at all, no id to answer: dropped; then the interval (10 s) runs out.
        .expect_event(10_000, message("service/calibrate", "\u{1}garbage"))
        .expect_no_event(10_000)
        .expect(
            publish(
                "event/property/post",
                r#"{"id":"3","version":"1.0","params":{"temperature":18.7,"humidity":42,"report_interval":10},"method":"thing.event.property.post"}"#,
                11,
            ),
            ok(11),
        )
        .expect_event(
            10_000,
            message(
                "event/property/post_reply",
                r#"{"code":200,"data":{},"id":"3","message":"success","version":"1.0"}"#,
            ),
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    sensor::run(&mut app, &[("count", "2")]).expect("ran to its count");
    fake.assert_done();
}

/// A refused post is reported (a code other than 200) and counted like any reply.
#[test]
fn a_refused_post_still_counts_as_a_reply() {
    let mut fake = FakeKernel::with_clock(5_000);
    started(&mut fake, "5").expect_event(
        5_000,
        message("event/property/post_reply", r#"{"id":1,"code":6813}"#),
    );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    // report_interval below the TSL's 5 s is clamped to it.
    sensor::run(&mut app, &[("count", "1"), ("report_interval", "1")]).expect("ran");
    fake.assert_done();
}

/// The synchronous `read_now` arrives over RRPC and is answered on the RRPC response topic of
/// its message id; a raw RRPC call is answered there too; a request whose message id could not
/// name a response topic is dropped.
#[test]
fn rrpc_carries_the_sync_service_and_raw_calls() {
    const RRPC: &str = "/sys/a1NrfDemo01/nrf9160-dk-01/rrpc";
    let rrpc = |path: &str, payload: &'static str| Event::Message {
        topic: Box::leak(format!("{RRPC}/{path}").into_boxed_str()),
        payload: payload.as_bytes(),
        qos: Qos::AtMostOnce,
    };
    let answer = |path: &str, payload: &'static str, token| Request::Publish {
        topic: Box::leak(format!("{RRPC}/{path}").into_boxed_str()),
        payload: payload.as_bytes(),
        qos: Qos::AtLeastOnce,
        token,
    };
    let mut fake = FakeKernel::with_clock(0);
    started(&mut fake, "30")
        .expect_event(
            30_000,
            rrpc(
                "request/1608000000123456789",
                r#"{"id":"31","version":"1.0","params":{},"method":"thing.service.read_now"}"#,
            ),
        )
        .expect(
            answer(
                "response/1608000000123456789",
                r#"{"id":"31","code":200,"data":{"temperature":20.1},"version":"1.0"}"#,
                6,
            ),
            ok(6),
        )
        .expect_event(30_000, rrpc("request/77", "how many?"))
        .expect(
            Request::Publish {
                topic: Box::leak(format!("{RRPC}/response/77").into_boxed_str()),
                payload: b"1",
                qos: Qos::AtMostOnce,
                token: 7,
            },
            ok(7),
        )
        .expect_event(30_000, rrpc("request/bad.id", "dropped"))
        .expect_event(
            30_000,
            message(
                "event/property/post_reply",
                r#"{"code":200,"data":{},"id":"1","message":"success","version":"1.0"}"#,
            ),
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    sensor::run(&mut app, &[("count", "1")]).expect("ran");
    fake.assert_done();
}
