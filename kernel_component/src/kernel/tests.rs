use super::*;
use crate::config::*;
use alloc::vec;

static APPS: [AppDef; 2] = [
    AppDef {
        name: "pub",
        memory: 1024,
        publish: &["/pk/dn/user/update"],
        subscribe: &["/pk/dn/user/get"],
        restart: RestartPolicy::OnFailure,
        settings: &[],
    },
    AppDef {
        name: "echo",
        memory: 1024,
        publish: &["/pk/dn/user/update", "/pk/dn/user/update/error"],
        subscribe: &["/pk/dn/user/ceshi", "/pk/dn/user/cmd/#"],
        restart: RestartPolicy::Always,
        settings: &[],
    },
];

static CONFIG: DeviceConfig = DeviceConfig {
    product_key: "pk",
    device_name: "dn",
    client_id: "pk.dn",
    auth: AuthMode::DeviceSecret,
    secret: SecretSource::Provisioned,
    endpoint: Endpoint {
        host: "localhost",
        port: 1883,
        emulator: true,
    },
    mqtt_version: MqttVersion::V311,
    tls: TlsConfig {
        enabled: false,
        ca_file: None,
    },
    keepalive_secs: 300,
    sign_method: SignMethod::HmacSha256,
    topics: &[],
    apps: &APPS,
};

const PUB: AppId = 0;
const ECHO: AppId = 1;

fn kernel() -> Kernel {
    let mut k = Kernel::new(
        &CONFIG,
        Limits {
            event_queue: 4,
            outbox_per_app: 3,
            subscriptions_per_app: 2,
        },
    );
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Hello {
                abi_version: ABI_VERSION
            }
        ),
        Response::Welcome {
            abi_version: ABI_VERSION,
            app_id: PUB
        }
    );
    assert_eq!(
        call(
            &mut k,
            ECHO,
            &Request::Hello {
                abi_version: ABI_VERSION
            }
        ),
        Response::Welcome {
            abi_version: ABI_VERSION,
            app_id: ECHO
        }
    );
    k
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

fn raw(k: &mut Kernel, app: AppId, req: &Request<'_>) -> Reply {
    let mut frame = postcard::to_allocvec_cobs(req).unwrap();
    k.handle_frame(app, &mut frame, 1_000)
}

