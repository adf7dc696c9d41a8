//! The buffer's gauges and counters (`citygate_buffer_*`). The buffer publishes its own
//! numbers into this handle (`BufferStats::publish`), so telemetry never needs buffer types.
//! Drop reasons and buffer states are the buffer's own closed sets (`reason::*`,
//! `BufferHealth::ALL`), documented in docs/metrics.md.

use super::Metrics;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

#[derive(Clone)]
pub struct BufferMetrics {
    pub records: IntGauge,
    /// Database plus WAL on disk.
    pub bytes: IntGauge,
    pub max_bytes: IntGauge,
    pub oldest_pending_age_seconds: Gauge,
    pub dead_letters: IntGauge,
    pub damaged_records: IntGauge,
    offered: IntCounter,
    dropped: IntCounterVec,
    state: IntGaugeVec,
}

impl BufferMetrics {
    pub fn new(m: &Metrics) -> Self {
        BufferMetrics {
            records: m.buffer_records.clone(),
            bytes: m.buffer_bytes.clone(),
            max_bytes: m.buffer_max_bytes.clone(),
            oldest_pending_age_seconds: m.buffer_oldest_pending_age.clone(),
            dead_letters: m.buffer_dead_letters.clone(),
            damaged_records: m.buffer_damaged.clone(),
            offered: m.buffer_offered.clone(),
            dropped: m.buffer_dropped.clone(),
            state: m.buffer_state.clone(),
        }
    }

    /// Records offered since start, as counted by the buffer (the counter follows it up).
    pub fn offered_total(&self, total: u64) {
        catch_up(&self.offered, total);
    }

    /// Records dropped for `reason` since the database was created, as the buffer keeps them
    /// (persisted, so the count is the buffer's, not this process's).
    pub fn dropped_total(&self, reason: &str, total: u64) {
        catch_up(&self.dropped.with_label_values(&[reason]), total);
    }

    /// `citygate_buffer_state`: 1 for `current`, 0 for the other states in `all`.
    pub fn state(&self, current: &str, all: &[&str]) {
        for s in all {
            self.state
                .with_label_values(&[s])
                .set(i64::from(*s == current));
        }
    }
}

/// Raises `counter` to a total kept elsewhere (the buffer's own persistent counts).
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}
