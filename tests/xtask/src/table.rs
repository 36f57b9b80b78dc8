//! The one table `cargo xtask bench` prints: every row a figure, the baseline measured in the
//! same run, and their ratio. Pure: the measurements build [`Row`]s, this module only formats
//! and judges them, so the format and the `--quick` verdict are unit-tested.

use std::fmt::Write as _;

/// A number with its unit, e.g. `1234 ns` or `108 B`.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The number.
    pub value: f64,
    /// Its unit (`ns`, `Ir`, `B`, `msg/s`, ...).
    pub unit: &'static str,
}

impl Value {
    /// `value` in `unit`.
    pub fn new(value: f64, unit: &'static str) -> Self {
        Self { value, unit }
    }
}

/// What a row found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Both sides measured (or, for a baseline, computed: a spec minimum, a budget).
    Measured {
        /// Ours.
        figure: Value,
        /// What it is compared with, and what that is (`rumqttc`, `MQTT minimum`, ...).
        baseline: Value,
        /// Names the baseline.
        baseline_name: String,
    },
    /// Not measured on this machine, and why (valgrind missing, a toolchain missing).
    Skipped(String),
    /// Not measurable yet (the feature does not exist), and why.
    NotYet(String),
    /// The measurement broke: the run must fail in `--quick`.
    Failed(String),
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Issue 12's numbering (`1.1` .. `1.6`).
    pub id: &'static str,
    /// What is measured.
    pub what: String,
    /// The result.
    pub outcome: Outcome,
    /// A short remark printed under the table (absolute times, spread, conditions).
    pub note: Option<String>,
}

impl Row {
    /// A measured row.
    pub fn measured(
        id: &'static str,
        what: impl Into<String>,
        figure: Value,
        baseline: Value,
        baseline_name: impl Into<String>,
    ) -> Self {
        Self {
            id,
            what: what.into(),
            outcome: Outcome::Measured {
                figure,
                baseline,
                baseline_name: baseline_name.into(),
            },
            note: None,
        }
    }

    /// A row with another outcome.
    pub fn other(id: &'static str, what: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            id,
            what: what.into(),
            outcome,
            note: None,
        }
    }

    /// The same row with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Why this row counts as failed in `--quick`: a broken measurement, or a figure or
    /// baseline that is zero, negative or not a number (nothing was really measured).
    pub fn problem(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e.clone()),
            Outcome::Measured {
                figure, baseline, ..
            } => {
                let bad = |v: f64| !(v.is_finite() && v > 0.0);
                if bad(figure.value) {
                    Some(format!("figure is {}", figure.value))
                } else if bad(baseline.value) {
                    Some(format!("baseline is {}", baseline.value))
                } else {
                    None
                }
            }
            Outcome::Skipped(_) | Outcome::NotYet(_) => None,
        }
    }
}

/// `figure / baseline`, `None` when the baseline is zero or either is not a number.
pub fn ratio(figure: f64, baseline: f64) -> Option<f64> {
    let r = figure / baseline;
    (baseline != 0.0 && r.is_finite()).then_some(r)
}

/// A number for a person: digits grouped by three above 10 000, one or two decimals below 100.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a >= 100.0 {
        let digits = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 && digits.len() > 4 {
                grouped.push(' ');
            }
            grouped.push(c);
        }
        if v < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn value(v: &Value) -> String {
    format!("{} {}", number(v.value), v.unit)
}

