use super::*;
use crate::config::*;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// Budgets small enough to fill in a test: `pub`'s event queue holds the link's `Connected`, a
/// `SubscribeResult` and two one-byte messages on `/pk/dn/user/get` (each reserves 26 bytes),
/// its outbox three one-byte publishes on `/pk/dn/user/update` (32 bytes each).
static APPS: [AppDef; 2] = [
    AppDef {
        name: "pub",
        memory: 1024,
        publish: &["/pk/dn/user/update"],
        subscribe: &["/pk/dn/user/get"],
        restart: RestartPolicy::OnFailure,
        settings: &[],
        budget: AppBudget {
            event_queue_bytes: 64,
            outbox_bytes: 100,
            max_payload: 64,
            subscriptions: 2,
        },
    },
    AppDef {
        name: "echo",
        memory: 1024,
        publish: &["/pk/dn/user/update", "/pk/dn/user/update/error"],
        subscribe: &["/pk/dn/user/ceshi", "/pk/dn/user/cmd/#"],
        restart: RestartPolicy::Always,
        settings: &[],
        budget: AppBudget {
            event_queue_bytes: 1024,
            outbox_bytes: 1024,
            max_payload: 512,
            subscriptions: 2,
        },
    },
];

static CONFIG: DeviceConfig = DeviceConfig {
    endpoint: Endpoint {
        host: "localhost",
        port: 1883,
        emulator: true,
    },
    apps: &APPS,
    ..TEST_CONFIG
};

const PUB: AppId = 0;
const ECHO: AppId = 1;

fn kernel() -> Kernel {
    let mut k = Kernel::new(&CONFIG);
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Hello {
                major: ABI_MAJOR,
                minor: ABI_MINOR
            }
        ),
        Response::Welcome {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            app_id: PUB
        }
    );
    assert_eq!(
        call(
            &mut k,
            ECHO,
            &Request::Hello {
                major: ABI_MAJOR,
                minor: ABI_MINOR
            }
        ),
        Response::Welcome {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            app_id: ECHO
        }
    );
    k
}

/// Subscribes `app` to `filter` and has the platform grant it (the link must be up).
fn subscribed(k: &mut Kernel, app: AppId, filter: &str, qos: Qos, token: u32) {
    assert_eq!(
        subscribe(k, app, filter, qos, token),
        Response::Accepted { token }
    );
    let Some(Out::Subscribe { pid, .. }) = poll(k) else {
        panic!("expected the SUBSCRIBE of {filter}")
    };
    k.on_suback(pid, true);
}

/// Encode a request, run it through the kernel, decode the response into an owned form we can
/// compare (events are compared through their debug text to avoid borrowing the frame).
fn call(k: &mut Kernel, app: AppId, req: &Request<'_>) -> Response<'static> {
    match raw(k, app, req) {
        Reply::Now(frame) => owned(frame),
        Reply::Later => panic!("expected an immediate reply to {req:?}"),
    }
}

/// `call` for a publish request.
fn publish(
    k: &mut Kernel,
    app: AppId,
    topic: &str,
    payload: &[u8],
    qos: Qos,
    token: u32,
) -> Response<'static> {
    call(
        k,
        app,
        &Request::Publish {
            topic,
            payload,
            qos,
            token,
        },
    )
}

/// `call` for a subscribe request.
fn subscribe(k: &mut Kernel, app: AppId, filter: &str, qos: Qos, token: u32) -> Response<'static> {
    call(k, app, &Request::Subscribe { filter, qos, token })
}

/// What the kernel answered to one syscall.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Now(Vec<u8>),
    Later,
}

/// The request through the zero-copy edge: encoded into a lent buffer, answered in place.
fn raw(k: &mut Kernel, app: AppId, req: &Request<'_>) -> Reply {
    let mut buf = vec![0u8; aliot_abi::MAX_FRAME_LEN];
    let len = postcard::to_slice(req, &mut buf).unwrap().len();
    raw_bytes(k, app, &mut buf, len)
}

fn raw_bytes(k: &mut Kernel, app: AppId, buf: &mut [u8], len: usize) -> Reply {
    match k.syscall(app, buf, len, 1_000) {
        Some(n) => Reply::Now(buf[..n].to_vec()),
        None => Reply::Later,
    }
}

fn owned(frame: Vec<u8>) -> Response<'static> {
    let leaked: &'static [u8] = alloc::boxed::Box::leak(frame.into_boxed_slice());
    postcard::from_bytes(leaked).unwrap()
}

/// The answer to `app`'s pending wait, through a lent buffer.
fn answer(k: &mut Kernel, app: AppId) -> Response<'static> {
    let mut buf = vec![0u8; aliot_abi::MAX_FRAME_LEN];
    let n = k.answer_wait(app, &mut buf);
    owned(buf[..n].to_vec())
}

/// An owned copy of an [`Outgoing`] packet, so a test can keep it while calling the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Publish {
        pid: u16,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
        dup: bool,
    },
    Subscribe {
        pid: u16,
        filter: String,
        qos: Qos,
    },
    Unsubscribe {
        pid: u16,
        filter: String,
    },
}

