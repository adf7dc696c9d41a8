//! The buffer's SQLite side: every operation as a plain synchronous method, owned by the writer
//! thread (see `writer.rs`). Nothing else touches the connection.

use super::config::{BufferConfig, WhenFull};
use super::error::BufferError;
use super::schema;
use super::stats::{BufferStats, DeadLetter};
use super::AppendReceipt;
use crate::record::{now_ms, Record, StoredRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::reason;

mod faults;
pub mod journal;

/// Free pages returned per maintenance tick (8 MiB with 4 KiB pages).
const VACUUM_PAGES_PER_RUN: i64 = 2048;

/// Dead letters kept at most; older ones are removed and counted.
pub const MAX_DEAD_LETTERS: i64 = 10_000;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    cfg: BufferConfig,
    epoch: String,
    page_size: u64,
    /// Bytes of `max_bytes` the main database file may use (the rest is the WAL's).
    db_budget: u64,
    pending: u64,
    last_seq: u64,
    /// Persistent drop counters (mirrors the `drops` table).
    drops: BTreeMap<String, u64>,
    dead_letters: u64,
    /// Devices that may have pending records: lets the syncer fetch per device without
    /// scanning the whole table.
    active_devices: BTreeSet<String>,
    /// Drops counted while the database could not be written, merged into `drops` once it can.
    unsaved_drops: BTreeMap<String, u64>,
    /// Records handed to the buffer since it was opened (committed or counted as dropped).
    offered: u64,
    /// Records found unreadable (mirrors the `damaged` table, plus those not yet saved).
    damaged: BTreeSet<u64>,
    /// Delivered records whose row cannot be deleted (the delete touches a damaged page):
    /// skipped by fetches until the process restarts (then resent once; the CSE answers
    /// "already there").
    undeletable: BTreeSet<u64>,
    /// Set when a device's records could not even be listed (damaged index pages).
    unlisted_damage: bool,
}

fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> BufferError {
    move |source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => BufferError::DiskFull,
        _ => BufferError::Sqlite { context, source },
    }
}

