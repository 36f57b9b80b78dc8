//! Power-fail-safe storage of the login material a 一型一密 registration issued.
//!
//! The platform issues a DeviceSecret (or a clientId + device token) once; after the device
//! has logged in with it, it will not register the device again (spec §2.1, "Secret is
//! returned once"). So the material is written here, and read back, before it is used, and no
//! power cut may lose it: after a cut in the middle of [`CredentialStore::save`], the next boot
//! reads either the complete old record or the complete new one.
//!
//! # Why `sequential-storage`
//!
//! The partition is a `sequential-storage` [`map`](sequential_storage::map) with one key. Its
//! map is built for exactly this: items are appended (never rewritten in place, so no word is
//! written twice and a plain `NorFlash` suffices), each carries a CRC over its length and one
//! over its data, a torn item is skipped, and the page state words let it finish or undo a page
//! rotation that a cut interrupted (its "auto repair"). A hand-made journal would need the same
//! three things (two slots or an append log, CRCs, a recovery rule for half-erased pages) and
//! its own power-cut proof; the crate has those, is used in production and is tested with power
//! cuts by its authors.
//!
//! This module's tests cut the power at every flash word of a save (from an empty partition and
//! through full turns of the pages), of the repair the next load makes, of a wipe, and of the
//! save after a cut wipe, on a mock flash written here (not the crate's own, so the crate is
//! checked against the `NorFlash` contract rather than its own model of it; a torn word gets
//! random bits). Saves held; the crate's whole-range `erase_all` did not (an older copy came
//! back, or the next save wrote over a half-erased page), so [`CredentialStore::wipe`] erases
//! page by page, oldest first, and each save first erases pages left half-erased
//! (`store/pages.rs`).
//!
//! The crate's in-flash layout is stable within a major version (its README); moving to
//! another major version needs a migration of this partition.
//!
//! # Record
//!
//! One item under key [`CREDENTIALS_KEY`], whose value is the versioned record described in
//! `store/record.rs` (version byte first, then kind, ProductKey, DeviceName, clientId and the
//! secret or token, each length-prefixed and capped). Flash used per record: the crate's item
//! header (8 bytes), then the key byte and the record padded to the flash word. A DeviceSecret
//! record for an 11-character ProductKey, a 16-character DeviceName and a 32-character secret
//! is 65 bytes, so 8 + 68 = 76 bytes on a 4-byte-word flash; the largest record (262 bytes)
//! takes 8 + 264 = 272.
//!
//! A record whose version this firmware does not know, or whose fields do not parse, loads as
//! [`StoreError::Corrupt`], not as "nothing stored": a newer firmware may have written it and
//! may be able to read it again after an upgrade, so the caller should not overwrite it
//! without deciding to (a re-registration would be refused anyway once the device is
//! activated). The same error is returned when the partition itself is beyond the crate's
//! repair (for example garbage that was never a map); [`CredentialStore::wipe`] makes it
//! usable again.
//!
//! # Memory and secrets
//!
//! The store owns two fixed buffers: the encoded record ([`MAX_RECORD`] bytes) and the
//! crate's work buffer ([`WORK_BUFFER`] bytes), so nothing is sized by what is on flash. Both
//! are zeroized after every operation, whatever its result. On flash, a replaced record stays
//! readable until its page is erased by a later rotation; [`CredentialStore::wipe`] erases the
//! whole partition.
//!
//! The boards' flashes are blocking; wrap them in [`BlockingFlash`].

mod blocking;
mod factory;
mod pages;
mod record;
#[cfg(test)]
mod tests;

use core::fmt;
use core::ops::Range;

use embedded_storage_async::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};
use zeroize::Zeroize;

pub use blocking::BlockingFlash;
pub use factory::{FACTORY_LAYOUT, FACTORY_MAGIC, factory_record, read_factory};
pub use record::{
    FORMAT_VERSION, MAX_CLIENT_ID, MAX_DEVICE_NAME, MAX_PRODUCT_KEY, MAX_RECORD, MAX_SECRET,
};

use crate::config::FlashPartition;
use crate::quoted::Quoted;
use crate::registration::StoredCredentials;

/// The map key the credentials record is stored under (the only key in the partition).
pub const CREDENTIALS_KEY: u8 = 0x01;

/// Size of the crate's work buffer: the key byte and the largest record, padded to the
/// largest flash word the crate supports (32 bytes), fit with room to spare.
pub const WORK_BUFFER: usize = 512;

/// Why the store failed. The messages name no secret (the store never prints one).
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The flash reported an error (including a power cut in the middle of an operation).
    Flash,
    /// The partition holds something this firmware cannot read: a record of an unknown
    /// version or with fields that do not parse, or a map beyond repair.
    Corrupt,
    /// A field is longer than the record allows (nothing was written).
    TooLarge,
    /// The partition does not suit the flash: not aligned to its erase page, fewer than two
    /// pages, outside the flash, a page too small for two records, or an erase page that
    /// differs from the flash's.
    BadPartition,
    /// The record was written but did not read back equal.
    ReadBack,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Flash => "credential store: flash error",
            StoreError::Corrupt => "credential store: the partition holds an unreadable record",
            StoreError::TooLarge => "credential store: a field is too long to store",
            StoreError::BadPartition => {
                "credential store: the partition does not fit the flash (alignment, size, bounds)"
            }
            StoreError::ReadBack => "credential store: the record did not read back as written",
        })
    }
}

