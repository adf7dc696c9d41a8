//! `citygate buffer salvage`: copies everything that can still be read from a damaged buffer
//! into a fresh buffer file, row by row, so one bad page costs only the rows on it.
//!
//! Records keep their `seq` and the file keeps its epoch, so a record delivered before the
//! damage and delivered again from the salvaged file has the same contentInstance name (the CSE
//! refuses the duplicate instead of storing it twice), and new records never reuse a seq.
//! Records that cannot be read are counted under `reason="damaged"` in the new file.

use super::config::BufferConfig;
use super::error::BufferError;
use super::health::is_corruption;
use super::reason;
use super::schema;
use crate::record::Record;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rowids listed per step while scanning a table.
const SCAN_STEP: i64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum SalvageError {
    #[error("{path} already exists: salvage writes a new file only, pick another --out")]
    OutExists { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Source {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} is not a citygate buffer")]
    Foreign { path: PathBuf },
    #[error("cannot write the salvaged buffer: {0}")]
    Out(#[from] BufferError),
    #[error("cannot write the salvaged buffer {path}: {source}")]
    OutSql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// What was copied and what was lost.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SalvageReport {
    pub epoch: Option<String>,
    /// Highest seq ever assigned in the source (new records continue after it).
    pub last_seq: u64,
    pub records_copied: u64,
    /// Records listed (by the index or the table) whose row could not be read or decoded.
    pub records_unreadable: u64,
    /// Of those, records the daemon had already found damaged (and counted).
    pub records_known_damaged: u64,
    pub dead_letters_copied: u64,
    pub dead_letters_unreadable: u64,
    pub state_keys_copied: u64,
    /// Drop counters copied (plus newly found unreadable records under `damaged`).
    pub dropped: BTreeMap<String, u64>,
    /// Tables that could not be read to the end (some of their rows may be missing).
    pub incomplete_tables: Vec<String>,
}

/// Copies every readable record, dead letter, state key and drop counter of `src` into a new
/// buffer at `out`. `src` is opened read-only and never changed.
pub fn salvage(src: &Path, out: &Path, cfg: &BufferConfig) -> Result<SalvageReport, SalvageError> {
    if out.exists() {
        return Err(SalvageError::OutExists {
            path: out.to_path_buf(),
        });
    }
    let source = |e| SalvageError::Source {
        path: src.to_path_buf(),
        source: e,
    };
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(source)?;
    let app_id: i32 = from
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(source)?;
    if app_id != schema::APPLICATION_ID {
        return Err(SalvageError::Foreign {
            path: src.to_path_buf(),
        });
    }
    let mut to = schema::open(out, cfg)?;
    let out_sql = |e| SalvageError::OutSql {
        path: out.to_path_buf(),
        source: e,
    };
    let mut report = SalvageReport {
        epoch: from
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .optional()
            .ok()
            .flatten(),
        last_seq: from
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .ok()
            .flatten()
            .unwrap_or(0)
            .max(0) as u64,
        ..SalvageReport::default()
    };
    let tx = to.transaction().map_err(out_sql)?;
    if let Some(epoch) = &report.epoch {
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'epoch'", [epoch])
            .map_err(out_sql)?;
    }
    copy_records(&from, &tx, &mut report).map_err(out_sql)?;
    copy_dead_letters(&from, &tx, &mut report).map_err(out_sql)?;
    copy_small_tables(&from, &tx, &mut report).map_err(out_sql)?;
    // New seqs continue after the highest ever assigned, never reusing one.
    let last = report.last_seq as i64;
    let updated = tx
        .execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'records'",
            [last],
        )
        .map_err(out_sql)?;
    if updated == 0 && last > 0 {
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?1)",
            [last],
        )
        .map_err(out_sql)?;
    }
    tx.commit().map_err(out_sql)?;
    let _ = to.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    Ok(report)
}

fn copy_records(
    from: &Connection,
    to: &Connection,
    report: &mut SalvageReport,
) -> rusqlite::Result<()> {
    let known_damaged: BTreeSet<i64> = scan_rowids(from, "damaged", report.last_seq)
        .map(|(s, _)| s.into_iter().collect())
        .unwrap_or_default();
    // Seqs from the index and from the table: each may have lost pages of its own.
    let mut seqs = BTreeSet::new();
    match from.prepare("SELECT seq FROM records INDEXED BY records_by_device") {
        Ok(mut stmt) => {
            let mut rows = stmt.query([])?;
            loop {
                match rows.next() {
                    Ok(Some(r)) => {
                        seqs.insert(r.get::<_, i64>(0)?);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        report.incomplete_tables.push("records_by_device".into());
                        break;
                    }
                }
            }
        }
        Err(_) => report.incomplete_tables.push("records_by_device".into()),
    }
    match scan_rowids(from, "records", report.last_seq) {
        Some((table_seqs, complete)) => {
            seqs.extend(table_seqs);
            if !complete {
                report.incomplete_tables.push("records".into());
            }
        }
        None => report.incomplete_tables.push("records".into()),
    }
    let mut read =
        from.prepare("SELECT device, ts_ms, enqueued_ms, body FROM records WHERE seq = ?1")?;
    let mut ins = to.prepare(
        "INSERT INTO records (seq, device, ts_ms, enqueued_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut new_damage = 0u64;
    for seq in seqs {
        let row = read.query_row([seq], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        });
        match row {
            Ok((device, ts, enq, body)) if serde_json::from_str::<Record>(&body).is_ok() => {
                ins.execute(params![seq, device, ts, enq, body])?;
                report.records_copied += 1;
                report.last_seq = report.last_seq.max(seq as u64);
            }
            // Listed by a damaged index but gone from the table: not a record.
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            _ => {
                report.records_unreadable += 1;
                if known_damaged.contains(&seq) {
                    report.records_known_damaged += 1;
                } else {
                    new_damage += 1;
                }
            }
        }
    }
    if new_damage > 0 {
        *report.dropped.entry(reason::DAMAGED.into()).or_default() += new_damage;
    }
    Ok(())
}

