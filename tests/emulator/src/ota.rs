//! OTA jobs (UNFINISHED: filled in by a later step).

use crate::state::{Inner, Uplink};

/// OTA jobs and firmware files.
#[derive(Default)]
pub(crate) struct OtaState {}

/// Upgrade pushes waiting for the device's next login.
pub(crate) fn pending_pushes(_g: &mut Inner, _pk: &str, _dn: &str) -> Vec<(String, Vec<u8>)> {
    Vec::new()
}

/// Reactions of the OTA service to an accepted uplink.
pub(crate) fn on_uplink(
    _g: &mut Inner,
    _pk: &str,
    _dn: &str,
    _up: &Uplink,
) -> Vec<(String, Vec<u8>)> {
    Vec::new()
}