/// `poll_outgoing` at the tests' clock, copied out.
fn poll(k: &mut Kernel) -> Option<Out> {
    Some(match k.poll_outgoing(1_000)? {
        Outgoing::Publish {
            pid,
            topic,
            payload,
            qos,
            dup,
        } => Out::Publish {
            pid,
            topic: topic.into(),
            payload: payload.to_vec(),
            qos,
            dup,
        },
        Outgoing::Subscribe { pid, filter, qos } => Out::Subscribe {
            pid,
            filter: filter.into(),
            qos,
        },
        Outgoing::Unsubscribe { pid, filter } => Out::Unsubscribe {
            pid,
            filter: filter.into(),
        },
    })
}

fn next_event(k: &mut Kernel, app: AppId) -> Option<Event<'static>> {
    match call(k, app, &Request::WaitEvent { timeout_ms: 0 }) {
        Response::Event(e) => Some(e),
        Response::NoEvent => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn drain(k: &mut Kernel, app: AppId) -> Vec<Event<'static>> {
    let mut v = Vec::new();
    while let Some(e) = next_event(k, app) {
        v.push(e);
    }
    v
}

#[test]
fn requests_before_hello_or_with_wrong_abi_are_refused() {
    let mut k = Kernel::new(&CONFIG);
    assert_eq!(
        call(&mut k, PUB, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Hello {
                major: ABI_MAJOR + 1,
                minor: 0
            }
        ),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert_eq!(
        call(&mut k, PUB, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
}

#[test]
fn garbage_frames_and_unknown_apps_get_malformed() {
    let mut k = kernel();
    let mut junk = vec![1u8, 200, 3, 0];
    assert_eq!(
        raw_bytes(&mut k, PUB, &mut junk, 4),
        Reply::Now(vec![6, 0]),
        "Error(Malformed)"
    );
    let mut frame = vec![4u8, 0, 0];
    assert_eq!(
        owned(match raw_bytes(&mut k, 9, &mut frame, 1) {
            Reply::Now(f) => f,
            Reply::Later => panic!(),
        }),
        Response::Error(ErrorCode::Malformed)
    );
    // A length past the lent buffer is refused, not read.
    assert_eq!(
        raw_bytes(&mut k, PUB, &mut frame, 4),
        Reply::Now(vec![6, 0])
    );
}

#[test]
fn acl_is_checked_before_anything_is_queued() {
    let mut k = kernel();
    k.on_connected();
    drain(&mut k, PUB);
    let r = publish(&mut k, PUB, "/pk/dn/user/get", b"x", Qos::AtLeastOnce, 1);
    assert_eq!(r, Response::Error(ErrorCode::NotPermitted));
    let r = subscribe(&mut k, PUB, "/pk/dn/user/ceshi", Qos::AtLeastOnce, 2);
    assert_eq!(r, Response::Error(ErrorCode::NotPermitted));
    let r = subscribe(&mut k, ECHO, "/pk/dn/user/#", Qos::AtLeastOnce, 3);
    assert_eq!(
        r,
        Response::Error(ErrorCode::NotPermitted),
        "a wider filter than granted is refused"
    );
    assert_eq!(poll(&mut k), None, "nothing may reach the network");
}

#[test]
fn narrower_filters_inside_a_grant_are_allowed() {
    let mut k = kernel();
    let r = subscribe(&mut k, ECHO, "/pk/dn/user/cmd/+", Qos::AtMostOnce, 1);
    assert_eq!(r, Response::Accepted { token: 1 });
}

#[test]
fn invalid_topics_and_large_payloads_are_refused() {
    let mut k = kernel();
    k.on_connected();
    let long = "/".repeat(129);
    assert_eq!(
        publish(&mut k, PUB, &long, b"", Qos::AtMostOnce, 1),
        Response::Error(ErrorCode::InvalidTopic)
    );
    assert_eq!(
        publish(&mut k, PUB, "/pk/+/x", b"", Qos::AtMostOnce, 1),
        Response::Error(ErrorCode::InvalidTopic)
    );
    let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
    assert_eq!(
        publish(&mut k, PUB, "/pk/dn/user/update", &big, Qos::AtMostOnce, 1),
        Response::Error(ErrorCode::PayloadTooLarge)
    );
    assert_eq!(
        subscribe(&mut k, ECHO, "/pk/dn/user/cmd/#/x", Qos::AtMostOnce, 1),
        Response::Error(ErrorCode::InvalidTopic)
    );
}

#[test]
fn qos0_needs_a_link_qos1_is_queued_until_connected() {
    let mut k = kernel();
    assert_eq!(
        publish(&mut k, PUB, "/pk/dn/user/update", b"a", Qos::AtMostOnce, 1),
        Response::Error(ErrorCode::NotConnected)
    );
    assert_eq!(
        publish(&mut k, PUB, "/pk/dn/user/update", b"b", Qos::AtLeastOnce, 2),
        Response::Accepted { token: 2 }
    );
    assert_eq!(poll(&mut k), None);
    k.on_connected();
    let Some(Out::Publish {
        pid,
        payload,
        qos,
        dup,
        ..
    }) = poll(&mut k)
    else {
        panic!("expected the queued publish")
    };
    assert_eq!(
        (payload.as_slice(), qos, dup),
        (&b"b"[..], Qos::AtLeastOnce, false)
    );
    k.on_puback(pid);
    assert_eq!(
        drain(&mut k, PUB),
        vec![
            Event::Connected,
            Event::PublishResult {
                token: 2,
                delivered: true
            }
        ]
    );
}

#[test]
fn qos0_result_comes_after_the_write() {
    let mut k = kernel();
    k.on_connected();
    drain(&mut k, PUB);
    publish(&mut k, PUB, "/pk/dn/user/update", b"a", Qos::AtMostOnce, 5);
    poll(&mut k).unwrap();
    assert_eq!(drain(&mut k, PUB), vec![]);
    k.on_written();
    assert_eq!(
        drain(&mut k, PUB),
        vec![Event::PublishResult {
            token: 5,
            delivered: true
        }]
    );
}

#[test]
fn qos1_in_flight_is_resent_with_dup_after_reconnect_and_qos0_fails() {
    let mut k = kernel();
    k.on_connected();
    publish(
        &mut k,
        PUB,
        "/pk/dn/user/update",
        b"one",
        Qos::AtLeastOnce,
        1,
    );
    publish(
        &mut k,
        PUB,
        "/pk/dn/user/update",
        b"zero",
        Qos::AtMostOnce,
        2,
    );
    let first = poll(&mut k).unwrap();
    let Out::Publish { pid, .. } = first else {
        panic!()
    };
    k.on_link_down(DisconnectReason::Network);
    assert_eq!(k.pending_publishes(), 1);
    assert_eq!(
        drain(&mut k, PUB),
        vec![
            Event::Connected,
            Event::PublishResult {
                token: 2,
                delivered: false
            },
            Event::Disconnected {
                reason: DisconnectReason::Network
            },
        ]
    );
    k.on_connected();
    let again = poll(&mut k).unwrap();
    // A new connection is a new session: the resend takes a fresh packet id.
    let Out::Publish { pid: resent, .. } = again else {
        panic!("expected the resend, got {again:?}")
    };
    assert_eq!(
        again,
        Out::Publish {
            pid: resent,
            topic: "/pk/dn/user/update".into(),
            payload: b"one".to_vec(),
            qos: Qos::AtLeastOnce,
            dup: true
        }
    );
    assert_eq!(
        poll(&mut k),
        None,
        "the QoS 0 message was dropped with the link"
    );
    k.on_puback(pid);
    assert_eq!(
        k.pending_publishes(),
        1,
        "an acknowledgement for the old connection's id is ignored"
    );
    k.on_puback(resent);
    assert_eq!(
        drain(&mut k, PUB),
        vec![
            Event::Connected,
            Event::PublishResult {
                token: 1,
                delivered: true
            }
        ]
    );
}

#[test]
fn subscriptions_are_shared_routed_per_app_and_restored_after_reconnect() {
    let mut k = kernel();
    k.on_connected();
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtLeastOnce, 1);
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtLeastOnce, 2);
    let Some(Out::Subscribe {
        pid: p1,
        filter: f1,
        ..
    }) = poll(&mut k)
    else {
        panic!()
    };
    let Some(Out::Subscribe {
        pid: p2,
        filter: f2,
        ..
    }) = poll(&mut k)
    else {
        panic!()
    };
    assert_eq!(
        (f1.as_str(), f2.as_str()),
        ("/pk/dn/user/get", "/pk/dn/user/ceshi")
    );
    k.on_suback(p1, true);
    k.on_suback(p2, true);
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"hello", Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/other", b"nobody", Qos::AtMostOnce),
        Delivery::Taken { clients: 0 }
    );
    let pub_events = drain(&mut k, PUB);
    assert_eq!(
        pub_events.last(),
        Some(&Event::Message {
            topic: "/pk/dn/user/get",
            payload: b"hello",
            qos: Qos::AtLeastOnce
        })
    );
    assert!(pub_events.contains(&Event::SubscribeResult {
        token: 1,
        granted: true
    }));
    let echo_events = drain(&mut k, ECHO);
    assert!(
        !echo_events
            .iter()
            .any(|e| matches!(e, Event::Message { .. })),
        "echo must not see /user/get"
    );

    k.on_link_down(DisconnectReason::ServerClosed);
    k.on_connected();
    let mut resubscribed = Vec::new();
    while let Some(Out::Subscribe { filter, .. }) = poll(&mut k) {
        resubscribed.push(filter);
    }
    resubscribed.sort();
    assert_eq!(
        resubscribed,
        vec![
            "/pk/dn/user/ceshi".to_string(),
            "/pk/dn/user/get".to_string()
        ]
    );
}

