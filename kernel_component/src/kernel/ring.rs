//! A fixed-size ring of variable-length records: the storage under every per-app queue.
//!
//! Why not `VecDeque<Vec<u8>>`: on the chip memory is a budget in bytes decided at build time.
//! A ring allocates its whole buffer once, at boot, so the kernel's worst case is the sum of
//! its rings whatever the network or the apps send, and nothing fragments a heap later.
//! `heapless`/`bbqueue` offer fixed rings of items or of bytes, but not records that stay
//! contiguous (so a topic can be lent as a `&str`) and can be retired out of order (a QoS 1
//! message acknowledged before an older one); that part is ours.
//!
//! Layout: each record is a 2-byte little-endian length, then its bytes, never split across the
//! end of the buffer. When a record does not fit between the tail and the end, the tail wraps
//! to the start and the unused end is skipped (a length of [`WRAP`] marks it when there is room
//! for the marker). An empty ring always restarts at 0, so any record up to the capacity minus
//! [`RECORD_HEADER`] fits an empty ring.
//!
//! Records can be marked dead in place ([`Ring::kill`]); dead records at the head are reclaimed
//! as soon as they are reached, so an out-of-order acknowledgement frees its bytes once every
//! older record has gone too.

use alloc::boxed::Box;
use alloc::vec;

/// Bytes of bookkeeping before each record.
pub(crate) const RECORD_HEADER: usize = 2;
/// Length value marking "skip to the start of the buffer".
const WRAP: u16 = u16::MAX;
/// Top bit of a stored length: the record is dead (retired out of order).
const DEAD: u16 = 0x8000;
/// Longest record body a ring can hold (15 bits of length; the largest frame is far below).
/// (A dead record of `DEAD - 1` bytes would read as [`WRAP`], hence `- 2`.)
pub(crate) const MAX_RECORD: usize = (DEAD - 2) as usize;

/// A ring of records inside one fixed buffer.
#[derive(Debug)]
pub(crate) struct Ring {
    buf: Box<[u8]>,
    /// Offset of the oldest record's header.
    head: usize,
    /// Offset where the next record's header goes.
    tail: usize,
    /// Live or dead records stored.
    records: usize,
}

/// Where a record sits, for later access ([`Ring::get`], [`Ring::kill`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

