//! Runs the QEMU `mps2-an505` board against the built-in emulator, its network over the UART
//! bridge: see `aliot_host::qemu`.

fn main() -> std::process::ExitCode {
    aliot_host::qemu::main()
}