#[test]
fn unsubscribe_only_leaves_the_session_when_no_app_holds_the_filter() {
    let mut k = kernel();
    k.on_connected();
    subscribed(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Unsubscribe {
                filter: "/pk/dn/user/ceshi"
            }
        ),
        Response::Error(ErrorCode::NotSubscribed)
    );
    assert_eq!(
        call(
            &mut k,
            ECHO,
            &Request::Unsubscribe {
                filter: "/pk/dn/user/ceshi"
            }
        ),
        Response::Ok
    );
    assert!(
        matches!(poll(&mut k), Some(Out::Unsubscribe { filter, .. }) if filter == "/pk/dn/user/ceshi")
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/ceshi", b"late", Qos::AtMostOnce),
        Delivery::Taken { clients: 0 }
    );
}

#[test]
fn refused_subscription_is_reported_and_forgotten() {
    let mut k = kernel();
    k.on_connected();
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtLeastOnce, 4);
    let Some(Out::Subscribe { pid, .. }) = poll(&mut k) else {
        panic!()
    };
    k.on_suback(pid, false);
    assert!(drain(&mut k, PUB).contains(&Event::SubscribeResult {
        token: 4,
        granted: false
    }));
    assert_eq!(k.session_filters().count(), 0);
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"x", Qos::AtMostOnce),
        Delivery::Taken { clients: 0 }
    );
}

