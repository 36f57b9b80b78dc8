//! Row 1.1: one syscall round trip as an app sees it (encode the request with postcard, the
//! kernel's `Kernel::syscall`, decode the response), for a 64-byte QoS 1 Publish and for
//! `Status`; the baseline is the capsule's own logic called directly with the decoded request
//! (`Kernel::service_call`, the path the kernel's services take: the same grants check, the same
//! outbox, no ABI), so the ratio is what the ABI edge costs.
//!
//! The four round-trip functions are never inlined, so callgrind can count inside them alone
//! (`--toggle-collect`); the link's side that empties the outbox after each publish runs
//! outside them (`drain`).

use std::hint::black_box;
use std::time::Instant;

use aliot_abi::{ABI_MAJOR, ABI_MINOR, Event as AbiEvent, Qos, Request, Response};
use aliot_kernel::config::{AppDef, MqttVersion};
use aliot_kernel::kernel::{Kernel, Outgoing};

use crate::capsule::{PAYLOAD, TOPIC, config};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Publish through the ABI.
    Publish,
    /// Status through the ABI.
    Status,
    /// Publish, the capsule's logic called directly.
    DirectPublish,
    /// Status, directly.
    DirectStatus,
}

impl Case {
    /// Every case, in the order the table prints them.
    pub const ALL: [Case; 4] = [
        Case::Publish,
        Case::DirectPublish,
        Case::Status,
        Case::DirectStatus,
    ];

    /// Its name on the command line and in callgrind's function names.
    pub fn name(self) -> &'static str {
        match self {
            Case::Publish => "publish_round_trip",
            Case::Status => "status_round_trip",
            Case::DirectPublish => "direct_publish",
            Case::DirectStatus => "direct_status",
        }
    }

    /// The case named `name`.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A kernel with the bench app (id 0, greeted) and a service (id 0) with the same grants,
/// link up, nothing queued.
fn kernel() -> Result<Kernel, String> {
    let config = config(MqttVersion::V311, "bench.syscall");
    let services: &'static [AppDef] =
        Box::leak(Box::new([config.apps.first().copied().ok_or("no app")?]));
    let mut kernel = Kernel::with_services(config, services);
    call(
        &mut kernel,
        &Request::Hello {
            major: ABI_MAJOR,
            minor: ABI_MINOR,
        },
        |r| matches!(r, Response::Welcome { .. }),
    )?;
    kernel.on_connected();
    drain(&mut kernel)?;
    Ok(kernel)
}

/// Encode `request`, run it through the kernel as app 0, decode the response and check it.
fn call(
    kernel: &mut Kernel,
    request: &Request<'_>,
    check: impl Fn(&Response<'_>) -> bool,
) -> Result<(), String> {
    let mut buf = [0u8; 256];
    let len = postcard::to_slice(request, &mut buf)
        .map_err(|e| format!("encode: {e}"))?
        .len();
    let n = kernel
        .syscall(0, &mut buf, len, 1_000)
        .ok_or("no immediate answer")?;
    let response: Response<'_> = postcard::from_bytes(buf.get(..n).unwrap_or_default())
        .map_err(|e| format!("decode: {e}"))?;
    if check(&response) {
        Ok(())
    } else {
        Err(format!("unexpected {response:?}"))
    }
}

#[inline(never)]
fn publish_round_trip(kernel: &mut Kernel, token: u32) -> Result<(), String> {
    call(
        kernel,
        &Request::Publish {
            topic: black_box(TOPIC),
            payload: black_box(&PAYLOAD),
            qos: Qos::AtLeastOnce,
            token,
        },
        |r| matches!(r, Response::Accepted { .. }),
    )
}

#[inline(never)]
fn status_round_trip(kernel: &mut Kernel) -> Result<(), String> {
    call(kernel, &Request::Status, |r| {
        matches!(r, Response::Status(_))
    })
}

#[inline(never)]
fn direct_publish(kernel: &mut Kernel, token: u32) -> Result<(), String> {
    match kernel.service_call(
        0,
        Request::Publish {
            topic: black_box(TOPIC),
            payload: black_box(&PAYLOAD),
            qos: Qos::AtLeastOnce,
            token,
        },
    ) {
        Ok(Response::Accepted { .. }) => Ok(()),
        other => Err(format!("unexpected {other:?}")),
    }
}

#[inline(never)]
fn direct_status(kernel: &mut Kernel) -> Result<(), String> {
    match kernel.service_call(0, black_box(Request::Status)) {
        Ok(Response::Status(s)) => {
            black_box(s);
            Ok(())
        }
        other => Err(format!("unexpected {other:?}")),
    }
}

/// The link's part, outside the measured functions: write and acknowledge what is queued and
/// take every client's events, so each round trip starts from the same empty state.
fn drain(kernel: &mut Kernel) -> Result<(), String> {
    loop {
        let pid = match kernel.poll_outgoing(1_000) {
            Some(Outgoing::Publish { pid, .. }) => Some(pid),
            Some(_) => None,
            None => break,
        };
        kernel.on_written();
        if let Some(pid) = pid {
            kernel.on_puback(pid);
        }
    }
    loop {
        let mut buf = [0u8; 256];
        let request = Request::WaitEvent { timeout_ms: 0 };
        let len = postcard::to_slice(&request, &mut buf)
            .map_err(|e| format!("encode: {e}"))?
            .len();
        let n = kernel.syscall(0, &mut buf, len, 1_000).ok_or("no answer")?;
        match postcard::from_bytes(buf.get(..n).unwrap_or_default()) {
            Ok(Response::Event(AbiEvent::PublishResult { delivered, .. })) if !delivered => {
                return Err("a publish was not delivered".into());
            }
            Ok(Response::Event(_)) => {}
            Ok(Response::NoEvent) => break,
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    let mut buf = [0u8; 256];
    while kernel.service_event(0, &mut buf).is_some() {}
    Ok(())
}

/// One call of `case`.
fn once(kernel: &mut Kernel, case: Case, i: u32) -> Result<(), String> {
    match case {
        Case::Publish => publish_round_trip(kernel, i),
        Case::Status => status_round_trip(kernel),
        Case::DirectPublish => direct_publish(kernel, i),
        Case::DirectStatus => direct_status(kernel),
    }
}

/// `n` calls of `case`, each followed by `drain`: the workload callgrind counts.
pub fn workload(case: Case, n: u32) -> Result<(), String> {
    let mut kernel = kernel()?;
    for i in 0..n {
        once(&mut kernel, case, i)?;
        drain(&mut kernel)?;
    }
    Ok(())
}

/// Median nanoseconds of one call of `case` over `n` calls, each timed alone, less the median
/// cost of reading the clock twice.
pub fn median_ns(case: Case, n: u32) -> Result<f64, String> {
    let mut kernel = kernel()?;
    let mut samples = Vec::with_capacity(n as usize);
    let mut clock = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = Instant::now();
        once(&mut kernel, case, i)?;
        samples.push(start.elapsed().as_nanos() as f64);
        drain(&mut kernel)?;
        let start = Instant::now();
        clock.push(black_box(start).elapsed().as_nanos() as f64);
    }
    Ok((median(&mut samples) - median(&mut clock)).max(1.0))
}

/// The median of `v` (sorted in place); 0 when empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_runs_and_the_round_trips_answer_what_they_should() {
        for case in Case::ALL {
            workload(case, 3).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert_eq!(Case::from_name(case.name()), Some(case));
        }
    }

    #[test]
    fn median_is_the_middle_value() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
