//! The kernel's heap with its peak use recorded, so the run can check it against the
//! worst-case figure the build printed (embedded-alloc's `used()` is only the current use).

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// A linked-list first-fit heap that counts bytes in use and their peak.
pub struct PeakHeap {
    inner: LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl PeakHeap {
    /// An empty heap; `init` gives it memory.
    pub const fn empty() -> Self {
        Self {
            inner: LlffHeap::empty(),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Give the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// As `LlffHeap::init`: call once, before any allocation, with memory used by nothing else.
    pub unsafe fn init(&self, start: usize, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size) }
    }

    /// Bytes allocated now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Most bytes ever allocated at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded to `LlffHeap`, a correct allocator; the counters only
// observe sizes.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            let now = self.used.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}
