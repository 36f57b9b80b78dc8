//! A QEMU-board app written against `aliot-app`, as any app is: [`aliot_app::Aliot`] over the
//! SVC backend ([`aliot_app::Svc`]). It runs in slot 0 (`publish_test` in the default manifest)
//! and checks the kernel's answers: `Hello` is welcomed as slot 0, `Subscribe` to its granted
//! `get` is accepted, `Subscribe` to `ceshi` is refused `NotPermitted`, a QoS 1 `Publish` to
//! its `update` is accepted (queued: the board has no network), `Status` shows the board
//! offline with that one publish pending, and `WaitEvent` finds no event. It exits 0 (`svc 1`)
//! only if all of that held, else with the [`exit`] code of the first thing that did not.
#![no_std]
#![no_main]

use aliot_app::manifest::topics;
use aliot_app::{Aliot, AppError, ErrorCode, Qos, Svc};
use aliot_cortex_m33::header::{HEADER_LEN, MAGIC};

/// Exit codes (the board checks for [`exit::OK`]).
pub mod exit {
    /// Every answer was as expected.
    pub const OK: u32 = 0;
    /// `Hello` failed or the slot is not 0.
    pub const BAD_WELCOME: u32 = 1;
    /// `Subscribe` to `get` was not accepted.
    pub const BAD_SUBSCRIBE: u32 = 2;
    /// `Subscribe` to `ceshi` was not refused `NotPermitted`.
    pub const ACL_NOT_ENFORCED: u32 = 3;
    /// The QoS 1 `Publish` to `update` was not accepted.
    pub const BAD_PUBLISH: u32 = 4;
    /// `Status` was not offline with one publish pending.
    pub const BAD_STATUS: u32 = 5;
    /// `WaitEvent` did not answer "no event".
    pub const BAD_WAIT: u32 = 6;
    /// Live phase (entry argument 1): `publish_test` ended with an error.
    pub const LIVE_FAILED: u32 = 7;
    /// The app panicked.
    pub const PANICKED: u32 = 99;
}

/// This image's place in the manifest: `APP_NAME`, `APP_ID`, `STACK_SIZE`, `RAM_SIZE` (its
/// RAM is the manifest's `memory`; the stack is all of it but the statics' reserve).
#[allow(
    dead_code,
    reason = "APP_NAME is for apps that name themselves; this one checks its id"
)]
mod image {
    include!(concat!(env!("OUT_DIR"), "/app_image.rs"));
}

/// The app header (see `aliot_cortex_m33::header`), first in this app's flash.
#[repr(C)]
pub struct RawHeader {
    magic: u32,
    abi_major: u16,
    abi_minor: u16,
    entry: extern "C" fn(u32) -> !,
    stack_size: u32,
    ram_size: u32,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_LEN);

#[used]
#[unsafe(link_section = ".app_header")]
static HEADER: RawHeader = RawHeader {
    magic: MAGIC,
    abi_major: aliot_app::abi::ABI_MAJOR,
    abi_minor: aliot_app::abi::ABI_MINOR,
    entry: publisher_entry,
    // Aliot's frame buffer (about 4.4 KiB) and the calls under it live on the stack;
    // `publish_test::run`'s frame alone is about 9 KiB (its Aliot, its pending-results table
    // and a payload buffer), and `Aliot::new` builds its 4.4 KiB value before moving it: the
    // manifest's `memory` for publish_test leaves room for that.
    stack_size: image::STACK_SIZE,
    ram_size: image::RAM_SIZE,
};

/// What the app does; returns its exit code.
#[inline(never)]
fn run() -> u32 {
    let Ok(mut app) = Aliot::new(Svc::new()) else {
        return exit::BAD_WELCOME;
    };
    if app.app_id() != image::APP_ID {
        return exit::BAD_WELCOME;
    }
    if app.subscribe(topics::GET, Qos::AtLeastOnce).is_err() {
        return exit::BAD_SUBSCRIBE;
    }
    if app.subscribe(topics::CESHI, Qos::AtLeastOnce)
        != Err(AppError::Kernel(ErrorCode::NotPermitted))
    {
        return exit::ACL_NOT_ENFORCED;
    }
    if app
        .publish(
            topics::UPDATE,
            b"{\"hello\":\"aliot-app\"}",
            Qos::AtLeastOnce,
        )
        .is_err()
    {
        return exit::BAD_PUBLISH;
    }
    match app.status() {
        Ok(s) if !s.connected && s.pending_publishes == 1 => {}
        _ => return exit::BAD_STATUS,
    }
    match app.next_event(0) {
        Ok(None) => exit::OK,
        _ => exit::BAD_WAIT,
    }
}

/// The entry argument of the live phase (the board's `live::PUBLISHER_LIVE`).
const LIVE: u32 = 1;

/// `publish_test`'s settings in the live phase: 10 numbered QoS 1 publishes, 300 ms apart
/// (the manifest's 20 s would make the run long; the board checks all 10 reach the cloud).
const LIVE_SETTINGS: &[(&str, &str)] = &[
    ("interval_ms", "300"),
    ("count", "10"),
    ("payload", "qemu publishTest_{n}"),
];

/// The entry argument of a device's own run (the nRF9160 DK's): `publish_test` with the
/// manifest's settings for it (`[[apps]] settings`), as the host board runs it.
const MANIFEST: u32 = 2;

/// The seed's demo app itself, unchanged: `publish_test::run` over the SVC backend. Not
/// inlined, so its frame and the offline checks' are never on the stack together.
#[inline(never)]
fn run_live(settings: &[(&str, &str)]) -> u32 {
    let Ok(mut app) = Aliot::new(Svc::new()) else {
        return exit::BAD_WELCOME;
    };
    match publish_test::run(&mut app, settings) {
        Ok(()) => exit::OK,
        Err(_) => exit::LIVE_FAILED,
    }
}

/// The entry the header names; the runtime starts it on this app's stack, unprivileged.
/// Argument 0: the offline checks; [`LIVE`]: `publish_test` against the live session with the
/// QEMU run's settings; [`MANIFEST`]: `publish_test` with the manifest's settings.
#[unsafe(no_mangle)]
pub extern "C" fn publisher_entry(argument: u32) -> ! {
    aliot_app::svc::exit(match argument {
        LIVE => run_live(LIVE_SETTINGS),
        MANIFEST => run_live(aliot_app::manifest::apps::publish_test::SETTINGS),
        _ => run(),
    })
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    aliot_app::svc::exit(exit::PANICKED)
}