#[test]
fn a_full_queue_drops_new_events_and_reports_overflow_without_touching_other_apps() {
    let mut k = kernel();
    k.on_connected(); // one event each
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 1);
    let Some(Out::Subscribe { pid, .. }) = poll(&mut k) else {
        panic!()
    };
    k.on_suback(pid, true); // second event
    for i in 0..5u8 {
        k.on_publish("/pk/dn/user/get", &[i], Qos::AtMostOnce);
    }
    let events = drain(&mut k, PUB);
    assert_eq!(events[0], Event::Overflow { dropped: 3 });
    assert_eq!(events.len(), 1 + 4);
    assert_eq!(
        events[4],
        Event::Message {
            topic: "/pk/dn/user/get",
            payload: &[1],
            qos: Qos::AtMostOnce
        }
    );
    assert_eq!(drain(&mut k, ECHO), vec![Event::Connected]);
}

#[test]
fn outbox_and_subscription_caps_answer_busy() {
    let mut k = kernel();
    for token in 0..3 {
        assert_eq!(
            publish(
                &mut k,
                PUB,
                "/pk/dn/user/update",
                b"q",
                Qos::AtLeastOnce,
                token
            ),
            Response::Accepted { token }
        );
    }
    assert_eq!(
        publish(&mut k, PUB, "/pk/dn/user/update", b"q", Qos::AtLeastOnce, 9),
        Response::Error(ErrorCode::Busy)
    );
    assert_eq!(
        publish(
            &mut k,
            ECHO,
            "/pk/dn/user/update",
            b"q",
            Qos::AtLeastOnce,
            9
        ),
        Response::Accepted { token: 9 },
        "one app's full outbox does not block another"
    );
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    subscribe(&mut k, ECHO, "/pk/dn/user/cmd/a", Qos::AtMostOnce, 2);
    assert_eq!(
        subscribe(&mut k, ECHO, "/pk/dn/user/cmd/b", Qos::AtMostOnce, 3),
        Response::Error(ErrorCode::Busy)
    );
}

#[test]
fn wait_event_blocks_until_an_event_or_the_deadline() {
    let mut k = kernel();
    assert_eq!(
        raw(&mut k, PUB, &Request::WaitEvent { timeout_ms: 500 }),
        Reply::Later
    );
    assert_eq!(k.next_deadline(), Some(1_500));
    assert_eq!(k.ready_app(1_200), None);
    k.on_connected();
    assert_eq!(k.ready_app(1_201), Some(PUB));
    assert_eq!(answer(&mut k, PUB), Response::Event(Event::Connected));
    assert_eq!(k.ready_app(1_201), None);
    assert_eq!(
        raw(&mut k, PUB, &Request::WaitEvent { timeout_ms: 100 }),
        Reply::Later
    );
    assert_eq!(k.ready_app(1_099), None);
    assert_eq!(k.ready_app(1_100), Some(PUB));
    assert_eq!(answer(&mut k, PUB), Response::NoEvent);
    assert_eq!(k.next_deadline(), None);
}

