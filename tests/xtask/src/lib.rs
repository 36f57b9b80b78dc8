//! `cargo xtask bench`: every benchmark figure of issue 12 beside a baseline measured in the
//! same run, in one table. The measurements are library functions (one module a row), the
//! binary only orders them and prints; pure parts (the table, the MQTT minimum, the parsers of
//! callgrind's and aliot-image's outputs) have unit tests. Timing never decides a test: the
//! `--quick` run only checks that every row was measured.

pub mod baseline;
pub mod callgrind;
pub mod capsule;
pub mod mqtt;
pub mod ota;
pub mod proxy;
pub mod ready;
pub mod size;
pub mod syscall;
pub mod table;
pub mod throughput;
pub mod wire;