fn owned(frame: Vec<u8>) -> Response<'static> {
    let leaked: &'static mut [u8] = alloc::boxed::Box::leak(frame.into_boxed_slice());
    aliot_abi::decode_frame(leaked).unwrap()
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
    let mut k = Kernel::new(&CONFIG, Limits::default());
    assert_eq!(
        call(&mut k, PUB, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert_eq!(
        call(
            &mut k,
            PUB,
            &Request::Hello {
                abi_version: ABI_VERSION + 1
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
    let mut junk = vec![7u8, 200, 3, 0];
    assert_eq!(
        owned(match k.handle_frame(PUB, &mut junk, 0) {
            Reply::Now(f) => f,
            Reply::Later => panic!(),
        }),
        Response::Error(ErrorCode::Malformed)
    );
    let mut frame = postcard::to_allocvec_cobs(&Request::Status).unwrap();
    assert_eq!(
        owned(match k.handle_frame(9, &mut frame, 0) {
            Reply::Now(f) => f,
            Reply::Later => panic!(),
        }),
        Response::Error(ErrorCode::Malformed)
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
    assert_eq!(k.poll_outgoing(), None, "nothing may reach the network");
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
    assert_eq!(k.poll_outgoing(), None);
    k.on_connected();
    let Some(Outgoing::Publish {
        pid,
        payload,
        qos,
        dup,
        ..
    }) = k.poll_outgoing()
    else {
        panic!("expected the queued publish")
    };
    assert_eq!((payload, qos, dup), (&b"b"[..], Qos::AtLeastOnce, false));
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
    assert!(k.poll_outgoing().is_some());
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
fn a_packet_the_link_was_too_busy_for_is_offered_again_unchanged() {
    let mut k = kernel();
    k.on_connected();
    drain(&mut k, PUB);
    publish(&mut k, PUB, "/pk/dn/user/update", b"1", Qos::AtLeastOnce, 1);
    publish(&mut k, PUB, "/pk/dn/user/update", b"2", Qos::AtMostOnce, 2);
    let first = k.poll_outgoing().map(|p| alloc::format!("{p:?}"));
    k.on_send_busy();
    // Same packet (same pid, no DUP), and the QoS 0 one behind it is not reported delivered.
    assert_eq!(k.poll_outgoing().map(|p| alloc::format!("{p:?}")), first);
    assert_eq!(drain(&mut k, PUB), vec![]);
    k.on_written();
    assert!(matches!(
        k.poll_outgoing(),
        Some(Outgoing::Publish {
            qos: Qos::AtMostOnce,
            ..
        })
    ));
    k.on_send_busy();
    assert_eq!(drain(&mut k, PUB), vec![], "not delivered while refused");
    assert!(k.poll_outgoing().is_some());
    k.on_written();
    assert_eq!(
        drain(&mut k, PUB),
        vec![Event::PublishResult {
            token: 2,
            delivered: true
        }]
    );
    // A subscription refused for now goes out again too.
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 3);
    assert!(matches!(
        k.poll_outgoing(),
        Some(Outgoing::Subscribe { .. })
    ));
    k.on_send_busy();
    assert!(matches!(
        k.poll_outgoing(),
        Some(Outgoing::Subscribe { .. })
    ));
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
    let first = k.poll_outgoing().unwrap();
    let Outgoing::Publish { pid, .. } = first else {
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
    let again = k.poll_outgoing().unwrap();
    assert_eq!(
        again,
        Outgoing::Publish {
            pid,
            topic: "/pk/dn/user/update",
            payload: b"one",
            qos: Qos::AtLeastOnce,
            dup: true
        }
    );
    assert_eq!(
        k.poll_outgoing(),
        None,
        "the QoS 0 message was dropped with the link"
    );
    k.on_puback(pid);
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
    let Some(Outgoing::Subscribe {
        pid: p1,
        filter: f1,
        ..
    }) = k.poll_outgoing()
    else {
        panic!()
    };
    let f1 = f1.to_string();
    let Some(Outgoing::Subscribe {
        pid: p2,
        filter: f2,
        ..
    }) = k.poll_outgoing()
    else {
        panic!()
    };
    assert_eq!((f1.as_str(), f2), ("/pk/dn/user/get", "/pk/dn/user/ceshi"));
    k.on_suback(p1, true);
    k.on_suback(p2, true);
    assert_eq!(
        k.on_publish("/pk/dn/user/get", b"hello", Qos::AtLeastOnce),
        1
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/other", b"nobody", Qos::AtMostOnce),
        0
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
    while let Some(Outgoing::Subscribe { filter, .. }) = k.poll_outgoing() {
        resubscribed.push(filter.to_string());
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
    subscribe(&mut k, ECHO, "/pk/dn/user/ceshi", Qos::AtMostOnce, 1);
    let Some(Outgoing::Subscribe { pid, .. }) = k.poll_outgoing() else {
        panic!()
    };
    k.on_suback(pid, true);
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
        matches!(k.poll_outgoing(), Some(Outgoing::Unsubscribe { filter, .. }) if filter == "/pk/dn/user/ceshi")
    );
    assert_eq!(
        k.on_publish("/pk/dn/user/ceshi", b"late", Qos::AtMostOnce),
        0
    );
}

#[test]
fn refused_subscription_is_reported_and_forgotten() {
    let mut k = kernel();
    k.on_connected();
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtLeastOnce, 4);
    let Some(Outgoing::Subscribe { pid, .. }) = k.poll_outgoing() else {
        panic!()
    };
    k.on_suback(pid, false);
    assert!(drain(&mut k, PUB).contains(&Event::SubscribeResult {
        token: 4,
        granted: false
    }));
    assert!(k.session_filters().is_empty());
    assert_eq!(k.on_publish("/pk/dn/user/get", b"x", Qos::AtMostOnce), 0);
}

#[test]
fn a_full_queue_drops_new_events_and_reports_overflow_without_touching_other_apps() {
    let mut k = kernel();
    k.on_connected(); // one event each
    subscribe(&mut k, PUB, "/pk/dn/user/get", Qos::AtMostOnce, 1);
    let Some(Outgoing::Subscribe { pid, .. }) = k.poll_outgoing() else {
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
    assert!(k.ready_responses(1_200).is_empty());
    k.on_connected();
    let ready = k.ready_responses(1_201);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, PUB);
    assert_eq!(owned(ready[0].1.clone()), Response::Event(Event::Connected));
    assert_eq!(
        raw(&mut k, PUB, &Request::WaitEvent { timeout_ms: 100 }),
        Reply::Later
    );
    let ready = k.ready_responses(1_100);
    assert_eq!(owned(ready[0].1.clone()), Response::NoEvent);
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
    let Some(Outgoing::Subscribe { pid, .. }) = k.poll_outgoing() else {
        panic!()
    };
    k.on_suback(pid, true);
    k.app_exited(ECHO);
    assert_eq!(
        call(&mut k, ECHO, &Request::Status),
        Response::Error(ErrorCode::AbiMismatch)
    );
    assert!(matches!(
        k.poll_outgoing(),
        Some(Outgoing::Unsubscribe { .. })
    ));
    let Some(Outgoing::Publish { pid, payload, .. }) = k.poll_outgoing() else {
        panic!()
    };
    assert_eq!(payload, b"keep");
    call(
        &mut k,
        ECHO,
        &Request::Hello {
            abi_version: ABI_VERSION,
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
    let Some(Outgoing::Publish { pid, .. }) = k.poll_outgoing() else {
        panic!()
    };
    k.on_pub_rejected(pid);
    assert!(drain(&mut k, PUB).contains(&Event::PublishResult {
        token: 3,
        delivered: false
    }));
    k.on_link_down(DisconnectReason::Network);
    k.on_connected();
    assert_eq!(
        k.poll_outgoing(),
        None,
        "a refused message is not sent again"
    );
}
