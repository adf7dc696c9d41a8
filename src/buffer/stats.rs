//! What `citygate buffer stats` and the metrics show about the buffer.

use crate::telemetry::BufferMetrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BufferStats {
    pub path: PathBuf,
    /// Random id of this database, part of every contentInstance name.
    pub epoch: String,
    pub pending_records: u64,
    /// Size of the database file on disk.
    pub db_bytes: u64,
    /// Size of the write-ahead log on disk.
    pub wal_bytes: u64,
    /// Bytes of live pages (what the bound is enforced on).
    pub used_bytes: u64,
    pub max_bytes: u64,
    pub max_records: Option<u64>,
    pub when_full: &'static str,
    pub oldest_pending_enqueued_ms: Option<i64>,
    pub oldest_pending_ts_ms: Option<i64>,
    /// Highest sequence number ever assigned.
    pub last_seq: u64,
    pub dead_letters: u64,
    /// Records dropped since the database was created, by reason (including drops counted
    /// while the disk refused writes and not yet saved to it).
    pub dropped: BTreeMap<String, u64>,
    /// Whether the buffer can commit right now (`writable`, `read_only`, `disk_full`,
    /// `io_error`, `damaged`).
    pub health: super::health::BufferHealth,
    /// Records handed to the buffer since the daemon started (committed or counted as dropped).
    pub offered_records: u64,
    /// Records found unreadable (damaged pages) and skipped; `citygate buffer salvage` helps.
    pub damaged_records: u64,
}

impl BufferStats {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Sets the `citygate_buffer_*` metrics to these numbers.
    pub fn publish(&self, m: &BufferMetrics) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.records.set(gauge(self.pending_records));
        m.bytes.set(gauge(self.db_bytes + self.wal_bytes));
        m.max_bytes.set(gauge(self.max_bytes));
        m.dead_letters.set(gauge(self.dead_letters));
        let age = self
            .oldest_pending_enqueued_ms
            .map(|ms| ((crate::record::now_ms() - ms).max(0)) as f64 / 1000.0)
            .unwrap_or(0.0);
        m.oldest_pending_age_seconds.set(age);
        self.health.publish(m);
        m.damaged_records.set(gauge(self.damaged_records));
        m.offered_total(self.offered_records);
        for reason in super::reason::ALL {
            m.dropped_total(reason, self.dropped.get(reason).copied().unwrap_or(0));
        }
        for (reason, total) in &self.dropped {
            m.dropped_total(reason, *total);
        }
    }
}

/// A record the CSE refused permanently, kept for a person to look at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    pub seq: u64,
    pub device: String,
    pub ts_ms: i64,
    /// The record as JSON.
    pub body: String,
    /// The oneM2M response status code, when the CSE gave one.
    pub rsc: Option<u32>,
    pub reason: String,
    pub dead_ms: i64,
}
