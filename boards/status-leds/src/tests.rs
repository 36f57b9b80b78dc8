extern crate std;

use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

use embedded_hal::digital::{ErrorType, OutputPin};

use super::*;

/// A pin that records every level written to it (shared, so the test reads the log after the
/// pins moved into the LEDs), and fails its writes while `broken`.
#[derive(Clone)]
struct FakePin {
    id: usize,
    log: Rc<RefCell<Vec<(usize, bool)>>>,
    broken: Rc<RefCell<bool>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Broken;

impl embedded_hal::digital::Error for Broken {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl ErrorType for FakePin {
    type Error = Broken;
}

impl OutputPin for FakePin {
    fn set_low(&mut self) -> Result<(), Broken> {
        self.write(false)
    }

    fn set_high(&mut self) -> Result<(), Broken> {
        self.write(true)
    }
}

impl FakePin {
    fn write(&mut self, high: bool) -> Result<(), Broken> {
        if *self.broken.borrow() {
            return Err(Broken);
        }
        self.log.borrow_mut().push((self.id, high));
        Ok(())
    }
}

type Log = Rc<RefCell<Vec<(usize, bool)>>>;

fn make_leds(level: ActiveLevel) -> (StatusLeds<FakePin>, Log, Rc<RefCell<bool>>) {
    let log: Log = Rc::default();
    let broken = Rc::new(RefCell::new(false));
    let pins = [0, 1, 2, 3].map(|id| FakePin {
        id,
        log: log.clone(),
        broken: broken.clone(),
    });
    (StatusLeds::new(pins, level), log, broken)
}

const fn status(link: Link, ota: Ota) -> Status {
    Status {
        link,
        ota,
        button_taken: false,
    }
}

/// LED `led`'s states over one whole cycle.
fn cycle(s: Status, led: usize) -> [bool; PHASES as usize] {
    core::array::from_fn(|p| pattern(s, p as u8)[led])
}

#[test]
fn led1_tells_the_link_apart_at_a_glance() {
    let connected = cycle(status(Link::Connected, Ota::Idle), 0);
    let offline = cycle(status(Link::Offline, Ota::Idle), 0);
    let attaching = cycle(status(Link::Attaching, Ota::Idle), 0);
    assert_eq!(connected, [true; 8]);
    // Offline: one short flash per cycle; attaching: every other phase.
    assert_eq!(
        offline,
        [true, false, false, false, false, false, false, false]
    );
    assert_eq!(
        attaching,
        [true, false, true, false, true, false, true, false]
    );
}

#[test]
fn led2_shows_the_update_and_led4_the_heartbeat() {
    assert_eq!(cycle(status(Link::Connected, Ota::Idle), 1), [false; 8]);
    assert_eq!(
        cycle(status(Link::Connected, Ota::Downloading), 1),
        [true, true, false, false, true, true, false, false]
    );
    assert_eq!(
        cycle(status(Link::Offline, Ota::AwaitingConfirm), 1),
        [true; 8]
    );
    for link in [Link::Attaching, Link::Offline, Link::Connected] {
        assert_eq!(
            cycle(status(link, Ota::Idle), 3),
            [true, true, true, true, false, false, false, false]
        );
    }
    // The phase wraps: phase 9 is phase 1.
    let s = status(Link::Attaching, Ota::Downloading);
    assert_eq!(pattern(s, 9), pattern(s, 1));
}

#[test]
fn led3_is_lit_only_after_a_press_was_taken() {
    let mut s = status(Link::Connected, Ota::Idle);
    assert_eq!(cycle(s, 2), [false; 8]);
    s.button_taken = true;
    assert_eq!(cycle(s, 2), [true; 8]);
}

#[test]
fn pins_are_written_at_their_active_level_and_only_on_change() {
    let (mut leds, log, _) = make_leds(ActiveLevel::High);
    let s = status(Link::Attaching, Ota::Idle);
    assert_eq!(leds.show(s, 0), Ok(()));
    // First time: every pin, lit = high.
    assert_eq!(
        *log.borrow(),
        [(0, true), (1, false), (2, false), (3, true)]
    );
    log.borrow_mut().clear();
    assert_eq!(leds.show(s, 0), Ok(()));
    assert!(
        log.borrow().is_empty(),
        "nothing changed: {:?}",
        log.borrow()
    );
    // Phase 1: only LED1 goes dark.
    assert_eq!(leds.show(s, 1), Ok(()));
    assert_eq!(*log.borrow(), [(0, false)]);

    let (mut low, log, _) = make_leds(ActiveLevel::Low);
    assert_eq!(low.show(status(Link::Connected, Ota::Idle), 4), Ok(()));
    // Active low: LED1 lit = low, LED4 dark at phase 4 = high.
    assert_eq!(*log.borrow(), [(0, false), (1, true), (2, true), (3, true)]);
}

#[test]
fn a_failed_write_is_retried_on_the_next_show() {
    let (mut leds, log, broken) = make_leds(ActiveLevel::High);
    let s = status(Link::Connected, Ota::Idle);
    *broken.borrow_mut() = true;
    assert_eq!(leds.show(s, 0), Err(Broken));
    *broken.borrow_mut() = false;
    assert_eq!(leds.show(s, 0), Ok(()));
    assert_eq!(
        *log.borrow(),
        [(0, true), (1, false), (2, false), (3, true)]
    );
}

#[test]
fn a_bouncing_push_is_one_press_and_a_held_button_no_more() {
    let mut d = Debouncer::new();
    // Bounce on the way down, then held for a while, bounce on release, released.
    let samples = [
        true, false, true, true, true, true, true, false, true, false, false, false,
    ];
    let presses: Vec<usize> = samples
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| d.sample(s).then_some(i))
        .collect();
    assert_eq!(presses, [3]);
    // A second push after the release is a second press.
    assert!(!d.sample(true));
    assert!(d.sample(true));
}

#[test]
fn a_single_glitch_is_no_press() {
    let mut d = Debouncer::new();
    for s in [false, true, false, false, true, false] {
        assert!(!d.sample(s), "glitch taken as a press");
    }
}
