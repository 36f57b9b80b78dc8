use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::config::TEST_CONFIG;
use crate::kernel::Delivery;
use crate::test_wire::wire;
use aliot_abi::{DisconnectReason, WallClock};

static CONFIG: DeviceConfig = TEST_CONFIG;
const REQUEST: &str = "/ext/ntp/pk/dn/request";
const RESPONSE: &str = "/ext/ntp/pk/dn/response";
/// 2026-12-01T00:00:00Z.
const SERVER_MS: u64 = 1_764_547_200_000;

fn options() -> TimeOptions {
    TimeOptions {
        answer_ms: 10_000,
        retry_ms: 60_000,
        resync_ms: 3_600_000,
    }
}

/// A kernel with the two services and the time agent, logged in at `now`.
fn logged_in(now: u64) -> (Kernel, TimeAgent) {
    let mut k = Kernel::with_services(&CONFIG, crate::services::all(&CONFIG));
    let def = k.service_def(TIME_SERVICE).unwrap();
    let mut agent = TimeAgent::new(def, TIME_SERVICE, options()).unwrap();
    k.on_connected();
    agent.on_login(&mut k, now);
    agent.poll(&mut k, now);
    (k, agent)
}

/// The platform's answer arriving at `now`, handed to the agent.
fn answer(k: &mut Kernel, agent: &mut TimeAgent, body: &str, now: u64) {
    assert_eq!(
        k.on_publish(RESPONSE, body.as_bytes(), Qos::AtMostOnce),
        Delivery::Taken { clients: 1 },
        "the answer reached the time service"
    );
    agent.poll(k, now);
}

fn requests(wire: &[(String, String)]) -> Vec<&str> {
    wire.iter()
        .filter(|(t, _)| t == REQUEST)
        .map(|(_, p)| p.as_str())
        .collect()
}

