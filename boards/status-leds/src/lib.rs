//! A board's link and update state on four LEDs, and a debounced push button, over
//! `embedded-hal` 1.0 pins, so the logic is the same on every board and tested on the host.
//!
//! - [`pattern`] is pure: which LED is lit for a [`Status`] at a given phase of the blink cycle.
//! - [`StatusLeds`] writes a pattern to four [`OutputPin`]s (active high or low), touching a pin
//!   only when its state changes.
//! - [`Debouncer`] turns raw samples of a button into one press per push.
//!
//! The nRF9160 DK uses it with LED1-LED4 (P0.02-P0.05, active high) and Button 1 (P0.06,
//! active low); see `boards/nrf9160dk/src/status.rs`.
#![no_std]

use embedded_hal::digital::{OutputPin, PinState};

/// Phases in one blink cycle; the board advances the phase at [`PHASE_MS`].
pub const PHASES: u8 = 8;
/// One phase's length: a cycle of [`PHASES`] lasts 2 s.
pub const PHASE_MS: u64 = 250;

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The modem is attaching to the LTE network (nothing can be sent yet).
    Attaching,
    /// Attached, no MQTT session: connecting, logging in, or waiting to retry.
    Offline,
    /// The MQTT session is up.
    Connected,
}

/// Where a firmware update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ota {
    /// Nothing in progress.
    Idle,
    /// Downloading (or checking) an image.
    Downloading,
    /// A new image waits: for the reboot that swaps it in, or, running on trial, for its
    /// confirmation after the first login.
    AwaitingConfirm,
}

/// What the LEDs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The connection.
    pub link: Link,
    /// The update.
    pub ota: Ota,
    /// The button's last press was taken (lit for one cycle after it).
    pub button_taken: bool,
}

/// The four LEDs' states (`true`: lit) for `status` at `phase` (0..[`PHASES`], wrapping):
///
/// | LED | shows | off | blinking | on |
/// |---|---|---|---|---|
/// | 1 | link | — | fast (2 Hz): attaching; one short flash per 2 s: offline | connected |
/// | 2 | update | idle | 1 Hz: downloading | awaiting confirm (or reboot) |
/// | 3 | button | — | — | for the cycle after a press was taken |
/// | 4 | heartbeat | — | 0.5 Hz, always: the kernel's loop runs | — |
///
/// A dark LED1 never means "connected" and a lit one never means "offline", so a glance tells
/// whether the device is online; LED4 tells that the firmware runs at all.
pub fn pattern(status: Status, phase: u8) -> [bool; 4] {
    let phase = phase % PHASES;
    let link = match status.link {
        Link::Attaching => phase.is_multiple_of(2),
        Link::Offline => phase == 0,
        Link::Connected => true,
    };
    let ota = match status.ota {
        Ota::Idle => false,
        Ota::Downloading => phase % 4 < 2,
        Ota::AwaitingConfirm => true,
    };
    [link, ota, status.button_taken, phase < PHASES / 2]
}

/// Whether an LED is lit by driving its pin high or low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveLevel {
    /// Lit when the pin is high (the nRF9160 DK's LEDs).
    High,
    /// Lit when the pin is low (LEDs wired to the supply).
    Low,
}

/// Four LEDs showing a [`Status`].
pub struct StatusLeds<P> {
    pins: [P; 4],
    level: ActiveLevel,
    /// What each pin was last set to; `None` before the first write.
    shown: [Option<bool>; 4],
}

impl<P: OutputPin> StatusLeds<P> {
    /// LEDs on `pins` (LED1 first), lit at `level`. Nothing is written until [`Self::show`].
    pub fn new(pins: [P; 4], level: ActiveLevel) -> Self {
        Self {
            pins,
            level,
            shown: [None; 4],
        }
    }

    /// Show `status` at `phase`: write each pin whose state changes (every pin the first
    /// time). Stops at the first pin that fails and returns its error; the next call writes it
    /// again.
    pub fn show(&mut self, status: Status, phase: u8) -> Result<(), P::Error> {
        let lit = pattern(status, phase);
        for ((pin, shown), on) in self.pins.iter_mut().zip(&mut self.shown).zip(lit) {
            if *shown == Some(on) {
                continue;
            }
            let high = on == (self.level == ActiveLevel::High);
            pin.set_state(PinState::from(high))?;
            *shown = Some(on);
        }
        Ok(())
    }

    /// The pins back (LED1 first).
    pub fn release(self) -> [P; 4] {
        self.pins
    }
}

/// One press per push of a bouncing button: a press is reported once the button has read
/// pressed for [`Debouncer::STABLE`] samples in a row after reading released for as many, so
/// contact bounce and a held button give exactly one press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debouncer {
    /// The debounced state: `true` pressed.
    pressed: bool,
    /// Samples in a row that disagree with `pressed`.
    run: u8,
}

impl Debouncer {
    /// Samples in a row a new state must hold (at a 50 ms sample period: 100 ms).
    pub const STABLE: u8 = 2;

    /// Released.
    pub const fn new() -> Self {
        Self {
            pressed: false,
            run: 0,
        }
    }

    /// Feed one sample (`true`: the button reads pressed); `true` when this sample completes a
    /// press.
    pub fn sample(&mut self, pressed: bool) -> bool {
        if pressed == self.pressed {
            self.run = 0;
            return false;
        }
        self.run = self.run.saturating_add(1);
        if self.run < Self::STABLE {
            return false;
        }
        self.pressed = pressed;
        self.run = 0;
        pressed
    }
}

impl Default for Debouncer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
