//! The nRF9160 DK firmware: the aliot kernel (`aliot_kernel::runner::Runner`, the same capsule
//! as on the host and QEMU boards) over the nRF9160's modem.
//!
//! What this board provides to the kernel, one module each:
//! - [`net`]: the `Network`, TCP and TLS 1.2 sockets in the modem (nrf-modem), the CA in the
//!   manifest's `[modem] security_tag`, peer verification required, every connect bounded;
//! - [`modem`]: the modem's start and the LTE-M attach (bounded attempts, backoff) before the
//!   runner's first connect, then the manifest's PSM and eDRX requests (`[modem] psm`, `edrx`:
//!   `AT+CPSMS`, `AT+CEDRXS`, encoded by `aliot_manifest::power`);
//! - [`platform`]: the `Clock` (embassy-time on RTC1), the network's time (`AT+CCLK?` after
//!   attach) as the log's timestamps, the `Entropy` (the CryptoCell CC310's TRNG) and the
//!   kernel's `log` lines as defmt over RTT;
//! - [`status`]: LED1-LED4 show the link and the update, Button 1 forces a reconnect
//!   (`aliot-status-leds` over embedded-hal pins);
//! - [`credentials`]: the DeviceSecret or ProductSecret from the credentials partition on the
//!   NVMC (provisioned, never compiled in), which [`flash`] shares;
//! - `ota` (feature `ota`, run with `[firmware] ota = true`): the kernel's OTA service with
//!   the update slot and boot state on the NVMC, for the boot stage in `boot/`;
//! - [`apps`]: the `AppPort`: the manifest's apps, each its own image at the top of
//!   `[flash.active]`, run unprivileged and MPU-isolated by the shared Cortex-M33 runtime
//!   (`boards/cortex-m33`; its SVCall, SysTick and fault handlers are this image's, its kernel
//!   fault hook is `aliot_kernel_fault` in [`apps`]); how app slices and the modem's interrupts
//!   share the CPU under the embassy executor is documented there.
//!
//! # Secure image, no TF-M
//!
//! libmodem officially wants to run non-secure, behind TF-M (or the older SPM), which sets up
//! the SPU and starts the non-secure image. Neither can be built here (they come from
//! Nordic's Zephyr tree), and a kernel that owns the MPU and isolates apps wants to be the
//! only privileged code anyway. So the image runs **secure** (`embassy-nrf/nrf9160-s`), as
//! embassy's and nrf-modem's own nRF9160 examples do, and marks what libmodem reaches through
//! non-secure addresses as non-secure itself ([`modem::open_to_modem`]): the modem's shared
//! RAM, REGULATORS, CLOCK/POWER and IPC. It also keeps the CryptoCell (secure-only) for
//! entropy. nrf-modem calls this mode "at your own risk": UNTESTED ON HARDWARE.
//!
//! # Flash and RAM map (nRF9160: 1 MiB flash in 4 KiB pages, 256 KiB RAM)
//!
//! Flash comes from the device manifest's `[flash]` (build.rs turns it into `flash.x`, and the
//! apps' regions into `apps.x`); with its defaults:
//!
//! | range | size | what |
//! |---|---|---|
//! | `0x0000_0000..0x0000_8000` | 32 KiB | `[flash.bootloader]`: the boot stage (`boot/`: aliot-boot over embassy-boot; about 22 KB) |
//! | `0x0000_8000..0x0000_8200` | 512 B | `[flash.active]` start: the image header (version, length, SHA-256 of everything after it up to the apps' last byte) the boot stage checks |
//! | `0x0000_8200..0x0006_1000` | 355.5 KiB | `[flash.active]`: this firmware, vector table first (where the boot stage jumps), then erased flash |
//! | `0x0006_1000..0x0008_1000` | 128 KiB | `[flash.active]`, its top: the apps' images, `[[apps]] flash` each (64 KiB by default; two apps here, as in `regnwl.toml`: `device.toml`'s three start at `0x0005_1000`), covered by the header |
//! | `0x0008_1000..0x000F_B000` | 488 KiB | `[flash.update]`: where an OTA download goes |
//! | `0x000F_B000..0x000F_C000` | 4 KiB | `[flash.boot_state]`: embassy-boot's swap state |
//! | `0x000F_C000..0x000F_E000` | 8 KiB | `[flash.credentials]` lower half: provisioned secret |
//! | `0x000F_E000..0x0010_0000` | 8 KiB | `[flash.credentials]` upper half: registered credentials |
//!
//! RAM (kernel-memory.x, linked as memory.x):
//!
//! | range | size | what |
//! |---|---|---|
//! | `0x2000_0000..0x2000_8000` | 32 KiB | `MODEM`: libmodem's shared memory (control 0x4E8, TX 8 KiB, RX 8 KiB), non-secure |
//! | `0x2000_8000..0x2003_0000` | 160 KiB | `RAM`: `.data`, `.bss` (the kernel's heap, sized from the manifest, and nrf-modem's own heap), then the stack at the top |
//! | `0x2003_0000..0x2004_0000` | 64 KiB | the apps' RAM: each app's `memory` (statics, then its stack), 32-byte MPU regions |
//!
//! After a reset the chip runs the boot stage at 0 (`boot/`, its own binary in this workspace),
//! which swaps in a marked update or reverts an unconfirmed one, checks the active image's
//! header and SHA-256 and jumps to the vector table after the header. `aliot-image --board
//! nrf9160dk` builds both and the apps' images and writes one HEX with the boot stage, the
//! header, this firmware and the apps, and the OTA image (header, firmware, apps: the header's
//! length and SHA-256 run from the firmware's first byte to the apps' last, so the boot stage
//! starts no unverified app and an update carries the apps built for its kernel).
//! Its RAM map is its own (all 256 KiB, before this firmware starts).
#![no_std]
#![no_main]