#[test]
fn a_login_subscribes_then_asks_with_the_monotonic_send_time() {
    let (mut k, _agent) = logged_in(5_000);
    assert_eq!(
        wire(&mut k),
        [
            (RESPONSE.into(), String::new()),
            (REQUEST.into(), r#"{"deviceSendTime":"5000"}"#.into()),
        ],
        "the SUBSCRIBE goes out before the request"
    );
}

#[test]
fn the_answer_sets_the_time_by_the_documented_formula() {
    let (mut k, mut agent) = logged_in(5_000);
    wire(&mut k);
    assert_eq!(k.wall_time(5_000), None);
    // Sent at 5 000, answered at 5 300: a 300 ms round trip; the server held it 20 ms.
    let body = format!(
        r#"{{"deviceSendTime":"5000","serverRecvTime":"{}","serverSendTime":"{}"}}"#,
        SERVER_MS,
        SERVER_MS + 20
    );
    answer(&mut k, &mut agent, &body, 5_300);
    // (recv + send + 5300 - 5000) / 2 = recv + 160, at monotonic 5 300.
    assert_eq!(
        k.wall_time(5_300),
        Some(WallClock {
            unix_ms: SERVER_MS + 160,
            source: TimeSource::Platform,
            accuracy_ms: 151,
        })
    );
    assert_eq!(k.wall_time(6_300).unwrap().unix_ms, SERVER_MS + 1_160);
    assert_eq!(
        agent.next_deadline(),
        Some(5_300 + 3_600_000),
        "resync in an hour"
    );
}

#[test]
fn other_members_and_nested_values_are_ignored() {
    let (mut k, mut agent) = logged_in(700);
    wire(&mut k);
    let body = format!(
        r#" {{"extra":{{"a":[1,{{"b":"}}"}}]}},"deviceSendTime":"700","serverRecvTime":"{SERVER_MS}","note":"x\"y","serverSendTime":"{SERVER_MS}"}} "#
    );
    answer(&mut k, &mut agent, &body, 700);
    assert_eq!(k.wall_time(700).unwrap().unix_ms, SERVER_MS);
}

#[test]
fn numbers_are_taken_as_well_as_strings() {
    let (mut k, mut agent) = logged_in(700);
    wire(&mut k);
    let body = format!(
        r#"{{"deviceSendTime":700,"serverRecvTime":{SERVER_MS},"serverSendTime":"{SERVER_MS}"}}"#
    );
    answer(&mut k, &mut agent, &body, 700);
    assert_eq!(k.wall_time(700).unwrap().unix_ms, SERVER_MS);
}

#[test]
fn answers_that_are_not_for_the_waiting_request_or_cannot_be_read_change_nothing() {
    let (mut k, mut agent) = logged_in(5_000);
    wire(&mut k);
    for body in [
        // Another request's (late) answer.
        format!(
            r#"{{"deviceSendTime":"4000","serverRecvTime":"{SERVER_MS}","serverSendTime":"{SERVER_MS}"}}"#
        ),
        // Not JSON, missing fields, wrong types, signs, fractions, implausible times.
        "not json".into(),
        r#"{"deviceSendTime":"5000"}"#.into(),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":"x","serverSendTime":"{SERVER_MS}"}}"#
        ),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":-1,"serverSendTime":"{SERVER_MS}"}}"#
        ),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":1.5,"serverSendTime":"{SERVER_MS}"}}"#
        ),
        format!(
            r#"{{"deviceSendTime":"+5000","serverRecvTime":"{SERVER_MS}","serverSendTime":"{SERVER_MS}"}}"#
        ),
        r#"{"deviceSendTime":"5000","serverRecvTime":"12","serverSendTime":"12"}"#.into(),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":"99999999999999999999999","serverSendTime":"{SERVER_MS}"}}"#
        ),
        "[]".into(),
        // Literals that are not integers, and an escaped string.
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":true,"serverSendTime":"{SERVER_MS}"}}"#
        ),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":1.7645472e12,"serverSendTime":"{SERVER_MS}"}}"#
        ),
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":"\u0031764547200000","serverSendTime":"{SERVER_MS}"}}"#
        ),
        // Trailing garbage after the object.
        format!(
            r#"{{"deviceSendTime":"5000","serverRecvTime":"{SERVER_MS}","serverSendTime":"{SERVER_MS}"}}x"#
        ),
    ] {
        answer(&mut k, &mut agent, &body, 5_100);
        assert_eq!(k.wall_time(5_100), None, "{body}");
    }
    // Still waiting for its own answer, which then counts.
    let good = format!(
        r#"{{"deviceSendTime":"5000","serverRecvTime":"{SERVER_MS}","serverSendTime":"{SERVER_MS}"}}"#
    );
    answer(&mut k, &mut agent, &good, 5_100);
    assert_eq!(k.wall_time(5_100).unwrap().unix_ms, SERVER_MS + 50);
    // A repeat of the same answer after that is not taken again.
    answer(&mut k, &mut agent, &good, 9_000);
    assert_eq!(k.wall_time(9_000).unwrap().unix_ms, SERVER_MS + 50 + 3_900);
}

