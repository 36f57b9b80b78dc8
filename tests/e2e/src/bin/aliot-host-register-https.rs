//! The host board with the test manifest `manifests/register_https.toml` (一型一密), for the
//! registration tests.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/register_https_config.rs"));
}

fn main() -> std::process::ExitCode {
    aliot_host::main_with(&generated::DEVICE)
}