extern crate alloc;

mod apps;
mod credentials;
mod flash;
mod modem;
mod net;
#[cfg(feature = "ota")]
mod ota;
mod platform;
mod status;

use core::mem::MaybeUninit;

use aliot_cortex_m33::policy::slice_reload;
use aliot_cortex_m33::process::Runtime;
use aliot_kernel::config::DeviceConfig;
use aliot_kernel::kernel::Kernel;
use aliot_kernel::runner::{Runner, RunnerOptions};
use defmt_rtt as _;
use embassy_nrf::Peri;
use embassy_nrf::cryptocell_rng::CcRng;
use embassy_nrf::gpio::{AnyPin, Input, Level, Output, OutputDrive, Pull};
use embassy_nrf::interrupt::{InterruptExt, Priority};
use embassy_nrf::nvmc::Nvmc;
use embassy_nrf::{bind_interrupts, interrupt};
use embassy_time::Timer;
use embedded_alloc::LlffHeap;
use panic_probe as _;
use tinyrlibc as _;

/// The manifest, compiled in by `build.rs`: `DEVICE`, `KERNEL_HEAP_BYTES`, `SECURITY_TAG`.
mod generated {
    include!(concat!(env!("OUT_DIR"), "/device_config.rs"));
}

static DEVICE: DeviceConfig = generated::DEVICE;

/// The kernel's heap: it allocates its queues once, in `Kernel::new`, and the link's buffers
/// per connection, within the worst case the build printed.
#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// The heap's memory (in `.bss`, so the size report counts it).
static mut HEAP_MEM: [MaybeUninit<u8>; generated::KERNEL_HEAP_BYTES] =
    [MaybeUninit::uninit(); generated::KERNEL_HEAP_BYTES];

/// The modem's IPC interrupt goes straight to nrf-modem.
struct IpcHandler;

impl interrupt::typelevel::Handler<interrupt::typelevel::IPC> for IpcHandler {
    unsafe fn on_interrupt() {
        nrf_modem::ipc_irq_handler();
    }
}

bind_interrupts!(struct Irqs {
    IPC => IpcHandler;
});

