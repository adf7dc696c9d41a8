//! Executing a command on the bus: the write transactions, their retries, the read-back, and
//! the one [`Outcome`] the job is answered with.
//!
//! - **Expiry.** When the command's turn comes after its `not_after`, it is answered
//!   `expired` and nothing is written. No retry is started after the deadline either.
//! - **Check again.** The plan is made by [`DeviceWrites::check`], the same check the
//!   dispatcher ran, so a job submitted without it is still `rejected` without a write.
//! - **Retries.** A write the device certainly did not perform (no connection, exception 06
//!   busy, exception 0A gateway path unavailable) is tried again, up to [`WRITE_ATTEMPTS`]
//!   times, with the one backoff. A write whose fate is unknown (timeout, broken answer,
//!   connection lost, exception 0B or 05) is tried again only when every point it covers is
//!   `idempotent`; otherwise the command ends `unknown`: it may have happened, so it is not
//!   repeated. Any other exception (01 illegal function, 02 illegal data address, 03 illegal
//!   data value, 04 device failure) ends it `failed` at once, naming the exception.
//! - **Read-back.** After every write was confirmed, the written registers/coils are read back
//!   (reads are retried freely) and compared with what was written, register by register.
//!   Equal: `done`, with the read-back values decoded in engineering units, as the poller
//!   reports them. Different (the device clamps, refuses silently or changed it again):
//!   `failed`, naming both values. A read-back that cannot be made: `failed`, saying the write
//!   itself was confirmed.
//! - A command of several points writes them in order and stops at the first failure; the
//!   reason names the points already written.
use super::bus::decode_read;
use super::bus::{Bus, ReadData, TxError};
use super::encode::WriteData;
use super::plan::ReadRequest;
use super::write_plan::{DeviceWrites, PlannedWrite};
use crate::backoff::Backoff;
use crate::commands::{Action, Command, Outcome};
use crate::record::{format_ts, now_ms, Value, Values};
use std::time::Duration;
use tokio_modbus::ExceptionCode;

/// Attempts of one write transaction (when a retry is allowed at all).
pub const WRITE_ATTEMPTS: u32 = 3;
/// Attempts of one read-back.
pub const READ_ATTEMPTS: u32 = 3;
/// First and largest pause between attempts.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A write that did not end confirmed.
struct WriteFailure {
    /// The device certainly did not perform it.
    not_done: bool,
    reason: String,
}

/// Executes `command` for the device `dw` on `bus` and says how it ended.
pub async fn execute(dw: &DeviceWrites, command: &Command, bus: &mut Bus) -> Outcome {
    if let Some(late) = past_deadline(command, Duration::ZERO) {
        return Outcome::Expired { reason: late };
    }
    let plan = match dw.check(command) {
        Ok(plan) => plan,
        Err(reason) => return Outcome::rejected(reason),
    };
    let mut written: Vec<&str> = Vec::new();
    for w in &plan.writes {
        let names = names(dw, w);
        if let Err(f) = write_with_retries(dw, w, command, bus).await {
            let before = if written.is_empty() {
                String::new()
            } else {
                format!("{} written; then ", written.join(", "))
            };
            let point = names.join(", ");
            return if f.not_done || w.idempotent {
                Outcome::failed(format!("{before}writing {point} failed: {}", f.reason))
            } else {
                Outcome::Unknown {
                    reason: format!(
                        "{before}writing {point}: {}; the device may have executed it, and it \
                         is not repeated because the point is not idempotent",
                        f.reason
                    ),
                }
            };
        }
        written.extend(w.points.iter().map(|i| dw.points[*i].name.as_str()));
    }
    read_back(dw, &plan.writes, command, bus).await
}

/// `Some(reason)` when `command` has a deadline that `now + ahead` passes.
fn past_deadline(command: &Command, ahead: Duration) -> Option<String> {
    let deadline = command.not_after_ms?;
    let at = now_ms().saturating_add(ahead.as_millis() as i64);
    (at > deadline).then(|| {
        format!(
            "its turn came at {}, after its deadline {}; nothing was written",
            format_ts(now_ms()),
            format_ts(deadline)
        )
    })
}

fn names<'a>(dw: &'a DeviceWrites, w: &PlannedWrite) -> Vec<&'a str> {
    w.points
        .iter()
        .map(|i| dw.points[*i].name.as_str())
        .collect()
}

