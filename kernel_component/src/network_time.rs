//! Wall-clock time from the cellular network: the answer to `AT+CCLK?` (3GPP TS 27.007
//! §8.15), which a modem sets from the network's time (NITZ) after attach. A board reads it
//! and keeps the result ([`unix_secs_from_cclk`]) next to its monotonic clock, for log
//! timestamps and for a later platform-time service (Alibaba's `/ext/ntp` topic serves the
//! boards without a modem).
//!
//! The answer is outside input: anything unexpected gives `None`, never a panic. Accepted:
//! `+CCLK: "yy/MM/dd,hh:mm:ss±zz"` with the time zone in quarter hours (optional), a four-digit
//! year too, with or without the quotes, surrounded by other lines (`OK`) and spaces. The time
//! is local time; the result is UTC.
//!
//! A modem that has not heard the network's time answers with its own default, the GPS
//! epoch (`80/01/06,...`, 1980), so years from `80` and anything before 2020 are refused:
//! better no time than a wrong one.

/// Earliest year taken: anything before is the modem's default, not the network's time.
pub const MIN_YEAR: u32 = 2020;
/// Latest year taken (two-digit years `20..=79` are 2020..=2079).
pub const MAX_YEAR: u32 = 2079;

/// Seconds since 1970-01-01T00:00:00Z of the time in an `AT+CCLK?` answer, or `None`.
///
/// Read front to back as ASCII bytes, one field after the other, with 32-bit fields on
/// purpose: `str`'s pattern searches and splits, Unicode trimming and 64-bit divisions cost the
/// nRF9160 image about two kilobytes more (its size budget, see `aliot-image`); non-ASCII input
/// is refused all the same (only ASCII digits make a number).
pub fn unix_secs_from_cclk(answer: &str) -> Option<u64> {
    let answer = answer.as_bytes();
    const TAG: &[u8] = b"+CCLK:";
    let after = match answer.windows(TAG.len()).position(|w| w == TAG) {
        Some(at) => answer.get(at + TAG.len()..)?,
        None => answer,
    };
    let line = after
        .split(|&b| b == b'\r' || b == b'\n')
        .next()?
        .trim_ascii();
    let mut f = Fields(trim_quotes(line));
    let (year, digits) = f.number()?;
    let year = match digits {
        2 => 2000 + year,
        4 => year,
        _ => return None,
    };
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return None;
    }
    let month = f.after(b'/')?;
    let day = f.after(b'/')?;
    let hour = f.after(b',')?;
    let minute = f.after(b':')?;
    let second = f.after(b':')?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Quarter hours east of UTC: local = UTC + zone, so UTC = local - zone.
    let zone_secs = match f.0.split_first() {
        None => 0,
        Some((&sign, rest)) => {
            f.0 = rest;
            let (quarters, _) = f.number()?;
            // ±14 h is the widest zone in use; nothing may follow it.
            if quarters > 56 || !f.0.is_empty() {
                return None;
            }
            let secs = i64::from(quarters * 900);
            match sign {
                b'+' => secs,
                b'-' => -secs,
                _ => return None,
            }
        }
    };
    let days = days_from_civil(year, month, day);
    let local = u64::from(days) * 86_400 + u64::from(hour * 3_600 + minute * 60 + second);
    u64::try_from(i64::try_from(local).ok()? - zone_secs).ok()
}

/// `text` without the double quotes and ASCII spaces at either end.
fn trim_quotes(mut text: &[u8]) -> &[u8] {
    while let Some(rest) = text.strip_prefix(b"\"") {
        text = rest;
    }
    while let Some(rest) = text.strip_suffix(b"\"") {
        text = rest;
    }
    text.trim_ascii()
}

