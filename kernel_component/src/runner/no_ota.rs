//! Without the `ota` feature: an agent that cannot exist, so the runner's OTA turns are
//! compiled away (its `Option<OtaAgent>` is always `None`).

use crate::kernel::Kernel;

/// No OTA agent: uninhabited.
pub enum OtaAgent {}

/// No download task to hear from: uninhabited.
pub enum NoUpdates {}

impl NoUpdates {
    pub async fn news(&self) {
        match *self {}
    }
}

impl OtaAgent {
    pub fn updates(&self) -> &'static NoUpdates {
        match *self {}
    }

    pub fn poll(&mut self, _kernel: &mut Kernel, _now: u64) {
        match *self {}
    }

    pub fn reboot_due(&mut self, _kernel: &Kernel, _now: u64) -> bool {
        match *self {}
    }

    pub fn next_deadline(&self) -> Option<u64> {
        match *self {}
    }

    pub fn on_login(&mut self, _kernel: &mut Kernel) {
        match *self {}
    }
}
