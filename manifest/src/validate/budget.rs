//! `[kernel]` and each app's share of kernel memory: payload ceiling, queue sizes,
//! subscription slots, and the worst-case total against `kernel.ram_budget`.
//!
//! The minimums and the total come from `aliot_kernel::budget`, never from copies of its
//! constants here: the kernel owns the layout of its queues and tables, and this crate only
//! asks it what a given set of budgets costs.

use aliot_kernel::budget::{AppBudget, min_event_queue_bytes, min_outbox_bytes};

use super::{
    APP_QUEUE_MAX, DEFAULT_MAX_PAYLOAD, DEFAULT_QUEUE_MESSAGES, KERNEL_RAM_BUDGET_MAX,
    MAX_APP_SUBSCRIPTIONS, Result, err,
};
use crate::model::{App, MqttVersion};
use crate::ram::{breakdown, bytes, report_for};
use crate::raw::{RawApp, RawKernel};

/// Largest payload an app may declare: the ABI's ceiling.
const PAYLOAD_MAX: u32 = aliot_abi::MAX_PAYLOAD_LEN as u32;

/// `kernel.ram_budget`.
pub(super) fn kernel(raw: &RawKernel) -> Result<u32> {
    match u32::try_from(raw.ram_budget) {
        Ok(b) if (1..=KERNEL_RAM_BUDGET_MAX).contains(&b) => Ok(b),
        _ => err(
            "kernel.ram_budget",
            format!(
                "{} bytes is not allowed; allowed: 1..={KERNEL_RAM_BUDGET_MAX} (the nRF9160's RAM); default {}",
                raw.ram_budget,
                super::DEFAULT_KERNEL_RAM_BUDGET
            ),
        ),
    }
}

/// `apps[i].max_payload`, `event_queue_bytes`, `outbox_bytes` and `subscriptions`, defaults
/// filled in. `at` is `apps[i]`; `subscribe_grants` is the number of the app's subscribe grants.
pub(super) fn app(raw: &RawApp, at: &str, subscribe_grants: usize) -> Result<AppBudget> {
    let max_payload = match raw.max_payload {
        None => DEFAULT_MAX_PAYLOAD,
        Some(v) => match u32::try_from(v) {
            Ok(p) if (1..=PAYLOAD_MAX).contains(&p) => p,
            _ => {
                return err(
                    format!("{at}.max_payload"),
                    format!(
                        "{v} bytes is not allowed; allowed: 1..={PAYLOAD_MAX} (the ABI's MAX_PAYLOAD_LEN); default {DEFAULT_MAX_PAYLOAD}"
                    ),
                );
            }
        },
    };
    let event_min = min_event_queue_bytes(max_payload);
    let event_queue_bytes = queue(
        raw.event_queue_bytes,
        &format!("{at}.event_queue_bytes"),
        event_min,
        max_payload,
        "message",
    )?;
    let outbox_min = min_outbox_bytes(max_payload);
    let outbox_bytes = queue(
        raw.outbox_bytes,
        &format!("{at}.outbox_bytes"),
        outbox_min,
        max_payload,
        "publish",
    )?;
    let subscriptions = subscriptions(raw.subscriptions, at, subscribe_grants)?;
    Ok(AppBudget {
        event_queue_bytes,
        outbox_bytes,
        max_payload,
        subscriptions,
    })
}

/// One queue size: `min` (one largest record) up to [`APP_QUEUE_MAX`]; default
/// [`DEFAULT_QUEUE_MESSAGES`] largest records.
fn queue(value: Option<i64>, field: &str, min: u32, max_payload: u32, what: &str) -> Result<u32> {
    let Some(v) = value else {
        return Ok(DEFAULT_QUEUE_MESSAGES
            .saturating_mul(min)
            .min(APP_QUEUE_MAX)
            .max(min));
    };
    match u32::try_from(v) {
        Ok(q) if (min..=APP_QUEUE_MAX).contains(&q) => Ok(q),
        _ => err(
            field,
            format!(
                "{v} bytes is not allowed; allowed: {min}..={APP_QUEUE_MAX} (at least one {what} of max_payload = {max_payload} bytes on a longest topic must fit)"
            ),
        ),
    }
}

/// `apps[i].subscriptions`: 1..=[`MAX_APP_SUBSCRIPTIONS`] with subscribe grants (default one
/// per grant), exactly 0 without (a slot no subscribe can use would only cost memory).
fn subscriptions(value: Option<i64>, at: &str, grants: usize) -> Result<u16> {
    let max = MAX_APP_SUBSCRIPTIONS;
    let default = u16::try_from(grants).unwrap_or(u16::MAX).min(max);
    let Some(v) = value else {
        return Ok(default);
    };
    let field = format!("{at}.subscriptions");
    if grants == 0 {
        return match v {
            0 => Ok(0),
            _ => err(
                field,
                format!(
                    "{v} is not allowed: the app has no subscribe grants, so it could never use a subscription slot; allowed: 0 (the default here), or add a topic to {at}.subscribe"
                ),
            ),
        };
    }
    match u16::try_from(v) {
        Ok(s) if (1..=max).contains(&s) => Ok(s),
        _ => err(
            field,
            format!(
                "{v} is not allowed; allowed: 1..={max} topic filters held at once by an app with subscribe grants; default {default} (one per grant)"
            ),
        ),
    }
}

/// Fails when the kernel's worst case for these apps exceeds `ram_budget`.
pub(super) fn total(apps: &[App], version: MqttVersion, ram_budget: u32) -> Result<()> {
    let report = report_for(apps, version);
    // Summed in u64: the parts are u32 each and the check must not wrap.
    let need = u64::from(report.event_queues)
        + u64::from(report.outboxes)
        + u64::from(report.subscriptions)
        + u64::from(report.tables)
        + u64::from(report.link);
    if need <= u64::from(ram_budget) {
        return Ok(());
    }
    err(
        "kernel.ram_budget",
        format!(
            "the kernel needs {} bytes in the worst case ({}) but the budget is {}; raise kernel.ram_budget or lower apps[].event_queue_bytes / outbox_bytes / subscriptions (or max_payload, which sets the queues' minimum)",
            bytes_u64(need),
            breakdown(&report),
            bytes(ram_budget)
        ),
    )
}

fn bytes_u64(n: u64) -> String {
    match u32::try_from(n) {
        Ok(n) => bytes(n),
        Err(_) => n.to_string(),
    }
}