impl Ring {
    /// Appends the ring's whole state (buffer bytes, head, tail, record count) to `out`, for
    /// `Kernel::client_snapshot`.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn snapshot(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&self.buf);
        for n in [self.head, self.tail, self.records] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// A ring of `capacity` bytes, allocated now and never again.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity].into_boxed_slice(),
            head: 0,
            tail: 0,
            records: 0,
        }
    }

    /// True when no record (live or dead) is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn read_len(&self, at: usize) -> Option<u16> {
        let bytes = self.buf.get(at..at + RECORD_HEADER)?;
        Some(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
    }

    fn write_len(&mut self, at: usize, len: u16) {
        if let Some(bytes) = self.buf.get_mut(at..at + RECORD_HEADER) {
            bytes.copy_from_slice(&len.to_le_bytes());
        }
    }

    /// The header offset of the record expected at `at`: 0 after a wrap marker or when fewer
    /// than [`RECORD_HEADER`] bytes were left before the end.
    fn normalise(&self, at: usize) -> usize {
        match self.read_len(at) {
            None | Some(WRAP) => 0,
            Some(_) => at,
        }
    }

    /// Where a body of `len` bytes would go: its header offset, and whether the free end of the
    /// buffer must first be skipped (a wrap). `None` when it does not fit now.
    fn placement(&self, len: usize) -> Option<(usize, bool)> {
        let need = RECORD_HEADER + len;
        if len > MAX_RECORD || need > self.buf.len() {
            return None;
        }
        if self.records == 0 {
            return Some((0, false));
        }
        if self.tail > self.head {
            // Not wrapped: free is [tail, end) and [0, head).
            if self.buf.len() - self.tail >= need {
                Some((self.tail, false))
            } else {
                (self.head >= need).then_some((0, true))
            }
        } else {
            // Wrapped (or full, when tail == head): free is [tail, head).
            (self.head - self.tail >= need).then_some((self.tail, false))
        }
    }

    /// True when a record of `len` bytes would fit now.
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.placement(len).is_some()
    }

    /// True when a record of `len` bytes fits an empty ring of this capacity.
    pub(crate) fn can_ever_hold(&self, len: usize) -> bool {
        len <= MAX_RECORD && RECORD_HEADER + len <= self.buf.len()
    }

    /// Takes the room for a body of `len` bytes; returns the header offset.
    fn room_for(&mut self, len: usize) -> Option<usize> {
        let (at, wrap) = self.placement(len)?;
        if self.records == 0 {
            self.head = 0;
            self.tail = 0;
        }
        if wrap && self.buf.len() - self.tail >= RECORD_HEADER {
            let tail = self.tail;
            self.write_len(tail, WRAP);
        }
        Some(at)
    }

    /// Appends a record of exactly `len` bytes written by `fill`; `None` when it does not fit.
    pub(crate) fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Option<Slot> {
        let at = self.room_for(len)?;
        let body = at + RECORD_HEADER;
        fill(self.buf.get_mut(body..body + len)?);
        self.write_len(at, len as u16);
        self.tail = body + len;
        self.records += 1;
        Some(Slot(at))
    }

    /// Appends a record whose length is only known once written: `fill` gets the largest room
    /// available for `max_len` and returns how much it used (`None` aborts the push).
    pub(crate) fn push_encoded(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Option<Slot> {
        let at = self.room_for(max_len)?;
        let body = at + RECORD_HEADER;
        let used = fill(self.buf.get_mut(body..body + max_len)?)?;
        if used > max_len {
            return None;
        }
        self.write_len(at, used as u16);
        self.tail = body + used;
        self.records += 1;
        Some(Slot(at))
    }

    /// Appends a copy of `bytes`.
    #[cfg(test)]
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<Slot> {
        self.push_with(bytes.len(), |dst| dst.copy_from_slice(bytes))
    }

    /// Removes every record.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
        self.records = 0;
    }

    /// The body of the record at `slot` (live or dead).
    pub(crate) fn get(&self, slot: Slot) -> Option<&[u8]> {
        let len = usize::from(self.read_len(slot.0)? & !DEAD);
        self.buf
            .get(slot.0 + RECORD_HEADER..slot.0 + RECORD_HEADER + len)
    }

    /// The body of the record at `slot`, writable (for flags kept inside the record).
    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut [u8]> {
        let len = usize::from(self.read_len(slot.0)? & !DEAD);
        self.buf
            .get_mut(slot.0 + RECORD_HEADER..slot.0 + RECORD_HEADER + len)
    }

    /// The oldest live record, without removing it.
    pub(crate) fn front(&mut self) -> Option<Slot> {
        self.reclaim();
        (self.records > 0).then_some(Slot(self.head))
    }

    /// Removes the oldest record.
    pub(crate) fn pop_front(&mut self) {
        self.reclaim();
        if self.records == 0 {
            return;
        }
        if let Some(len) = self.read_len(self.head) {
            self.head = self.normalise(self.head + RECORD_HEADER + usize::from(len & !DEAD));
            self.records -= 1;
            self.reclaim();
        }
    }

    /// Marks the record at `slot` dead; its bytes come back once it reaches the head.
    pub(crate) fn kill(&mut self, slot: Slot) {
        if let Some(len) = self.read_len(slot.0) {
            self.write_len(slot.0, len | DEAD);
        }
        self.reclaim();
    }

    /// Walks the live records oldest first, letting `keep` rewrite each body in place; those it
    /// answers `false` for are retired.
    pub(crate) fn retain_mut(&mut self, mut keep: impl FnMut(&mut [u8]) -> bool) {
        let mut at = self.head;
        for _ in 0..self.records {
            at = self.normalise(at);
            let Some(len) = self.read_len(at) else { break };
            let body = at + RECORD_HEADER;
            let end = body + usize::from(len & !DEAD);
            if len & DEAD == 0
                && let Some(bytes) = self.buf.get_mut(body..end)
                && !keep(bytes)
            {
                self.write_len(at, len | DEAD);
            }
            at = end;
        }
        self.reclaim();
    }

    /// Drops dead records at the head.
    fn reclaim(&mut self) {
        while self.records > 0 {
            self.head = self.normalise(self.head);
            match self.read_len(self.head) {
                Some(len) if len & DEAD != 0 => {
                    self.head = self.head + RECORD_HEADER + usize::from(len & !DEAD);
                    self.records -= 1;
                }
                _ => break,
            }
        }
        if self.records == 0 {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Live records, oldest first.
    pub(crate) fn slots(&self) -> Slots<'_> {
        Slots {
            ring: self,
            at: self.head,
            left: self.records,
        }
    }

    /// Bytes of the buffer (the budget this ring was given).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator over the live records of a [`Ring`].
pub(crate) struct Slots<'r> {
    ring: &'r Ring,
    at: usize,
    left: usize,
}

