//! `[flash]`: the flash's size, erase page and write size, and its partitions: the boot stage,
//! the two firmware slots and the boot state for OTA, and the credentials a 一型一密
//! registration returned (spec §2.1 "persist ... before the first real CONNECT").
//!
//! The checks run over the list of named partitions: each must be page-aligned and inside the
//! flash, and no two may share a page (an erase of one would wipe the other). On top of that,
//! the slots must suit embassy-boot's swap (0.7, `boot_loader.rs` `assert_partitions`, which
//! panics at boot otherwise): the DFU (`update`) partition at least one erase page larger than
//! the active one (its README: "This partition must be at least 1 page bigger than the ACTIVE
//! partition"), and the state partition room for `2 + 4 × active pages` words of the flash's
//! write size (a magic, a progress-validity word and two progress words per page for the swap
//! and two for a revert).
//!
//! Defaults reproduce the nRF9160 layout of 1 MiB with 4 KiB pages (bootloader 0x0/0x8000,
//! active 0x8000/0x79000, update 0x81000/0x7A000, boot state 0xFB000/0x1000, credentials
//! 0xFC000/0x4000) and follow the values given: the credentials take the last pages, the boot
//! state the pages below them, and the active and update slots share the free pages after the
//! bootloader, the update slot one page larger.

use super::{
    DEFAULT_BOOTLOADER_SIZE, DEFAULT_CREDENTIALS_PAGES, DEFAULT_FLASH_ERASE_PAGE,
    DEFAULT_FLASH_SIZE, DEFAULT_FLASH_WRITE_SIZE, MIN_CREDENTIALS_PAGES, MIN_FLASH_ERASE_PAGE,
    Result, err,
};
use crate::model::{Flash, Partition};
use crate::raw::{RawFlash, RawPartition};

/// A partition as the manifest gives it, before its checks: its table's dotted path, the
/// values written (or defaulted), and the fewest erase pages it may have.
struct Requested<'a> {
    field: &'a str,
    offset: i64,
    size: i64,
    min_pages: u32,
    /// How the offset was defaulted, when it was (said in the message).
    offset_default: Option<&'static str>,
    /// How the size was defaulted, when it was (said in the message).
    size_default: Option<String>,
}

/// `raw`'s values, each defaulted when missing: the size to `size.0` (described by `size.1`),
/// then the offset to `offset.0(size)` (described by `offset.1`).
fn requested<'a>(
    field: &'a str,
    raw: &RawPartition,
    min_pages: u32,
    size: (i64, String),
    offset: (impl FnOnce(i64) -> i64, &'static str),
) -> Requested<'a> {
    let value = raw.size.unwrap_or(size.0);
    Requested {
        field,
        offset: raw.offset.unwrap_or_else(|| offset.0(value)),
        size: value,
        min_pages,
        offset_default: raw.offset.is_none().then_some(offset.1),
        size_default: raw.size.is_none().then_some(size.1),
    }
}