/// The table as text: a header, one line per row, then the notes, numbered.
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Measured {
                figure,
                baseline,
                baseline_name,
            } => [
                r.id.to_owned(),
                r.what.clone(),
                value(figure),
                format!("{} {baseline_name}", value(baseline)),
                ratio(figure.value, baseline.value)
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "n/a".to_owned()),
            ],
            Outcome::Skipped(why) => [
                r.id.to_owned(),
                r.what.clone(),
                format!("skipped: {why}"),
                String::new(),
                String::new(),
            ],
            Outcome::NotYet(why) => [
                r.id.to_owned(),
                r.what.clone(),
                format!("not yet: {why}"),
                String::new(),
                String::new(),
            ],
            Outcome::Failed(why) => [
                r.id.to_owned(),
                r.what.clone(),
                format!("FAILED: {why}"),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    let header = ["#", "what", "figure", "baseline (same run)", "ratio"];
    let mut width = header.map(str::len);
    for row in &cells {
        // A skipped row's reason runs on past the figure column: it has no baseline.
        let measured = !row[3].is_empty();
        for (i, cell) in row.iter().enumerate() {
            if i != 2 || measured {
                width[i] = width[i].max(cell.chars().count());
            }
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, c: &[String; 5]| {
        let pad = |text: &str, w: usize| {
            let n = text.chars().count();
            format!("{text}{}", " ".repeat(w.saturating_sub(n)))
        };
        let text = if c[3].is_empty() && c[4].is_empty() {
            format!(
                "{}  {}  {}",
                pad(&c[0], width[0]),
                pad(&c[1], width[1]),
                c[2]
            )
        } else {
            format!(
                "{}  {}  {:>w2$}  {}  {:>w4$}",
                pad(&c[0], width[0]),
                pad(&c[1], width[1]),
                c[2],
                pad(&c[3], width[3]),
                c[4],
                w2 = width[2],
                w4 = width[4]
            )
        };
        let _ = writeln!(s, "{}", text.trim_end());
    };
    line(&mut s, &header.map(str::to_owned));
    let rule: usize = width.iter().sum::<usize>() + 2 * (width.len() - 1);
    let _ = writeln!(s, "{}", "-".repeat(rule));
    for row in &cells {
        line(&mut s, row);
    }
    let notes: Vec<(&str, &str)> = rows
        .iter()
        .filter_map(|r| r.note.as_deref().map(|n| (r.id, n)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s);
        for (id, note) in notes {
            let _ = writeln!(s, "  {id}: {note}");
        }
    }
    s
}

/// The rows that failed, with why: what `--quick` exits non-zero for.
pub fn problems(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r.problem().map(|p| format!("{} {}: {p}", r.id, r.what)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(figure: f64, baseline: f64) -> Row {
        Row::measured(
            "1.1",
            "a figure",
            Value::new(figure, "ns"),
            Value::new(baseline, "ns"),
            "direct",
        )
    }

    #[test]
    fn ratio_is_figure_over_baseline_and_none_without_a_baseline() {
        assert_eq!(ratio(300.0, 100.0), Some(3.0));
        assert_eq!(ratio(50.0, 200.0), Some(0.25));
        assert_eq!(ratio(5.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn numbers_are_grouped_and_rounded_for_reading() {
        assert_eq!(number(1_048_576.0), "1 048 576");
        assert_eq!(number(4096.0), "4096");
        assert_eq!(number(12_345.4), "12 345");
        assert_eq!(number(108.0), "108");
        assert_eq!(number(42.25), "42.2");
        assert_eq!(number(1.0), "1.00");
        assert_eq!(number(-20_000.0), "-20 000");
    }

    #[test]
    fn every_row_prints_its_figure_baseline_and_ratio() {
        let rows = vec![
            row(300.0, 100.0).with_note("median of 5"),
            Row::other("1.6", "QEMU image", Outcome::Skipped("no qemu".into())),
            Row::other("1.5", "delta", Outcome::NotYet("no patcher".into())),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("#    what    "), "{text}");
        assert!(lines[1].chars().all(|c| c == '-'), "{text}");
        assert!(
            lines[2].contains("300 ns") && lines[2].contains("100 ns direct"),
            "{text}"
        );
        assert!(lines[2].ends_with("3.00"), "{text}");
        assert!(lines[3].ends_with("skipped: no qemu"), "{text}");
        assert!(lines[4].ends_with("not yet: no patcher"), "{text}");
        assert!(text.contains("  1.1: median of 5"), "{text}");
    }

    #[test]
    fn a_failed_zero_or_missing_figure_is_a_problem_and_a_skip_is_not() {
        assert_eq!(problems(&[row(3.0, 1.0)]), Vec::<String>::new());
        assert_eq!(problems(&[row(0.0, 1.0)]).len(), 1);
        assert_eq!(problems(&[row(1.0, 0.0)]).len(), 1);
        assert_eq!(problems(&[row(f64::NAN, 1.0)]).len(), 1);
        let failed = Row::other("1.3", "ready", Outcome::Failed("timeout".into()));
        assert_eq!(problems(&[failed]), vec!["1.3 ready: timeout".to_owned()]);
        let skipped = Row::other("1.1", "Ir", Outcome::Skipped("valgrind not found".into()));
        assert!(problems(&[skipped]).is_empty());
    }
}
