//! The host board binary, rebuilt in this package for the end-to-end tests.

fn main() -> std::process::ExitCode {
    aliot_host::main()
}
