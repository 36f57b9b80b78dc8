//! The capsule: owns the MQTT session to Alibaba Cloud IoT Platform and every secret, and
//! serves sandboxed apps through the postcard syscall ABI (`aliot-abi`).
#![no_std]

pub mod config;
