//! How often download progress is reported on `/ota/device/progress` (spec §3: `step`
//! "1".."100" is percent; the reports are QoS 0 and cost airtime on a metered link).
//!
//! The rule ([`Throttle::poll`]): a report carries the percent done, rounded down, and is
//! sent when
//! * the percent is at least 1 (`step` 0 is not a defined value), and
//! * it is higher than the last one reported (never the same percent twice; after a restart
//!   from 0, nothing until the download passes the last report again), and
//! * it is 100 (always reported, once), or nothing was reported yet, or at least
//!   `interval_ms` passed since the last report.
//!
//! So a download is reported at most once per `interval_ms` plus the final 100, and a fast one
//! just once or twice. Pure: the caller passes a monotonic `now_ms`, the tests a fake clock.

/// The default shortest time between two reports below 100 %.
pub const DEFAULT_INTERVAL_MS: u64 = 3000;

/// The percent throttle of one download (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    interval_ms: u64,
    /// The last percent reported and when.
    last: Option<(u8, u64)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(DEFAULT_INTERVAL_MS)
    }
}

impl Throttle {
    /// Reports at most once per `interval_ms`, plus the final 100.
    pub const fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            last: None,
        }
    }

    /// `done` of `total` bytes in percent, rounded down (100 only when `done >= total`; an
    /// empty file is 100).
    pub fn percent(done: u32, total: u32) -> u8 {
        if done >= total {
            return 100;
        }
        let p = u64::from(done) * 100 / u64::from(total);
        // done < total, so p < 100.
        u8::try_from(p).unwrap_or(99)
    }

    /// The percent to report now, if any, for `done` of `total` bytes at `now_ms`.
    pub fn poll(&mut self, done: u32, total: u32, now_ms: u64) -> Option<u8> {
        let percent = Self::percent(done, total);
        let due = match self.last {
            _ if percent == 0 => false,
            None => true,
            Some((last, _)) if percent <= last => false,
            Some(_) if percent == 100 => true,
            Some((_, at)) => now_ms.saturating_sub(at) >= self.interval_ms,
        };
        if due {
            self.last = Some((percent, now_ms));
            Some(percent)
        } else {
            None
        }
    }

    /// The last percent reported.
    pub fn last(&self) -> Option<u8> {
        self.last.map(|(percent, _)| percent)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn percent_rounds_down_and_is_100_only_at_the_end() {
        assert_eq!(Throttle::percent(0, 1000), 0);
        assert_eq!(Throttle::percent(9, 1000), 0);
        assert_eq!(Throttle::percent(10, 1000), 1);
        assert_eq!(Throttle::percent(999, 1000), 99);
        assert_eq!(Throttle::percent(1000, 1000), 100);
        assert_eq!(Throttle::percent(u32::MAX - 1, u32::MAX), 99);
        assert_eq!(Throttle::percent(u32::MAX, u32::MAX), 100);
        assert_eq!(Throttle::percent(5, 0), 100);
        assert_eq!(Throttle::percent(0, 0), 100);
    }

    #[test]
    fn first_report_at_once_then_every_interval_then_100() {
        let mut t = Throttle::new(3000);
        assert_eq!(t.poll(0, 100, 0), None, "0 % is not reported");
        assert_eq!(t.poll(1, 100, 10), Some(1));
        assert_eq!(t.poll(50, 100, 2999 + 10), None, "too soon");
        assert_eq!(t.poll(60, 100, 3000 + 10), Some(60));
        assert_eq!(t.poll(99, 100, 3001 + 10), None);
        assert_eq!(
            t.poll(100, 100, 3002 + 10),
            Some(100),
            "100 % is never held back"
        );
        assert_eq!(t.poll(100, 100, 99_999), None, "100 % once");
        assert_eq!(t.last(), Some(100));
    }

    #[test]
    fn never_the_same_percent_twice_nor_backwards() {
        let mut t = Throttle::new(0);
        assert_eq!(t.poll(30, 100, 0), Some(30));
        assert_eq!(t.poll(30, 100, 5000), None);
        // A restart from 0: nothing until past 30 again.
        assert_eq!(t.poll(5, 100, 10_000), None);
        assert_eq!(t.poll(30, 100, 20_000), None);
        assert_eq!(t.poll(31, 100, 20_001), Some(31));
    }

    /// A whole download in 1 KiB steps, 100 ms apart: the reports are strictly increasing, at
    /// least 3 s apart (but for 100), and end with 100.
    #[test]
    fn a_simulated_download() {
        let total = 400 * 1024;
        let mut t = Throttle::default();
        let mut reports: Vec<(u8, u64)> = Vec::new();
        let mut now = 0;
        for done in (0..=total).step_by(1024) {
            now += 100;
            if let Some(p) = t.poll(done, total, now) {
                reports.push((p, now));
            }
        }
        assert_eq!(reports.last().map(|r| r.0), Some(100));
        assert_eq!(reports.first().map(|r| r.0), Some(1));
        for pair in reports.windows(2) {
            let ((p0, t0), (p1, t1)) = (pair[0], pair[1]);
            assert!(p1 > p0, "{reports:?}");
            assert!(p1 == 100 || t1 - t0 >= DEFAULT_INTERVAL_MS, "{reports:?}");
        }
        // 40 s of download: about one report per 3 s.
        assert!((13..=16).contains(&reports.len()), "{reports:?}");
    }

    #[test]
    fn a_clock_going_backwards_holds_reports_back_without_panicking() {
        let mut t = Throttle::new(3000);
        assert_eq!(t.poll(10, 100, 10_000), Some(10));
        assert_eq!(t.poll(20, 100, 5), None);
        assert_eq!(t.poll(100, 100, 5), Some(100));
    }
}
