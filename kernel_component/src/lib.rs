//! The capsule: owns the MQTT session to Alibaba Cloud IoT Platform and every secret, and
//! serves sandboxed apps through the postcard syscall ABI (`aliot-abi`).
//!
//! The logic is sans-IO where it can be ([`auth`], [`topic`], [`backoff`], [`kernel`]): pure
//! functions and state machines tested without a network. The async [`runner`] drives them
//! over the board's traits ([`board`]) and one of the two MQTT links ([`link`]).
//!
//! The kernel uses `alloc` with explicit caps on every queue (see [`kernel::Limits`]): a board
//! provides a bounded heap (on the nRF9160 a fixed arena).
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod auth;
pub mod backoff;
pub mod board;
pub mod budget;
pub mod config;
pub mod kernel;
pub mod link;
pub mod runner;
pub mod topic;
