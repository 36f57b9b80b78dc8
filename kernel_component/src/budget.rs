//! The kernel's memory, in bytes, decided at build time.
//!
//! Every queue the kernel keeps is a fixed ring allocated once at boot ([`crate::kernel`]), so
//! its worst case is a sum the build can print before anything runs: the manifest gives each
//! app (and the kernel gives each internal service) an [`AppBudget`], and [`worst_case_ram`]
//! adds the link's buffers and the kernel's fixed tables. The manifest crate calls it while
//! validating, prints the figure, and fails the build when it exceeds `kernel.ram_budget`.
//! A test fills every queue with largest messages under a counting allocator and checks that
//! the heap never exceeds this figure.

use aliot_abi::MAX_TOPIC_LEN;

use crate::config::MqttVersion;

/// One client's share of kernel memory (an app from the manifest, or a kernel service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppBudget {
    /// Bytes of the ring holding this app's pending events (messages, results, link changes).
    pub event_queue_bytes: u32,
    /// Bytes of the ring holding this app's publishes until they are written (QoS 0) or
    /// acknowledged (QoS 1), across restarts of the app.
    pub outbox_bytes: u32,
    /// Largest payload the app may publish or receive.
    pub max_payload: u32,
    /// Topic filters the app may hold at once.
    pub subscriptions: u16,
}

/// Bytes an event ring spends on a message beyond its topic and payload: the ring's record
/// header and the postcard framing of `Response::Event(Event::Message { .. })` (two enum tags,
/// two length varints of up to 2 and 3 bytes, the QoS).
pub const EVENT_RECORD_OVERHEAD: u32 = 2 + 1 + 1 + 2 + 3 + 1;

/// Bytes an outbox ring spends on a publish beyond its topic and payload: the ring's record
/// header and the kernel's per-message header (state, QoS, packet id, token, generation,
/// topic length).
pub const OUTBOX_RECORD_OVERHEAD: u32 = 2 + 11;

/// QoS 1 publishes, SUBSCRIBEs and UNSUBSCRIBEs the kernel keeps on the wire unacknowledged
/// at once (MQTT packet identifiers in use). More wait in their queues.
pub const MAX_IN_FLIGHT: usize = 16;

/// Bytes of an event-queue record for a message of `topic_len` and `payload_len` bytes.
pub const fn event_record_bytes(topic_len: u32, payload_len: u32) -> u32 {
    EVENT_RECORD_OVERHEAD + topic_len + payload_len
}

/// Bytes of an outbox record for a publish of `topic_len` and `payload_len` bytes.
pub const fn outbox_record_bytes(topic_len: u32, payload_len: u32) -> u32 {
    OUTBOX_RECORD_OVERHEAD + topic_len + payload_len
}

/// The smallest event queue that holds one largest message for an app whose largest payload is
/// `max_payload` (the longest topic is [`MAX_TOPIC_LEN`]).
pub const fn min_event_queue_bytes(max_payload: u32) -> u32 {
    event_record_bytes(MAX_TOPIC_LEN as u32, max_payload)
}

/// The smallest outbox that holds one largest publish.
pub const fn min_outbox_bytes(max_payload: u32) -> u32 {
    outbox_record_bytes(MAX_TOPIC_LEN as u32, max_payload)
}

/// The kernel's worst-case RAM, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RamReport {
    /// Event queues of every client, full.
    pub event_queues: u32,
    /// Outboxes of every client, full.
    pub outboxes: u32,
    /// Subscription tables (per client, the session's, pending UNSUBSCRIBEs).
    pub subscriptions: u32,
    /// Per-client state and the in-flight table.
    pub tables: u32,
    /// The MQTT link's buffers (receive and transmit).
    pub link: u32,
}

impl RamReport {
    /// Sum of every part.
    pub const fn total(&self) -> u32 {
        self.event_queues + self.outboxes + self.subscriptions + self.tables + self.link
    }

    /// What the kernel's own heap can reach (everything but the link's buffers), the figure
    /// the counting-allocator test checks.
    pub const fn kernel_heap(&self) -> u32 {
        self.event_queues + self.outboxes + self.subscriptions + self.tables
    }
}

/// The budgets of the kernel's own services, in the order boards start them
/// ([`crate::services::all`]): each costs like an app.
pub const KERNEL_SERVICES: &[AppBudget] = &[
    crate::ota::SERVICE_BUDGET,
    crate::platform_time::SERVICE_BUDGET,
];

/// Worst-case RAM of a kernel serving the apps `clients` and its own services
/// ([`KERNEL_SERVICES`]) over an MQTT `version` link.
pub fn worst_case_ram(clients: &[AppBudget], version: MqttVersion) -> RamReport {
    let mut report = RamReport {
        link: crate::link::ram_bytes(version) as u32,
        tables: crate::kernel::fixed_bytes(clients.len() + KERNEL_SERVICES.len()) as u32
            + crate::ota::DEF_BYTES
            + crate::ota::JOB_BYTES
            + crate::platform_time::DEF_BYTES,
        ..RamReport::default()
    };
    for client in clients.iter().chain(KERNEL_SERVICES) {
        report.event_queues += client.event_queue_bytes;
        report.outboxes += client.outbox_bytes;
        report.subscriptions +=
            u32::from(client.subscriptions) * crate::kernel::subscription_slot_bytes() as u32;
    }
    report
}
