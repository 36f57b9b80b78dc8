//! The kernel's worst-case RAM for a manifest, as the kernel computes it
//! (`aliot_kernel::budget::worst_case_ram`), and its one-line summary for build output.

use aliot_kernel::budget::{AppBudget, RamReport, worst_case_ram};

use crate::model::{App, Manifest, MqttVersion};

/// The kernel's worst-case RAM for a validated manifest: every app's queues full, every
/// subscription slot used, the fixed tables and the link's buffers for its MQTT version.
/// Validation already checked that its total is within `kernel.ram_budget`.
pub fn ram_report(m: &Manifest) -> RamReport {
    report_for(&m.apps, m.mqtt.version)
}

/// One line for build output, e.g. `kernel RAM worst case: 41 216 of 49 152 bytes (event
/// queues 12 800, outboxes 12 800, subscriptions 864, tables 1 552, link 16 384)`.
pub fn ram_summary(m: &Manifest) -> String {
    let report = ram_report(m);
    format!(
        "kernel RAM worst case: {} of {} bytes ({})",
        bytes(report.total()),
        bytes(m.kernel.ram_budget),
        breakdown(&report)
    )
}

/// The report for `apps` in manifest order (index = app id, as the kernel numbers them).
pub(crate) fn report_for(apps: &[App], version: MqttVersion) -> RamReport {
    let budgets: Vec<AppBudget> = apps.iter().map(|a| a.budget).collect();
    worst_case_ram(&budgets, kernel_version(version))
}

/// The parts of a report, in the order the kernel defines them.
pub(crate) fn breakdown(r: &RamReport) -> String {
    format!(
        "event queues {}, outboxes {}, subscriptions {}, tables {}, link {}",
        bytes(r.event_queues),
        bytes(r.outboxes),
        bytes(r.subscriptions),
        bytes(r.tables),
        bytes(r.link)
    )
}

/// A byte count with digits grouped by three (`49 152`), readable in a long line. By hand:
/// eight lines, not worth a dependency in every build script.
pub(crate) fn bytes(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn kernel_version(v: MqttVersion) -> aliot_kernel::config::MqttVersion {
    match v {
        MqttVersion::V311 => aliot_kernel::config::MqttVersion::V311,
        MqttVersion::V5 => aliot_kernel::config::MqttVersion::V5,
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn bytes_are_grouped_by_three() {
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(999), "999");
        assert_eq!(bytes(1000), "1 000");
        assert_eq!(bytes(49_152), "49 152");
        assert_eq!(bytes(123_456), "123 456");
        assert_eq!(bytes(1_234_567), "1 234 567");
        assert_eq!(bytes(u32::MAX), "4 294 967 295");
    }
}
