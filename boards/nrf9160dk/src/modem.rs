//! Bringing up the modem: the secure-side setup nrf-modem needs when the image runs secure,
//! the library's start, and the LTE-M attach the runner's first connect waits for.
//!
//! UNTESTED ON HARDWARE: all of it. The SPU settings follow nrf-modem's README ("for running
//! in the secure context"), the interrupt set-up its `ipc_irq_handler` example.

use aliot_kernel::board::Entropy;
use embassy_nrf::pac;
use embassy_time::{Duration, Timer, with_timeout};
use nrf_modem::{CancellationToken, ConnectionPreference, LteLink, MemoryLayout, SystemMode};

use crate::net::{Failed, bounded_for};

/// Start of the modem's shared memory (`MODEM` in memory.x).
pub const SHMEM_START: u32 = 0x2000_0000;
/// Its length: 4 SPU RAM regions.
pub const SHMEM_LEN: u32 = 0x8000;
/// One SPU RAM region.
const SPU_RAM_REGION: u32 = 0x2000;
/// SPU peripheral ids the modem library reaches through non-secure addresses (nRF9160 PS,
/// "Instantiation"): REGULATORS, CLOCK/POWER, IPC.
const NS_PERIPHERALS: [usize; 3] = [4, 5, 42];

/// How long the library gets to start the modem.
const INIT_TIMEOUT_MS: u64 = 30_000;
/// How long one attach attempt may take (a first attach scans every band: minutes).
pub const ATTACH_TIMEOUT_MS: u64 = 180_000;
/// Wait after the first failed attach; doubles up to [`ATTACH_BACKOFF_MAX_MS`].
const ATTACH_BACKOFF_MS: u64 = 10_000;
/// Longest wait between attach attempts.
const ATTACH_BACKOFF_MAX_MS: u64 = 600_000;

/// Marks the modem's shared RAM and the peripherals libmodem drives as non-secure. Must run
/// after `embassy_nrf::init` (which reaches CLOCK and POWER at their secure addresses) and
/// before [`start`].
pub fn open_to_modem() {
    let spu = pac::SPU;
    let first = (SHMEM_START - 0x2000_0000) / SPU_RAM_REGION;
    for region in first..first + SHMEM_LEN / SPU_RAM_REGION {
        spu.ramregion(region as usize).perm().write(|w| {
            w.set_execute(true);
            w.set_write(true);
            w.set_read(true);
            w.set_secattr(false);
            w.set_lock(false);
        });
    }
    for id in NS_PERIPHERALS {
        spu.periphid(id).perm().write(|w| w.set_secattr(false));
    }
}

/// Starts the modem library for LTE-M only (no NB-IoT, no GNSS; PSM on when the manifest
/// asks for it, `psm`), with its shared memory where memory.x puts it.
pub async fn start(psm: bool) -> Result<(), Failed> {
    let mode = SystemMode {
        lte_support: true,
        lte_psm_support: psm,
        nbiot_support: false,
        gnss_support: false,
        preference: ConnectionPreference::Lte,
    };
    let layout = MemoryLayout {
        base_address: SHMEM_START,
        tx_area_size: 0x2000,
        rx_area_size: 0x2000,
        trace_area_size: 0,
    };
    match with_timeout(
        Duration::from_millis(INIT_TIMEOUT_MS),
        nrf_modem::init_with_custom_layout(mode, layout),
    )
    .await
    {
        Ok(result) => result.map_err(Failed::Modem),
        Err(_) => Err(Failed::TimedOut),
    }
}

/// Logs the modem's firmware version (`AT+CGMR`; the answer is untrusted text, printed as
/// is, cut at 64 bytes).
pub async fn log_version() {
    match with_timeout(Duration::from_secs(5), nrf_modem::send_at::<64>("AT+CGMR")).await {
        Ok(Ok(answer)) => defmt::info!("modem: firmware {=str}", answer.as_str().trim_ascii()),
        Ok(Err(e)) => defmt::warn!("modem: AT+CGMR failed: {}", e),
        Err(_) => defmt::warn!("modem: AT+CGMR not answered within 5 s"),
    }
}

/// How long the modem gets to answer one power-saving request.
const POWER_SAVING_TIMEOUT_MS: u64 = 5_000;