impl core::error::Error for StoreError {}

/// What [`crate::credentials::RegisteredLogin`] stores through.
impl<F: NorFlash> crate::credentials::CredentialStorage for CredentialStore<F> {
    type Error = StoreError;

    async fn load(
        &mut self,
        product_key: &str,
        device_name: &str,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        CredentialStore::load(self, product_key, device_name).await
    }

    async fn save(&mut self, creds: &StoredCredentials) -> Result<(), StoreError> {
        CredentialStore::save(self, creds).await
    }
}

type Map<F> = MapStorage<u8, F, Cache<Uncached, Uncached, Uncached, u8>>;

/// The crate needs its work buffer aligned like a flash word (nRF9160 NVMC: 4 bytes).
#[repr(C, align(4))]
struct WorkBuffer([u8; WORK_BUFFER]);

/// The credentials partition.
pub struct CredentialStore<F: NorFlash> {
    map: Map<F>,
    record: [u8; MAX_RECORD],
    work: WorkBuffer,
}

impl<F: NorFlash> CredentialStore<F> {
    /// A store over `partition` of `flash`. Reads nothing; fails with `BadPartition` when the
    /// partition does not suit the flash (see [`StoreError::BadPartition`]).
    pub fn new(flash: F, partition: FlashPartition) -> Result<Self, StoreError> {
        let range = check_partition(
            &partition,
            F::ERASE_SIZE,
            F::READ_SIZE.max(F::WRITE_SIZE),
            flash.capacity(),
            Map::<F>::item_overhead_size(),
        )?;
        let config = MapConfig::<F>::try_new(range).map_err(|e| {
            log_warn!("credential store: partition refused: {:?}", e);
            StoreError::BadPartition
        })?;
        Ok(Self {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            record: [0; MAX_RECORD],
            work: WorkBuffer([0; WORK_BUFFER]),
        })
    }

    /// The credentials stored for `product_key`/`device_name`. `Ok(None)` when nothing is
    /// stored, or when what is stored belongs to another device (logged, with the names only).
    pub async fn load(
        &mut self,
        product_key: &str,
        device_name: &str,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        let result = self.load_inner(product_key, device_name).await;
        self.work.0.zeroize();
        result
    }

    async fn load_inner(
        &mut self,
        product_key: &str,
        device_name: &str,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        let fetched = self
            .map
            .fetch_item::<&[u8]>(&mut self.work.0, &CREDENTIALS_KEY)
            .await
            .map_err(map_error)?;
        let Some(bytes) = fetched else {
            return Ok(None);
        };
        Ok(for_device(record::decode(bytes)?, product_key, device_name))
    }

    /// Stores `creds` in place of what was stored, then reads the partition back and compares
    /// the record byte for byte (`ReadBack` if it differs). A field over its cap fails with
    /// `TooLarge` before anything is written. A power cut leaves the old record or the new one.
    ///
    /// Before writing, erases any page an interrupted erase left half done (see `wipe`).
    pub async fn save(&mut self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let result = self.save_inner(creds).await;
        self.record.zeroize();
        self.work.0.zeroize();
        result
    }

    async fn save_inner(&mut self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let len = record::encode(creds, &mut self.record)?;
        let written = self.record.get(..len).ok_or(StoreError::TooLarge)?;
        let range = self.map.flash_range();
        pages::scrub(self.map.flash(), range, &mut self.work.0)
            .await
            .map_err(|e| {
                log_warn!("credential store: flash error: {}", flash_error_kind(&e));
                StoreError::Flash
            })?;
        self.map
            .store_item(&mut self.work.0, &CREDENTIALS_KEY, &written)
            .await
            .map_err(map_error)?;
        let read = self
            .map
            .fetch_item::<&[u8]>(&mut self.work.0, &CREDENTIALS_KEY)
            .await
            .map_err(map_error)?;
        if read == Some(written) {
            Ok(())
        } else {
            log_warn!("credential store: the record did not read back as written");
            Err(StoreError::ReadBack)
        }
    }

    /// Erases the whole partition: the stored credentials, and every older copy, are gone.
    /// Cut short by a power loss, it leaves the stored record or nothing (never an older
    /// copy), and a partition the next save can write to (see `store/pages.rs`).
    pub async fn wipe(&mut self) -> Result<(), StoreError> {
        let range = self.map.flash_range();
        pages::wipe(self.map.flash(), range).await.map_err(|e| {
            log_warn!(
                "credential store: flash error while wiping: {}",
                flash_error_kind(&e)
            );
            StoreError::Flash
        })
    }

    /// The flash back (tests, and boards that share it).
    pub fn into_flash(self) -> F {
        self.map.destroy().0
    }
}