pub(super) fn flash(raw: &RawFlash) -> Result<Flash> {
    let page = erase_page(raw.erase_page)?;
    let write_size = write_size(raw.write_size, page)?;
    let size = flash_size(raw.size, page)?;
    let (flash_end, page_i) = (i64::from(size), i64::from(page));
    // Defaults are computed in i64 with saturating arithmetic: the values come from the
    // manifest and may be anything TOML allows; `partition` then refuses what does not fit.
    let credentials = partition(
        &requested(
            "flash.credentials",
            &raw.credentials,
            MIN_CREDENTIALS_PAGES,
            (
                i64::from(DEFAULT_CREDENTIALS_PAGES) * page_i,
                format!("{DEFAULT_CREDENTIALS_PAGES} erase pages"),
            ),
            (
                |s: i64| flash_end.saturating_sub(s),
                "flash.size - flash.credentials.size, the end of the flash",
            ),
        ),
        size,
        page,
    )?;
    let bootloader = partition(
        &requested(
            "flash.bootloader",
            &raw.bootloader,
            1,
            (
                i64::from(DEFAULT_BOOTLOADER_SIZE.next_multiple_of(page)),
                format!(
                    "{} rounded up to whole erase pages",
                    shown(DEFAULT_BOOTLOADER_SIZE.into())
                ),
            ),
            (|_| 0, "the start of the flash"),
        ),
        size,
        page,
    )?;
    if bootloader.offset != 0 {
        // The Cortex-M33 takes its initial stack pointer and reset vector from the start of
        // the flash (address 0 on the nRF9160), so the first stage to run must be there.
        return err(
            "flash.bootloader.offset",
            format!(
                "{} is not allowed; allowed: 0 (after a reset the nRF9160 starts the image at the start of the flash, and the bootloader must run first)",
                shown(bootloader.offset.into())
            ),
        );
    }
    let boot_state = partition(
        &requested(
            "flash.boot_state",
            &raw.boot_state,
            1,
            (
                i64::from(default_state_pages(size, page, write_size)) * page_i,
                "room for the swap progress of an active slot of half the flash".to_owned(),
            ),
            (
                |s: i64| i64::from(credentials.offset).saturating_sub(s),
                "just below flash.credentials",
            ),
        ),
        size,
        page,
    )?;
    let placed = [bootloader, boot_state, credentials];
    let active = partition(
        &requested(
            "flash.active",
            &raw.active,
            1,
            {
                let offset = raw
                    .active
                    .offset
                    .unwrap_or_else(|| i64::try_from(bootloader.end()).unwrap_or(i64::MAX));
                // Half the free pages up to the next partition (or the end of the flash), less
                // the one page by which the update slot is larger.
                let room = next_start(offset, &placed, size).saturating_sub(offset);
                let pages = (room.div_euclid(page_i) - 1).div_euclid(2);
                (
                    pages.saturating_mul(page_i),
                    "half the free pages from flash.active.offset to the next partition, less one"
                        .to_owned(),
                )
            },
            (
                |_| i64::try_from(bootloader.end()).unwrap_or(i64::MAX),
                "just after flash.bootloader",
            ),
        ),
        size,
        page,
    )?;
    let update = partition(
        &requested(
            "flash.update",
            &raw.update,
            1,
            (
                i64::from(active.size).saturating_add(page_i),
                "flash.active.size + one erase page".to_owned(),
            ),
            (
                |_| i64::try_from(active.end()).unwrap_or(i64::MAX),
                "just after flash.active",
            ),
        ),
        size,
        page,
    )?;
    no_overlap(&[
        ("flash.bootloader", bootloader),
        ("flash.active", active),
        ("flash.update", update),
        ("flash.boot_state", boot_state),
        ("flash.credentials", credentials),
    ])?;
    swap_fits(active, update, boot_state, page, write_size)?;
    Ok(Flash {
        size,
        erase_page: page,
        write_size,
        bootloader,
        active,
        update,
        boot_state,
        credentials,
    })
}

/// embassy-boot's requirements on the slots (0.7, `boot_loader.rs`, `assert_partitions`): the
/// update (DFU) slot at least one erase page larger than the active one, for the swap; the
/// boot state room for `2 + 4 × active pages` words of `write_size` bytes.
fn swap_fits(
    active: Partition,
    update: Partition,
    boot_state: Partition,
    page: u32,
    write_size: u32,
) -> Result<()> {
    let least = u64::from(active.size) + u64::from(page);
    if u64::from(update.size) < least {
        return err(
            "flash.update.size",
            format!(
                "{} is too small for flash.active.size ({}); allowed: at least flash.active.size + flash.erase_page ({}): embassy-boot's swap needs the update slot one erase page larger than the active one",
                shown(update.size.into()),
                shown(active.size.into()),
                shown_u64(least)
            ),
        );
    }
    let pages = active.size / page;
    let needed = state_bytes(pages, write_size);
    if u64::from(boot_state.size) < needed {
        return err(
            "flash.boot_state.size",
            format!(
                "{} is too small for the swap progress of flash.active ({pages} pages): embassy-boot needs (2 + 4 x {pages}) x flash.write_size ({write_size}) = {needed} bytes; allowed: a multiple of flash.erase_page ({page}) of at least {}",
                shown(boot_state.size.into()),
                shown_u64(needed.next_multiple_of(u64::from(page)))
            ),
        );
    }
    Ok(())
}

