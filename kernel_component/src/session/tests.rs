//! The machine stepped by hand: what it asks for, with which deadline, after each report.
//! (The runner's tests drive it with a fake clock and scripted I/O.)

use super::*;
use crate::config::*;

static CONFIG: DeviceConfig = DeviceConfig {
    keepalive_secs: 60,
    ..TEST_CONFIG
};

/// A session logged in at `at` (connect at 0, CONNACK at `at`).
fn logged_in(kernel: &mut Kernel, at: u64, negotiated: Option<u16>) -> Session {
    let mut s = Session::new(Timing::default(), CONFIG.keepalive_secs);
    assert_eq!(s.next(0, kernel), Action::Connect { deadline: 15_000 });
    s.connected(0, Some(Ok(())));
    assert_eq!(s.next(0, kernel), Action::Login { deadline: 15_000 });
    s.logged_in(at, kernel, Some(Ok(())), negotiated);
    assert!(s.is_up());
    s
}

#[test]
fn logged_in_it_listens_until_the_ping_is_due_then_pings() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 1_000, None);
    // Keep-alive 60 s: ping after 30 s of silence.
    assert_eq!(s.next(1_000, &mut k), Action::Listen { until: 31_000 });
    assert_eq!(s.next(31_000, &mut k), Action::Ping { deadline: 51_000 });
    s.pinged(31_000, Some(Ok(())));
    // Now the PINGRESP is due within 20 s.
    assert_eq!(s.next(31_000, &mut k), Action::Listen { until: 51_000 });
    assert_eq!(
        s.next(51_000, &mut k),
        Action::Disconnect { deadline: 53_000 }
    );
    s.closed(51_500);
    assert_eq!(
        s.next(51_500, &mut k),
        Action::Down {
            end: SessionEnd::KeepAlive
        }
    );
    assert_eq!(s.retry(51_500, 0), 500);
    assert_eq!(s.next(51_600, &mut k), Action::Pause { until: 52_000 });
    assert_eq!(s.next(52_000, &mut k), Action::Connect { deadline: 67_000 });
}

#[test]
fn a_keep_alive_of_zero_never_pings() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 0, Some(0));
    assert_eq!(
        s.next(10_000_000, &mut k),
        Action::Listen { until: u64::MAX }
    );
}

#[test]
fn a_partial_packet_is_timed_from_its_first_sight() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 0, None);
    s.partial(2_000, true);
    s.partial(5_000, true);
    assert_eq!(s.next(5_000, &mut k), Action::Listen { until: 22_000 });
    // Whole before its deadline: announced, read, and the clock for it stops.
    s.partial(21_000, false);
    s.heard(21_000, Heard::Packet);
    assert_eq!(s.next(21_000, &mut k), Action::Receive { deadline: 41_000 });
    s.received(21_000, &mut k, Some(Ok(Incoming::Other)));
    assert_eq!(s.next(21_000, &mut k), Action::Listen { until: 30_000 });
    // The next one stalls.
    s.partial(25_000, true);
    assert_eq!(
        s.next(45_000, &mut k),
        Action::Disconnect { deadline: 47_000 }
    );
    s.closed(45_000);
    assert_eq!(
        s.next(45_000, &mut k),
        Action::Down {
            end: SessionEnd::ReceiveTimeout
        }
    );
}

#[test]
fn stop_between_operations_says_disconnect_first() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 0, None);
    assert!(matches!(s.next(100, &mut k), Action::Listen { .. }));
    s.stop(100);
    assert_eq!(s.next(100, &mut k), Action::Disconnect { deadline: 2_100 });
    s.closed(150);
    assert_eq!(s.next(150, &mut k), Action::Stop);
}

#[test]
fn stop_in_the_middle_of_an_operation_says_nothing_more() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 0, None);
    assert!(matches!(s.next(30_000, &mut k), Action::Ping { .. }));
    s.stop(30_001);
    assert_eq!(s.next(30_001, &mut k), Action::Stop);
    // Reports after the stop change nothing.
    s.pinged(30_002, Some(Ok(())));
    assert_eq!(s.next(30_002, &mut k), Action::Stop);
}

#[test]
fn stop_before_login_or_during_backoff_stops_at_once() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = Session::new(Timing::default(), 60);
    assert!(matches!(s.next(0, &mut k), Action::Connect { .. }));
    s.connected(10, Some(Err(NetError::Connect)));
    assert!(matches!(s.next(10, &mut k), Action::Down { .. }));
    let delay = s.retry(10, 0);
    assert_eq!(
        s.next(10, &mut k),
        Action::Pause {
            until: 10 + u64::from(delay)
        }
    );
    s.stop(20);
    assert_eq!(s.next(20, &mut k), Action::Stop);
}

#[test]
fn a_failed_link_says_disconnect_unless_the_transport_is_gone() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = logged_in(&mut k, 0, None);
    s.heard(10, Heard::Failed(LinkError::Protocol));
    assert!(matches!(s.next(10, &mut k), Action::Disconnect { .. }));

    let mut s = logged_in(&mut k, 0, None);
    s.heard(10, Heard::Failed(LinkError::Network));
    assert_eq!(
        s.next(10, &mut k),
        Action::Down {
            end: SessionEnd::Link(LinkError::Network)
        }
    );
}

#[test]
fn a_refused_login_grows_the_backoff_and_a_good_one_resets_it() {
    let mut k = Kernel::new(&CONFIG);
    let mut s = Session::new(Timing::default(), 60);
    for expected in [500, 1_000, 2_000] {
        let now = match s.next(0, &mut k) {
            Action::Pause { until } => until,
            _ => 0,
        };
        assert!(matches!(s.next(now, &mut k), Action::Connect { .. }));
        s.connected(now, Some(Ok(())));
        assert!(matches!(s.next(now, &mut k), Action::Login { .. }));
        let refused = LinkError::Refused(Refusal::BadCredentials);
        s.logged_in(now, &mut k, Some(Err(refused)), None);
        assert_eq!(
            s.next(now, &mut k),
            Action::Down {
                end: SessionEnd::Link(refused)
            }
        );
        assert_eq!(s.retry(now, 0), expected);
    }
    assert_eq!(s.failed_attempts(), 3);
    assert_eq!(s.next(0, &mut k), Action::Pause { until: 3_500 });
    assert!(matches!(s.next(3_500, &mut k), Action::Connect { .. }));
    s.connected(3_500, Some(Ok(())));
    assert_eq!(s.failed_attempts(), 3, "a TCP connection is not a login");
    assert!(matches!(s.next(3_500, &mut k), Action::Login { .. }));
    s.logged_in(3_500, &mut k, Some(Ok(())), None);
    assert_eq!(s.failed_attempts(), 0);
    s.heard(4_000, Heard::Failed(LinkError::Network));
    assert!(matches!(s.next(4_000, &mut k), Action::Down { .. }));
    assert_eq!(s.retry(4_000, 0), 500);
}