#[embassy_executor::main]
async fn main(spawner: embassy_executor::Spawner) {
    let p = embassy_nrf::init(Default::default());
    // LED1-LED4 and Button 1 (UNTESTED ON HARDWARE): see `status`.
    let led = |pin: Peri<'static, AnyPin>| Output::new(pin, Level::Low, OutputDrive::Standard);
    let leds = [
        led(p.P0_02.into()),
        led(p.P0_03.into()),
        led(p.P0_04.into()),
        led(p.P0_05.into()),
    ];
    match status::run(leds, Input::new(p.P0_06, Pull::Up)) {
        Ok(task) => spawner.spawn(task),
        Err(_) => defmt::warn!("status LEDs: task not started"),
    }
    // SAFETY: called once, before the first allocation; HEAP_MEM is used by nothing else.
    unsafe {
        HEAP.init(
            core::ptr::addr_of_mut!(HEAP_MEM) as usize,
            generated::KERNEL_HEAP_BYTES,
        )
    }
    defmt::info!(
        "aliot nRF9160 DK: {=str}/{=str}, kernel heap {=usize} bytes",
        DEVICE.product_key,
        DEVICE.device_name,
        generated::KERNEL_HEAP_BYTES
    );

    // ---- The modem (UNTESTED ON HARDWARE) ----
    modem::open_to_modem();
    interrupt::IPC.set_priority(Priority::P0);
    // SAFETY: the IPC handler is bound above and only calls into nrf-modem, which expects it.
    unsafe { interrupt::IPC.enable() };
    if let Err(e) = modem::start(generated::LTE_PSM).await {
        defmt::error!("modem: could not start: {}; halting", e);
        park().await;
    }
    modem::log_version().await;

    let mut entropy = platform::CryptoCellEntropy::new(CcRng::new_blocking(p.CC_RNG));
    let flash = flash::share(Nvmc::new(p.NVMC));
    let credentials = match credentials::load(&DEVICE, flash::whole(&flash)) {
        Ok(c) => c,
        Err(why) => {
            defmt::error!("no login ({}): the device stays offline", why);
            park().await
        }
    };
    let link = modem::attach(&mut entropy).await;
    status::set_attaching(false);
    modem::request_power_saving(generated::AFTER_ATTACH).await;
    match modem::network_time() {
        Ok(task) => spawner.spawn(task),
        Err(_) => defmt::warn!("time: the network-time task is already running"),
    }
    let network = net::ModemNetwork::new(generated::SECURITY_TAG);

    // ---- The apps (UNTESTED ON HARDWARE): SysTick slices, the MPU, the fault handlers ----
    let Some(reload) = slice_reload(apps::CPU_HZ, apps::SLICE_MS) else {
        defmt::error!(
            "a {=u32} ms slice does not fit SysTick; halting",
            apps::SLICE_MS
        );
        park().await
    };
    // SAFETY: called once, privileged on MSP, before any app runs.
    let mut rt = unsafe { Runtime::take(apps::kernel_ram(), reload, apps::SLICE_BUDGET) };
    let mut port = apps::port(&mut rt);

    // UNTESTED ON HARDWARE. A const branch: without `[firmware] ota = true` it is not linked.
    #[cfg(feature = "ota")]
    if generated::RUN_OTA
        && let Some(stage) = ota::stage(&DEVICE, &flash)
    {
        let downloads = net::ModemNetwork::new(generated::SECURITY_TAG);
        match ota::run(
            &DEVICE,
            stage,
            network,
            downloads,
            entropy,
            &mut port,
            credentials,
        )
        .await
        {
            ota::Ended::Reboot => {
                defmt::info!("ota: resetting for the boot stage");
                // Let the defmt log drain (RTT: a debugger reads it) before the reset.
                Timer::after_millis(100).await;
                cortex_m::peripheral::SCB::sys_reset()
            }
            ota::Ended::Failed(e) => {
                defmt::error!("kernel: stopped: {}", e);
                drop(link);
                park().await
            }
        }
    }

    let mut kernel = Kernel::new(&DEVICE);
    kernel.set_watch(&status::LINK);
    let mut runner = Runner::new(
        &mut kernel,
        network,
        platform::EmbassyClock,
        entropy,
        &mut port,
        credentials,
        RunnerOptions::default(),
    );
    // Never asked to stop: the session runs until reset. It returns only when the
    // credentials cannot log this device in at all.
    if let Err(e) = runner.run_until(core::future::pending()).await {
        defmt::error!("kernel: stopped: {}", e);
    }
    drop(link);
    park().await
}

/// Nothing more to do: stay idle (the executor sleeps) with the log readable.
async fn park() -> ! {
    loop {
        Timer::after_secs(3600).await;
    }
}
