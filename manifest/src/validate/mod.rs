//! Turns the raw serde structs into a checked [`Manifest`].
//!
//! Each check returns the first problem as a [`ManifestError::Field`] naming the dotted path
//! of the field and what is allowed. Error messages never repeat a value that might be a
//! secret. One submodule per part of the manifest.

mod apps;
mod auth;
mod budget;
mod device;
mod endpoint;
mod firmware;
mod flash;
mod modem;
mod thing_model;

use std::path::{Path, PathBuf};

use crate::error::ManifestError;
use crate::model::{Kernel, Manifest};
use crate::raw::RawManifest;

/// Smallest app RAM budget in bytes.
pub const APP_MEMORY_MIN: u32 = 1024;
/// Largest app RAM budget in bytes.
pub const APP_MEMORY_MAX: u32 = 262_144;
/// App RAM budgets must be a multiple of this (ARMv8-M MPU granularity).
pub const APP_MEMORY_ALIGN: u32 = 32;
/// Default flash for an app's own image: room for an app over `aliot-app` (the QEMU
/// publisher running `publish_test` takes about 20 KiB) with room to grow.
pub const DEFAULT_APP_FLASH: u32 = 65_536;
/// Smallest flash region for an app image: one erase page.
pub const APP_FLASH_MIN: u32 = 4096;
/// Largest flash region for an app image: the nRF9160's whole flash.
pub const APP_FLASH_MAX: u32 = 1_048_576;
/// App flash regions are whole 4 KiB pages (the nRF9160's erase page, a multiple of the MPU's
/// 32 bytes), so writing one app's image never erases a page of another's.
pub const APP_FLASH_ALIGN: u32 = 4096;
/// Keep-alive range the platform accepts, in seconds.
pub const KEEPALIVE_RANGE: std::ops::RangeInclusive<i64> = 30..=1200;
/// Longest MQTT client id the platform accepts.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Longest app name.
pub const MAX_APP_NAME_LEN: usize = 16;
/// Longest topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 32;
/// Longest app setting value.
pub const MAX_SETTING_LEN: usize = 256;
/// `apps[].max_payload` when the manifest says nothing.
pub const DEFAULT_MAX_PAYLOAD: u32 = 1024;
/// Largest messages an app's event queue and outbox hold by default: one being handled and
/// the next. Not more, so that an app with `max_payload = 4096` beside one with the default
/// payload, both with default queues, fits the default kernel budget.
pub const DEFAULT_QUEUE_MESSAGES: u32 = 2;
/// Largest `apps[].event_queue_bytes` and `apps[].outbox_bytes`.
pub const APP_QUEUE_MAX: u32 = 65_536;
/// Largest `apps[].subscriptions`.
pub const MAX_APP_SUBSCRIPTIONS: u16 = 32;
/// `kernel.ram_budget` when the manifest says nothing: 56 KiB. Two apps with default queues,
/// one of them with `max_payload = 4096`, and the kernel's OTA and time services need about
/// 52 KiB (53 231 B); the rest is room for the kernel's tables to grow without breaking every
/// manifest that relies on the default. Boards size the heap from the worst case, not from
/// this budget, so the room costs no RAM.
pub const DEFAULT_KERNEL_RAM_BUDGET: u32 = 57_344;
/// Largest `kernel.ram_budget`: the nRF9160's 256 KiB of RAM.
pub const KERNEL_RAM_BUDGET_MAX: u32 = 262_144;
/// `flash.size` when the manifest says nothing: the nRF9160's 1 MiB.
pub const DEFAULT_FLASH_SIZE: u32 = 0x10_0000;
/// `flash.erase_page` when the manifest says nothing: the nRF9160 NVMC's 4 KiB page.
pub const DEFAULT_FLASH_ERASE_PAGE: u32 = 4096;
/// Smallest `flash.erase_page` (one 32-bit word).
pub const MIN_FLASH_ERASE_PAGE: u32 = 4;
/// `flash.write_size` when the manifest says nothing: the nRF9160 NVMC writes 32-bit words.
pub const DEFAULT_FLASH_WRITE_SIZE: u32 = 4;
/// `flash.bootloader.size` when the manifest says nothing (rounded up to whole erase pages):
/// 32 KiB, room for embassy-boot (about 8 KiB, 24 KiB to debug it with probe-rs, per its
/// README) with a margin.
pub const DEFAULT_BOOTLOADER_SIZE: u32 = 0x8000;
/// Erase pages of `[flash.credentials]` when the manifest says nothing (at the end of the
/// flash: offset 0xFC000, size 0x4000 with the defaults).
pub const DEFAULT_CREDENTIALS_PAGES: u32 = 4;
/// Fewest erase pages of `[flash.credentials]`: the store writes a new record to one page
/// before erasing the other, so a power cut never loses both.
pub const MIN_CREDENTIALS_PAGES: u32 = 2;
/// `firmware.version` when the manifest says nothing.
pub const DEFAULT_FIRMWARE_VERSION: &str = "1.0.0";
/// `firmware.module` when the manifest says nothing: the platform's default module, whose
/// version is the whole device's.
pub const DEFAULT_FIRMWARE_MODULE: &str = "default";
/// Longest `firmware.version`.
pub const MAX_FIRMWARE_VERSION_LEN: usize = 64;
/// Longest `firmware.module`.
pub const MAX_FIRMWARE_MODULE_LEN: usize = 64;
/// The one region where the platform offers registration without pre-registration
/// (`auth.mode = "regnwl"`, spec §2.1 "Limits").
pub const REGNWL_REGION: &str = "cn-shanghai";
/// `modem.security_tag` when the manifest says nothing.
pub const DEFAULT_MODEM_SECURITY_TAG: u32 = 42;
/// Largest `modem.security_tag`: the modem reserves the tags above it (Nordic's own).
pub const MAX_MODEM_SECURITY_TAG: u32 = 2_147_483_647;
/// `auth.https_port` when the manifest says nothing.
pub const DEFAULT_HTTPS_PORT: u16 = 443;

