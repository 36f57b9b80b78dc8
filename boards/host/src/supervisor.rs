//! The host board as a device with an A/B bootloader: the supervisor plays the boot ROM and
//! the boot stage, the firmware runs from the active slot of the flash file.
//!
//! One binary, three roles (chosen in [`crate::main_with`]):
//! * **supervisor** (the default, what `cargo run -p aliot-host` starts): starts the built-in
//!   emulator when the manifest asks for it (so "the cloud" outlives device reboots), then
//!   loops: run the boot stage (`aliot-boot`'s [`BootStage`] over `flash.bin`: swap, revert,
//!   verify), copy the booted image's payload to `state_dir/active-image`, run it as the
//!   firmware process and wait. Exit code [`REBOOT_EXIT_CODE`] means "reboot me": the loop
//!   boots again (this is where an update is swapped in or reverted). Any other exit ends
//!   the supervisor with the same outcome. A trial image that cannot even be started (its
//!   payload is no program) counts as a fault and reset, as on a device: the next boot
//!   reverts it.
//! * **firmware** (env [`FIRMWARE_ENV`] = `1`, set by the supervisor): the kernel's runner,
//!   told how it was booted in env [`BOOT_ENV`] ([`HostBoot`]).
//! * **app** (`--app NAME`, started by the firmware).
//!
//! Why a launcher payload: a host executable (about 250 MB in debug) never fits a slot sized
//! for the nRF9160 (484 KiB), so on this board an image's payload is a small `#!/bin/sh`
//! script that `exec`s a board binary (`aliot_boot::launcher`). An update therefore really
//! changes the program that runs, but the program itself lives outside the flash: a
//! limitation of the simulator, not of the device. A fresh flash gets a **factory image**: a
//! launcher of the supervisor's own executable, with the manifest's firmware version.
//!
//! The firmware process gets a parent-death signal, so it never outlives the supervisor, and
//! its own process group, so a terminal's Ctrl-C reaches the supervisor alone, which stops it
//! with SIGTERM (a clean stop: DISCONNECT, apps stopped) and then stops the emulator.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use aliot_boot::{
    BootKind, BootStage, BootStageError, Booted, HEADER_LEN, ImageHeader, Partition,
    partitions_from_config,
};
use aliot_kernel::config::{DeviceConfig, FlashPartition};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use crate::flash::{self, FileFlash};
use crate::ota::{REBOOT_EXIT_CODE, layout_end};
use crate::{Args, StopSignals};

/// Set to `1` by the supervisor in the firmware process's environment.
pub const FIRMWARE_ENV: &str = "ALIOT_HOST_FIRMWARE";
/// How the firmware was booted ([`HostBoot::as_str`]), in the firmware's environment.
pub const BOOT_ENV: &str = "ALIOT_HOST_BOOT";
/// The booted image's payload, run as the firmware (in the state directory).
pub const ACTIVE_IMAGE: &str = "active-image";
/// How long the firmware gets to stop after SIGTERM (its DISCONNECT, then its apps' grace
/// period) before it is killed.
const FIRMWARE_STOP_GRACE: Duration = Duration::from_secs(10);
/// The boot stage's work buffer: one flash page (see `aliot_boot::stage`).
const BOOT_BUF: usize = flash::PAGE_SIZE;

/// How the boot stage started the running firmware (env [`BOOT_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostBoot {
    /// Nothing pending: the confirmed image runs.
    Normal,
    /// A new image was swapped in and runs on trial: it must confirm itself (after its first
    /// login) or the next boot reverts it.
    Trial,
    /// The last trial image was not confirmed: the previous image was put back.
    Reverted,
    /// The image swapped in failed verification: the previous image was put back at once.
    RefusedUpdate,
}

