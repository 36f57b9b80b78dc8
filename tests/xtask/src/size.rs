//! Row 1.6: the kernel's worst-case RAM for the default manifest (`aliot_manifest::ram_report`,
//! the figure every build prints) against the manifest's `kernel.ram_budget`; and the
//! firmware sizes by part, from aliot-image's own builds and reports: the QEMU image's map
//! (each part's flash and RAM used against its region) and the nRF9160 DK's size report (its
//! budgets: the image against `[flash.active]` and the chip's RAM, our code against its
//! target). A board that cannot build here is a skipped row with the reason, not a failure.

use std::path::Path;
use std::process::Command;

use crate::table::{Outcome, Row, Value};

/// The worst-case RAM row.
pub fn ram_row(manifest: &Path) -> Row {
    let what = "kernel worst-case RAM, default manifest";
    match aliot_manifest::load(manifest) {
        Ok(m) => {
            let r = aliot_manifest::ram_report(&m);
            Row::measured(
                "1.6",
                what,
                Value::new(f64::from(r.total()), "B"),
                Value::new(f64::from(m.kernel.ram_budget), "B"),
                "kernel.ram_budget",
            )
            .with_note(aliot_manifest::ram_summary(&m))
        }
        Err(e) => Row::other("1.6", what, Outcome::Failed(e.to_string())),
    }
}

/// Lines of an aliot-image map (`part region start end size used note`) as
/// `(part, region, size, used)`; parts without an image (`used` is `-`) are left out.
pub fn parse_map(text: &str) -> Vec<(String, String, u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "flash" || *w == "RAM")?;
            let start = words.get(at + 1)?;
            if !start.starts_with("0x") || at == 0 {
                return None;
            }
            let size = words.get(at + 3)?.parse().ok()?;
            let used = words.get(at + 4)?.parse().ok()?;
            Some((words[..at].join(" "), words[at].to_owned(), size, used))
        })
        .collect()
}

/// The budget lines of an nRF9160 DK size report (`  ok   WHAT: USED of LIMIT bytes (...)`)
/// as `(what, used, limit)`.
pub fn parse_budgets(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip_while(|l| !l.starts_with("budgets:"))
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("ok")
                .or_else(|| l.strip_prefix("OVER"))?
                .trim_start();
            let (what, rest) = l.rsplit_once(": ")?;
            let mut words = rest.split_whitespace();
            let used = words.next()?.parse().ok()?;
            (words.next()? == "of").then_some(())?;
            let limit = words.next()?.parse().ok()?;
            Some((what.to_owned(), used, limit))
        })
        .collect()
}

/// Why a Cortex-M33 board cannot be built here, if it cannot.
fn thumb_missing() -> Option<String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    (!String::from_utf8_lossy(&out.stdout).contains("thumbv8m.main-none-eabihf"))
        .then(|| "target thumbv8m.main-none-eabihf not installed".to_owned())
}

/// The QEMU image's rows.
pub fn qemu_rows(manifest: &Path, out: &Path) -> Vec<Row> {
    let what = "QEMU image (mps2-an505)";
    if let Some(why) = thumb_missing() {
        return vec![Row::other("1.6", what, Outcome::Skipped(why))];
    }
    match aliot_image::build_qemu_image(manifest, out) {
        Ok(built) => {
            let parts = parse_map(&built.map_text);
            // An app's RAM holds only its stack, which is no segment: 0 bytes used.
            let empty: Vec<String> = parts
                .iter()
                .filter(|p| p.3 == 0)
                .map(|(part, region, ..)| format!("{part} {region}"))
                .collect();
            let mut rows: Vec<Row> = parts
                .into_iter()
                .filter(|p| p.3 > 0)
                .map(|(part, region, size, used)| {
                    Row::measured(
                        "1.6",
                        format!("QEMU image: {part} {region}"),
                        Value::new(used as f64, "B"),
                        Value::new(size as f64, "B"),
                        "its region",
                    )
                })
                .collect();
            if let (Some(last), false) = (rows.last_mut(), empty.is_empty()) {
                *last = last.clone().with_note(format!(
                    "QEMU image: no segment in {} (an app's RAM is its stack); map in {}",
                    empty.join(", "),
                    built.map.display()
                ));
            }
            if rows.is_empty() {
                vec![Row::other(
                    "1.6",
                    what,
                    Outcome::Failed("no part in the map".into()),
                )]
            } else {
                rows
            }
        }
        Err(e) => vec![Row::other("1.6", what, Outcome::Failed(e.to_string()))],
    }
}

