//! The kernel's own services, each a client of the kernel like an app, with grants and a
//! budget of its own ([`Kernel::with_services`](crate::kernel::Kernel::with_services)): OTA
//! ([`crate::ota`], index [`crate::ota::OTA_SERVICE`]) and platform time
//! ([`crate::platform_time`], index [`crate::platform_time::TIME_SERVICE`]). Every board that
//! makes its kernel with [`all`] pays for both in RAM ([`crate::budget::KERNEL_SERVICES`]);
//! the runner drives those it is asked to ([`crate::runner::Runner::with_ota`],
//! [`crate::runner::Runner::with_platform_time`]).

use alloc::boxed::Box;
use alloc::vec;

use crate::config::{AppDef, DeviceConfig};

/// The definitions of every kernel service, in index order. Made once at boot (the strings
/// live as long as the kernel).
pub fn all(config: &DeviceConfig) -> &'static [AppDef] {
    Box::leak(
        vec![
            crate::ota::service_def(config),
            crate::platform_time::service_def(config),
        ]
        .into_boxed_slice(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TEST_CONFIG;

    #[test]
    fn the_indices_name_the_services() {
        let all = all(&TEST_CONFIG);
        assert_eq!(all.len(), crate::budget::KERNEL_SERVICES.len());
        let ota = all.get(crate::ota::OTA_SERVICE).unwrap();
        assert_eq!(ota.name, "ota");
        assert_eq!(ota.budget, crate::ota::SERVICE_BUDGET);
        let time = all.get(crate::platform_time::TIME_SERVICE).unwrap();
        assert_eq!(time.name, "time");
        assert_eq!(time.budget, crate::platform_time::SERVICE_BUDGET);
        assert_eq!(time.publish, ["/ext/ntp/pk/dn/request"]);
        assert_eq!(time.subscribe, ["/ext/ntp/pk/dn/response"]);
    }
}