impl Iterator for Slots<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        while self.left > 0 {
            let at = self.ring.normalise(self.at);
            let len = self.ring.read_len(at)?;
            self.at = at + RECORD_HEADER + usize::from(len & !DEAD);
            self.left -= 1;
            if len & DEAD == 0 {
                return Some(Slot(at));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn bodies(r: &Ring) -> Vec<Vec<u8>> {
        r.slots().map(|s| r.get(s).unwrap().to_vec()).collect()
    }

    #[test]
    fn fifo_order_and_exact_capacity() {
        let mut r = Ring::new(12);
        assert!(r.push(b"abcd").is_some()); // 6 bytes
        assert!(r.push(b"efgh").is_some()); // 12 bytes: full
        assert!(r.push(b"").is_none(), "no room even for a header");
        assert_eq!(bodies(&r), [b"abcd".to_vec(), b"efgh".to_vec()]);
        r.pop_front();
        assert_eq!(bodies(&r), [b"efgh".to_vec()]);
        // 6 free bytes at the front: a 4-byte body wraps there.
        assert!(r.push(b"ijkl").is_some());
        assert_eq!(bodies(&r), [b"efgh".to_vec(), b"ijkl".to_vec()]);
        r.pop_front();
        r.pop_front();
        assert!(r.is_empty());
        // Empty rings restart at 0: a body of capacity - header fits.
        assert!(r.push(&[9; 10]).is_some());
        assert!(r.push(&[9; 11]).is_none());
    }

    #[test]
    fn a_record_never_splits_across_the_end() {
        let mut r = Ring::new(16);
        r.push(b"aaaaa").unwrap(); // [0,7)
        r.push(b"bbb").unwrap(); // [7,12)
        r.pop_front(); // head 7, free [12,16) + [0,7)
        let slot = r.push(b"ccccc").unwrap(); // 7 bytes: does not fit at 12, wraps to 0
        assert_eq!(slot, Slot(0));
        assert_eq!(bodies(&r), [b"bbb".to_vec(), b"ccccc".to_vec()]);
        r.pop_front();
        assert_eq!(bodies(&r), [b"ccccc".to_vec()]);
    }

    #[test]
    fn dead_records_are_reclaimed_once_they_reach_the_head() {
        let mut r = Ring::new(18);
        let a = r.push(b"aaaa").unwrap();
        let b = r.push(b"bbbb").unwrap();
        let _c = r.push(b"cccc").unwrap();
        r.kill(b);
        assert_eq!(bodies(&r), [b"aaaa".to_vec(), b"cccc".to_vec()]);
        assert!(r.push(b"dddd").is_none(), "b's bytes are still behind a");
        r.kill(a);
        assert_eq!(bodies(&r), [b"cccc".to_vec()]);
        assert!(r.push(b"dddd").is_some(), "a and b reclaimed together");
        assert!(r.push(b"eeee").is_some());
        assert_eq!(
            bodies(&r),
            [b"cccc".to_vec(), b"dddd".to_vec(), b"eeee".to_vec()]
        );
    }

    #[test]
    fn encoded_push_keeps_only_what_was_used() {
        let mut r = Ring::new(20);
        r.push_encoded(16, |dst| {
            dst[..3].copy_from_slice(b"xyz");
            Some(3)
        })
        .unwrap();
        assert_eq!(bodies(&r), [b"xyz".to_vec()]);
        assert!(r.push_encoded(16, |_| None).is_none());
        assert!(r.push(&[1; 13]).is_some(), "5 + 15 = 20 bytes");
    }

    #[test]
    fn churn_never_loses_or_reorders_records() {
        // Pseudo-random pushes, pops and kills against a model.
        let mut r = Ring::new(97);
        let mut model: Vec<(Slot, Vec<u8>)> = Vec::new();
        let mut seed = 12345u32;
        for step in 0..5000u32 {
            seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
            match seed >> 29 {
                0..=3 => {
                    let len = (seed >> 8) as usize % 30;
                    let body = alloc::vec![step as u8; len];
                    if let Some(slot) = r.push(&body) {
                        model.push((slot, body));
                    } else {
                        assert!(!model.is_empty(), "an empty ring refused {len} bytes");
                    }
                }
                4 | 5 => {
                    if !model.is_empty() {
                        r.pop_front();
                        // pop_front removes the oldest live record.
                        model.remove(0);
                    }
                }
                _ => {
                    if !model.is_empty() {
                        let i = (seed >> 4) as usize % model.len();
                        let (slot, _) = model.remove(i);
                        r.kill(slot);
                    }
                }
            }
            let want: Vec<Vec<u8>> = model.iter().map(|(_, b)| b.clone()).collect();
            assert_eq!(bodies(&r), want, "step {step}");
            assert_eq!(r.capacity(), 97);
        }
    }
}