#[test]
fn a_restarted_app_starts_clean_but_its_accepted_qos1_still_goes_out() {
    let mut k = kernel();
    k.on_connected();
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    publish(
        &mut k,
        ECHO,
        "/pk/dn/user/update",
        b"keep",
        Qos::AtLeastOnce,
        2,
    );
    let Some(Out::Subscribe { pid, .. }) = poll(&mut k) else {
        panic!()
    };
    k.on_suback(pid, true);
    k.app_exited(ECHO);
    assert_eq!(
        call(&mut k, ECHO, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert!(matches!(poll(&mut k), Some(Out::Unsubscribe { .. })));
    let Some(Out::Publish { pid, payload, .. }) = poll(&mut k) else {
        panic!()
    };
    assert_eq!(payload, b"keep");
    call(
        &mut k,
        ECHO,
        &Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
    );
    k.on_puback(pid);
    assert_eq!(
        drain(&mut k, ECHO),
        vec![],
        "the old instance's result is not handed to the new one"
    );
}

#[test]
fn repeated_login_failures_are_reported_once_per_reason() {
    let mut k = kernel();
    k.on_link_down(DisconnectReason::AuthRejected);
    k.on_link_down(DisconnectReason::AuthRejected);
    k.on_link_down(DisconnectReason::Network);
    assert_eq!(
        drain(&mut k, PUB),
        vec![
            Event::Disconnected {
                reason: DisconnectReason::AuthRejected
            },
            Event::Disconnected {
                reason: DisconnectReason::Network
            },
        ]
    );
}

#[test]
fn a_refused_qos1_publish_is_reported_as_not_delivered_and_not_resent() {
    let mut k = kernel();
    k.on_connected();
    publish(
        &mut k,
        PUB,
        "/pk/dn/user/update",
        b"no",
        Qos::AtLeastOnce,
        3,
    );
    let Some(Out::Publish { pid, .. }) = poll(&mut k) else {
        panic!()
    };
    k.on_pub_rejected(pid);
    assert!(drain(&mut k, PUB).contains(&Event::PublishResult {
        token: 3,
        delivered: false
    }));
    k.on_link_down(DisconnectReason::Network);
    k.on_connected();
    assert_eq!(poll(&mut k), None, "a refused message is not sent again");
}

// ---- the reshape: gaps found in review, each failing on the spine ----------------------------

/// Accepts a QoS 1 publish of `pub` until its outbox is full; returns how many were taken.
fn fill_outbox(k: &mut Kernel, app: AppId, payload: &[u8]) -> u32 {
    let mut token = 0;
    while publish(
        k,
        app,
        "/pk/dn/user/update",
        payload,
        Qos::AtLeastOnce,
        token,
    ) == (Response::Accepted { token })
    {
        token += 1;
        assert!(token < 10_000, "the outbox never filled");
    }
    token
}

fn hello(k: &mut Kernel, app: AppId) -> Response<'static> {
    call(
        k,
        app,
        &Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
    )
}

#[test]
fn restarts_while_offline_share_one_outbox_instead_of_adding_one_each() {
    let mut k = kernel();
    let first = fill_outbox(&mut k, PUB, b"q");
    assert_eq!(first, 3);
    for _ in 0..8 {
        k.app_exited(PUB);
        hello(&mut k, PUB);
        assert_eq!(
            publish(
                &mut k,
                PUB,
                "/pk/dn/user/update",
                b"q",
                Qos::AtLeastOnce,
                77
            ),
            Response::Error(ErrorCode::Busy),
            "the dead run's messages still hold the app's bytes"
        );
    }
    assert_eq!(k.pending_publishes(), 3, "nothing accepted was lost");
    // Once they are acknowledged, the new run has its room back.
    k.on_connected();
    while let Some(Out::Publish { pid, .. }) = poll(&mut k) {
        k.on_puback(pid);
    }
    assert_eq!(k.pending_publishes(), 0);
    assert_eq!(fill_outbox(&mut k, PUB, b"q"), 3);
}

#[test]
fn repeated_subscribes_of_one_filter_do_not_grow_the_tables() {
    let mut k = kernel();
    assert_eq!(
        subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 1),
        Response::Accepted { token: 1 }
    );
    for token in 2..10_000 {
        assert_eq!(
            subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, token),
            Response::Error(ErrorCode::Busy),
            "one unanswered Subscribe per filter"
        );
    }
    k.on_connected();
    let Some(Out::Subscribe { pid, .. }) = poll(&mut k) else {
        panic!()
    };
    assert_eq!(poll(&mut k), None, "one SUBSCRIBE on the wire");
    k.on_suback(pid, true);
    let results: Vec<_> = drain(&mut k, PUB)
        .into_iter()
        .filter(|e| matches!(e, Event::SubscribeResult { .. }))
        .collect();
    assert_eq!(
        results,
        vec![Event::SubscribeResult {
            token: 1,
            granted: true
        }]
    );
    // Subscribed: a repeat is answered at once, and confirms without a packet.
    assert_eq!(
        subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 11),
        Response::Accepted { token: 11 }
    );
    assert_eq!(poll(&mut k), None);
    assert_eq!(
        drain(&mut k, PUB),
        vec![Event::SubscribeResult {
            token: 11,
            granted: true
        }]
    );
}

