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
pub const MIN_YEAR: i64 = 2020;
/// Latest year taken (two-digit years `20..=79` are 2020..=2079).
pub const MAX_YEAR: i64 = 2079;

/// Seconds since 1970-01-01T00:00:00Z of the time in an `AT+CCLK?` answer, or `None`.
pub fn unix_secs_from_cclk(answer: &str) -> Option<u64> {
    let after = answer.split_once("+CCLK:").map_or(answer, |(_, rest)| rest);
    let line = after.lines().next()?.trim();
    let text = line.trim_matches('"').trim();
    let (date, time) = text.split_once(',')?;
    let mut d = date.trim().split('/');
    let (year, month, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() {
        return None;
    }
    let year = match year.len() {
        2 => 2000 + number(year)?,
        4 => number(year)?,
        _ => return None,
    };
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return None;
    }
    // The zone starts at the first sign after the seconds.
    let time = time.trim();
    let (clock, zone) = match time.find(['+', '-']) {
        Some(at) => (time.get(..at)?, time.get(at..)),
        None => (time, None),
    };
    let mut c = clock.split(':');
    let (hour, minute, second) = (c.next()?, c.next()?, c.next()?);
    if c.next().is_some() {
        return None;
    }
    let (month, day) = (number(month)?, number(day)?);
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
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
    let zone_secs = match zone {
        None => 0,
        Some(z) => {
            let (sign, quarters) = z.split_at_checked(1)?;
            let quarters = number(quarters)?;
            // ±14 h is the widest zone in use.
            if quarters > 56 {
                return None;
            }
            if sign == "-" {
                -quarters * 900
            } else {
                quarters * 900
            }
        }
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(local - zone_secs).ok()
}

/// A field of one to four ASCII digits, nothing else. (By hand rather than `str::parse`,
/// whose general integer parser costs the nRF9160 image about a kilobyte.)
fn number(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    text.bytes().try_fold(0i64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian), for the years taken here.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
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
