//! The device manifest: one TOML file decides a deployment (identity, auth and registration,
//! endpoint, MQTT, TLS, flash layout, the kernel's RAM budget, topics, apps). This crate reads it, validates it (unknown fields rejected; every error
//! names the field and says what is allowed) and generates Rust constants for the kernel and
//! the apps, and linker regions for the flash layout, from build scripts.
//!
//! A build script is one line:
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     aliot_manifest::emit_generated("device_config.rs", aliot_manifest::generate_kernel_config)
//! }
//! ```

mod build;
mod env;
mod error;
mod features;
mod generate;
mod image;
mod layout;
mod linker;
mod model;
pub mod power;
mod ram;
mod raw;
pub mod thing_api;
pub mod thing_topics;
mod topic;
pub mod tsl;
mod validate;

use std::path::Path;

pub use aliot_kernel::budget::{AppBudget, RamReport};
pub use build::{emit_generated, emit_generated_files, flash_x, use_board_memory_x};
pub use env::{
    MANIFEST_ENV, default_manifest_path, manifest_path_from, manifest_path_from_env,
    rerun_directives, workspace_root,
};
pub use error::ManifestError;
pub use features::{check_kernel_features, kernel_features};
pub use generate::{
    KERNEL_CONFIG_PATH, generate_app_constants, generate_kernel_config, generate_kernel_config_at,
};
pub use image::{
    APP_MIN_STACK, APP_STATIC_RESERVE, AppImage, CortexM33Board, ImageLayout, NRF9160DK_APP_RAM,
    NRF9160DK_KERNEL_RAM, NRF9160DK_MODEM_RAM, NRF9160DK_RAM, QEMU_AN505, Span,
    generate_app_header, generate_app_regions_x, generate_kernel_apps_x, image_layout,
    nrf9160dk_board,
};
pub use layout::{AppRegion, MPU_ALIGN, MemoryLayout, generate_memory_layout, memory_layout};
pub use linker::{IMAGE_HEADER_LEN, Image, generate_memory_x};
pub use model::{
    App, Auth, AuthMode, Device, Direction, Edrx, Endpoint, EndpointKind, Firmware, Flash,
    HttpsEndpoint, Kernel, Manifest, Modem, Mqtt, MqttVersion, Partition, Psm, Registration,
    RestartPolicy, SecretSource, SignMethod, ThingGrants, ThingModelConfig, Tls, Topic,
};
pub use ram::{ram_report, ram_summary};
pub use thing_api::generate_thing_api;
pub use topic::MAX_TOPIC_LEN;
pub use validate::{APP_FLASH_ALIGN, APP_FLASH_MAX, APP_FLASH_MIN, DEFAULT_APP_FLASH};
pub use validate::{
    APP_MEMORY_ALIGN, APP_MEMORY_MAX, APP_MEMORY_MIN, APP_QUEUE_MAX, DEFAULT_KERNEL_RAM_BUDGET,
    DEFAULT_MAX_PAYLOAD, DEFAULT_QUEUE_MESSAGES, KEEPALIVE_RANGE, KERNEL_RAM_BUDGET_MAX,
    MAX_APP_NAME_LEN, MAX_APP_SUBSCRIPTIONS, MAX_CLIENT_ID_LEN,
};
pub use validate::{
    DEFAULT_BOOTLOADER_SIZE, DEFAULT_CREDENTIALS_PAGES, DEFAULT_FIRMWARE_MODULE,
    DEFAULT_FIRMWARE_VERSION, DEFAULT_FLASH_ERASE_PAGE, DEFAULT_FLASH_SIZE,
    DEFAULT_FLASH_WRITE_SIZE, DEFAULT_HTTPS_PORT, DEFAULT_MODEM_SECURITY_TAG,
    MAX_FIRMWARE_MODULE_LEN, MAX_FIRMWARE_VERSION_LEN, MAX_MODEM_SECURITY_TAG,
    MIN_CREDENTIALS_PAGES, MIN_FLASH_ERASE_PAGE, REGNWL_REGION,
};

/// Reads, parses and validates the manifest at `path`; relative paths inside it are resolved
/// against its directory. Errors carry the file's path.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    parse(&text, base_dir).map_err(|e| ManifestError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Parses and validates manifest text; relative paths inside it are resolved against
/// `base_dir`.
pub fn parse(text: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
    let de = toml::Deserializer::parse(text).map_err(|e| ManifestError::Syntax {
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().to_owned(),
    })?;
    let raw: raw::RawManifest =
        serde_path_to_error::deserialize(de).map_err(|e| schema_error(&e))?;
    validate::validate(raw, base_dir)
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(at)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Converts a serde error into a field error; "missing field `x`" gets `x` appended to the
/// path so the message names the missing field itself.
fn schema_error(e: &serde_path_to_error::Error<toml::de::Error>) -> ManifestError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = e.inner().message();
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let field = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return ManifestError::field(field, "required field is missing");
    }
    ManifestError::field(path, plain_types(message))
}

/// Replaces Rust type names in serde's "expected ..." wording with words a manifest author
/// knows.
fn plain_types(message: &str) -> String {
    if message == "wanted string or table" {
        // toml's wording when an enum-valued field gets a number or a boolean.
        return "expected a quoted string (for example version = \"5\", not version = 5)"
            .to_owned();
    }
    let mut out = message.to_owned();
    for ty in ["i64", "u64", "u32", "u16", "i32"] {
        out = out.replace(&format!("expected {ty}"), "expected an integer");
    }
    out
}
