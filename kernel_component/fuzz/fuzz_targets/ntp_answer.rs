//! The platform's NTP answers (`/ext/ntp/${pk}/${dn}/response`) into the kernel's time service
//! (`platform_time::TimeAgent`), on arbitrary bytes, through the kernel's routing as on the
//! wire.
//!
//! Input: four bytes of round trip (little-endian milliseconds), then the payload. Checked: no
//! panic; a time is taken only from the platform, plausible (after 2000), with half the round
//! trip as its accuracy; the service keeps running (it has a next deadline either way).

#![no_main]

use std::sync::OnceLock;

use aliot_abi::{Qos, TimeSource};
use aliot_kernel::config::AppDef;
use aliot_kernel::kernel::Kernel;
use aliot_kernel::platform_time::{TIME_SERVICE, TimeAgent, TimeOptions};
use aliot_kernel_fuzz::DEVICE;
use libfuzzer_sys::fuzz_target;

static CONFIG: aliot_kernel::config::DeviceConfig = DEVICE;

/// The request's `deviceSendTime` (the seeds answer it).
const SENT_MS: u64 = 1_000;

fuzz_target!(|data: &[u8]| {
    let Some((head, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let round_trip = u64::from(u32::from_le_bytes(*head));
    // Made once, as at boot (the definitions are leaked to live as long as the kernel).
    static SERVICES: OnceLock<&'static [AppDef]> = OnceLock::new();
    let services = *SERVICES.get_or_init(|| aliot_kernel::services::all(&CONFIG));
    let mut kernel = Kernel::with_services(&CONFIG, services);
    let def = kernel.service_def(TIME_SERVICE).expect("the time service");
    let response = def.subscribe[0];
    let mut agent = TimeAgent::new(def, TIME_SERVICE, TimeOptions::default()).expect("its topics");
    kernel.on_connected();
    agent.on_login(&mut kernel, SENT_MS);
    agent.poll(&mut kernel, SENT_MS);
    kernel.on_publish(response, payload, Qos::AtMostOnce);
    let now = SENT_MS + round_trip;
    agent.poll(&mut kernel, now);
    if let Some(t) = kernel.wall_time(now) {
        assert_eq!(t.source, TimeSource::Platform);
        assert!(t.unix_ms >= 946_684_800_000, "{t:?}");
        assert_eq!(u64::from(t.accuracy_ms), round_trip / 2 + 1);
    }
    assert!(agent.next_deadline().is_some());
});
