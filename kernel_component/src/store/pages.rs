//! Page-level upkeep the crate does not do: erasing the partition so that a power cut at any
//! point leaves the newest record or nothing (never an older copy), and a partition the next
//! save can write to.
//!
//! The crate's own `erase_all` is one erase of the whole range, in address order. Two things
//! go wrong when it is cut short (both found by the wipe power-cut test):
//! - Cut while erasing the page that holds the newest copy, while a page after it still holds
//!   an older copy (the map has wrapped round): the older copy loads again.
//! - Cut in the middle of the page being written (its end state word never set), that page
//!   reads as erased (`Open`) while its tail still holds old items, and the next save writes
//!   over programmed words.
//!
//! So [`wipe`] erases one page at a time, oldest data first (the page after the one being
//! written, round to it), and [`scrub`], run before every save, erases any page that reads as
//! `Open` but is not fully erased. That is always safe: the crate sets a page's start word
//! before it writes anything into it (or copies into it), so an `Open` page never holds live
//! data.
//!
//! This reads the crate's page state words directly. Their layout (the first and the last
//! `READ_SIZE` bytes of each page; a word is set when it holds at least 4 zero bits) is part of
//! the crate's in-flash format, stable within a major version; the power-cut tests check it
//! against the crate in use.

use core::ops::Range;

use embedded_storage_async::nor_flash::NorFlash;

/// The crate's largest supported word (`MAX_WORD_SIZE`); `MapConfig` refuses larger ones.
const MAX_WORD: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Neither state word set: never written since its erase, or erased with leftovers.
    Open,
    /// Start word set, end word not: the page being written.
    Partial,
    /// Both set.
    Closed,
    /// End set, start not: an interrupted erase (the crate erases it again).
    Torn,
}

/// The partition's pages.
struct Pages {
    start: u32,
    page: u32,
    count: u32,
}

impl Pages {
    fn of<F: NorFlash>(range: &Range<u32>) -> Option<Self> {
        let page = u32::try_from(F::ERASE_SIZE).ok()?;
        let count = range.end.checked_sub(range.start)?.checked_div(page)?;
        Some(Self {
            start: range.start,
            page,
            count,
        })
    }

    /// Address of page `index` (modulo the count).
    fn at(&self, index: u32) -> u32 {
        self.start + index.checked_rem(self.count).unwrap_or(0) * self.page
    }
}

/// Erases every page of `range`, oldest data first (see the module doc).
pub async fn wipe<F: NorFlash>(flash: &mut F, range: Range<u32>) -> Result<(), F::Error> {
    let Some(pages) = Pages::of::<F>(&range) else {
        return Ok(());
    };
    let first = oldest_page(flash, &pages).await?;
    for step in 0..pages.count {
        let start = pages.at(first + step);
        flash.erase(start, start + pages.page).await?;
    }
    Ok(())
}

/// Erases every page of `range` that reads as `Open` but is not fully erased.
pub async fn scrub<F: NorFlash>(
    flash: &mut F,
    range: Range<u32>,
    buffer: &mut [u8],
) -> Result<(), F::Error> {
    let Some(pages) = Pages::of::<F>(&range) else {
        return Ok(());
    };
    // Reads in whole read units, as large as the buffer allows.
    let chunk = buffer.len() - buffer.len() % F::READ_SIZE.max(1);
    let Some(buffer) = buffer.get_mut(..chunk) else {
        return Ok(());
    };
    if buffer.is_empty() {
        return Ok(());
    }
    for index in 0..pages.count {
        let start = pages.at(index);
        if state(flash, start, pages.page).await? != State::Open {
            continue;
        }
        let mut at = start;
        let end = start + pages.page;
        while at < end {
            let len = buffer.len().min((end - at) as usize);
            let Some(bytes) = buffer.get_mut(..len) else {
                break;
            };
            flash.read(at, bytes).await?;
            if bytes.iter().any(|b| *b != 0xFF) {
                log_warn!("credential store: erasing leftovers of an interrupted erase");
                flash.erase(start, end).await?;
                break;
            }
            at += len as u32;
        }
    }
    Ok(())
}

/// The page with the oldest data: the one after the page being written; without one, the one
/// after the newest closed page (a closed page followed by one that is not); on nothing
/// recognisable, the first.
async fn oldest_page<F: NorFlash>(flash: &mut F, pages: &Pages) -> Result<u32, F::Error> {
    let mut after_closed = None;
    for index in 0..pages.count {
        let here = state(flash, pages.at(index), pages.page).await?;
        if here == State::Partial {
            return Ok(index + 1);
        }
        if here == State::Closed
            && after_closed.is_none()
            && state(flash, pages.at(index + 1), pages.page).await? != State::Closed
        {
            after_closed = Some(index + 1);
        }
    }
    Ok(after_closed.unwrap_or(0))
}

/// The state of the page at `start`, read as the crate reads it.
async fn state<F: NorFlash>(flash: &mut F, start: u32, page: u32) -> Result<State, F::Error> {
    let start_set = word_set(flash, start).await?;
    let end_set = word_set(flash, start + page - F::READ_SIZE as u32).await?;
    Ok(match (start_set, end_set) {
        (false, false) => State::Open,
        (true, false) => State::Partial,
        (true, true) => State::Closed,
        (false, true) => State::Torn,
    })
}

/// Whether the `READ_SIZE` bytes at `at` hold at least 4 zero bits (the crate's rule).
async fn word_set<F: NorFlash>(flash: &mut F, at: u32) -> Result<bool, F::Error> {
    let mut buffer = [0u8; MAX_WORD];
    let Some(bytes) = buffer.get_mut(..F::READ_SIZE) else {
        return Ok(false);
    };
    flash.read(at, bytes).await?;
    Ok(bytes.iter().map(|b| b.count_zeros()).sum::<u32>() >= 4)
}
