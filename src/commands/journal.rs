//! The command journal: what the gateway knows about every command instance it has seen, kept
//! in the buffer database (table `command_journal`, one row per instance, keyed by the
//! instance's resource id `ri` at the CSE).
//!
//! ```text
//! received ──► executing ──► finished (with the outcome)
//!     └───────────────────────┘ (rejected or expired before reaching the device)
//! ```
//!
//! - **received**: the instance is journaled before anything else happens. A second arrival of
//!   the same instance (notification and catch-up, a notification repeated by the CSE) finds the
//!   key and is ignored: an instance is handled once, whatever the route.
//! - **executing**: written just before the command is handed to its adapter.
//! - **finished**: written in the same transaction that commits the result record to the
//!   buffer ([`Buffer::finish_command`]), so every command gets exactly one result even if the
//!   process is killed at any moment.
//!
//! **The crash rule** ([`recovery`]), applied on start to rows left unfinished:
//! - `received`: never reached the device; executed normally (its expiry still applies);
//! - `executing` and every point it writes is declared `idempotent`: executed again (writing
//!   the same absolute set point twice is harmless);
//! - `executing` otherwise: it may or may not have been written, so it is **not** repeated and
//!   is reported `unknown`, with a reason that tells the technician to check the device.
//!
//! Finished rows are pruned [`RETENTION`] after the instance's creation; catch-up ignores
//! instances older than that, so a pruned instance is never taken for a new one.
use super::command::Command;
use super::outcome::Outcome;
use super::registry::{CommandRegistry, Safety};
use crate::buffer::{journal_state, Buffer, BufferError, JournalRow};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long finished journal rows are kept (counted from the instance's creation at the CSE).
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A command instance as the northbound side read it, before it is parsed: what the journal
/// stores, so a restart can parse and judge it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The instance's resource id (`ri`) at the CSE: the journal key.
    pub key: String,
    /// The device id (not the container name) whose command container holds the instance.
    pub device: String,
    /// `ct` at the CSE, UTC milliseconds.
    pub created_ms: i64,
    /// `cr`: who created it (absent when the creator did not ask the CSE to record it).
    pub creator: Option<String>,
    /// `con` as it came (a JSON value or a string holding JSON).
    pub con: serde_json::Value,
}

/// Where an unfinished row stands after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Received,
    Executing,
}

/// The journal, on the buffer's writer thread.
#[derive(Clone)]
pub struct Journal {
    buffer: Buffer,
}

impl Journal {
    pub fn new(buffer: Buffer) -> Self {
        Journal { buffer }
    }

    /// Journals a new instance. `false`: the key is known (handled or being handled).
    pub async fn receive(&self, instance: &Instance) -> Result<bool, BufferError> {
        let body = serde_json::to_string(instance).unwrap_or_default();
        self.buffer
            .journal_receive(JournalRow {
                key: instance.key.clone(),
                device: instance.device.clone(),
                state: journal_state::RECEIVED.into(),
                created_ms: instance.created_ms,
                body,
                outcome: None,
            })
            .await
    }

    /// The command is about to be handed to its adapter.
    pub async fn executing(&self, key: &str) -> Result<(), BufferError> {
        self.buffer.journal_executing(key).await
    }

    /// Commits the result record of `command` and marks it finished, in one transaction.
    pub async fn finish(
        &self,
        adapter: &str,
        command: &Command,
        outcome: &Outcome,
    ) -> Result<(), BufferError> {
        let record = super::outcome::result_record(adapter, command, outcome);
        self.buffer
            .finish_command(record, &command.key, outcome.name())
            .await
            .map(|_| ())
    }

    /// Unfinished instances, oldest first. A row whose body cannot be read back (written by
    /// a newer version, damaged) comes back with an empty `con`, so it is rejected with a
    /// reason instead of being lost.
    pub async fn open(&self) -> Result<Vec<(Stage, Instance)>, BufferError> {
        let rows = self.buffer.journal_open().await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let stage = if row.state == journal_state::EXECUTING {
                    Stage::Executing
                } else {
                    Stage::Received
                };
                let instance = serde_json::from_str(&row.body).unwrap_or(Instance {
                    key: row.key,
                    device: row.device,
                    created_ms: row.created_ms,
                    creator: None,
                    con: serde_json::Value::Null,
                });
                (stage, instance)
            })
            .collect())
    }

    /// The keys among `keys` already journaled.
    pub async fn known(
        &self,
        keys: Vec<String>,
    ) -> Result<std::collections::BTreeSet<String>, BufferError> {
        self.buffer.journal_known(keys).await
    }

    /// The outcome name of a finished instance, `Some("")` while unfinished, `None` if unknown.
    pub async fn outcome_of(&self, key: &str) -> Result<Option<String>, BufferError> {
        Ok(self
            .buffer
            .journal_get(key)
            .await?
            .map(|row| row.outcome.unwrap_or_default()))
    }

    /// Deletes finished rows older than [`RETENTION`].
    pub async fn prune(&self, now_ms: i64) -> Result<u64, BufferError> {
        self.buffer
            .journal_prune(now_ms - RETENTION.as_millis() as i64)
            .await
    }
}

/// What to do on start with a command found `executing`: `Ok(())` = execute it again,
/// `Err(outcome)` = report this instead. (A `received` one is simply executed.)
pub fn recovery(command: &Command, registry: &CommandRegistry) -> Result<(), Outcome> {
    let safety = registry
        .get(&command.device)
        .map(|target| target.check(command));
    match safety {
        Some(Ok(Safety::Idempotent)) => Ok(()),
        Some(Ok(Safety::Once)) => Err(Outcome::Unknown {
            reason: "citygate stopped while this command was being written; it writes a point \
                     that is not declared idempotent, so it was not repeated: check the device \
                     and send the command again if needed"
                .into(),
        }),
        _ => Err(Outcome::Unknown {
            reason: "citygate stopped while this command was being written, and the device no \
                     longer accepts it under the current config, so it was not repeated: check \
                     the device"
                .into(),
        }),
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