impl HostBoot {
    /// Parses [`HostBoot::as_str`]'s spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "trial" => Some(Self::Trial),
            "reverted" => Some(Self::Reverted),
            "refused-update" => Some(Self::RefusedUpdate),
            _ => None,
        }
    }

    /// `normal`, `trial`, `reverted` or `refused-update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Trial => "trial",
            Self::Reverted => "reverted",
            Self::RefusedUpdate => "refused-update",
        }
    }

    /// The value of [`BOOT_ENV`] in this process; `None` when unset or not understood.
    pub fn from_env() -> Option<Self> {
        std::env::var(BOOT_ENV)
            .ok()
            .as_deref()
            .and_then(Self::parse)
    }

    fn from_kind(kind: BootKind) -> Self {
        match kind {
            BootKind::Normal => Self::Normal,
            BootKind::Trial => Self::Trial,
            BootKind::Reverted => Self::Reverted,
            BootKind::RefusedUpdate(_) => Self::RefusedUpdate,
        }
    }
}

/// Whether this process was started by the supervisor as the firmware.
pub fn is_firmware() -> bool {
    std::env::var_os(FIRMWARE_ENV).is_some_and(|v| v == "1")
}

/// The manifest's partitions, by name.
fn partitions(config: &DeviceConfig) -> [(&'static str, FlashPartition); 5] {
    [
        ("bootloader", config.ota.bootloader),
        ("active", config.ota.active),
        ("update", config.ota.update),
        ("boot_state", config.ota.boot_state),
        ("credentials", config.credentials_partition),
    ]
}

/// Pages of the flash file for `config`'s whole layout, after checking that every partition
/// uses the nRF9160's erase page (the only one [`FileFlash`] simulates).
pub fn flash_pages(config: &DeviceConfig) -> Result<usize, String> {
    for (name, p) in partitions(config) {
        if p.erase_page as usize != flash::PAGE_SIZE {
            return Err(format!(
                "the manifest's {name} partition has a {}-byte erase page; this board simulates the nRF9160's {}",
                p.erase_page,
                flash::PAGE_SIZE
            ));
        }
    }
    Ok((layout_end(config) as usize).div_ceil(flash::PAGE_SIZE))
}

/// Opens `state_dir/flash.bin` over the whole layout.
pub fn open_flash(config: &DeviceConfig, state_dir: &Path) -> Result<FileFlash, String> {
    let pages = flash_pages(config)?;
    let path = state_dir.join("flash.bin");
    FileFlash::open(&path, pages)
        .map_err(|e| format!("cannot open the flash file {}: {e}", path.display()))
}

/// Flags only the supervisor reads, and whether each takes a value.
const SUPERVISOR_FLAGS: [(&str, bool); 3] = [
    ("--boot-only", false),
    ("--cut-power-at-boot-op", true),
    ("--stage-update", true),
];
/// A flag passed to the firmware of the first boot only.
const FIRST_BOOT_FLAGS: [(&str, bool); 1] = [("--cut-power-at-flash-op", true)];

/// The firmware's command line: the supervisor's (`args`, without the program name) less the
/// supervisor-only flags, and less the first-boot-only flags after the first boot. Both
/// `--flag value` and `--flag=value` are recognised; everything after `--` is kept as is.
pub fn firmware_args(args: &[OsString], first_boot: bool) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    'next: while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(iter.cloned());
            break;
        }
        let dropped = SUPERVISOR_FLAGS.iter().chain(if first_boot {
            &[][..]
        } else {
            &FIRST_BOOT_FLAGS[..]
        });
        for (flag, takes_value) in dropped {
            if arg == flag {
                if *takes_value {
                    iter.next();
                }
                continue 'next;
            }
            let bytes = arg.as_bytes();
            if *takes_value
                && bytes.starts_with(flag.as_bytes())
                && bytes.get(flag.len()) == Some(&b'=')
            {
                continue 'next;
            }
        }
        out.push(arg.clone());
    }
    out
}

/// The flags the supervisor adds to point the firmware at its built-in emulator.
fn redirect_args(
    emulator: &aliot_emulator::Emulator,
    config: &DeviceConfig,
    args: &Args,
) -> Vec<OsString> {
    let addr = if config.tls.enabled {
        emulator.tls_addr()
    } else {
        emulator.mqtt_addr()
    };
    // The emulator's certificate names `localhost`.
    let mut out: Vec<OsString> = vec![
        "--mqtt-addr".into(),
        format!("localhost:{}", addr.port()).into(),
    ];
    if args.https_addr.is_none() && config.registration.https.emulator {
        out.push("--https-addr".into());
        out.push(format!("localhost:{}", emulator.https_addr().port()).into());
    }
    if args.ca.is_none() && config.tls.ca_file.is_none() {
        out.push("--ca".into());
        out.push(emulator.ca_pem_path().as_os_str().to_owned());
    }
    out
}

