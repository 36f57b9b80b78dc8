//! The capsule: owns the MQTT session to Alibaba Cloud IoT Platform and every secret, and
//! serves sandboxed apps through the postcard syscall ABI (`aliot-abi`).
//!
//! The logic is sans-IO where it can be ([`auth`], [`topic`], [`backoff`], [`kernel`],
//! [`session`]): pure functions and state machines tested without a network. The async
//! [`runner`] drives them over the board's traits ([`board`]) and one of the two MQTT links
//! ([`link`]); login material comes from a [`credentials`] provider.
//!
//! The kernel allocates every queue once, at boot, sized in bytes by the manifest
//! ([`budget`]); after that it does not allocate. A board provides that heap (on the nRF9160 a
//! fixed arena) and the build prints its worst case.
#![no_std]
// Kernel code must not panic on any input: no unwraps, no indexing that can go out of bounds.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
// A device build without some features (see [`features`]) leaves helpers of the features it
// keeps unused; the full build, the one CI lints, keeps these lints.
#![cfg_attr(
    not(all(
        feature = "mqtt-v311",
        feature = "mqtt-v5",
        feature = "register-mqtt",
        feature = "register-https",
        feature = "ota",
        feature = "platform-time",
        feature = "sign-hmacmd5",
        feature = "sign-hmacsha1",
        feature = "sign-hmacsha256"
    )),
    allow(
        dead_code,
        unused_imports,
        unused_variables,
        unused_macros,
        unused_assignments
    )
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

// First: its macros (`log_info!`, ...) are in scope in every module below.
#[macro_use]
mod logging;
pub use logging::Loggable;
pub mod auth;
pub mod backoff;
pub mod board;
pub mod budget;
pub mod config;
pub mod credentials;
pub mod features;
#[cfg(any(feature = "register-mqtt", feature = "ota", feature = "platform-time"))]
mod flat_json;
pub mod kernel;
pub mod link;
pub mod network_time;
pub mod ota;
pub mod platform_time;
mod quoted;
pub mod registration;
pub mod runner;
pub mod services;
pub mod session;
pub mod store;
#[cfg(test)]
mod test_log;
#[cfg(test)]
mod test_wire;
pub mod topic;
pub mod watch;