/// The device refused the request itself (it did not perform it).
fn not_done(e: &TxError) -> bool {
    match e {
        TxError::NotConnected(_) => true,
        TxError::Exception(code) => !matches!(
            code,
            ExceptionCode::Acknowledge | ExceptionCode::GatewayTargetDevice
        ),
        _ => false,
    }
}

/// Trying again may help (the device or its gateway was busy, or not reachable yet).
fn transient(e: &TxError) -> bool {
    match e {
        TxError::Exception(code) => matches!(
            code,
            ExceptionCode::ServerDeviceBusy
                | ExceptionCode::GatewayPathUnavailable
                | ExceptionCode::GatewayTargetDevice
                | ExceptionCode::Acknowledge
        ),
        _ => true,
    }
}

/// A failure in words for the result: "the device answered exception 02 Illegal data
/// address", "no answer within 1s".
fn describe(e: &TxError, timeout: Duration, attempts: u32) -> String {
    let what = match e {
        TxError::Exception(_) => format!("the device answered {e}"),
        TxError::Timeout => format!("no answer within {}", humantime::format_duration(timeout)),
        other => other.to_string(),
    };
    if attempts > 1 {
        format!("{what} (after {attempts} attempts)")
    } else {
        what
    }
}

async fn write_with_retries(
    dw: &DeviceWrites,
    w: &PlannedWrite,
    command: &Command,
    bus: &mut Bus,
) -> Result<(), WriteFailure> {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match bus.write(dw.unit, &w.request, dw.timeout).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let not_done = not_done(&e);
        let delay = backoff.next_delay();
        let retry = attempt < WRITE_ATTEMPTS
            && transient(&e)
            && (not_done || w.idempotent)
            && past_deadline(command, delay).is_none();
        tracing::debug!(device = %dw.device, address = w.request.address, fc = w.request.function_code(), error = %e, attempt, retry, "modbus write not confirmed");
        if !retry {
            return Err(WriteFailure {
                not_done,
                reason: describe(&e, dw.timeout, attempt),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

async fn read_with_retries(
    dw: &DeviceWrites,
    req: &ReadRequest,
    bus: &mut Bus,
) -> Result<ReadData, String> {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bus.read(dw.unit, req, dw.timeout).await {
            Ok(data) => return Ok(data),
            Err(e) if attempt < READ_ATTEMPTS && transient(&e) => {
                tracing::debug!(device = %dw.device, address = req.address, error = %e, attempt, "modbus read-back failed, trying again");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(describe(&e, dw.timeout, attempt)),
        }
    }
}

/// Reads every written range back: `done` with the values, or `failed` when the device
/// reports something else than what was written.
async fn read_back(
    dw: &DeviceWrites,
    writes: &[PlannedWrite],
    command: &Command,
    bus: &mut Bus,
) -> Outcome {
    let mut values = Values::new();
    let mut differ = Vec::new();
    for w in writes {
        let req = ReadRequest {
            table: w.request.table,
            address: w.request.address,
            count: w.request.data.len() as u16,
            points: w.points.clone(),
        };
        let data = match read_with_retries(dw, &req, bus).await {
            Ok(d) => d,
            Err(reason) => {
                return Outcome::failed(format!(
                    "the device confirmed the write, but reading it back failed: {reason}"
                ))
            }
        };
        let same = match (&data, &w.request.data) {
            (ReadData::Bits(got), WriteData::Coils(sent)) => got == sent,
            (ReadData::Registers(got), WriteData::Registers(sent)) => got == sent,
            _ => false,
        };
        for &i in &w.points {
            let p = &dw.points[i];
            let got = match decode_read(p, &req, &data) {
                Ok(v) => v,
                Err(e) => {
                    return Outcome::failed(format!(
                        "the device confirmed the write, but its read-back of {:?} does not decode: {e}",
                        p.name
                    ))
                }
            };
            if !same {
                let wanted = set_value(command, &p.name).map(show).unwrap_or_default();
                differ.push(format!("{} = {} (written {wanted})", p.name, show(&got)));
            }
            values.insert(p.name.clone(), got);
        }
    }
    if differ.is_empty() {
        Outcome::Done { read_back: values }
    } else {
        Outcome::failed(format!(
            "the device confirmed the write but reads back {}",
            differ.join(", ")
        ))
    }
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The value a `set` command gives `point`.
fn set_value<'a>(command: &'a Command, point: &str) -> Option<&'a Value> {
    match &command.action {
        Action::Set(values) => values.get(point),
        Action::Downlink(_) => None,
    }
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
