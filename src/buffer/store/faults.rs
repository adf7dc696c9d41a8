//! The store under faults: counting what could not be stored while the disk refuses writes,
//! proving writes work, and reading around damaged pages.

use super::{add_drops, reason, sql, Store};
use crate::buffer::health::{classify_write_failure, BufferHealth};
use crate::buffer::BufferError;
use crate::record::{now_ms, Record, StoredRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;

/// Seqs listed per step while reading a device's records one by one around damage.
const LIST_STEP: i64 = 256;

/// The seqs recorded as damaged by earlier runs.
pub(super) fn load_damaged(conn: &Connection) -> rusqlite::Result<BTreeSet<u64>> {
    let mut stmt = conn.prepare("SELECT seq FROM damaged")?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    rows.map(|r| r.map(|s| s as u64)).collect()
}

impl Store {
    /// Counts records handed to the buffer (committed or dropped): with the drop counters this
    /// shows exactly what was lost.
    pub fn count_offered(&mut self, n: u64) {
        self.offered += n;
    }

    /// Counts records that never reached the database (disk full, read-only, I/O error). Kept
    /// in memory (and so in the metrics) at once; written to the `drops` table by
    /// [`Store::flush_unsaved_drops`] once writes work, since the failing disk cannot take it now.
    pub fn count_unstored(&mut self, why: &str, n: u64) {
        if n == 0 {
            return;
        }
        *self.drops.entry(why.to_owned()).or_default() += n;
        *self.unsaved_drops.entry(why.to_owned()).or_default() += n;
    }

    /// Merges drops counted while writes failed into the `drops` table (one transaction).
    pub fn flush_unsaved_drops(&mut self) -> Result<(), BufferError> {
        if self.unsaved_drops.is_empty() {
            return Ok(());
        }
        let q = sql("saving drop counters");
        let tx = self.conn.transaction().map_err(&q)?;
        for (why, n) in &self.unsaved_drops {
            add_drops(&tx, why, *n).map_err(&q)?;
        }
        tx.commit().map_err(&q)?;
        self.unsaved_drops.clear();
        Ok(())
    }

    /// A tiny committed write: proves the buffer can commit (health probe while idle or
    /// failing). Also saves drops counted while writes failed.
    pub fn probe_write(&mut self) -> Result<(), BufferError> {
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![crate::buffer::health::PROBE_KEY, now_ms().to_string()],
            )
            .map_err(sql("probing the buffer with a write"))?;
        self.flush_unsaved_drops()
    }

    /// What a failed write says about the buffer's disk (see [`classify_write_failure`]).
    /// A write that trips on a damaged page is an I/O failure for the gate: commits fail.
    pub fn classify(&self, e: &BufferError) -> BufferHealth {
        match classify_write_failure(e, &self.path) {
            BufferHealth::Damaged | BufferHealth::Writable => BufferHealth::IoError,
            other => other,
        }
    }

    /// Whether damaged records were found (an alarm until the file is salvaged).
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty() || self.unlisted_damage
    }

    /// One device's pending records after `cursor`; records whose body does not decode are
    /// listed in `undecodable`.
    pub(super) fn fetch_device(
        &self,
        device: &str,
        cursor: u64,
        limit: usize,
        out: &mut Vec<StoredRecord>,
        undecodable: &mut Vec<u64>,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, body FROM records WHERE device = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![device, cursor as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (seq, body) = row?;
            if self.damaged.contains(&(seq as u64)) || self.undeletable.contains(&(seq as u64)) {
                continue;
            }
            match decode(seq as u64, &body) {
                Some(r) => out.push(r),
                None => undecodable.push(seq as u64),
            }
        }
        Ok(())
    }

    pub(super) fn device_has_records(&self, device: &str) -> rusqlite::Result<bool> {
        let mut exists = self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE device = ?1 LIMIT 1")?;
        Ok(exists
            .query_row(params![device], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Reads a device's records one by one after a read hit a damaged page. The seqs come from
    /// the `records_by_device` index (other pages than the rows); each row is then read by
    /// itself, so only the rows on the damaged page are lost. Those are counted once under
    /// `reason="damaged"`, remembered in the `damaged` table and skipped from then on.
    pub(super) fn fetch_around_damage(
        &mut self,
        device: &str,
        cursor: u64,
        limit: usize,
        out: &mut Vec<StoredRecord>,
    ) {
        let mut after = cursor as i64;
        let mut got = 0usize;
        let mut bad = Vec::new();
        'list: while got < limit {
            let seqs = match self.list_device_seqs(device, after) {
                Ok(s) => s,
                Err(e) => {
                    if !self.unlisted_damage {
                        tracing::error!(device, error = %e, "buffer damaged: cannot list this device's records; skipping the device until the buffer is salvaged (citygate buffer salvage)");
                    }
                    self.unlisted_damage = true;
                    break;
                }
            };
            if seqs.is_empty() {
                break;
            }
            for seq in seqs {
                after = seq as i64;
                if self.damaged.contains(&seq) || self.undeletable.contains(&seq) {
                    continue;
                }
                match self.read_body(seq) {
                    Ok(body) => match decode(seq, &body) {
                        Some(r) => {
                            out.push(r);
                            got += 1;
                            if got >= limit {
                                break 'list;
                            }
                        }
                        None => bad.push(seq),
                    },
                    Err(_) => bad.push(seq),
                }
            }
        }
        if !bad.is_empty() {
            self.mark_damaged(device, &bad);
        }
    }

    fn list_device_seqs(&self, device: &str, after: i64) -> rusqlite::Result<Vec<u64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq FROM records INDEXED BY records_by_device WHERE device = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![device, after, LIST_STEP], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|s| s as u64)).collect()
    }

    fn read_body(&self, seq: u64) -> rusqlite::Result<String> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM records WHERE seq = ?1")?;
        stmt.query_row(params![seq as i64], |r| r.get(0))
    }

    /// Deleting a batch tripped on a damaged page (a delete rebalances neighbouring pages):
    /// deletes one record at a time, and remembers the ones that still cannot be deleted so
    /// they are not fetched (and sent) again.
    pub(super) fn delete_delivered_around_damage(&mut self, seqs: &[u64]) {
        let mut stuck = 0u64;
        for &seq in seqs {
            match self
                .conn
                .execute("DELETE FROM records WHERE seq = ?1", params![seq as i64])
            {
                Ok(n) => self.pending -= (n as u64).min(self.pending),
                Err(e) => {
                    tracing::debug!(seq, error = %e, "cannot delete a delivered record");
                    if self.undeletable.insert(seq) {
                        self.pending -= 1u64.min(self.pending);
                        stuck += 1;
                    }
                }
            }
        }
        if stuck > 0 {
            self.unlisted_damage = true;
            tracing::error!(
                records = stuck,
                "buffer damaged: delivered records cannot be removed; skipped (salvage the buffer: citygate buffer salvage)"
            );
        }
    }

    /// Counts unreadable records once (`reason="damaged"`) and remembers them so no later read
    /// trips on them. Saved in one transaction; if the database cannot take it, kept in memory
    /// and the count merged later like any other unsaved drop.
    pub(super) fn mark_damaged(&mut self, device: &str, seqs: &[u64]) {
        let new: Vec<u64> = seqs
            .iter()
            .copied()
            .filter(|s| !self.damaged.contains(s))
            .collect();
        if new.is_empty() {
            return;
        }
        tracing::error!(
            device,
            records = new.len(),
            first_seq = new[0],
            last_seq = new[new.len() - 1],
            "buffer damaged: records cannot be read; skipped and counted as dropped (reason damaged). Salvage the buffer: citygate buffer salvage"
        );
        let n = new.len() as u64;
        let saved = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO damaged (seq, device, found_ms) VALUES (?1, ?2, ?3)",
                )?;
                for s in &new {
                    ins.execute(params![*s as i64, device, now_ms()])?;
                }
            }
            add_drops(&tx, reason::DAMAGED, n)?;
            tx.commit()
        })();
        *self.drops.entry(reason::DAMAGED.to_owned()).or_default() += n;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot save the damaged-record list; kept in memory");
            *self
                .unsaved_drops
                .entry(reason::DAMAGED.to_owned())
                .or_default() += n;
        }
        self.pending -= n.min(self.pending);
        self.damaged.extend(new);
    }
}

/// A stored body back as a record; `None` (logged) when it does not decode.
fn decode(seq: u64, body: &str) -> Option<StoredRecord> {
    match serde_json::from_str::<Record>(body) {
        Ok(record) => Some(StoredRecord { seq, record }),
        Err(e) => {
            tracing::error!(seq, error = %e, "undecodable record in buffer; skipped and counted as damaged");
            None
        }
    }
}
