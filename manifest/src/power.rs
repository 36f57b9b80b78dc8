//! The modem's power saving from `[modem] psm` and `[modem] edrx`: durations written as text
//! ("1h", "10s", "81.92s") turned into the timer encodings of 3GPP TS 24.008 that the
//! nRF9160's `AT+CPSMS` and `AT+CEDRXS` take as bit strings.
//!
//! - **PSM** (`AT+CPSMS=1,,,"<T3412 ext>","<T3324>"`): the periodic tracking-area update
//!   (T3412 extended, GPRS Timer 3, §10.5.7.4a) and the active time after which the modem
//!   sleeps (T3324, GPRS Timer 2, §10.5.7.4). Each is one octet: bits 8..6 the unit, bits
//!   5..1 a value 0..=31. A duration is encoded exactly, in the finest unit that can hold it;
//!   one no unit can hold exactly is refused, naming the ones that can.
//! - **eDRX** (`AT+CEDRXS=2,4,"<bits>"`, 4 = LTE-M, WB-S1 mode): the cycle length, the 4-bit
//!   value of the Extended DRX parameters IE (§10.5.5.32), one of a fixed table.
//!
//! The network may grant other values than those requested; the modem reports what it got.

use std::fmt;

/// A duration from the manifest, in hundredths of a second (eDRX cycles have two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Centis(pub u64);

impl fmt::Display for Centis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        if frac == 0 {
            write!(f, "{whole} s")
        } else {
            write!(f, "{whole}.{frac:02} s")
        }
    }
}

/// Reads `"<number><unit>"`: a decimal number with at most two decimals, then `s`, `m`
/// (minutes) or `h`, without spaces (`"10s"`, `"1.5m"`, `"81.92s"`, `"1h"`). `None` for
/// anything else, or more than [`MAX_DURATION_HOURS`] hours.
pub fn parse_duration(text: &str) -> Option<Centis> {
    let unit_at = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(unit_at);
    let scale: u64 = match unit {
        "s" => 100,
        "m" => 6_000,
        "h" => 360_000,
        _ => return None,
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.len() <= 2 => (w, f),
        Some(_) => return None,
        None => (number, ""),
    };
    if whole.is_empty() || whole.len() > 7 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    // The fraction is of the unit: "1.5m" is 90 s. It must come out in whole hundredths.
    let scaled = frac * scale;
    if !scaled.is_multiple_of(100) {
        return None;
    }
    let centis = whole.checked_mul(scale)?.checked_add(scaled / 100)?;
    (centis <= MAX_DURATION_HOURS * 360_000).then_some(Centis(centis))
}

/// The longest duration read: T3412 extended's top (320 h x 31 = 9920 h), rounded up.
pub const MAX_DURATION_HOURS: u64 = 10_000;

/// T3412 extended's units (bits 8..6), finest first, with their length in seconds.
const T3412_UNITS: [(u8, u64); 7] = [
    (0b011, 2),
    (0b100, 30),
    (0b101, 60),
    (0b000, 600),
    (0b001, 3_600),
    (0b010, 36_000),
    (0b110, 1_152_000),
];

/// T3324's units (bits 8..6), finest first: 2 s, 1 min, 1 decihour (6 min).
const T3324_UNITS: [(u8, u64); 3] = [(0b000, 2), (0b001, 60), (0b010, 360)];

/// The largest value of a timer's 5-bit field.
const MAX_VALUE: u64 = 31;

fn encode(units: &[(u8, u64)], d: Centis) -> Option<u8> {
    if !d.0.is_multiple_of(100) {
        return None;
    }
    let secs = d.0 / 100;
    units.iter().find_map(|&(code, unit)| {
        (secs.is_multiple_of(unit) && secs / unit <= MAX_VALUE)
            .then(|| (code << 5) | (secs / unit) as u8)
    })
}

/// The periodic TAU as a T3412 extended octet; `None` when no unit holds it exactly (or it is
/// zero: a device in PSM must update its tracking area at some point).
pub fn t3412_ext(d: Centis) -> Option<u8> {
    if d.0 == 0 {
        return None;
    }
    encode(&T3412_UNITS, d)
}

/// The active time as a T3324 octet (zero is allowed: sleep as soon as the link is released);
/// `None` when no unit holds it exactly.
pub fn t3324(d: Centis) -> Option<u8> {
    encode(&T3324_UNITS, d)
}

/// LTE-M's eDRX cycles (TS 24.008 Table 10.5.5.32, WB-S1 mode), in hundredths of a second,
/// by their 4-bit value. `1110` and `1111` (5242.88 s, 10485.76 s) are NB-S1 only.
pub const EDRX_LTE_M: [(u8, u64); 14] = [
    (0b0000, 512),
    (0b0001, 1_024),
    (0b0010, 2_048),
    (0b0011, 4_096),
    (0b0100, 6_144),
    (0b0101, 8_192),
    (0b0110, 10_240),
    (0b0111, 12_288),
    (0b1000, 14_336),
    (0b1001, 16_384),
    (0b1010, 32_768),
    (0b1011, 65_536),
    (0b1100, 131_072),
    (0b1101, 262_144),
];

/// The eDRX cycle's 4-bit value for LTE-M; `None` unless `d` is one of [`EDRX_LTE_M`].
pub fn edrx_lte_m(d: Centis) -> Option<u8> {
    EDRX_LTE_M
        .iter()
        .find(|&&(_, c)| c == d.0)
        .map(|&(bits, _)| bits)
}