/// The supervisor role: see the module doc.
pub(crate) fn run(config: &'static DeviceConfig, args: Args) -> ExitCode {
    match supervise(config, args) {
        Ok(code) => code,
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn supervise(config: &'static DeviceConfig, args: Args) -> Result<ExitCode, String> {
    std::fs::create_dir_all(&args.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    if let Some(image) = &args.stage_update {
        let header = stage_update(config, &args.state_dir, image)?;
        println!("staged {}", header.version);
        return Ok(ExitCode::SUCCESS);
    }
    if args.boot_only {
        let (booted, _) = boot(config, &args.state_dir, args.cut_power_at_boot_op)?;
        println!(
            "booted {} {}",
            booted.image.version,
            HostBoot::from_kind(booted.kind).as_str()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let (runtime, mut signals) = StopSignals::with_runtime()?;
    // Kept across reboots; dropped (and its temporary CA folder removed) at the end.
    let mut emulator = None;
    let mut redirect = Vec::new();
    if args.mqtt_addr.is_none() && config.endpoint.emulator {
        let started = aliot_emulator::Emulator::start(aliot_emulator::EmulatorConfig::demo())
            .map_err(|e| format!("cannot start the built-in emulator: {e}"))?;
        log::info!(
            "built-in Alibaba IoT emulator: MQTT {} TLS {} HTTP {} (CA {})",
            started.mqtt_addr(),
            started.tls_addr(),
            started.http_addr(),
            started.ca_pem_path().display()
        );
        redirect = redirect_args(&started, config, &args);
        emulator = Some(started);
    }
    let cli: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut first_boot = true;
    let outcome = loop {
        let cut = if first_boot {
            args.cut_power_at_boot_op
        } else {
            None
        };
        let (booted, payload) = match boot(config, &args.state_dir, cut) {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        let image = match install_active_image(&args.state_dir, &payload) {
            Ok(path) => path,
            Err(e) => break Err(e),
        };
        let mut firmware = firmware_args(&cli, first_boot);
        firmware.extend(redirect.iter().cloned());
        first_boot = false;
        let boot = HostBoot::from_kind(booted.kind);
        let ran = if runnable(&payload) {
            runtime.block_on(run_firmware(&image, &firmware, boot, &mut signals))
        } else {
            Ok(Ran::CannotStart(format!(
                "image {} is no program for this board (its payload starts with neither #! nor an ELF header)",
                booted.image.version
            )))
        };
        match ran {
            Ok(Ran::Exited(status)) if status.code() == Some(i32::from(REBOOT_EXIT_CODE)) => {
                log::info!("the firmware asked for a reboot: rebooting");
            }
            Ok(Ran::Exited(status)) => break Ok(exit_code(status)),
            Ok(Ran::Stopped) => break Ok(ExitCode::SUCCESS),
            Ok(Ran::CannotStart(e)) if boot == HostBoot::Trial => {
                // A device jumping into an image that does not run faults and resets; the
                // unconfirmed image is then reverted by the boot stage.
                log::error!("{e}: rebooting (the boot stage reverts an unconfirmed image)");
            }
            Ok(Ran::CannotStart(e)) | Err(e) => break Err(e),
        }
    };
    if let Some(emulator) = emulator.take() {
        drop(emulator);
        log::info!("built-in emulator stopped");
    }
    outcome
}

/// Whether `payload` can be run by `execve` itself: a `#!` script (what host images hold) or
/// an ELF executable. Anything else is refused before it is started: `execvp`, which the
/// standard library uses, would hand a file without either to `/bin/sh` as a script.
fn runnable(payload: &[u8]) -> bool {
    payload.starts_with(b"#!") || payload.starts_with(b"\x7fELF")
}

/// The supervisor's exit for the firmware's `status` (a death by signal is a failure).
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, signal) => {
            let name = signal
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
                .map_or_else(|| format!("{signal:?}"), |s| s.as_str().to_owned());
            log::error!("the device died ({name}): the supervisor stops");
            ExitCode::FAILURE
        }
    }
}

/// How one firmware run ended.
enum Ran {
    /// On its own (its status).
    Exited(ExitStatus),
    /// Stopped by the supervisor after SIGINT/SIGTERM.
    Stopped,
    /// The payload could not be executed (why).
    CannotStart(String),
}

/// Runs `image` as the firmware with `args` until it exits or the supervisor is told to
/// stop (then it is sent SIGTERM, and killed after [`FIRMWARE_STOP_GRACE`]).
async fn run_firmware(
    image: &Path,
    args: &[OsString],
    boot: HostBoot,
    signals: &mut StopSignals,
) -> Result<Ran, String> {
    let mut command = tokio::process::Command::new(image);
    command
        .args(args)
        .env(FIRMWARE_ENV, "1")
        .env(BOOT_ENV, boot.as_str())
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ok(Ran::CannotStart(format!(
                "cannot start the firmware {}: {e}",
                image.display()
            )));
        }
    };
    tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|e| format!("cannot wait for the firmware: {e}"))?;
            Ok(Ran::Exited(status))
        }
        () = signals.received() => {
            if let Some(pid) = child.id() {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
            match tokio::time::timeout(FIRMWARE_STOP_GRACE, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    log::warn!("the firmware did not stop within {FIRMWARE_STOP_GRACE:?}; killing it");
                    let _ = child.kill().await;
                }
            }
            log::info!("the firmware stopped");
            Ok(Ran::Stopped)
        }
    }
}

