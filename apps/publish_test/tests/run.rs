//! The demo loop against the scripted fake kernel, on a virtual clock.

use aliot_app::abi::{DisconnectReason, ErrorCode, Event, Qos, Request, Response};
use aliot_app::fake::{FakeError, FakeKernel, logs};
use aliot_app::manifest::topics;
use aliot_app::{Aliot, AppError};

fn subscribe_get(token: u32) -> Request<'static> {
    Request::Subscribe {
        filter: topics::GET,
        qos: Qos::AtLeastOnce,
        token,
    }
}

fn publish_update(token: u32) -> Request<'static> {
    publish_payload(b"LUATOS_CESHI", token)
}

fn publish_payload(payload: &'static [u8], token: u32) -> Request<'static> {
    Request::Publish {
        topic: topics::UPDATE,
        payload,
        qos: Qos::AtLeastOnce,
        token,
    }
}

/// Publishes at once and then each interval, logs results (with their latency on the fake's
/// clock) and messages, waits exactly the time left until the next publish, and stops after
/// `count` once the results are in.
#[test]
fn publishes_each_interval_and_logs_results_and_messages() {
    logs::capture();
    let mut fake = FakeKernel::with_clock(5_000);
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(publish_update(2), Response::Accepted { token: 2 })
        .expect_event(
            1000,
            Event::SubscribeResult {
                token: 1,
                granted: true,
            },
        )
        .after_ms(10)
        .expect_event(
            990,
            Event::PublishResult {
                token: 2,
                delivered: true,
            },
        )
        .after_ms(30)
        .expect_event(
            960,
            Event::Message {
                topic: topics::GET,
                payload: b"hello \xffdevice",
                qos: Qos::AtLeastOnce,
            },
        )
        .after_ms(160)
        .expect_no_event(800)
        .expect(publish_update(3), Response::Accepted { token: 3 })
        .expect_no_event(1000)
        .expect(publish_update(4), Response::Accepted { token: 4 })
        // count reached: wait up to one interval for the two outstanding results
        .expect_event(
            1000,
            Event::PublishResult {
                token: 4,
                delivered: true,
            },
        )
        .after_ms(400)
        .expect_event(
            600,
            Event::PublishResult {
                token: 3,
                delivered: false,
            },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    let settings = [("interval_ms", "1000"), ("count", "3")];
    publish_test::run(&mut app, &settings).expect("ran to its count");
    fake.assert_done();

    let lines = logs::take();
    let expected_in_order = [
        format!("INFO subscribed to {}", topics::GET),
        "INFO publishTest_1 delivered after 40 ms".to_string(),
        format!("INFO message on {}: hello \u{FFFD}device", topics::GET),
        "INFO publishTest_3 delivered after 400 ms".to_string(),
        "WARN publishTest_2 failed after 1400 ms".to_string(),
    ];
    let mut rest = lines.iter();
    for want in &expected_in_order {
        assert!(
            rest.any(|line| line == want),
            "missing or out of order: {want:?}\nlog: {lines:#?}"
        );
    }
}

/// A refused publish is logged and retried at the next interval instead of ending the app.
#[test]
fn a_refused_publish_is_logged_and_the_loop_goes_on() {
    logs::capture();
    let mut fake = FakeKernel::with_clock(0);
    fake.expect_hello(1)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(publish_update(2), Response::Error(ErrorCode::Busy))
        .expect_no_event(20_000)
        .expect(publish_update(3), Response::Accepted { token: 3 })
        .expect_event(
            20_000,
            Event::PublishResult {
                token: 3,
                delivered: true,
            },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    // interval_secs with the default unit, count 2
    publish_test::run(&mut app, &[("interval_secs", "20"), ("count", "2")]).expect("ran");
    fake.assert_done();
    let lines = logs::take();
    assert!(
        lines.contains(&"WARN publishTest_1 refused: Busy".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"INFO publishTest_2 delivered after 0 ms".to_string()),
        "{lines:#?}"
    );
}

/// With no setting at all, the interval is the demo's 20 s.
#[test]
fn the_default_interval_is_twenty_seconds() {
    let mut fake = FakeKernel::with_clock(0);
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(publish_update(2), Response::Accepted { token: 2 })
        .expect_no_event(20_000)
        .expect_transport_error(publish_update(3));
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    let result = publish_test::run(&mut app, &[]);
    assert_eq!(result, Err(AppError::Transport(FakeError::Scripted)));
    fake.assert_done();
}

/// A subscription the kernel refuses ends the app with that error (the manifest is wrong).
#[test]
fn a_refused_subscription_ends_the_app() {
    let mut fake = FakeKernel::new();
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Error(ErrorCode::NotPermitted));
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    assert_eq!(
        publish_test::run(&mut app, &[]),
        Err(AppError::Kernel(ErrorCode::NotPermitted))
    );
    fake.assert_done();
}

/// Without a backend clock only timed-out waits count as time: events never make it publish
/// early, and results carry no made-up latency.
#[test]
fn without_a_clock_events_do_not_advance_the_schedule() {
    logs::capture();
    let mut fake = FakeKernel::new();
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(publish_update(2), Response::Accepted { token: 2 })
        .expect_event(500, Event::Connected)
        .expect_event(
            500,
            Event::PublishResult {
                token: 2,
                delivered: true,
            },
        )
        .expect_no_event(500)
        .expect(publish_update(3), Response::Accepted { token: 3 })
        .expect_no_event(500);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    // The second result never comes: the app gives up after one interval and still ends Ok.
    publish_test::run(&mut app, &[("interval_ms", "500"), ("count", "2")]).expect("ran");
    fake.assert_done();
    let lines = logs::take();
    assert!(
        lines.contains(&"INFO publishTest_1 delivered".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"WARN publish_test: stopping with 1 result(s) outstanding".to_string()),
        "{lines:#?}"
    );
}

/// The manifest's settings for this app (as the board passes them) run as the demo expects.
#[test]
fn runs_with_the_manifests_settings_plus_a_count() {
    let manifest = aliot_app::manifest::apps::publish_test::SETTINGS;
    let mut settings = manifest.to_vec();
    settings.push(("count", "1"));
    let payload = settings
        .iter()
        .find(|(k, _)| *k == "payload")
        .map_or("LUATOS_CESHI", |(_, v)| *v);
    let payload: &'static [u8] = payload.as_bytes();
    let mut fake = FakeKernel::with_clock(0);
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(publish_payload(payload, 2), Response::Accepted { token: 2 })
        .expect_event(
            20_000,
            Event::PublishResult {
                token: 2,
                delivered: true,
            },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    publish_test::run(&mut app, &settings).expect("ran");
    fake.assert_done();
}

/// A `payload` setting replaces the demo's text.
#[test]
fn the_payload_setting_is_published() {
    let mut fake = FakeKernel::with_clock(0);
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 })
        .expect(
            publish_payload(b"{\"temp\":21}", 2),
            Response::Accepted { token: 2 },
        )
        .expect_event(
            1000,
            Event::PublishResult {
                token: 2,
                delivered: true,
            },
        );
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    let settings = [
        ("payload", "{\"temp\":21}"),
        ("interval_ms", "1000"),
        ("count", "1"),
    ];
    publish_test::run(&mut app, &settings).expect("ran");
    fake.assert_done();
}

/// An outage of 20 intervals: the kernel queues all 20 publishes, then their results arrive in
/// one burst. Each is logged by its publish number, none as "unknown", although far more are
/// outstanding than the app keeps send times for; the recent ones also get a latency.
#[test]
fn every_result_after_a_long_outage_is_logged_by_its_number() {
    logs::capture();
    let mut fake = FakeKernel::with_clock(0);
    fake.expect_hello(0)
        .expect(subscribe_get(1), Response::Accepted { token: 1 });
    // Publish n (token n + 1) goes out at (n - 1) s; the link is down from the first wait on.
    for n in 1..=20u32 {
        fake.expect(publish_update(n + 1), Response::Accepted { token: n + 1 });
        if n == 1 {
            fake.expect_event(
                1000,
                Event::Disconnected {
                    reason: DisconnectReason::Network,
                },
            );
        }
        if n < 20 {
            fake.expect_no_event(1000);
        }
    }
    // Back at 19 s: the 20 results arrive 1 ms apart, oldest first (result n at 19000 + n ms).
    fake.expect_event(1000, Event::Connected);
    for n in 1..=20u32 {
        fake.expect_event(
            1001 - n,
            Event::PublishResult {
                token: n + 1,
                delivered: true,
            },
        )
        .after_ms(1);
    }
    fake.expect_no_event(980)
        .expect(publish_update(22), Response::Accepted { token: 22 })
        .expect_event(
            1000,
            Event::PublishResult {
                token: 22,
                delivered: true,
            },
        )
        .after_ms(5);
    let mut app = Aliot::new(&mut fake).expect("welcomed");
    publish_test::run(&mut app, &[("interval_ms", "1000"), ("count", "21")]).expect("ran");
    fake.assert_done();

    let lines = logs::take();
    assert!(
        !lines.iter().any(|l| l.contains("unknown")),
        "results logged as unknown: {lines:#?}"
    );
    for n in 1..=21 {
        let prefix = format!("INFO publishTest_{n} delivered");
        let results: Vec<&String> = lines
            .iter()
            .filter(|l| *l == &prefix || l.starts_with(&format!("{prefix} ")))
            .collect();
        assert_eq!(results.len(), 1, "publish {n}: {lines:#?}");
    }
    // The newest publishes still have their send time: 19020 - 19000 ms, and 20005 - 20000 ms.
    for want in [
        "INFO publishTest_20 delivered after 20 ms",
        "INFO publishTest_21 delivered after 5 ms",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "missing {want:?}: {lines:#?}"
        );
    }
}
