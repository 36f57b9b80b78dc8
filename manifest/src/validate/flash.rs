//! `[flash]`: the flash's size and erase page, and the partitions the kernel writes.
//!
//! Today the only partition is `credentials` (what a 一型一密 registration returned, spec §2.1
//! "persist ... before the first real CONNECT"). OTA slots will join it, so the checks run over
//! a list of named partitions: each must be page-aligned and inside the flash, and no two may
//! share a page (an erase of one would wipe the other).

use super::{
    DEFAULT_CREDENTIALS_PAGES, DEFAULT_FLASH_ERASE_PAGE, DEFAULT_FLASH_SIZE, MIN_CREDENTIALS_PAGES,
    MIN_FLASH_ERASE_PAGE, Result, err,
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
    /// `Some(pages)` when the size is the default of that many pages (said in the message).
    default_pages: Option<u32>,
}

pub(super) fn flash(raw: &RawFlash) -> Result<Flash> {
    let page = erase_page(raw.erase_page)?;
    let size = flash_size(raw.size, page)?;
    let credentials = partition(
        &requested(
            &raw.credentials,
            "flash.credentials",
            size,
            page,
            DEFAULT_CREDENTIALS_PAGES,
            MIN_CREDENTIALS_PAGES,
        ),
        size,
        page,
    )?;
    // Every partition goes in this list (OTA slots next), so no two share an erase page.
    no_overlap(&[("flash.credentials", credentials)])?;
    Ok(Flash {
        size,
        erase_page: page,
        credentials,
    })
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

/// A partition's values with its defaults: `default_pages` erase pages at the end of the flash.
fn requested<'a>(
    raw: &RawPartition,
    field: &'a str,
    flash_size: u32,
    page: u32,
    default_pages: u32,
    min_pages: u32,
) -> Requested<'a> {
    let size = raw
        .size
        .unwrap_or_else(|| i64::from(default_pages) * i64::from(page));
    let offset = raw.offset.unwrap_or(i64::from(flash_size) - size);
    Requested {
        field,
        offset,
        size,
        min_pages,
        default_pages: raw.size.is_none().then_some(default_pages),
    }
}

/// Checks one partition: page-aligned, at least its minimum of pages, inside the flash.
fn partition(p: &Requested<'_>, flash_size: u32, page: u32) -> Result<Partition> {
    let field = p.field;
    let min = i64::from(p.min_pages) * i64::from(page);
    let size = match u32::try_from(p.size) {
        Ok(s) if i64::from(s) >= min && s.is_multiple_of(page) && s <= flash_size => s,
        _ => {
            let value = match p.default_pages {
                Some(n) => format!("the default {} ({n} erase pages)", shown(p.size)),
                None => shown(p.size),
            };
            return err(
                format!("{field}.size"),
                format!(
                    "{value} is not allowed; allowed: a multiple of flash.erase_page ({page}), at least {} pages ({}) and at most flash.size ({})",
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
            return err(
                format!("{field}.offset"),
                format!(
                    "{} is not allowed; allowed: a multiple of flash.erase_page ({page}), in bytes from the start of the flash",
                    shown(p.offset)
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