/// The firmware gets SIGKILL when the supervisor dies (`PR_SET_PDEATHSIG`; the signal follows
/// the thread that forked, here the supervisor's only runtime thread, which lives as long as
/// the process, and survives the launcher's `exec`s).
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2) and
    // getppid(2), both async-signal-safe system calls; it allocates nothing (the error is a
    // plain errno value) and touches no lock.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            // The supervisor died between fork and prctl: no signal will come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Writes the booted payload to `state_dir/active-image` (mode 0755), through a temporary
/// file renamed over it, so a running or half-written copy is never executed.
fn install_active_image(state_dir: &Path, payload: &[u8]) -> Result<PathBuf, String> {
    let path = state_dir.join(ACTIVE_IMAGE);
    let tmp = state_dir.join(format!("{ACTIVE_IMAGE}.tmp"));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&tmp)?;
        file.write_all(payload)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The boot stage over the flash file's three OTA partitions.
type HostStage<'a> = BootStage<
    Partition<'a, FileFlash>,
    Partition<'a, FileFlash>,
    Partition<'a, FileFlash>,
    BOOT_BUF,
>;

/// Opens the flash (with a power cut at boot op `cut` when asked) and hands the boot stage
/// to `f`.
fn with_stage<T>(
    config: &DeviceConfig,
    state_dir: &Path,
    cut: Option<u32>,
    f: impl FnOnce(&mut Option<HostStage<'_>>) -> Result<T, String>,
) -> Result<T, String> {
    let mut flash = open_flash(config, state_dir)?;
    if let Some(op) = cut {
        flash.cut_power_at(op);
    }
    let capacity = u32::try_from(flash.capacity())
        .map_err(|_| "the flash layout is larger than 4 GiB".to_owned())?;
    let flash = Mutex::<NoopRawMutex, _>::new(RefCell::new(flash));
    let (active, dfu, state) = partitions_from_config(&flash, capacity, &config.ota)
        .map_err(|e| format!("the manifest's OTA layout cannot be booted: {e:?}"))?;
    let stage = HostStage::new(active, dfu, state)
        .map_err(|e| format!("the manifest's OTA layout cannot be booted: {e:?}"))?;
    f(&mut Some(stage))
}

/// One boot: swap or revert as the boot state says, install the factory image on a fresh
/// flash, verify, log; returns the booted image and its payload.
fn boot(
    config: &DeviceConfig,
    state_dir: &Path,
    cut: Option<u32>,
) -> Result<(Booted, Vec<u8>), String> {
    with_stage(config, state_dir, cut, |slot| {
        let stage = slot.as_mut().ok_or("no boot stage")?;
        let booted = match stage.boot() {
            Ok(booted) => booted,
            Err(BootStageError::NoValidImage(why)) => {
                let image = install_factory_if_fresh(config, slot, why)?;
                Booted {
                    image,
                    kind: BootKind::Normal,
                }
            }
            Err(e) => return Err(format!("the boot stage failed: {e:?}")),
        };
        let stage = slot.take().ok_or("no boot stage")?;
        let (mut active, _, _) = stage.into_parts();
        let mut payload = vec![0; booted.image.payload_len as usize];
        active
            .read(HEADER_LEN as u32, &mut payload)
            .map_err(|e| format!("cannot read the active slot: {e:?}"))?;
        log_boot(&booted);
        warn_if_stale_factory(config, &booted, &payload);
        Ok((booted, payload))
    })
}

fn log_boot(booted: &Booted) {
    let version = &booted.image.version;
    match booted.kind {
        BootKind::Normal => log::info!("booted image {version}"),
        BootKind::Trial => {
            log::info!("booted image {version} (trial: confirms after the first login)")
        }
        BootKind::Reverted => {
            log::warn!("reverted to image {version}: the update was not confirmed")
        }
        BootKind::RefusedUpdate(why) => {
            log::warn!(
                "update refused: the image swapped in does not verify ({why}); booted image {version}"
            )
        }
    }
}

/// The factory image is written once and runs the binary that wrote it: after a switch of
/// build (say, to `--release`) the old binary would go on running unnoticed. Says so when the
/// image carries this manifest's version but launches another binary than this one.
fn warn_if_stale_factory(config: &DeviceConfig, booted: &Booted, payload: &[u8]) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    if booted.image.version.as_str() == config.ota.version
        && payload != launcher_payload(exe.as_os_str()).as_slice()
    {
        log::warn!(
            "image {} does not launch this binary ({}): it was installed by another build; remove the flash file to install this one",
            booted.image.version,
            exe.display()
        );
    }
}

