//! Makes the nRF9160 DK's provisioning files (the credentials partition, the modem's CA
//! command): see `aliot_host::provision`.

fn main() -> std::process::ExitCode {
    aliot_host::provision::main()
}