/// Sends the manifest's power-saving requests (`[modem] psm` and `edrx`: `AT+CPSMS`,
/// `AT+CEDRXS`, built by aliot-manifest) after an attach, each bounded. A refusal is logged
/// and the device carries on without it: the network decides what it grants anyway.
pub async fn request_power_saving(commands: &[&str]) {
    for command in commands {
        let answer = with_timeout(
            Duration::from_millis(POWER_SAVING_TIMEOUT_MS),
            nrf_modem::send_at::<0>(command),
        )
        .await;
        match answer {
            Ok(Ok(_)) => defmt::info!("lte: requested {=str}", command),
            Ok(Err(e)) => defmt::warn!("lte: {=str} refused: {}", command, e),
            Err(_) => defmt::warn!(
                "lte: {=str} not answered within {=u64} ms",
                command,
                POWER_SAVING_TIMEOUT_MS
            ),
        }
    }
}

/// Attempts at reading the network's time: the network sends it (NITZ) some time after the
/// attach, if at all.
const NETWORK_TIME_ATTEMPTS: u32 = 20;
/// Wait between two attempts.
const NETWORK_TIME_RETRY_MS: u64 = 30_000;

/// Reads the modem's clock (`AT+CCLK?`, bounded) until it holds the network's time (parsed by
/// `aliot_kernel::network_time`, which refuses the modem's own default), then hands it to
/// [`crate::platform::set_network_time`]; gives up after [`NETWORK_TIME_ATTEMPTS`]. Runs
/// beside the kernel: the log's times switch from "since boot" to UTC when it succeeds.
#[embassy_executor::task]
pub async fn network_time() {
    for _ in 0..NETWORK_TIME_ATTEMPTS {
        let answer =
            with_timeout(Duration::from_secs(5), nrf_modem::send_at::<64>("AT+CCLK?")).await;
        let unix = match answer {
            Ok(Ok(text)) => aliot_kernel::network_time::unix_secs_from_cclk(text.as_str()),
            _ => None,
        };
        if let Some(unix) = unix {
            crate::platform::set_network_time(unix);
            defmt::info!("time: the network's time is {=u64:iso8601s}", unix);
            return;
        }
        Timer::after_millis(NETWORK_TIME_RETRY_MS).await;
    }
    defmt::warn!("time: the network sent no time; log times stay counted from boot");
}

/// Attaches to LTE-M and keeps the link: each attempt is bounded by [`ATTACH_TIMEOUT_MS`];
/// after a failure, waits with exponential backoff (and jitter from `entropy`) and retries,
/// for as long as it takes. The returned link keeps the modem attached while it lives.
pub async fn attach(entropy: &mut impl Entropy) -> LteLink {
    let mut backoff = ATTACH_BACKOFF_MS;
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        defmt::info!("lte: attach attempt {=u32}", attempt);
        let failed = match LteLink::new().await {
            Ok(link) => {
                let token = CancellationToken::new();
                match bounded_for(
                    ATTACH_TIMEOUT_MS,
                    &token,
                    link.wait_for_link_with_cancellation(&token),
                )
                .await
                {
                    Ok(()) => {
                        defmt::info!("lte: attached (attempt {=u32})", attempt);
                        return link;
                    }
                    Err(e) => {
                        // Let the modem go idle before the next attempt; bounded too.
                        let _ = with_timeout(Duration::from_secs(10), link.deactivate()).await;
                        e
                    }
                }
            }
            Err(e) => Failed::Modem(e),
        };
        match failed {
            Failed::TimedOut => defmt::warn!(
                "lte: not attached within {=u64} s (no coverage, or the SIM has no LTE-M)",
                ATTACH_TIMEOUT_MS / 1000
            ),
            Failed::Modem(nrf_modem::Error::LteRegistrationDenied) => {
                defmt::warn!("lte: the network denied registration (check the SIM's LTE-M plan)")
            }
            Failed::Modem(nrf_modem::Error::SimFailure) => {
                defmt::warn!("lte: SIM failure (is a SIM inserted?)")
            }
            Failed::Modem(e) => defmt::warn!("lte: attach failed: {}", e),
        }
        // Up to a quarter more, so a fleet does not retry in step.
        let jitter = u64::from(entropy.random_u32()) % (backoff / 4 + 1);
        defmt::info!("lte: retrying in {=u64} ms", backoff + jitter);
        Timer::after_millis(backoff + jitter).await;
        backoff = (backoff * 2).min(ATTACH_BACKOFF_MAX_MS);
    }
}
