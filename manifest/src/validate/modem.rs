//! `[modem]`: the nRF9160 modem's security tag, the slot of the modem's credential store
//! where provisioning put the CA certificate (`AT%CMNG`). The modem's TLS verifies the
//! platform against it, so a wrong tag means no login at all: it is checked here, not on the
//! chip.

use super::{DEFAULT_MODEM_SECURITY_TAG, MAX_MODEM_SECURITY_TAG, Result, err};
use crate::model::{Edrx, Modem, Psm};
use crate::power::{
    Centis, T3324_ALLOWED, T3412_ALLOWED, edrx_allowed, edrx_lte_m, parse_duration, t3324,
    t3412_ext,
};
use crate::raw::RawModem;

/// The form every duration is written in.
const DURATION_FORM: &str = "a number (at most two decimals) and a unit, s, m or h, without spaces, e.g. \"10s\", \"1.5m\", \"1h\"";

/// Reads `text` at `field` and encodes it with `encode`; the errors name the field, the value
/// and what is allowed.
fn timer(
    text: &str,
    field: &str,
    encode: fn(Centis) -> Option<u8>,
    allowed: &str,
) -> Result<(Centis, u8)> {
    let Some(d) = parse_duration(text) else {
        return err(
            field,
            format!("{text:?} is not a duration; allowed: {DURATION_FORM}; {allowed}"),
        );
    };
    match encode(d) {
        Some(bits) => Ok((d, bits)),
        None => err(
            field,
            format!("{text:?} ({d}) cannot be requested; allowed: {allowed}"),
        ),
    }
}

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
    let psm = match &raw.psm {
        None => None,
        Some(p) => {
            let (tau, tau_bits) = timer(&p.tau, "modem.psm.tau", t3412_ext, T3412_ALLOWED)?;
            let (active, active_bits) = timer(&p.active, "modem.psm.active", t3324, T3324_ALLOWED)?;
            Some(Psm {
                tau_secs: tau.0 / 100,
                tau_bits,
                active_secs: active.0 / 100,
                active_bits,
            })
        }
    };
    let edrx = match &raw.edrx {
        None => None,
        Some(text) => {
            let (cycle, bits) = timer(text, "modem.edrx", edrx_lte_m, &edrx_allowed())?;
            Some(Edrx {
                centis: cycle.0,
                bits,
            })
        }
    };
    Ok(Modem {
        security_tag,
        psm,
        edrx,
    })
}