/// The low `width` bits of `value`, most significant first: the AT commands' bit strings.
pub fn bit_string(value: u8, width: u32) -> String {
    (0..width)
        .rev()
        .map(|i| if value >> i & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// What the errors offer for the periodic TAU.
pub const T3412_ALLOWED: &str = "a duration T3412 (extended) can encode exactly: a multiple of 2 s up to 62s, of 30 s up to 930s, of 1 min up to 31m, of 10 min up to 310m, of 1 h up to 31h, of 10 h up to 310h, or of 320 h up to 9920h (e.g. \"1h\", \"12h\", \"30m\")";

/// What the errors offer for the active time.
pub const T3324_ALLOWED: &str = "a duration T3324 can encode exactly: a multiple of 2 s up to 62s, of 1 min up to 31m, or of 6 min up to 186m (e.g. \"0s\", \"10s\", \"1m\")";

/// What the errors offer for the eDRX cycle.
pub fn edrx_allowed() -> String {
    let cycles: Vec<String> = EDRX_LTE_M
        .iter()
        .map(|&(_, c)| Centis(c).to_string().replace(" s", "s"))
        .collect();
    format!("one of LTE-M's eDRX cycles: {}", cycles.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Centis {
        parse_duration(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(d("10s"), Centis(1_000));
        assert_eq!(d("0s"), Centis(0));
        assert_eq!(d("1.5m"), Centis(9_000));
        assert_eq!(d("81.92s"), Centis(8_192));
        assert_eq!(d("102.4s"), Centis(10_240));
        assert_eq!(d("1h"), Centis(360_000));
        for bad in [
            "", "10", "s", "10 s", "10sec", "1.234s", "1.s", ".5s", "-1s", "1e3s", "0.001m",
            "10001h", "10S",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    // Vectors computed by hand from TS 24.008 §10.5.7.4a: unit bits 8..6, value bits 5..1.
    #[test]
    fn t3412_extended_vectors() {
        // 1 h: 2 s, 30 s and 1 min would need more than 31, so 10 min x 6 (unit 000).
        assert_eq!(
            t3412_ext(d("1h")).map(|b| bit_string(b, 8)),
            Some("00000110".into())
        );
        // 2 h: 10 min x 12; 24 h: 1 h x 24 (unit 001).
        assert_eq!(t3412_ext(d("2h")), Some(0b000_01100));
        assert_eq!(
            t3412_ext(d("24h")).map(|b| bit_string(b, 8)),
            Some("00111000".into())
        );
        // 10 s: unit 011 (2 s), value 5.
        assert_eq!(t3412_ext(d("10s")), Some(0b011_00101));
        // 62 s: 2 s x 31, the finest unit's top.
        assert_eq!(t3412_ext(d("62s")), Some(0b011_11111));
        // 90 s: not 2 s x 45 (over 31), so 30 s x 3.
        assert_eq!(t3412_ext(d("90s")), Some(0b100_00011));
        // 31 min: 1 min x 31; 40 min: 10 min x 4 (unit 000).
        assert_eq!(t3412_ext(d("31m")), Some(0b101_11111));
        assert_eq!(t3412_ext(d("40m")), Some(0b000_00100));
        // 12 h: 1 h x 12; 40 h: 10 h x 4 (unit 010); 640 h: 320 h x 2 (unit 110).
        assert_eq!(t3412_ext(d("12h")), Some(0b001_01100));
        assert_eq!(t3412_ext(d("40h")), Some(0b010_00100));
        assert_eq!(t3412_ext(d("640h")), Some(0b110_00010));
        // Nothing holds 45 min (2700 s) or 3 s exactly; zero is refused.
        assert_eq!(t3412_ext(d("45m")), None);
        assert_eq!(t3412_ext(d("3s")), None);
        assert_eq!(t3412_ext(d("0s")), None);
        assert_eq!(t3412_ext(d("1.5s")), None);
    }

    // Vectors computed by hand from TS 24.008 §10.5.7.4.
    #[test]
    fn t3324_vectors() {
        assert_eq!(
            t3324(d("10s")).map(|b| bit_string(b, 8)),
            Some("00000101".into())
        );
        assert_eq!(t3324(d("0s")), Some(0));
        // 2 min: not 2 s x 60 (over 31), so 1 min x 2 (unit 001).
        assert_eq!(t3324(d("2m")), Some(0b001_00010));
        // 1 h: 6 min x 10 (decihours, unit 010).
        assert_eq!(t3324(d("1h")), Some(0b010_01010));
        // 63 s (odd), 4 h (6 min x 40) have no encoding.
        assert_eq!(t3324(d("63s")), None);
        assert_eq!(t3324(d("4h")), None);
    }

    #[test]
    fn edrx_vectors() {
        assert_eq!(
            edrx_lte_m(d("5.12s")).map(|b| bit_string(b, 4)),
            Some("0000".into())
        );
        assert_eq!(
            edrx_lte_m(d("81.92s")).map(|b| bit_string(b, 4)),
            Some("0101".into())
        );
        assert_eq!(edrx_lte_m(d("163.84s")), Some(0b1001));
        assert_eq!(edrx_lte_m(d("2621.44s")), Some(0b1101));
        // NB-IoT only, and not a cycle at all.
        assert_eq!(edrx_lte_m(d("5242.88s")), None);
        assert_eq!(edrx_lte_m(d("60s")), None);
        assert!(
            edrx_allowed().contains("5.12s, 10.24s"),
            "{}",
            edrx_allowed()
        );
    }
}
