//! Without the `platform-time` feature: an agent that cannot exist, so the runner's time turns
//! are compiled away (its `Option<TimeAgent>` is always `None`).

use crate::kernel::Kernel;

/// No platform-time agent: uninhabited.
#[derive(Debug)]
pub enum TimeAgent {}

impl TimeAgent {
    pub fn poll(&mut self, _kernel: &mut Kernel, _now: u64) {
        match *self {}
    }

    pub fn next_deadline(&self) -> Option<u64> {
        match *self {}
    }

    pub fn on_login(&mut self, _kernel: &mut Kernel, _now: u64) {
        match *self {}
    }
}