#[test]
fn inbound_qos1_is_taken_only_when_every_matching_queue_has_room() {
    let mut k = kernel();
    k.on_connected();
    subscribed(&mut k, PUB, "/pk/dn/user/get", Qos::AtLeastOnce, 1);
    // Connected + SubscribeResult + two messages fill pub's 64 bytes.
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"1", Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"2", Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"3", Qos::AtLeastOnce),
        Delivery::Refused,
        "not acknowledged: the platform will send it again"
    );
    assert_eq!(k.refused_inbound(), 1);
    let events = drain(&mut k, PUB);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "a refused QoS 1 message is not lost: {events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Message {
            topic: "/pk/dn/user/get",
            payload: b"2",
            qos: Qos::AtLeastOnce
        })
    );
    // The resend finds room.
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"3", Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    // A message no queue of this app can ever hold is dropped (and acknowledged), not
    // refused forever.
    assert_eq!(
        k.on_publish("/pk/dn/user/get", &[0; 65], Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    let events = drain(&mut k, PUB);
    assert_eq!(events[0], Event::Overflow { dropped: 1 });
}

#[test]
fn a_qos0_publish_the_link_could_not_take_is_not_reported_delivered() {
    let mut k = kernel();
    k.on_connected();
    drain(&mut k, PUB);
    publish(&mut k, PUB, "/pk/dn/user/update", b"a", Qos::AtMostOnce, 5);
    assert!(matches!(poll(&mut k), Some(Out::Publish { .. })));
    k.on_send_busy();
    assert_eq!(drain(&mut k, PUB), vec![], "no result yet");
    assert_eq!(poll(&mut k), None, "nothing offered while the link is busy");
    // An acknowledgement of anything frees the link; the message is offered again.
    k.on_puback(999);
    let Some(Out::Publish { payload, .. }) = poll(&mut k) else {
        panic!("offered again")
    };
    assert_eq!(payload, b"a");
    k.on_written();
    assert_eq!(
        drain(&mut k, PUB),
        vec![Event::PublishResult {
            token: 5,
            delivered: true
        }]
    );
}

#[test]
fn a_qos1_subscribe_over_a_qos0_one_subscribes_again() {
    let mut k = kernel();
    k.on_connected();
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    let Some(Out::Subscribe { pid, qos, .. }) = poll(&mut k) else {
        panic!()
    };
    assert_eq!(qos, Qos::AtMostOnce);
    k.on_suback(pid, true);
    drain(&mut k, ECHO);
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtLeastOnce, 2);
    assert_eq!(
        drain(&mut k, ECHO),
        vec![],
        "not granted before the platform says so"
    );
    let Some(Out::Subscribe { pid, filter, qos }) = poll(&mut k) else {
        panic!("the upgrade goes on the wire")
    };
    assert_eq!(
        (filter.as_str(), qos),
        ("/pk/dn/user/ceshi", Qos::AtLeastOnce)
    );
    k.on_suback(pid, true);
    assert_eq!(
        drain(&mut k, ECHO),
        vec![Event::SubscribeResult {
            token: 2,
            granted: true
        }]
    );
}

#[test]
fn unanswered_unsubscribes_are_bounded_and_time_out() {
    let mut k = kernel();
    k.on_connected();
    let mut busy = false;
    for round in 0..70_000u32 {
        let r = subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, round);
        if r == Response::Error(ErrorCode::Busy) {
            busy = true;
            break;
        }
        // The SUBSCRIBE is answered; the UNSUBSCRIBE never is.
        while let Some(out) = poll(&mut k) {
            if let Out::Subscribe { pid, .. } = out {
                k.on_suback(pid, true);
            }
        }
        let r = call(
            &mut k,
            ECHO,
            &Request::Unsubscribe {
                filter: "/pk/dn/user/ceshi",
            },
        );
        if r == Response::Error(ErrorCode::Busy) {
            busy = true;
            break;
        }
        assert_eq!(r, Response::Ok);
        while let Some(out) = poll(&mut k) {
            if let Out::Subscribe { pid, .. } = out {
                k.on_suback(pid, true);
            }
        }
        drain(&mut k, ECHO);
    }
    assert!(
        busy,
        "the kernel answers Busy instead of hanging or growing"
    );
    // The oldest unanswered packet makes the session overdue.
    let deadline = k.ack_deadline().expect("packets are in flight");
    assert_eq!(deadline, 1_000 + u64::from(DEFAULT_ACK_TIMEOUT_MS));
    k.on_link_down(DisconnectReason::KeepAliveTimeout);
    assert_eq!(k.ack_deadline(), None);
    k.on_connected();
    assert_eq!(k.ack_deadline(), None, "a new connection starts clean");
}

#[test]
fn a_resubscribe_goes_out_after_the_same_filters_queued_unsubscribe() {
    let mut k = kernel();
    k.on_connected();
    subscribed(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    call(
        &mut k,
        ECHO,
        &Request::Unsubscribe {
            filter: "/pk/dn/user/ceshi",
        },
    );
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 2);
    let first = poll(&mut k).unwrap();
    let second = poll(&mut k).unwrap();
    assert!(
        matches!(
            (&first, &second),
            (Out::Unsubscribe { .. }, Out::Subscribe { .. })
        ),
        "wire order: {first:?} then {second:?}"
    );
}