fn copy_dead_letters(
    from: &Connection,
    to: &Connection,
    report: &mut SalvageReport,
) -> rusqlite::Result<()> {
    let Some((seqs, complete)) = scan_rowids(from, "dead_letters", report.last_seq) else {
        report.incomplete_tables.push("dead_letters".into());
        return Ok(());
    };
    if !complete {
        report.incomplete_tables.push("dead_letters".into());
    }
    let mut read = from.prepare(
        "SELECT device, ts_ms, body, rsc, reason, dead_ms FROM dead_letters WHERE seq = ?1",
    )?;
    let mut ins = to.prepare(
        "INSERT INTO dead_letters (seq, device, ts_ms, body, rsc, reason, dead_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for seq in seqs {
        let row = read.query_row([seq], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        });
        match row {
            Ok((device, ts, body, rsc, why, dead)) => {
                ins.execute(params![seq, device, ts, body, rsc, why, dead])?;
                report.dead_letters_copied += 1;
            }
            Err(_) => report.dead_letters_unreadable += 1,
        }
    }
    Ok(())
}

/// `state` and `drops`: small tables, copied as far as they can be read.
fn copy_small_tables(
    from: &Connection,
    to: &Connection,
    report: &mut SalvageReport,
) -> rusqlite::Result<()> {
    for table in ["state", "drops"] {
        let rows = read_pairs(
            from,
            &format!(
                "SELECT {}, {} FROM {table}",
                if table == "state" { "key" } else { "reason" },
                if table == "state" { "value" } else { "count" }
            ),
        );
        if !rows.1 {
            report.incomplete_tables.push(table.into());
        }
        for (k, v) in rows.0 {
            if table == "state" {
                to.execute(
                    "INSERT INTO state (key, value) VALUES (?1, ?2)",
                    params![k, v.as_str()],
                )?;
                report.state_keys_copied += 1;
            } else if let Ok(n) = v.parse::<u64>() {
                *report.dropped.entry(k).or_default() += n;
            }
        }
    }
    for (why, n) in &report.dropped {
        to.execute(
            "INSERT INTO drops (reason, count) VALUES (?1, ?2)",
            params![why, *n as i64],
        )?;
    }
    Ok(())
}

/// Two text columns of every readable row; `false` when the scan stopped at an error.
fn read_pairs(conn: &Connection, query: &str) -> (Vec<(String, String)>, bool) {
    let mut out = Vec::new();
    let Ok(mut stmt) = conn.prepare(query) else {
        return (out, false);
    };
    let Ok(mut rows) = stmt.query([]) else {
        return (out, false);
    };
    loop {
        match rows.next() {
            Ok(Some(r)) => {
                let text = |i| -> String {
                    match r.get_ref(i) {
                        Ok(rusqlite::types::ValueRef::Text(t)) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
                        _ => String::new(),
                    }
                };
                out.push((text(0), text(1)));
            }
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Every readable rowid of `table` in order. A damaged page stops a plain scan; here the scan
/// jumps ahead (doubling the jump) until it reads again, so the pages after the damage are
/// still found. `None` when the table cannot be read at all; `complete` is false when pages
/// were skipped. `max_hint` bounds the jumps (the highest seq ever assigned).
fn scan_rowids(conn: &Connection, table: &str, max_hint: u64) -> Option<(Vec<i64>, bool)> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT rowid FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
        ))
        .ok()?;
    let limit = if max_hint == 0 {
        i64::MAX / 4
    } else {
        (max_hint as i64).saturating_mul(2)
    };
    let mut out = Vec::new();
    let mut after = 0i64;
    let mut jump = 1i64;
    let mut complete = true;
    loop {
        let mut got = 0;
        let mut failed = false;
        match stmt.query(params![after, SCAN_STEP]) {
            Ok(mut rows) => loop {
                match rows.next() {
                    Ok(Some(r)) => match r.get::<_, i64>(0) {
                        Ok(id) => {
                            out.push(id);
                            after = id;
                            got += 1;
                        }
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        failed = true;
                        if !is_corruption(&e) {
                            tracing::debug!(table, error = %e, "salvage scan error");
                        }
                        break;
                    }
                }
            },
            Err(_) => failed = true,
        }
        if failed {
            complete = false;
            after = after.saturating_add(jump);
            jump = jump.saturating_mul(2);
            if after > limit {
                break;
            }
            continue;
        }
        jump = 1;
        if got < SCAN_STEP {
            break;
        }
    }
    Some((out, complete))
}