/// A board whose login secret is provisioned at the factory keeps it apart from what a
/// registration stores: the credentials partition splits into a **provisioned** lower half
/// (written by the provisioning tool, never by the firmware: the DeviceSecret, or the
/// ProductSecret for 一型一密, as a DeviceSecret-kind record of the device's names) and a
/// **registered** upper half (what [`crate::credentials::RegisteredLogin`] stores). Two stores
/// rather than two keys in one, because a store keeps exactly one record (its page checks and
/// power-cut tests assume it) and the firmware must never overwrite the factory secret.
/// `None` when the partition has fewer than 4 erase pages (each half needs 2).
pub fn provisioned_and_registered(p: FlashPartition) -> Option<(FlashPartition, FlashPartition)> {
    let pages = p.size.checked_div(p.erase_page)?;
    if pages < 4 {
        return None;
    }
    let low = (pages / 2) * p.erase_page;
    let provisioned = FlashPartition { size: low, ..p };
    let registered = FlashPartition {
        offset: p.offset.checked_add(low)?,
        size: p.size - low,
        ..p
    };
    Some((provisioned, registered))
}

/// `creds` if they are for `product_key`/`device_name`; else `None`, logged (a partition
/// flashed for another device, or the manifest changed since).
fn for_device(
    creds: StoredCredentials,
    product_key: &str,
    device_name: &str,
) -> Option<StoredCredentials> {
    if creds.product_key == product_key && creds.device_name == device_name {
        return Some(creds);
    }
    log_warn!(
        "credential store: the stored credentials are for {}/{}, not {}/{}; ignored",
        crate::logging::Disp(&Quoted(&creds.product_key)),
        crate::logging::Disp(&Quoted(&creds.device_name)),
        crate::logging::Disp(&Quoted(product_key)),
        crate::logging::Disp(&Quoted(device_name))
    );
    None
}

/// The crate's error as ours. Only `Storage` and `Corrupted` can happen on a partition that
/// passed [`check_partition`] (the record always fits the buffer and a page, and one key can
/// never fill two pages); the others are reported as `Corrupt` rather than trusted away.
fn map_error<E: NorFlashError>(error: sequential_storage::Error<E>) -> StoreError {
    use sequential_storage::Error;
    let why = match error {
        Error::Storage { value, .. } => {
            log_warn!(
                "credential store: flash error: {}",
                flash_error_kind(&value)
            );
            return StoreError::Flash;
        }
        Error::Corrupted { .. } => "corrupted",
        Error::FullStorage => "full",
        Error::LogicBug { .. } => "logic bug",
        Error::BufferTooBig | Error::BufferTooSmall(_) => "buffer size",
        Error::SerializationError(_) => "serialization",
        Error::ItemTooBig => "item too big",
        _ => "other",
    };
    log_warn!("credential store: {}", why);
    StoreError::Corrupt
}

/// A flash error by its kind: the board's error types need no `Debug` or `defmt::Format`
/// (logging.rs).
fn flash_error_kind(error: &impl NorFlashError) -> &'static str {
    match error.kind() {
        NorFlashErrorKind::NotAligned => "not aligned",
        NorFlashErrorKind::OutOfBounds => "out of bounds",
        _ => "other",
    }
}

/// The partition's flash range, if it suits a flash with these sizes:
/// - its erase page is the flash's, offset and size are multiples of it, at least two pages,
///   inside the flash;
/// - a page holds two of the largest items after its two state words (a page rotation copies
///   the live record next to the one being written, so one record per page would never fit);
/// - the work buffer holds the largest item padded to the word.
fn check_partition(
    partition: &FlashPartition,
    erase_size: usize,
    word_size: usize,
    capacity: usize,
    item_overhead: u32,
) -> Result<Range<u32>, StoreError> {
    let bad = |why: &str| {
        log_warn!("credential store: bad partition {:?}: {}", partition, why);
        StoreError::BadPartition
    };
    let page = u32::try_from(erase_size).map_err(|_| bad("erase page too large"))?;
    if page == 0 || partition.erase_page != page {
        return Err(bad("erase page differs from the flash's"));
    }
    if !partition.offset.is_multiple_of(page) || !partition.size.is_multiple_of(page) {
        return Err(bad("not aligned to the erase page"));
    }
    if partition.size / page < 2 {
        return Err(bad("fewer than two pages"));
    }
    let end = partition
        .offset
        .checked_add(partition.size)
        .ok_or_else(|| bad("past the end of the address space"))?;
    let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
    if end > capacity {
        return Err(bad("past the end of the flash"));
    }
    let item_data = (1 + MAX_RECORD).next_multiple_of(word_size.max(1));
    if item_data > WORK_BUFFER {
        return Err(bad("flash word too large for the work buffer"));
    }
    let item = usize::try_from(item_overhead)
        .ok()
        .and_then(|overhead| overhead.checked_add(item_data))
        .and_then(|item| item.checked_mul(2))
        .ok_or_else(|| bad("item size overflows"))?;
    let page_room = erase_size.saturating_sub(word_size.saturating_mul(2));
    if page_room < item {
        return Err(bad("erase page too small for two records"));
    }
    Ok(partition.offset..end)
}