#[test]
fn a_filter_refused_on_resubscribe_is_reported_to_every_holder() {
    let mut k = kernel();
    k.on_connected();
    subscribed(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 7);
    drain(&mut k, PUB);
    k.on_link_down(DisconnectReason::Network);
    k.on_connected();
    let Some(Out::Subscribe { pid, .. }) = poll(&mut k) else {
        panic!("restored")
    };
    k.on_suback(pid, false);
    let events = drain(&mut k, PUB);
    assert!(
        events.contains(&Event::SubscribeResult {
            token: 7,
            granted: false
        }),
        "{events:?}"
    );
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Unsubscribe {
                filter: "/pk/dn/user/get"
            }
        ),
        Response::Error(ErrorCode::NotSubscribed),
        "the app knows it is gone"
    );
    assert_eq!(k.session_filters().count(), 0);
}

#[test]
fn a_wrong_hello_after_a_good_one_leaves_the_app_ungreeted() {
    let mut k = kernel();
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Hello {
                major: ABI_MAJOR + 1,
                minor: 0
            }
        ),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert_eq!(
        publish(&mut k, PUB, "/pk/dn/user/update", b"x", Qos::AtLeastOnce, 1),
        Response::Error(ErrorCode::AbiMismatch)
    );
    // A spine app's Hello (`abi_version` only) is another major too.
    assert_eq!(
        hello(&mut k, PUB),
        Response::Welcome {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            app_id: PUB
        }
    );
    let mut spine_hello = vec![0u8, 1];
    assert_eq!(
        raw_bytes(&mut k, PUB, &mut spine_hello, 2),
        Reply::Now(vec![6, 1]),
        "Error(AbiMismatch)"
    );
    assert_eq!(
        call(&mut k, PUB, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
    // A repeated good Hello changes nothing.
    hello(&mut k, PUB);
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 3);
    hello(&mut k, PUB);
    assert_eq!(
        subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 4),
        Response::Error(ErrorCode::Busy),
        "the subscription survived the second Hello"
    );
}

#[test]
fn a_request_of_a_newer_minor_is_unsupported_not_malformed() {
    let mut k = kernel();
    let mut newer = vec![REQUEST_VARIANTS, 1, 2, 3];
    assert_eq!(
        owned(match raw_bytes(&mut k, PUB, &mut newer, 4) {
            Reply::Now(f) => f,
            Reply::Later => panic!(),
        }),
        Response::Error(ErrorCode::Unsupported)
    );
    // The app is still served.
    assert!(matches!(
        call(&mut k, PUB, &Request::Status),
        Response::Status(_)
    ));
}

static SERVICES: [AppDef; 1] = [AppDef {
    name: "ota",
    memory: 0,
    publish: &["/ota/device/inform/pk/dn"],
    subscribe: &["/ota/device/upgrade/pk/dn"],
    restart: RestartPolicy::Never,
    settings: &[],
    budget: AppBudget {
        event_queue_bytes: 512,
        outbox_bytes: 256,
        max_payload: 256,
        subscriptions: 1,
    },
}];

static WIDE_APPS: [AppDef; 1] = [AppDef {
    name: "wide",
    memory: 1024,
    publish: &["/ota/device/inform/pk/dn"],
    subscribe: &["/ota/#"],
    restart: RestartPolicy::Never,
    settings: &[],
    budget: AppBudget {
        event_queue_bytes: 512,
        outbox_bytes: 256,
        max_payload: 256,
        subscriptions: 1,
    },
}];

static WIDE: DeviceConfig = DeviceConfig {
    apps: &WIDE_APPS,
    ..CONFIG
};

