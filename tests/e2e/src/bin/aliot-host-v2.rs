//! The host board with the test manifest `manifests/v2.toml` (the default device as firmware
//! version 2.0.0), the new image of the OTA tests.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/v2_config.rs"));
}

fn main() -> std::process::ExitCode {
    aliot_host::main_with(&generated::DEVICE)
}
