//! The command journal's SQL (table `command_journal`, schema v3): one row per command
//! instance, keyed by its resource id at the CSE, moving received → executing → finished.
//! The meaning of the states and the crash rule live in `crate::commands::journal`; here are
//! only the statements, run by the writer thread like every other operation.
//!
//! `finished` is never set here on its own: it is written by [`finish_in`] inside the
//! transaction that commits the command's result record (see `Store::commit_group`), so a
//! command has its result in the buffer exactly when its journal row says finished.

use super::{sql, Store};
use crate::buffer::BufferError;
use crate::record::now_ms;
use rusqlite::{params, Connection};
use std::collections::BTreeSet;

/// Journal states as stored.
pub mod state {
    pub const RECEIVED: &str = "received";
    pub const EXECUTING: &str = "executing";
    pub const FINISHED: &str = "finished";
}

/// One journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// The instance's resource id (`ri`) at the CSE.
    pub key: String,
    pub device: String,
    /// `received`, `executing` or `finished`.
    pub state: String,
    /// When the instance was created at the CSE (UTC ms).
    pub created_ms: i64,
    /// The instance as received (JSON, written by `commands::journal`).
    pub body: String,
    /// The outcome name once finished.
    pub outcome: Option<String>,
}

/// Marks a command finished with `outcome`, inside the caller's transaction.
pub(super) fn finish_in(conn: &Connection, key: &str, outcome: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE command_journal SET state = ?2, outcome = ?3, updated_ms = ?4 WHERE key = ?1",
        params![key, state::FINISHED, outcome, now_ms()],
    )
    .map(|_| ())
}

impl Store {
    /// Records a newly received instance. `false` when its key is already in the journal
    /// (handled or being handled: the instance came twice, by notification and catch-up).
    pub fn journal_receive(&mut self, row: &JournalRow) -> Result<bool, BufferError> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO command_journal (key, device, state, created_ms, body, outcome, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
                params![row.key, row.device, state::RECEIVED, row.created_ms, row.body, now_ms()],
            )
            .map_err(sql("recording a received command"))?;
        Ok(n == 1)
    }

    /// Moves a received command to `executing`, just before it is handed to its adapter.
    pub fn journal_executing(&mut self, key: &str) -> Result<(), BufferError> {
        self.conn
            .execute(
                "UPDATE command_journal SET state = ?2, updated_ms = ?3 WHERE key = ?1 AND state = ?4",
                params![key, state::EXECUTING, now_ms(), state::RECEIVED],
            )
            .map(|_| ())
            .map_err(sql("marking a command executing"))
    }

    /// Every command not finished (received or executing), oldest creation first.
    pub fn journal_open(&self) -> Result<Vec<JournalRow>, BufferError> {
        let q = sql("reading the command journal");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, device, state, created_ms, body, outcome FROM command_journal
                 WHERE state != ?1 ORDER BY created_ms, key",
            )
            .map_err(&q)?;
        let rows = stmt
            .query_map(params![state::FINISHED], |r| {
                Ok(JournalRow {
                    key: r.get(0)?,
                    device: r.get(1)?,
                    state: r.get(2)?,
                    created_ms: r.get(3)?,
                    body: r.get(4)?,
                    outcome: r.get(5)?,
                })
            })
            .map_err(&q)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&q)
    }

    /// The keys among `keys` that are already in the journal (any state).
    pub fn journal_known(&self, keys: &[String]) -> Result<BTreeSet<String>, BufferError> {
        let q = sql("reading the command journal");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM command_journal WHERE key = ?1")
            .map_err(&q)?;
        let mut known = BTreeSet::new();
        for key in keys {
            if stmt.exists(params![key]).map_err(&q)? {
                known.insert(key.clone());
            }
        }
        Ok(known)
    }

    /// The row of `key`, if any.
    pub fn journal_get(&self, key: &str) -> Result<Option<JournalRow>, BufferError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT key, device, state, created_ms, body, outcome FROM command_journal WHERE key = ?1",
                params![key],
                |r| {
                    Ok(JournalRow {
                        key: r.get(0)?,
                        device: r.get(1)?,
                        state: r.get(2)?,
                        created_ms: r.get(3)?,
                        body: r.get(4)?,
                        outcome: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(sql("reading the command journal"))
    }

    /// Deletes finished rows of instances created before `before_ms`; returns how many.
    pub fn journal_prune(&mut self, before_ms: i64) -> Result<u64, BufferError> {
        self.conn
            .execute(
                "DELETE FROM command_journal WHERE state = ?1 AND created_ms < ?2",
                params![state::FINISHED, before_ms],
            )
            .map(|n| n as u64)
            .map_err(sql("pruning the command journal"))
    }
}
