//! OTA on the host board: the boot stage's slots on the flash file (`aliot-boot` over the
//! manifest's `[flash]` layout), the download task beside the runner, and the reboot it asks
//! for.
//!
//! The flash file is opened once and shared (one `FileFlash` behind a mutex) by the
//! credentials store and the slots, so a simulated power cut (`--cut-power-at-flash-op`)
//! counts every erase and write of the firmware, whichever part makes it.

use std::cell::RefCell;

use aliot_boot::stage::{BootStage, Partition, partitions_from_config};
use aliot_kernel::config::DeviceConfig;
use aliot_kernel::ota::updates::BootKind;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::ReadNorFlash;

use crate::flash::{FileFlash, PAGE_SIZE};

/// The flash file, shared by everything that writes it.
pub type SharedFlash = Mutex<NoopRawMutex, RefCell<FileFlash>>;

/// The boot stage's view of the flash file (work buffer: one page).
pub type HostStage = BootStage<
    Partition<'static, FileFlash>,
    Partition<'static, FileFlash>,
    Partition<'static, FileFlash>,
    PAGE_SIZE,
>;

/// Exit status by which the firmware asks the supervisor for a reboot (`EX_TEMPFAIL`).
pub const REBOOT_EXIT_CODE: u8 = 75;

/// Bytes of flash the manifest's layout covers: the end of its last partition.
pub fn layout_end(config: &DeviceConfig) -> u32 {
    let o = &config.ota;
    [
        o.bootloader,
        o.active,
        o.update,
        o.boot_state,
        config.credentials_partition,
    ]
    .iter()
    .map(|p| p.offset.saturating_add(p.size))
    .max()
    .unwrap_or(0)
}

/// Shares `flash` for the rest of the run.
pub fn share(flash: FileFlash) -> &'static SharedFlash {
    Box::leak(Box::new(Mutex::new(RefCell::new(flash))))
}

/// The whole flash as one partition (the credentials store addresses it absolutely).
pub fn whole(flash: &'static SharedFlash) -> Partition<'static, FileFlash> {
    let len = flash.lock(|f| f.borrow().capacity()) as u32;
    Partition::new(flash, 0, len)
}

/// The boot stage over the manifest's slots.
pub fn stage(config: &DeviceConfig, flash: &'static SharedFlash) -> Result<HostStage, String> {
    let len = flash.lock(|f| f.borrow().capacity()) as u32;
    let (active, update, state) = partitions_from_config(flash, len, &config.ota)
        .map_err(|e| format!("the manifest's flash layout: {e:?}"))?;
    BootStage::new(active, update, state)
        .map_err(|e| format!("the manifest's flash layout does not suit the boot stage: {e:?}"))
}

/// How the supervisor booted this image ([`crate::supervisor::HostBoot`] from the
/// environment); `Normal` when run directly.
pub fn boot_kind() -> BootKind {
    use crate::supervisor::HostBoot;
    match HostBoot::from_env() {
        Some(HostBoot::Trial) => BootKind::Trial,
        Some(HostBoot::Reverted) => BootKind::Reverted,
        Some(HostBoot::RefusedUpdate) => BootKind::RefusedUpdate,
        Some(HostBoot::Normal) | None => BootKind::Normal,
    }
}

#[cfg(test)]
mod tests {
    use aliot_kernel::ota::download::Sink;
    use aliot_kernel::ota::slot::UpdateSlot;

    use super::*;

    fn at_once<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("waited"),
        }
    }

    #[test]
    fn an_image_streamed_into_the_file_flash_marks() {
        let dir = tempfile::tempdir().unwrap();
        let config = &crate::generated::DEVICE;
        let pages = (layout_end(config) as usize).div_ceil(PAGE_SIZE);
        let flash = share(FileFlash::open(&dir.path().join("flash.bin"), pages).unwrap());
        let mut stage = stage(config, flash).unwrap();
        let payload: Vec<u8> = (0..200_000).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut img = aliot_boot::image::ImageHeader::new("2.0.0", &payload)
            .unwrap()
            .to_bytes()
            .to_vec();
        img.extend_from_slice(&payload);
        let mut w = UpdateSlot::writer(&mut stage, img.len() as u32).unwrap();
        let mut at = 0;
        for n in [1_400usize, 2_048, 613, 2_048].iter().cycle() {
            if at == img.len() {
                break;
            }
            let n = (*n).min(img.len() - at);
            at_once(w.write(at as u32, &img[at..at + n])).unwrap();
            at += n;
        }
        let mut back = vec![0u8; img.len()];
        flash
            .lock(|f| {
                embedded_storage::nor_flash::ReadNorFlash::read(
                    &mut *f.borrow_mut(),
                    config.ota.update.offset,
                    &mut back,
                )
            })
            .unwrap();
        let first_difference = back.iter().zip(&img).position(|(a, b)| a != b);
        assert_eq!(
            first_difference, None,
            "the slot holds the image byte for byte"
        );
        assert_eq!(
            UpdateSlot::mark_updated(&mut stage).map(|v| v.to_string()),
            Ok("2.0.0".to_string()),
            "the boot stage verifies and marks it"
        );
    }
}
