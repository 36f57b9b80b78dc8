//! The kernel's [`AppPort`] on this board. No app runs here yet: the ARMv8-M process runtime
//! (MPU regions, unprivileged apps on PSP, SVC syscalls) is being moved into
//! `boards/cortex-m33` so that the QEMU board and this one share it. Until it lands, the port
//! has no apps: `recv` pends forever, so the kernel runs its session alone.

use aliot_kernel::board::{AppInput, AppPort};
use aliot_kernel::kernel::AppId;

/// An app port without apps.
pub struct NoApps;

impl AppPort for NoApps {
    async fn recv(&mut self) -> AppInput {
        // ==== START THE APPS HERE ====
        // When boards/cortex-m33 exports the shared MPU port (today `LivePort` in
        // boards/qemu-an505/src/live.rs), replace `NoApps` with it: build each app's
        // `App` from the manifest's image layout (a `CortexM33Board` for the nRF9160 in
        // aliot-manifest, apps inside [flash.active] so an OTA image carries them), start
        // them through the runtime and return their syscalls and exits from here.
        core::future::pending().await
    }

    fn buffer(&mut self, _app: AppId) -> Option<&mut [u8]> {
        None
    }

    fn respond(&mut self, _app: AppId, _len: usize) {}
}
