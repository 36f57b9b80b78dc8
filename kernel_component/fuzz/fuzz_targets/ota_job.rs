//! The OTA job JSON (`ota::job::parse` on the push to `/ota/device/upgrade/...` and the
//! `firmware/get` answer, and `announced_module` on a refused one) on arbitrary bytes.
//!
//! Input: one byte choosing the device's module (`default` or `mcu`) and its slot size, then
//! the payload. Checked: no panic; a job taken is for the device's module, no larger than the
//! slot, and has a non-empty URL and version; a refusal's `desc` displays without the URL.

#![no_main]

use aliot_kernel::ota::job::{Digest, JobError, announced_module, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let module = if mode & 1 == 0 { "default" } else { "mcu" };
    let slot: u32 = match mode >> 1 & 3 {
        0 => 0x7A000,
        1 => 0,
        2 => 1024,
        _ => u32::MAX,
    };
    let _ = announced_module(payload);
    match parse(payload, module, slot) {
        Ok(Some(job)) => {
            assert_eq!(job.module, module);
            assert!(job.size <= slot);
            assert!(!job.url.is_empty() && !job.version.is_empty());
            match job.digest {
                Digest::Md5(_) | Digest::Sha256(_) => {}
            }
        }
        Ok(None) => {}
        Err(e) => {
            assert_eq!(e.step(), -1);
            let desc = e.desc();
            if let JobError::TooLarge { size, .. } = e {
                assert!(size > u64::from(slot));
            }
            assert!(!desc.contains("http"));
        }
    }
});
