//! `cargo run -p aliot-host`: see the library for what the board does.

fn main() -> std::process::ExitCode {
    aliot_host::main()
}