/// Bytes embassy-boot's state needs for an active slot of `pages` erase pages: a magic word,
/// a progress-validity word, and two progress words per page for the swap and two for a revert.
fn state_bytes(pages: u32, write_size: u32) -> u64 {
    (2 + 4 * u64::from(pages)) * u64::from(write_size)
}

/// Default erase pages of the boot state: enough for an active slot of half the flash (the
/// largest the two slots allow), so that any default slot fits. One page on the nRF9160.
fn default_state_pages(flash_size: u32, page: u32, write_size: u32) -> u32 {
    let bytes = state_bytes(flash_size / page / 2, write_size);
    u32::try_from(bytes.div_ceil(u64::from(page))).unwrap_or(u32::MAX)
}

/// The first offset at or after `from` where one of `placed` starts, or the end of the flash.
fn next_start(from: i64, placed: &[Partition], flash_size: u32) -> i64 {
    placed
        .iter()
        .map(|p| i64::from(p.offset))
        .filter(|o| *o >= from)
        .chain([i64::from(flash_size)])
        .min()
        .unwrap_or(i64::from(flash_size))
}

/// `flash.erase_page`: a power of two, at least [`MIN_FLASH_ERASE_PAGE`].
fn erase_page(value: Option<i64>) -> Result<u32> {
    let Some(v) = value else {
        return Ok(DEFAULT_FLASH_ERASE_PAGE);
    };
    match u32::try_from(v) {
        Ok(p) if p >= MIN_FLASH_ERASE_PAGE && p.is_power_of_two() => Ok(p),
        _ => err(
            "flash.erase_page",
            format!(
                "{v} is not allowed; allowed: a power of two, at least {MIN_FLASH_ERASE_PAGE} bytes; default {DEFAULT_FLASH_ERASE_PAGE} (the nRF9160 NVMC's page)"
            ),
        ),
    }
}

/// `flash.write_size`: a power of two, at most the erase page.
fn write_size(value: Option<i64>, page: u32) -> Result<u32> {
    let v = value.unwrap_or(DEFAULT_FLASH_WRITE_SIZE.into());
    match u32::try_from(v) {
        Ok(w) if w.is_power_of_two() && w <= page => Ok(w),
        _ => err(
            "flash.write_size",
            format!(
                "{v} is not allowed; allowed: a power of two, at most flash.erase_page ({page}); default {DEFAULT_FLASH_WRITE_SIZE} (the nRF9160 NVMC writes 32-bit words)"
            ),
        ),
    }
}

/// `flash.size`: a positive multiple of the erase page that fits 32-bit addresses.
fn flash_size(value: Option<i64>, page: u32) -> Result<u32> {
    let default = DEFAULT_FLASH_SIZE;
    let Some(v) = value else {
        // A power of two, so a multiple of every erase page up to itself.
        if default.is_multiple_of(page) {
            return Ok(default);
        }
        return err(
            "flash.size",
            format!(
                "the default {} (the nRF9160's 1 MiB) is not a multiple of flash.erase_page ({page}); give flash.size",
                shown(default.into()),
            ),
        );
    };
    match u32::try_from(v) {
        Ok(s) if s > 0 && s.is_multiple_of(page) => Ok(s),
        _ => err(
            "flash.size",
            format!(
                "{} is not allowed; allowed: a positive multiple of flash.erase_page ({page}) below 4 GiB; default {} (the nRF9160's 1 MiB)",
                shown(v),
                shown(default.into())
            ),
        ),
    }
}

