//! The DK's LED1-LED4 and Button 1, through `embedded-hal` 1.0 pins (embassy-nrf's `Output`
//! and `Input` implement them); the patterns, the pin writes and the debouncing are
//! `aliot-status-leds` (tested on the host). What the LEDs mean is documented at
//! `aliot_status_leds::pattern`: LED1 the link (fast blink attaching, one flash per 2 s offline,
//! on connected), LED2 the update (1 Hz downloading, on awaiting confirm or reboot), LED3 a
//! button press taken, LED4 a heartbeat.
//!
//! **Button 1 forces a reconnect**: the open MQTT connection is cut at once ([`cut_requested`]
//! ends its socket's pending read; the kernel sees the link go down and logs in again after its
//! first backoff step, with its QoS 1 messages resent and its subscriptions restored). Why this
//! and not "confirm a pending update": a new image confirms itself after its first login, and
//! that rule is what brings a bad image back (it cannot log in, so it is reverted); a button
//! that confirmed it by hand would keep an image that never reached the cloud. A forced
//! reconnect is useful on a desk: over cellular a dead connection can go unnoticed for up to
//! one and a half keep-alives (the modem sees no reset), and after moving the DK, changing the
//! SIM or resetting the device in the console one press tries again now.
//!
//! Sampling: one 50 ms tick samples the button and advances the blink, so the task costs 20
//! wake-ups a second; no GPIOTE channel is used. UNTESTED ON HARDWARE.

use core::sync::atomic::{AtomicBool, Ordering};

use aliot_kernel::watch::{LinkWatch, OtaPhase};
use aliot_status_leds::{ActiveLevel, Debouncer, Link, Ota, PHASE_MS, PHASES, Status, StatusLeds};
use embassy_nrf::gpio::{Input, Output};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Ticker};
use embedded_hal::digital::{InputPin, OutputPin};

/// The kernel's link and update state, kept current by the kernel (`Kernel::set_watch`).
pub static LINK: LinkWatch = LinkWatch::new();
/// The modem is attaching to LTE (set at boot, cleared by `main` once attached).
static ATTACHING: AtomicBool = AtomicBool::new(true);
/// The running image is on trial, waiting for its confirmation (`ota::run` sets it when the
/// boot stage swapped it in, its slot wrapper clears it on confirm).
static AWAITING_CONFIRM: AtomicBool = AtomicBool::new(false);
/// Button 1 asked for the connection to be cut.
static CUT: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Sample period of the button and of the LED task's tick.
const TICK_MS: u64 = 50;
/// LED3 stays lit this many ticks after a press was taken (one blink cycle).
const TAKEN_TICKS: u32 = (PHASES as u64 * PHASE_MS / TICK_MS) as u32;

/// The modem attaches (`true`) or is attached (`false`).
pub fn set_attaching(attaching: bool) {
    ATTACHING.store(attaching, Ordering::Relaxed);
}

/// The running image waits for its confirmation (`true`) or not: set by `ota::run` on a trial
/// boot, cleared when the slot confirms the image. Without the `ota` feature nothing calls it.
#[cfg_attr(not(feature = "ota"), allow(dead_code))]
pub fn set_awaiting_confirm(waiting: bool) {
    AWAITING_CONFIRM.store(waiting, Ordering::Relaxed);
}

/// Completes when Button 1 asks for the open connection to be cut (net.rs races each socket
/// read against it).
pub async fn cut_requested() {
    CUT.wait().await
}

/// A new connection starts: a press made while there was none is not held against it.
pub fn forget_cut() {
    CUT.reset();
}

/// What the LEDs show now.
fn status(taken: bool) -> Status {
    let link = if ATTACHING.load(Ordering::Relaxed) {
        Link::Attaching
    } else if LINK.connected() {
        Link::Connected
    } else {
        Link::Offline
    };
    let ota = if AWAITING_CONFIRM.load(Ordering::Relaxed) {
        Ota::AwaitingConfirm
    } else {
        match LINK.ota() {
            OtaPhase::Idle => Ota::Idle,
            OtaPhase::Downloading => Ota::Downloading,
            OtaPhase::PendingReboot => Ota::AwaitingConfirm,
        }
    };
    Status {
        link,
        ota,
        button_taken: taken,
    }
}

/// The LED and button task: LED1-LED4 on P0.02-P0.05 (active high), Button 1 on P0.06 (active
/// low, pulled up).
#[embassy_executor::task]
pub async fn run(leds: [Output<'static>; 4], button: Input<'static>) {
    drive(leds, button).await
}

/// The task's body, over any `embedded-hal` pins.
async fn drive<P: OutputPin, B: InputPin>(leds: [P; 4], mut button: B) -> ! {
    let mut leds = StatusLeds::new(leds, ActiveLevel::High);
    let mut debouncer = Debouncer::new();
    let mut ticker = Ticker::every(Duration::from_millis(TICK_MS));
    let mut tick: u32 = 0;
    let mut taken_until: Option<u32> = None;
    loop {
        ticker.next().await;
        tick = tick.wrapping_add(1);
        // A pin that cannot be read reads released.
        if debouncer.sample(button.is_low().unwrap_or(false)) {
            defmt::info!("button 1: cutting the connection to log in again");
            CUT.signal(());
            taken_until = Some(tick.wrapping_add(TAKEN_TICKS));
        }
        let taken = taken_until.is_some_and(|t| t.wrapping_sub(tick) <= TAKEN_TICKS);
        if !taken {
            taken_until = None;
        }
        let phase = ((u64::from(tick) * TICK_MS / PHASE_MS) % u64::from(PHASES)) as u8;
        // embassy-nrf's pins cannot fail; another board's could, and is retried next tick.
        let _ = leds.show(status(taken), phase);
    }
}