/// After the active slot failed verification (`why`): installs the factory image when the
/// flash is fresh, i.e. no swap is pending and the slot's first word (the image magic,
/// written last by [`install_factory`]) is erased. Anything else is a slot that once held
/// an image and no longer verifies: refused, the device does not start.
fn install_factory_if_fresh(
    config: &DeviceConfig,
    slot: &mut Option<HostStage<'_>>,
    why: aliot_boot::ImageError,
) -> Result<ImageHeader, String> {
    let active = config.ota.active;
    let refuse = |detail: &str| {
        format!(
            "no valid image in the active slot ({:#x}, {} bytes): {why}{detail}; nothing to fall back to, the device does not start",
            active.offset, active.size
        )
    };
    let mut stage = slot.take().ok_or("no boot stage")?;
    if stage.loader_state().map_err(|e| format!("{e:?}"))? == embassy_boot::State::Swap {
        return Err(refuse(" (a swap is pending)"));
    }
    let (mut active_slot, dfu, state) = stage.into_parts();
    let mut magic = [0u8; 4];
    active_slot
        .read(0, &mut magic)
        .map_err(|e| format!("cannot read the active slot: {e:?}"))?;
    if magic != [0xFF; 4] {
        return Err(refuse(""));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let header = install_factory(&mut active_slot, config.ota.version, &exe)?;
    log::info!(
        "factory image {} installed (a launcher of {})",
        header.version,
        exe.display()
    );
    let mut stage = HostStage::new(active_slot, dfu, state)
        .map_err(|e| format!("the manifest's OTA layout cannot be booted: {e:?}"))?;
    let verified = stage
        .verify_active()
        .map_err(|e| format!("the factory image does not verify: {e:?}"))?;
    *slot = Some(stage);
    Ok(verified)
}

/// The payload of a launcher of `exe` (see `aliot_boot::launcher`).
pub fn launcher_payload(exe: &OsStr) -> Vec<u8> {
    let mut out = Vec::new();
    aliot_boot::write_host_launcher(exe.as_bytes(), &[], 0, &mut |b| out.extend_from_slice(b));
    out
}

/// Writes a factory image (a launcher of `exe`, `version`) into the erased-or-fresh active
/// slot: payload first, then the header without its magic, then the magic, so that a power
/// cut at any point leaves the magic erased and the next boot installs it again.
fn install_factory<F: NorFlash>(
    active: &mut F,
    version: &str,
    exe: &Path,
) -> Result<ImageHeader, String> {
    let payload = launcher_payload(exe.as_os_str());
    let header = ImageHeader::new(version, &payload)
        .map_err(|e| format!("the factory image (version {version:?}): {e}"))?;
    let slot = u32::try_from(active.capacity()).unwrap_or(u32::MAX);
    header
        .fits(slot)
        .map_err(|e| format!("the factory image: {e}"))?;
    let flash_err = |e: F::Error| {
        format!(
            "cannot write the factory image: {:?}",
            embedded_storage::nor_flash::NorFlashError::kind(&e)
        )
    };
    let mut image = header.to_bytes().to_vec();
    image.extend_from_slice(&payload);
    let len = image.len().next_multiple_of(F::WRITE_SIZE);
    image.resize(len, 0xFF);
    let erase_end = len.next_multiple_of(F::ERASE_SIZE) as u32;
    active.erase(0, erase_end).map_err(flash_err)?;
    let (head, body) = image.split_at(HEADER_LEN);
    active.write(HEADER_LEN as u32, body).map_err(flash_err)?;
    let (magic, rest) = head.split_at(4);
    active.write(4, rest).map_err(flash_err)?;
    active.write(0, magic).map_err(flash_err)?;
    Ok(header)
}

/// `--stage-update IMAGE` (tests): boots the flash as it is (installing the factory image on
/// a fresh flash, running nothing), writes IMAGE into the update slot through the boot
/// stage's updater and marks it for the next boot.
fn stage_update(
    config: &DeviceConfig,
    state_dir: &Path,
    image: &Path,
) -> Result<ImageHeader, String> {
    let limit = u64::from(config.ota.update.size);
    let len = std::fs::metadata(image)
        .map_err(|e| format!("{}: {e}", image.display()))?
        .len();
    if len > limit {
        return Err(format!(
            "{}: {len} bytes, larger than the update slot ({limit})",
            image.display()
        ));
    }
    let mut bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    bytes.resize(bytes.len().next_multiple_of(flash::WORD_SIZE), 0xFF);
    with_stage(config, state_dir, None, |slot| {
        if let Some(stage) = slot.as_mut()
            && let Err(BootStageError::NoValidImage(why)) = stage.verify_active()
        {
            install_factory_if_fresh(config, slot, why)?;
        }
        let stage = slot.as_mut().ok_or("no boot stage")?;
        let mut writer = stage
            .update_writer()
            .map_err(|e| format!("cannot write the update slot: {e:?}"))?;
        for (i, chunk) in bytes.chunks(flash::PAGE_SIZE).enumerate() {
            writer
                .write(i * flash::PAGE_SIZE, chunk)
                .map_err(|e| format!("cannot write the update slot: {e:?}"))?;
        }
        stage
            .mark_updated()
            .map_err(|e| format!("the update is not marked: {e:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn supervisor_flags_are_removed_in_both_spellings() {
        let cli = os(&[
            "--state-dir",
            "s",
            "--boot-only",
            "--cut-power-at-boot-op",
            "3",
            "--stage-update=img",
            "--cut-power-at-flash-op",
            "7",
            "--tls",
            "true",
            "--cut-power-at-boot-opx=1",
        ]);
        assert_eq!(
            firmware_args(&cli, true),
            os(&[
                "--state-dir",
                "s",
                "--cut-power-at-flash-op",
                "7",
                "--tls",
                "true",
                "--cut-power-at-boot-opx=1"
            ])
        );
        assert_eq!(
            firmware_args(&cli, false),
            os(&[
                "--state-dir",
                "s",
                "--tls",
                "true",
                "--cut-power-at-boot-opx=1"
            ])
        );
        assert_eq!(
            firmware_args(
                &os(&["--cut-power-at-flash-op=2", "--", "--boot-only"]),
                false
            ),
            os(&["--", "--boot-only"])
        );
    }

    #[test]
    fn only_scripts_and_elf_files_are_run() {
        assert!(runnable(b"#!/bin/sh\nexec '/b' \"$@\"\n"));
        assert!(runnable(b"\x7fELF\x02\x01\x01"));
        assert!(!runnable(&[0xA5; 100]));
        assert!(!runnable(b"echo hi\n"));
        assert!(!runnable(b""));
    }

    #[test]
    fn host_boot_round_trips_and_refuses_other_words() {
        for boot in [
            HostBoot::Normal,
            HostBoot::Trial,
            HostBoot::Reverted,
            HostBoot::RefusedUpdate,
        ] {
            assert_eq!(HostBoot::parse(boot.as_str()), Some(boot));
        }
        assert_eq!(HostBoot::parse("Normal"), None);
        assert_eq!(HostBoot::parse(""), None);
        assert_eq!(HostBoot::parse("refused"), None);
    }

    #[test]
    fn the_flash_covers_the_whole_layout() {
        let mut config = crate::generated::DEVICE;
        // Default nRF9160 layout: the credentials end the 1 MiB flash.
        assert_eq!(layout_end(&config), 0x10_0000);
        assert_eq!(flash_pages(&config), Ok(256));
        // The update slot past the credentials decides.
        config.credentials_partition.offset = 0x1000;
        config.ota.update.offset = 0xFF000;
        config.ota.update.size = 0x7A000;
        assert_eq!(layout_end(&config), 0xFF000 + 0x7A000);
        config.ota.boot_state.erase_page = 8192;
        assert!(flash_pages(&config).unwrap_err().contains("boot_state"));
    }

    #[test]
    fn factory_image_verifies_and_its_magic_is_written_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut flash = FileFlash::open(&dir.path().join("f"), 4).unwrap();
        let exe = Path::new("/opt/board bin");
        let header = install_factory(&mut flash, "1.2.3", exe).unwrap();
        let mut image = vec![0; HEADER_LEN + header.payload_len as usize];
        flash.read(0, &mut image).unwrap();
        let verified = aliot_boot::verify_image(&image, 4 * 4096).unwrap();
        assert_eq!(verified.version.as_str(), "1.2.3");
        assert_eq!(
            &image[HEADER_LEN..],
            b"#!/bin/sh\nexec '/opt/board bin' \"$@\"\n"
        );
        // The magic is the last write: a cut in it (op 3 of erase, body, header, magic)
        // leaves the first word erased.
        let mut flash = FileFlash::open(&dir.path().join("g"), 4).unwrap();
        let mut counting = Counting(&mut flash, 0);
        install_factory(&mut counting, "1.2.3", exe).unwrap();
        assert_eq!(counting.1, 4, "erase, payload, header, magic");
    }

    /// Counts erases and writes.
    struct Counting<'a>(&'a mut FileFlash, u32);
    impl embedded_storage::nor_flash::ErrorType for Counting<'_> {
        type Error = flash::FlashError;
    }
    impl ReadNorFlash for Counting<'_> {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            self.0.read(offset, bytes)
        }
        fn capacity(&self) -> usize {
            self.0.capacity()
        }
    }
    impl NorFlash for Counting<'_> {
        const WRITE_SIZE: usize = flash::WORD_SIZE;
        const ERASE_SIZE: usize = flash::PAGE_SIZE;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            self.1 += 1;
            self.0.erase(from, to)
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            self.1 += 1;
            if offset == 0 {
                assert_eq!(bytes.len(), 4, "the magic alone comes last");
                let mut rest = [0u8; HEADER_LEN - 4];
                self.0.read(4, &mut rest).unwrap();
                assert_ne!(rest, [0xFF; HEADER_LEN - 4], "after the rest of the header");
            }
            self.0.write(offset, bytes)
        }
    }
}