/// Checks one partition: page-aligned, at least its minimum of pages, inside the flash.
fn partition(p: &Requested<'_>, flash_size: u32, page: u32) -> Result<Partition> {
    let field = p.field;
    let min = i64::from(p.min_pages) * i64::from(page);
    let size = match u32::try_from(p.size) {
        Ok(s) if i64::from(s) >= min && s.is_multiple_of(page) && s <= flash_size => s,
        _ => {
            let value = match &p.size_default {
                Some(why) => format!("the default {} ({why})", shown(p.size)),
                None => shown(p.size),
            };
            let pages = if p.min_pages == 1 { "page" } else { "pages" };
            return err(
                format!("{field}.size"),
                format!(
                    "{value} is not allowed; allowed: a multiple of flash.erase_page ({page}), at least {} {pages} ({}) and at most flash.size ({})",
                    p.min_pages,
                    shown(min),
                    shown(flash_size.into())
                ),
            );
        }
    };
    let offset = match u32::try_from(p.offset) {
        Ok(o) if o.is_multiple_of(page) => o,
        _ => {
            let value = match p.offset_default {
                Some(why) => format!("the default {} ({why})", shown(p.offset)),
                None => shown(p.offset),
            };
            return err(
                format!("{field}.offset"),
                format!(
                    "{value} is not allowed; allowed: a multiple of flash.erase_page ({page}), in bytes from the start of the flash"
                ),
            );
        }
    };
    let end = u64::from(offset) + u64::from(size);
    if end > u64::from(flash_size) {
        return err(
            field,
            format!(
                "offset {} + size {} ends at {}, past the end of the flash (flash.size = {}); allowed: a partition inside the flash",
                shown(offset.into()),
                shown(size.into()),
                shown_u64(end),
                shown(flash_size.into())
            ),
        );
    }
    Ok(Partition { offset, size })
}

/// Checks that no two of the (already checked) partitions overlap; the error names the later
/// one's table and the earlier one it runs into.
fn no_overlap(list: &[(&str, Partition)]) -> Result<()> {
    let end = |p: &Partition| u64::from(p.offset) + u64::from(p.size);
    for (i, (field, p)) in list.iter().enumerate() {
        for (earlier, q) in list.iter().take(i) {
            if u64::from(p.offset) < end(q) && u64::from(q.offset) < end(p) {
                return err(
                    *field,
                    format!(
                        "{}..{} overlaps {earlier} ({}..{}); allowed: partitions that share no erase page",
                        shown(p.offset.into()),
                        shown_u64(end(p)),
                        shown(q.offset.into()),
                        shown_u64(end(q))
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A flash address or size as users write them: hexadecimal (negative ones in decimal).
/// Erase pages are shown in decimal (`4096`), as the manifest's defaults write them.
fn shown(v: i64) -> String {
    if v < 0 {
        v.to_string()
    } else {
        format!("{v:#X}")
    }
}

fn shown_u64(v: u64) -> String {
    format!("{v:#X}")
}

#[cfg(test)]
mod tests {
    use super::no_overlap;
    use crate::model::Partition;

    fn part(offset: u32, size: u32) -> Partition {
        Partition { offset, size }
    }

    #[test]
    fn partitions_that_share_a_page_are_refused() {
        let credentials = ("flash.credentials", part(0xFC000, 0x4000));
        no_overlap(&[credentials, ("flash.slot", part(0xF0000, 0xC000))])
            .expect("adjacent partitions are fine");
        let e = no_overlap(&[credentials, ("flash.slot", part(0xF0000, 0xD000))])
            .expect_err("one shared page");
        assert_eq!(
            e.to_string(),
            "flash.slot: 0xF0000..0xFD000 overlaps flash.credentials (0xFC000..0x100000); allowed: partitions that share no erase page"
        );
        // Containment is overlap too, whichever comes first.
        let big = ("flash.big", part(0, 0x10_0000));
        let small = ("flash.small", part(0x2000, 0x2000));
        let e = no_overlap(&[big, small]).expect_err("inside another");
        assert_eq!(e.field_path(), Some("flash.small"));
        let e = no_overlap(&[small, big]).expect_err("around another");
        assert_eq!(e.field_path(), Some("flash.big"));
        // The last pages of a 4 GiB flash do not wrap around.
        no_overlap(&[
            ("flash.a", part(0xFFFF_E000, 0x2000)),
            ("flash.b", part(0, 0x2000)),
        ])
        .expect("no wrap-around");
    }
}
