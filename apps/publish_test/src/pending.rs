//! Which publish number each outstanding token belongs to, for `publishTest_N` log lines.

/// Outstanding publishes remembered at most; results for older ones are logged as unknown.
/// Results normally arrive within one interval, so a handful is plenty.
const CAPACITY: usize = 8;

/// A small fixed table token → publish number (no allocation: apps are `no_std`).
pub struct Pending {
    slots: [Option<(u32, u32)>; CAPACITY],
}

impl Pending {
    /// An empty table.
    pub fn new() -> Self {
        Pending {
            slots: [None; CAPACITY],
        }
    }

    /// Remembers that `token` is publish number `n`; forgets the oldest entry when full.
    pub fn insert(&mut self, token: u32, n: u32) {
        let free = self.slots.iter_mut().find(|slot| slot.is_none());
        // Full: the lowest publish number is the oldest entry.
        let slot = match free {
            Some(slot) => slot,
            None => match self
                .slots
                .iter_mut()
                .min_by_key(|slot| slot.map(|(_, n)| n))
            {
                Some(oldest) => oldest,
                None => return, // CAPACITY is not 0; nothing to remember in a table of none
            },
        };
        *slot = Some((token, n));
    }

    /// The publish number of `token`, forgetting it.
    pub fn remove(&mut self, token: u32) -> Option<u32> {
        self.slots.iter_mut().find_map(|slot| match *slot {
            Some((t, n)) if t == token => {
                *slot = None;
                Some(n)
            }
            _ => None,
        })
    }

    /// No result outstanding.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Number of results outstanding.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::{CAPACITY, Pending};

    #[test]
    fn remembers_and_forgets_tokens() {
        let mut p = Pending::new();
        p.insert(10, 1);
        p.insert(11, 2);
        assert_eq!(p.len(), 2);
        assert_eq!(p.remove(11), Some(2));
        assert_eq!(p.remove(11), None);
        assert_eq!(p.remove(10), Some(1));
        assert!(p.is_empty());
    }

    #[test]
    fn a_full_table_forgets_its_oldest_entry() {
        let mut p = Pending::new();
        for i in 0..CAPACITY as u32 {
            p.insert(100 + i, i + 1);
        }
        assert_eq!(p.remove(103), Some(4));
        p.insert(200, 20); // reuses the freed slot, forgets nothing
        assert_eq!(p.len(), CAPACITY);
        p.insert(999, 42); // full: forgets publish 1 (token 100)
        assert_eq!(p.len(), CAPACITY);
        assert_eq!(p.remove(100), None);
        assert_eq!(p.remove(101), Some(2));
        assert_eq!(p.remove(999), Some(42));
    }
}