#[test]
fn kernel_services_have_grants_of_their_own_and_apps_never_see_their_messages() {
    let mut k = Kernel::with_services(&WIDE, &SERVICES);
    hello(&mut k, 0);
    k.on_connected();
    // The service's grants are checked like an app's.
    assert_eq!(
        k.service_call(
            0,
            Request::Publish {
                topic: "/pk/dn/user/update",
                payload: b"x",
                qos: Qos::AtMostOnce,
                token: 1
            }
        ),
        Err(ErrorCode::NotPermitted)
    );
    assert_eq!(
        k.service_call(
            0,
            Request::Subscribe {
                filter: "/ota/device/upgrade/pk/dn",
                qos: Qos::AtLeastOnce,
                token: 2
            }
        ),
        Ok(Response::Accepted { token: 2 })
    );
    subscribe(&mut k, 0, "/ota/#", Qos::AtLeastOnce, 3);
    while let Some(Out::Subscribe { pid, .. }) = poll(&mut k) {
        k.on_suback(pid, true);
    }
    let mut buf = vec![0u8; 600];
    assert_eq!(
        k.service_event(0, &mut buf),
        Some(Event::SubscribeResult {
            token: 2,
            granted: true
        })
    );
    assert_eq!(
        k.on_publish("/ota/device/upgrade/pk/dn", b"{}", Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    assert_eq!(
        k.service_event(0, &mut buf),
        Some(Event::Message {
            topic: "/ota/device/upgrade/pk/dn",
            payload: b"{}",
            qos: Qos::AtLeastOnce
        })
    );
    let app_events = drain(&mut k, 0);
    assert!(
        !app_events
            .iter()
            .any(|e| matches!(e, Event::Message { .. })),
        "an app granted /ota/# still never sees a service's message: {app_events:?}"
    );
    // Other topics under the app's grant still reach it.
    assert_eq!(
        k.on_publish("/ota/other", b"{}", Qos::AtMostOnce),
        Delivery::Taken { clients: 1 }
    );
    assert!(matches!(
        drain(&mut k, 0).as_slice(),
        [Event::Message { .. }]
    ));
    // Service publishes go out like an app's.
    k.service_call(
        0,
        Request::Publish {
            topic: "/ota/device/inform/pk/dn",
            payload: b"v",
            qos: Qos::AtLeastOnce,
            token: 4,
        },
    )
    .unwrap();
    assert!(
        matches!(poll(&mut k), Some(Out::Publish { topic, .. }) if topic == "/ota/device/inform/pk/dn")
    );
    // Boards cannot address a service through the syscall edge.
    let mut frame = vec![4u8, 0, 0];
    assert_eq!(raw_bytes(&mut k, 1, &mut frame, 1), Reply::Now(vec![6, 0]));
}

#[test]
fn only_acknowledgement_slots_limit_what_is_on_the_wire() {
    let mut k = kernel();
    k.on_connected();
    // 16 packet ids: echo's outbox holds far more than that many small publishes.
    for token in 0..20 {
        publish(
            &mut k,
            ECHO,
            "/pk/dn/user/update",
            b"q",
            Qos::AtLeastOnce,
            token,
        );
    }
    let mut pids = Vec::new();
    while let Some(Out::Publish { pid, .. }) = poll(&mut k) {
        pids.push(pid);
    }
    assert_eq!(pids.len(), crate::budget::MAX_IN_FLIGHT);
    k.on_puback(pids[0]);
    assert!(
        matches!(poll(&mut k), Some(Out::Publish { .. })),
        "a freed id lets the next one go"
    );
}

#[test]
fn the_watch_follows_the_session_and_the_update() {
    static WATCH: crate::watch::LinkWatch = crate::watch::LinkWatch::new();
    use crate::watch::OtaPhase;
    let mut k = Kernel::new(&CONFIG);
    k.on_connected();
    // Set after the fact: it starts from the kernel's state, not from its own.
    k.set_watch(&WATCH);
    assert!(WATCH.connected());
    k.on_link_down(DisconnectReason::Network);
    assert!(!WATCH.connected());
    k.on_connected();
    assert!(WATCH.connected());
    k.set_ota_status(OtaStatus::Downloading { percent: 40 });
    assert_eq!(WATCH.ota(), OtaPhase::Downloading);
    k.set_ota_status(OtaStatus::Verifying);
    assert_eq!(WATCH.ota(), OtaPhase::Downloading);
    k.set_ota_status(OtaStatus::PendingReboot);
    assert_eq!(WATCH.ota(), OtaPhase::PendingReboot);
    k.set_ota_status(OtaStatus::Failed { step: -2 });
    assert_eq!(WATCH.ota(), OtaPhase::Idle);
}

/// `Time` at monotonic `now_ms`, through the syscall edge.
fn time_at(k: &mut Kernel, app: AppId, now_ms: u64) -> Response<'static> {
    let mut buf = vec![0u8; 64];
    let len = postcard::to_slice(&Request::Time, &mut buf).unwrap().len();
    let n = k
        .syscall(app, &mut buf, len, now_ms)
        .expect("answered at once");
    owned(buf[..n].to_vec())
}

#[test]
fn time_is_none_until_learnt_then_carried_forward_on_the_monotonic_clock() {
    let mut k = kernel();
    assert_eq!(time_at(&mut k, PUB, 5_000), Response::Time(None));
    k.set_wall_time(1_764_547_200_000, 5_000, TimeSource::Platform, 40);
    assert_eq!(
        time_at(&mut k, ECHO, 12_345),
        Response::Time(Some(WallClock {
            unix_ms: 1_764_547_207_345,
            source: TimeSource::Platform,
            accuracy_ms: 40,
        }))
    );
    // A reading from before the anchor does not go back in time.
    assert_eq!(
        time_at(&mut k, PUB, 4_000),
        Response::Time(Some(WallClock {
            unix_ms: 1_764_547_200_000,
            source: TimeSource::Platform,
            accuracy_ms: 40,
        }))
    );
    // A later learnt time replaces it, whatever its source.
    k.set_wall_time(1_800_000_000_000, 20_000, TimeSource::Network, 1_000);
    assert_eq!(
        time_at(&mut k, PUB, 21_000),
        Response::Time(Some(WallClock {
            unix_ms: 1_800_000_001_000,
            source: TimeSource::Network,
            accuracy_ms: 1_000,
        }))
    );
}

#[test]
fn time_needs_hello_like_every_request() {
    let mut k = Kernel::new(&CONFIG);
    k.set_wall_time(1_000, 0, TimeSource::Network, 1_000);
    assert_eq!(
        time_at(&mut k, PUB, 10),
        Response::Error(ErrorCode::AbiMismatch)
    );
}
