//! The host board with the test manifest `manifests/ota_small.toml` (small A/B slots), for
//! the boot tests.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/ota_small_config.rs"));
}

fn main() -> std::process::ExitCode {
    aliot_host::main_with(&generated::DEVICE)
}