/// Result of a validation step.
pub(crate) type Result<T> = std::result::Result<T, ManifestError>;

/// A field error as an `Err`, the shape every check returns.
pub(crate) fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(ManifestError::field(field, message))
}

/// Checks everything and resolves relative paths against `base_dir`.
pub(crate) fn validate(raw: RawManifest, base_dir: &Path) -> Result<Manifest> {
    let base_dir = std::path::absolute(base_dir).map_err(|e| {
        ManifestError::field(
            "",
            format!("cannot make the manifest's directory absolute: {e}"),
        )
    })?;
    let base_dir = normalize(&base_dir);
    let device = device::device(&raw.device)?;
    let endpoint = endpoint::endpoint(&raw.endpoint, &device.product_key)?;
    let mqtt = endpoint::mqtt(&raw.mqtt)?;
    let tls = endpoint::tls(&raw.tls, &base_dir)?;
    // After the endpoint and TLS: registration depends on both.
    let auth = auth::auth(&raw.auth, &base_dir, &endpoint, &tls)?;
    let firmware = firmware::firmware(&raw.firmware)?;
    let modem = modem::modem(&raw.modem)?;
    let flash = flash::flash(&raw.flash)?;
    let kernel = Kernel {
        ram_budget: budget::kernel(&raw.kernel)?,
    };
    let mut topics = apps::topics(&raw, &device)?;
    // Before the apps: the thing model's topics join the grants its app's budget counts.
    let thing = raw
        .thing_model
        .as_ref()
        .map(|t| thing_model::thing_model(t, &base_dir, &device, &raw.apps))
        .transpose()?;
    let thing_grants = thing.as_ref().map(|t| apps::ExtraGrants {
        app: t.config.app,
        topics: &t.topics,
    });
    let apps = apps::apps(&raw.apps, &topics, thing_grants)?;
    budget::total(&apps, mqtt.version, kernel.ram_budget)?;
    let thing_model = thing.map(|t| {
        topics.extend(t.topics);
        t.config
    });
    Ok(Manifest {
        base_dir,
        device,
        auth,
        endpoint,
        mqtt,
        tls,
        firmware,
        modem,
        thing_model,
        flash,
        kernel,
        topics,
        apps,
    })
}
/// Resolves `path` against the manifest's directory; the result must be valid UTF-8 because
/// it is written into generated Rust source.
pub(crate) fn resolve(base_dir: &Path, path: &str, field: &str) -> Result<PathBuf> {
    let joined = normalize(&base_dir.join(path));
    if joined.to_str().is_none() {
        return err(
            field,
            "the resolved path is not valid UTF-8; allowed: UTF-8 paths",
        );
    }
    Ok(joined)
}

/// Drops `.` components (`/a/./b` → `/a/b`); `..` is kept because it may cross a symlink.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// `[a-z]` then `[a-z0-9_]`, at most `max` characters: usable as a Rust module name and,
/// upper-cased, as a constant name.
pub(crate) fn is_ident(name: &str, max: usize) -> bool {
    name.len() <= max
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Rust keywords (strict and reserved): an app name becomes a module name in generated code.
pub(crate) const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];
