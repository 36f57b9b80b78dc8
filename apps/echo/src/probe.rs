//! The start-up ACL probe: makes the kernel's isolation visible from the cloud side.

use aliot_app::manifest::topics;
use aliot_app::{Aliot, AppError, Qos, Syscalls};
use core::fmt::Write;
use log::{error, info};

/// What the probe publishes to the forbidden topic (it should never get there).
pub const PROBE_PAYLOAD: &[u8] = b"acl-probe";

/// Room for `acl:` and the longest `ErrorCode` name.
const REPORT_CAPACITY: usize = 48;

/// Publishes to `get` (not granted to this app) and reports the answer as `acl:<answer>` to
/// `update_error`: `acl:NotPermitted` when isolation works, `acl:Accepted` when it does not.
pub fn report_acl<S: Syscalls>(app: &mut Aliot<S>) -> Result<(), AppError<S::Error>> {
    let mut report: heapless::String<REPORT_CAPACITY> = heapless::String::new();
    // Cannot fail: every answer's name fits REPORT_CAPACITY.
    let _ = match app.publish(topics::GET, PROBE_PAYLOAD, Qos::AtLeastOnce) {
        Err(AppError::Kernel(code)) => {
            info!("echo: ACL probe refused as expected: {code:?}");
            write!(report, "acl:{code:?}")
        }
        Ok(_) => {
            error!(
                "echo: the kernel accepted a publish to {}, which is not granted",
                topics::GET
            );
            write!(report, "acl:Accepted")
        }
        Err(other) => return Err(other),
    };
    // The report is a diagnostic: if the kernel refuses it, say so in the log and go on echoing.
    match app.publish(topics::UPDATE_ERROR, report.as_bytes(), Qos::AtLeastOnce) {
        Ok(_) => Ok(()),
        Err(AppError::Kernel(code)) => {
            error!("echo: could not report {report}: {code:?}");
            Ok(())
        }
        Err(other) => Err(other),
    }
}
