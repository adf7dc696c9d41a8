//! How a command ended, and the result record that reports it to the platform.
//!
//! The result is a [`Record`] of kind [`RecordKind::CommandResult`]: it is committed to the
//! buffer like a reading and delivered to the device's result container exactly once. Its
//! `values` are what the device reported after the write (the read-back); its `meta` says
//! which command and how it ended:
//!
//! | meta key | value |
//! |---|---|
//! | `command.id` | the platform's command id |
//! | `command.instance` | the CSE resource id of the command instance |
//! | `command.outcome` | `done`, `rejected`, `expired`, `failed` or `unknown` |
//! | `command.reason` | for every outcome but `done`: why, in words for a technician |
//! | `command.created` | when the instance was created at the CSE (RFC 3339) |
use super::command::Command;
use crate::record::{format_ts, Record, RecordKind, Value, Values};

/// How a command ended. Exactly one outcome is reported per command instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Written (or sent and acknowledged); `read_back` holds what the device reports now.
    Done { read_back: Values },
    /// Not allowed or not understood; nothing was written.
    Rejected { reason: String },
    /// Arrived or came up for execution after its deadline; nothing was written.
    Expired { reason: String },
    /// The device did not take it (error, no answer after retries).
    Failed { reason: String },
    /// The gateway stopped while executing a point that is not idempotent: it may or may not
    /// have been written, and it is not repeated.
    Unknown { reason: String },
}

impl Outcome {
    /// The `outcome` label value and the word in the result.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Expired { .. } => "expired",
            Outcome::Failed { .. } => "failed",
            Outcome::Unknown { .. } => "unknown",
        }
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Done { .. } => None,
            Outcome::Rejected { reason }
            | Outcome::Expired { reason }
            | Outcome::Failed { reason }
            | Outcome::Unknown { reason } => Some(reason),
        }
    }
}

/// The record that reports `outcome` of `command`, stamped now, from adapter `adapter`.
pub fn result_record(adapter: &str, command: &Command, outcome: &Outcome) -> Record {
    let mut record = Record::now(adapter, command.device.clone());
    record.kind = RecordKind::CommandResult;
    if let Outcome::Done { read_back } = outcome {
        record.values = read_back.clone();
    }
    let meta = &mut record.meta;
    meta.insert("command.id".into(), Value::Str(command.id.clone()));
    meta.insert("command.instance".into(), Value::Str(command.key.clone()));
    meta.insert("command.outcome".into(), Value::Str(outcome.name().into()));
    if let Some(reason) = outcome.reason() {
        meta.insert("command.reason".into(), Value::Str(reason.into()));
    }
    meta.insert(
        "command.created".into(),
        Value::Str(format_ts(command.created_ms)),
    );
    record
}