/// The rest of an answer, read one field at a time.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    /// One to four ASCII digits (spaces around them skipped): the value and how many digits.
    /// (By hand rather than `str::parse`, whose general integer parser costs the nRF9160 image
    /// about a kilobyte.)
    fn number(&mut self) -> Option<(u32, usize)> {
        let text = self.0.trim_ascii_start();
        let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
        let (number, rest) = text.split_at_checked(digits)?;
        if !(1..=4).contains(&digits) {
            return None;
        }
        self.0 = rest.trim_ascii_start();
        Some((
            number
                .iter()
                .fold(0, |n, &b| n * 10 + u32::from(b.wrapping_sub(b'0'))),
            digits,
        ))
    }

    /// `separator`, then a [`Fields::number`].
    fn after(&mut self, separator: u8) -> Option<u32> {
        let (&first, rest) = self.0.split_first()?;
        if first != separator {
            return None;
        }
        self.0 = rest;
        Some(self.number()?.0)
    }
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian), for the years taken here.
fn days_from_civil(year: u32, month: u32, day: u32) -> u32 {
    let mut days = 0;
    for y in 1970..year {
        days += if is_leap(y) { 366 } else { 365 };
    }
    for m in 1..month {
        days += days_in_month(year, m);
    }
    days + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from `date -u -d '<UTC time>' +%s`, the UTC time worked out by hand from
    // the local time and its zone.
    #[test]
    fn a_network_time_is_utc_seconds() {
        // 21:05:33 at UTC+8 (32 quarter hours) is 13:05:33 UTC.
        assert_eq!(
            unix_secs_from_cclk("+CCLK: \"24/11/30,21:05:33+32\"\r\nOK\r\n"),
            Some(1_732_971_933)
        );
        // A leap day, no zone, a four-digit year, no quotes.
        assert_eq!(
            unix_secs_from_cclk("+CCLK: 2024/02/29,12:00:00"),
            Some(1_709_208_000)
        );
        // West of UTC across midnight and the year: 2024-12-31 23:00 at UTC-2 is 2025-01-01
        // 01:00 UTC; and 2025-01-01 01:15 local at UTC+0.
        assert_eq!(
            unix_secs_from_cclk("+CCLK: \"24/12/31,23:00:00-08\""),
            Some(1_735_686_000 + 7_200)
        );
        assert_eq!(
            unix_secs_from_cclk("  +CCLK: \"25/01/01,01:15:00+00\"  "),
            Some(1_735_694_100)
        );
        assert_eq!(
            unix_secs_from_cclk("+CCLK: \"79/12/31,23:59:59+00\""),
            Some(3_471_292_799)
        );
    }

    #[test]
    fn anything_else_is_no_time() {
        for bad in [
            "",
            "OK",
            "ERROR",
            "+CCLK: ",
            "+CCLK: \"80/01/06,00:01:23+00\"", // the modem's GPS-epoch default
            "+CCLK: \"19/12/31,23:59:59+00\"",
            "+CCLK: \"24/13/01,00:00:00+00\"",
            "+CCLK: \"23/02/29,00:00:00+00\"", // not a leap year
            "+CCLK: \"24/04/31,00:00:00+00\"",
            "+CCLK: \"24/11/30,24:00:00+00\"",
            "+CCLK: \"24/11/30,21:60:00+00\"",
            "+CCLK: \"24/11/30,21:05:60+00\"",
            "+CCLK: \"24/11/30,21:05+00\"",
            "+CCLK: \"24/11/30,21:05:33:01+00\"",
            "+CCLK: \"24/11/30,21:05:33+57\"",
            "+CCLK: \"24/11/30,21:05:33+\"",
            "+CCLK: \"24/11/30/01,21:05:33+00\"",
            "+CCLK: \"2024/11,21:05:33+00\"",
            "+CCLK: \"x4/11/30,21:05:33+00\"",
            "+CCLK: \"24/11/30 21:05:33+00\"",
            "+CCLK: \"24/+1/30,21:05:33+00\"",
            "+CCLK: \"٢٤/11/30,21:05:33+00\"",
        ] {
            assert_eq!(unix_secs_from_cclk(bad), None, "{bad:?}");
        }
    }
}
