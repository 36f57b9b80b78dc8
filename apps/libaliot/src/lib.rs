//! The app side of the Alibaba-IoT syscall interface.
//!
//! Apps never touch the network, the secrets or another app: they talk to the kernel through
//! [`Aliot`], which turns method calls into postcard [`Request`](aliot_abi::Request) frames and
//! checks that every [`Response`](aliot_abi::Response) fits the request. Like libtock-rs, the
//! library is generic over the syscall backend ([`Syscalls`]): a pipe on the host board, an SVC
//! on Cortex-M, and a scripted fake kernel (module `fake`, feature `fake`) in unit tests.
//!
//! Apps log with the [`log`] crate; the board decides where the records go.
#![no_std]

#[cfg(any(test, feature = "fake"))]
extern crate std;

mod client;
mod error;
mod lossy;
pub mod settings;
pub mod svc;
mod syscalls;
pub mod thing;
pub mod thing_model;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

pub mod manifest;

#[cfg(test)]
mod tests;

pub use aliot_abi as abi;
pub use aliot_abi::{
    DisconnectReason, ErrorCode, Event, LinkStatus, OtaStatus, Qos, Registration,
    RegistrationFailure, TimeSource, WallClock,
};
pub use client::{Aliot, FRAME_BUF_LEN};
pub use error::AppError;
pub use lossy::Lossy;
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub use svc::Svc;
pub use syscalls::Syscalls;

/// The typed API generated from `tests/fixtures/rich_tsl.json` (struct, array and date), for
/// the generator's tests (`thing/tests.rs`).
#[cfg(test)]
#[allow(dead_code)]
mod thing_fixture {
    include!(concat!(env!("OUT_DIR"), "/thing_fixture.rs"));
}
