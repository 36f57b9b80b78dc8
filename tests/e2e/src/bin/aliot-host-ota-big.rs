//! The host board with the test manifest `manifests/ota_big.toml` (the default device on a
//! 4 MiB flash), for the OTA benchmark's 1 MiB update.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/ota_big_config.rs"));
}

fn main() -> std::process::ExitCode {
    aliot_host::main_with(&generated::DEVICE)
}