#[test]
fn a_lost_request_is_retried_after_the_retry_wait() {
    let (mut k, mut agent) = logged_in(1_000);
    assert_eq!(requests(&wire(&mut k)).len(), 1);
    assert_eq!(agent.next_deadline(), Some(11_000));
    agent.poll(&mut k, 10_999);
    assert!(requests(&wire(&mut k)).is_empty());
    agent.poll(&mut k, 11_000);
    assert_eq!(agent.next_deadline(), Some(71_000), "counted lost");
    agent.poll(&mut k, 70_000);
    assert!(
        requests(&wire(&mut k)).is_empty(),
        "not before the retry wait"
    );
    agent.poll(&mut k, 71_000);
    assert_eq!(
        requests(&wire(&mut k)),
        [r#"{"deviceSendTime":"71000"}"#],
        "asked again"
    );
}

#[test]
fn every_login_asks_again_and_a_link_down_stops_asking() {
    let (mut k, mut agent) = logged_in(1_000);
    wire(&mut k);
    k.on_link_down(DisconnectReason::Network);
    // The lost request's deadline passes while the link is down: the retry finds it down.
    agent.poll(&mut k, 11_000);
    agent.poll(&mut k, 71_000);
    assert_eq!(agent.next_deadline(), None, "nothing to do until a login");
    k.on_connected();
    agent.on_login(&mut k, 80_000);
    agent.poll(&mut k, 80_000);
    let after = wire(&mut k);
    assert_eq!(
        after.iter().filter(|(t, _)| t == RESPONSE).count(),
        1,
        "the kernel restored the subscription (once): {after:?}"
    );
    assert_eq!(requests(&after), [r#"{"deviceSendTime":"80000"}"#]);
}

#[test]
fn a_refused_subscription_turns_the_service_off() {
    let mut k = Kernel::with_services(&CONFIG, crate::services::all(&CONFIG));
    let def = k.service_def(TIME_SERVICE).unwrap();
    let mut agent = TimeAgent::new(def, TIME_SERVICE, options()).unwrap();
    k.on_connected();
    agent.on_login(&mut k, 0);
    let crate::kernel::Outgoing::Subscribe { pid, .. } = k.poll_outgoing(0).unwrap() else {
        panic!("the SUBSCRIBE comes first");
    };
    k.on_written();
    k.on_suback(pid, false);
    agent.poll(&mut k, 0);
    assert_eq!(agent.next_deadline(), None);
    assert!(
        requests(&wire(&mut k)).is_empty(),
        "no request without a subscription"
    );
}

#[test]
fn the_service_s_own_messages_fit_its_budget() {
    let largest = format!(r#"{{"deviceSendTime":"{}"}}"#, u64::MAX);
    assert!(largest.len() <= MAX_REQUEST as usize);
    // The documented answer with the longest times, and the longest topics.
    let answer = format!(
        r#"{{"deviceSendTime":"{0}","serverRecvTime":"{0}","serverSendTime":"{0}"}}"#,
        u64::MAX
    );
    assert!(answer.len() <= MAX_MESSAGE as usize, "{}", answer.len());
    let pk = "p".repeat(32);
    let dn = "d".repeat(32);
    let config = DeviceConfig {
        product_key: Box::leak(pk.into_boxed_str()),
        device_name: Box::leak(dn.into_boxed_str()),
        ..TEST_CONFIG
    };
    let (request, response) = topics(&config);
    assert_eq!(response.len() as u32, MAX_NTP_TOPIC);
    assert!(request.len() as u32 <= MAX_NTP_TOPIC);
}

#[test]
fn the_longest_answer_on_the_longest_topic_reaches_the_service() {
    let config: &'static DeviceConfig = Box::leak(Box::new(DeviceConfig {
        product_key: "p".repeat(32).leak(),
        device_name: "d".repeat(32).leak(),
        ..TEST_CONFIG
    }));
    let mut k = Kernel::with_services(config, crate::services::all(config));
    let def = k.service_def(TIME_SERVICE).unwrap();
    let mut agent = TimeAgent::new(def, TIME_SERVICE, options()).unwrap();
    k.on_connected();
    agent.on_login(&mut k, 1_000);
    agent.poll(&mut k, 1_000);
    wire(&mut k);
    // The send time padded with zeros to 20 digits: the longest answer that is still ours.
    let body = format!(
        r#"{{"deviceSendTime":"{:020}","serverRecvTime":"{SERVER_MS:020}","serverSendTime":"{SERVER_MS:020}"}}"#,
        1_000
    );
    // Padded with spaces (JSON allows them) to exactly the largest message taken.
    let body = format!("{body:<width$}", width = MAX_MESSAGE as usize);
    assert_eq!(body.len(), MAX_MESSAGE as usize);
    let response = def.subscribe[0];
    assert_eq!(
        k.on_publish(response, body.as_bytes(), Qos::AtLeastOnce),
        Delivery::Taken { clients: 1 }
    );
    agent.poll(&mut k, 1_000);
    assert_eq!(k.wall_time(1_000).unwrap().unix_ms, SERVER_MS);
}