impl Store {
    pub fn open(path: &Path, cfg: &BufferConfig) -> Result<Store, BufferError> {
        let conn = schema::open(path, cfg)?;
        let q = sql("reading buffer state");
        let epoch: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .map_err(&q)?;
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(&q)?;
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .map_err(&q)?;
        let last_seq: i64 = conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(&q)?;
        let dead: i64 = conn
            .query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))
            .map_err(&q)?;
        let mut drops = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT reason, count FROM drops")
                .map_err(&q)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(&q)?;
            for row in rows {
                let (reason, count) = row.map_err(&q)?;
                drops.insert(reason, count as u64);
            }
        }
        let damaged = faults::load_damaged(&conn).map_err(&q)?;
        let mut active_devices = BTreeSet::new();
        {
            let mut stmt = conn
                .prepare("SELECT DISTINCT device FROM records")
                .map_err(&q)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&q)?;
            for row in rows {
                active_devices.insert(row.map_err(&q)?);
            }
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            db_budget: cfg
                .max_bytes
                .saturating_sub(schema::wal_budget(cfg.max_bytes)),
            cfg: cfg.clone(),
            epoch,
            page_size: page_size as u64,
            pending: (pending as u64).saturating_sub(damaged.len() as u64),
            last_seq: last_seq as u64,
            drops,
            dead_letters: dead as u64,
            active_devices,
            unsaved_drops: BTreeMap::new(),
            offered: 0,
            damaged,
            undeletable: BTreeSet::new(),
            unlisted_damage: false,
        })
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Bytes of live pages in the main database file.
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        Ok((pages - free).max(0) as u64 * self.page_size)
    }

    /// Whether `records` would fit under the bounds right now (for `when_full = "block"`).
    /// An empty buffer always has room, so an oversized batch cannot wedge the pipeline.
    pub fn has_room(&self, records: &[Record]) -> Result<bool, BufferError> {
        if self.pending == 0 {
            return Ok(true);
        }
        if let Some(max) = self.cfg.max_records {
            if self.pending + records.len() as u64 > max {
                return Ok(false);
            }
        }
        let used = self.used_bytes().map_err(sql("measuring the buffer"))?;
        let estimate: u64 = records.iter().map(estimated_row_bytes).sum();
        Ok(used + estimate <= self.db_budget)
    }

    /// Commits a group of appends in one transaction and returns one receipt per append.
    /// `states` (key, value) are written in that same transaction, in order (an adapter's
    /// position then never disagrees with the records it stands for). `finished` (command
    /// instance key, outcome) are journal rows marked finished in that same transaction (a
    /// command's result record and its journal state never disagree, even under kill -9).
    pub fn commit_group(
        &mut self,
        group: &[Vec<Record>],
        states: &[(String, String)],
        finished: &[(String, String)],
    ) -> Result<Vec<AppendReceipt>, BufferError> {
        let tx_result = self.try_commit_group(group, states, finished);
        if matches!(tx_result, Err(BufferError::DiskFull))
            && self.cfg.when_full == WhenFull::DropOldest
        {
            // Make room by evicting the oldest records, then try once more.
            let n: u64 = group.iter().map(|g| g.len() as u64).sum::<u64>().max(100);
            if self.evict_oldest(n, reason::DISK_FULL).is_ok() {
                return self.try_commit_group(group, states, finished);
            }
        }
        tx_result
    }

    fn try_commit_group(
        &mut self,
        group: &[Vec<Record>],
        states: &[(String, String)],
        finished: &[(String, String)],
    ) -> Result<Vec<AppendReceipt>, BufferError> {
        let q = sql("appending records");
        let now = now_ms();
        let tx = self.conn.transaction().map_err(&q)?;
        let mut receipts = Vec::with_capacity(group.len());
        let mut inserted = 0u64;
        let mut refused: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut new_devices = Vec::new();
        let mut last_seq = self.last_seq;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO records (device, ts_ms, enqueued_ms, body) VALUES (?1, ?2, ?3, ?4)")
                .map_err(&q)?;
            let mut used_estimate = if self.cfg.when_full == WhenFull::DropNewest {
                page_used(&tx, self.page_size).map_err(&q)?
            } else {
                0
            };
            for records in group {
                let mut receipt = AppendReceipt::default();
                for r in records {
                    let body = serde_json::to_string(r).map_err(|e| BufferError::Sqlite {
                        context: "encoding a record",
                        source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                    })?;
                    if self.cfg.when_full == WhenFull::DropNewest {
                        let size = row_bytes(body.len(), &r.device);
                        let over_records = self
                            .cfg
                            .max_records
                            .is_some_and(|m| self.pending + inserted >= m);
                        let over_bytes = used_estimate + size > self.db_budget;
                        if over_records || over_bytes {
                            let why = if over_records {
                                reason::MAX_RECORDS
                            } else {
                                reason::MAX_BYTES
                            };
                            *refused.entry(why).or_default() += 1;
                            receipt.dropped += 1;
                            continue;
                        }
                        used_estimate += size;
                    }
                    stmt.execute(params![r.device, r.ts_ms, now, body])
                        .map_err(&q)?;
                    last_seq = tx.last_insert_rowid() as u64;
                    receipt.seqs.push(last_seq);
                    inserted += 1;
                    if !self.active_devices.contains(&r.device) {
                        new_devices.push(r.device.clone());
                    }
                }
                receipts.push(receipt);
            }
        }
        for (why, n) in &refused {
            add_drops(&tx, why, *n).map_err(&q)?;
        }
        for (key, value) in states {
            write_state(&tx, key, value).map_err(&q)?;
        }
        for (key, outcome) in finished {
            journal::finish_in(&tx, key, outcome).map_err(&q)?;
        }
        tx.commit().map_err(&q)?;
        self.pending += inserted;
        self.last_seq = last_seq;
        self.active_devices.extend(new_devices);
        for (why, n) in refused {
            *self.drops.entry(why.to_owned()).or_default() += n;
        }
        if self.cfg.when_full == WhenFull::DropOldest {
            // The records are committed: a failed eviction must not make them look lost.
            if let Err(e) = self.enforce_bounds() {
                tracing::warn!(error = %e, "cannot evict old records to stay within the bound");
            }
        }
        Ok(receipts)
    }

    /// drop_oldest: evicts the oldest pending records until every bound holds again, down to
    /// 90 % of `max_bytes` so eviction does not run on every commit.
    fn enforce_bounds(&mut self) -> Result<(), BufferError> {
        if let Some(max) = self.cfg.max_records {
            if self.pending > max {
                self.evict_oldest(self.pending - max, reason::MAX_RECORDS)?;
            }
        }
        let q = sql("evicting old records");
        let mut used = self.used_bytes().map_err(&q)?;
        if used <= self.db_budget {
            return Ok(());
        }
        let target = self.db_budget / 10 * 9;
        for _ in 0..64 {
            if used <= target || self.pending == 0 {
                break;
            }
            let per_row = (used / self.pending.max(1)).max(1);
            let n = (used - target).div_ceil(per_row).max(1);
            self.evict_oldest(n, reason::MAX_BYTES)?;
            used = self.used_bytes().map_err(&q)?;
        }
        Ok(())
    }

    /// Deletes the `n` oldest pending records and counts them under `why`, in one transaction.
    fn evict_oldest(&mut self, n: u64, why: &str) -> Result<u64, BufferError> {
        let q = sql("evicting old records");
        let tx = self.conn.transaction().map_err(&q)?;
        let deleted = tx
            .execute(
                "DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?1)",
                params![n as i64],
            )
            .map_err(&q)? as u64;
        add_drops(&tx, why, deleted).map_err(&q)?;
        tx.commit().map_err(&q)?;
        self.pending -= deleted.min(self.pending);
        *self.drops.entry(why.to_owned()).or_default() += deleted;
        if deleted > 0 {
            tracing::warn!(
                dropped = deleted,
                reason = why,
                "buffer full: dropped oldest records"
            );
        }
        Ok(deleted)
    }

    /// Drops pending records committed more than `max_age` ago.
    pub fn expire(&mut self) -> Result<u64, BufferError> {
        let Some(max_age) = self.cfg.max_age else {
            return Ok(0);
        };
        let cutoff = now_ms() - max_age.as_millis() as i64;
        let q = sql("expiring old records");
        let tx = self.conn.transaction().map_err(&q)?;
        let deleted = tx
            .execute(
                "DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE enqueued_ms < ?1 ORDER BY seq LIMIT 10000)",
                params![cutoff],
            )
            .map_err(&q)? as u64;
        add_drops(&tx, reason::MAX_AGE, deleted).map_err(&q)?;
        tx.commit().map_err(&q)?;
        self.pending -= deleted.min(self.pending);
        if deleted > 0 {
            *self.drops.entry(reason::MAX_AGE.to_owned()).or_default() += deleted;
            tracing::warn!(
                dropped = deleted,
                reason = reason::MAX_AGE,
                "dropped records older than max_age"
            );
        }
        Ok(deleted)
    }

    /// Pending records after each device's cursor, at most `limit` per device, seq order.
    /// Each device is read on its own: a damaged page costs only the records on it (see
    /// [`Store::fetch_around_damage`]), every other device keeps flowing.
    pub fn fetch_pending(
        &mut self,
        cursors: &HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, BufferError> {
        let q = sql("reading pending records");
        let mut out = Vec::new();
        let mut idle = Vec::new();
        let devices: Vec<String> = self.active_devices.iter().cloned().collect();
        for device in &devices {
            let cursor = cursors.get(device).copied().unwrap_or(0);
            let before = out.len();
            let mut undecodable = Vec::new();
            match self.fetch_device(device, cursor, limit, &mut out, &mut undecodable) {
                Ok(()) => {}
                Err(e) if super::health::is_corruption(&e) => {
                    out.truncate(before);
                    undecodable.clear();
                    self.fetch_around_damage(device, cursor, limit, &mut out);
                }
                Err(e) => return Err(q(e)),
            }
            if !undecodable.is_empty() {
                self.mark_damaged(device, &undecodable);
            }
            if out.len() == before && !self.device_has_records(device).map_err(&q)? {
                idle.push(device.clone());
            }
        }
        for d in idle {
            self.active_devices.remove(&d);
        }
        Ok(out)
    }

    /// Removes delivered records.
    pub fn mark_delivered(&mut self, seqs: &[u64]) -> Result<(), BufferError> {
        match self.delete_delivered(seqs) {
            Err(BufferError::Sqlite { source, .. }) if super::health::is_corruption(&source) => {
                self.delete_delivered_around_damage(seqs);
                Ok(())
            }
            other => other,
        }
    }

    fn delete_delivered(&mut self, seqs: &[u64]) -> Result<(), BufferError> {
        let q = sql("marking records delivered");
        let tx = self.conn.transaction().map_err(&q)?;
        let mut deleted = 0;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM records WHERE seq = ?1")
                .map_err(&q)?;
            for s in seqs {
                deleted += stmt.execute(params![*s as i64]).map_err(&q)? as u64;
            }
        }
        tx.commit().map_err(&q)?;
        self.pending -= deleted.min(self.pending);
        Ok(())
    }

    /// Moves a record the CSE refused permanently to the dead-letter table.
    pub fn dead_letter(
        &mut self,
        seq: u64,
        rsc: Option<u32>,
        why: &str,
    ) -> Result<(), BufferError> {
        let q = sql("moving a record to dead letters");
        let tx = self.conn.transaction().map_err(&q)?;
        let moved = tx
            .execute(
                "INSERT OR REPLACE INTO dead_letters (seq, device, ts_ms, body, rsc, reason, dead_ms)
                 SELECT seq, device, ts_ms, body, ?2, ?3, ?4 FROM records WHERE seq = ?1",
                params![seq as i64, rsc, why, now_ms()],
            )
            .map_err(&q)? as u64;
        tx.execute("DELETE FROM records WHERE seq = ?1", params![seq as i64])
            .map_err(&q)?;
        let total: i64 = tx
            .query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))
            .map_err(&q)?;
        let overflow = (total - MAX_DEAD_LETTERS).max(0);
        if overflow > 0 {
            tx.execute(
                "DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM dead_letters ORDER BY seq LIMIT ?1)",
                params![overflow],
            )
            .map_err(&q)?;
            add_drops(&tx, reason::DEAD_LETTER_OVERFLOW, overflow as u64).map_err(&q)?;
        }
        tx.commit().map_err(&q)?;
        self.pending -= moved.min(self.pending);
        self.dead_letters = (total - overflow).max(0) as u64;
        if overflow > 0 {
            *self
                .drops
                .entry(reason::DEAD_LETTER_OVERFLOW.to_owned())
                .or_default() += overflow as u64;
        }
        Ok(())
    }

    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BufferError> {
        let q = sql("reading dead letters");
        let mut stmt = self
            .conn
            .prepare("SELECT seq, device, ts_ms, body, rsc, reason, dead_ms FROM dead_letters ORDER BY seq DESC LIMIT ?1")
            .map_err(&q)?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok(DeadLetter {
                    seq: r.get::<_, i64>(0)? as u64,
                    device: r.get(1)?,
                    ts_ms: r.get(2)?,
                    body: r.get(3)?,
                    rsc: r.get(4)?,
                    reason: r.get(5)?,
                    dead_ms: r.get(6)?,
                })
            })
            .map_err(&q)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&q)
    }

    pub fn get_state(&self, key: &str) -> Result<Option<String>, BufferError> {
        self.conn
            .query_row(
                "SELECT value FROM state WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading state"))
    }

    pub fn put_state(&mut self, key: &str, value: &str) -> Result<(), BufferError> {
        write_state(&self.conn, key, value).map_err(sql("writing state"))
    }

    /// Gives free pages back to the file system once a backlog has drained, so the file
    /// shrinks (users of other gateways watched theirs grow forever).
    pub fn vacuum_if_sparse(&mut self) -> Result<(), BufferError> {
        let q = sql("vacuuming");
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .map_err(&q)?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))
            .map_err(&q)?;
        tracing::trace!(pages, free, "buffer pages");
        if free > 64 && free * 4 > pages {
            tracing::debug!(pages, free, "returning free pages to the file system");
            // Each step of the pragma frees one page: step it to the end.
            let limit = free.min(VACUUM_PAGES_PER_RUN);
            self.conn
                .pragma(None, "incremental_vacuum", limit, |_| Ok(()))
                .map_err(&q)?;
        }
        Ok(())
    }

    /// Final checkpoint so the WAL is folded into the database on a clean stop.
    pub fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "final WAL checkpoint failed (the WAL is replayed at next start)");
        }
    }

    pub fn stats(&self) -> Result<BufferStats, BufferError> {
        let q = sql("reading buffer statistics");
        // A damaged first page must not hide the rest of the statistics.
        let oldest: Option<(i64, i64)> = match self
            .conn
            .query_row(
                "SELECT ts_ms, enqueued_ms FROM records ORDER BY seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        {
            Err(e) if super::health::is_corruption(&e) => None,
            other => other.map_err(&q)?,
        };
        let file_len = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Ok(BufferStats {
            path: self.path.clone(),
            epoch: self.epoch.clone(),
            pending_records: self.pending,
            db_bytes: file_len(self.path.clone()),
            wal_bytes: file_len(PathBuf::from(wal)),
            used_bytes: self.used_bytes().map_err(&q)?,
            max_bytes: self.cfg.max_bytes,
            max_records: self.cfg.max_records,
            when_full: self.cfg.when_full.as_str(),
            oldest_pending_enqueued_ms: oldest.map(|o| o.1),
            oldest_pending_ts_ms: oldest.map(|o| o.0),
            last_seq: self.last_seq,
            dead_letters: self.dead_letters,
            dropped: self.drops.clone(),
            health: if self.is_damaged() {
                super::health::BufferHealth::Damaged
            } else {
                super::health::BufferHealth::Writable
            },
            offered_records: self.offered,
            damaged_records: self.damaged.len() as u64,
        })
    }
}

/// Bytes a row takes in the table and its index: body, device twice, keys and cell overhead.
fn row_bytes(body_len: usize, device: &str) -> u64 {
    (body_len + 2 * device.len() + 48) as u64
}

fn estimated_row_bytes(r: &Record) -> u64 {
    let body_len = serde_json::to_string(r).map(|b| b.len()).unwrap_or(256);
    row_bytes(body_len, &r.device)
}

fn page_used(conn: &Connection, page_size: u64) -> rusqlite::Result<u64> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    Ok((pages - free).max(0) as u64 * page_size)
}

fn add_drops(conn: &Connection, why: &str, n: u64) -> rusqlite::Result<()> {
    if n == 0 {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO drops (reason, count) VALUES (?1, ?2) ON CONFLICT(reason) DO UPDATE SET count = count + excluded.count",
        params![why, n as i64],
    )
    .map(|_| ())
}

/// Sets one key of the `state` table (inside the caller's transaction, if any).
fn write_state(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
}
