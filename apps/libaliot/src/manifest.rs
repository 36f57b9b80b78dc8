//! Constants generated from the device manifest at build time, so apps name topics and read
//! their settings without knowing the ProductKey or DeviceName.
//!
//! `build.rs` asks `aliot-manifest` for them (`$ALIOT_MANIFEST`, else the workspace's
//! `manifest/device.toml`). Examples: `manifest::topics::UPDATE`,
//! `manifest::apps::publish_test::SETTINGS`. The generator documents every item it emits.

include!(concat!(env!("OUT_DIR"), "/manifest_constants.rs"));