/// Why the nRF9160 DK cannot be built here, if it cannot (its build needs clang, libclang and
/// newlib's headers, as `.ci/run` installs them).
fn nrf_missing() -> Option<String> {
    if let Some(why) = thumb_missing() {
        return Some(why);
    }
    let clang = Command::new("clang").arg("--version").output().is_ok();
    let newlib = Path::new("/usr/include/newlib/string.h").exists();
    match (clang, newlib) {
        (true, true) => None,
        (false, _) => Some("clang not found (apt-get install clang libclang-dev)".into()),
        (true, false) => Some("newlib headers not found (apt-get install libnewlib-dev)".into()),
    }
}

/// The nRF9160 DK's rows: each budget of its size report.
pub fn nrf_rows(manifest: &Path, out: &Path) -> Vec<Row> {
    let what = "nRF9160 DK image";
    if let Some(why) = nrf_missing() {
        return vec![Row::other("1.6", what, Outcome::Skipped(why))];
    }
    match aliot_image::build_nrf9160dk_image(manifest, out) {
        Ok(report) => {
            let rows: Vec<Row> = parse_budgets(&report.text)
                .into_iter()
                .map(|(what, used, limit)| {
                    Row::measured(
                        "1.6",
                        format!("nRF9160 DK: {what}"),
                        Value::new(used as f64, "B"),
                        Value::new(limit as f64, "B"),
                        "budget",
                    )
                })
                .collect();
            if rows.is_empty() {
                vec![Row::other(
                    "1.6",
                    what,
                    Outcome::Failed("no budget in the report".into()),
                )]
            } else {
                rows
            }
        }
        Err(e) => vec![Row::other("1.6", what, Outcome::Failed(e.to_string()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_gives_each_part_s_regions_and_skips_parts_without_an_image() {
        let map = "aliot image map: board qemu-an505, manifest m.toml\n\n\
part                   region start       end              size      used  note\n\
kernel                 flash  0x10000000  0x10040000     262144     81234  entry 0x10000401\n\
kernel                 RAM    0x38000000  0x38010000      65536     40000  (.data, .bss; its stack is no segment)\n\
publish_test (app 0)   flash  0x10040000  0x10050000      65536      9000  entry 0x10040001\n\
echo (app 1)           flash  0x10050000  0x10060000      65536         -  no image for this board\n";
        assert_eq!(
            parse_map(map),
            vec![
                ("kernel".into(), "flash".into(), 262_144, 81_234),
                ("kernel".into(), "RAM".into(), 65_536, 40_000),
                ("publish_test (app 0)".into(), "flash".into(), 65_536, 9_000),
            ]
        );
    }

    #[test]
    fn the_report_gives_each_budget() {
        let report = "flash\n  our code: 1 of 2 bytes\n\nbudgets:\n\
  ok   image in [flash.active]: 300000 of 491520 bytes (293.0 KiB of 480.0 KiB)\n\
  OVER our code's flash (image without the modem library and apps): 140000 of 131072 bytes (x of y)\n";
        assert_eq!(
            parse_budgets(report),
            vec![
                ("image in [flash.active]".into(), 300_000, 491_520),
                (
                    "our code's flash (image without the modem library and apps)".into(),
                    140_000,
                    131_072
                ),
            ]
        );
    }
}
