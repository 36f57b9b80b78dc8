//! `[modem]`: the nRF9160 modem's security tag, the slot of the modem's credential store
//! where provisioning put the CA certificate (`AT%CMNG`). The modem's TLS verifies the
//! platform against it, so a wrong tag means no login at all: it is checked here, not on the
//! chip.

use super::{DEFAULT_MODEM_SECURITY_TAG, MAX_MODEM_SECURITY_TAG, Result, err};
use crate::model::Modem;
use crate::raw::RawModem;

pub(super) fn modem(raw: &RawModem) -> Result<Modem> {
    let security_tag = match raw.security_tag {
        None => DEFAULT_MODEM_SECURITY_TAG,
        Some(v) => match u32::try_from(v) {
            Ok(tag) if tag <= MAX_MODEM_SECURITY_TAG => tag,
            _ => {
                return err(
                    "modem.security_tag",
                    format!(
                        "{v} is not allowed; allowed: 0..={MAX_MODEM_SECURITY_TAG} (higher tags are reserved by the modem); default {DEFAULT_MODEM_SECURITY_TAG}"
                    ),
                );
            }
        },
    };
    Ok(Modem { security_tag })
}
