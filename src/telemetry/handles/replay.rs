//! Counters of one replay adapter: lines it did not store, as kinds of
//! `citygate_adapter_errors_total{adapter, kind}`.

use super::{Metrics, Source};
use prometheus::IntCounter;

/// Why a line was skipped. Every counter only grows.
#[derive(Clone)]
pub struct ReplayMetrics {
    /// Longer than `max_line_bytes` (read on to its newline, never held whole).
    pub line_too_long: IntCounter,
    /// Not valid UTF-8.
    pub invalid_utf8: IntCounter,
    /// Valid UTF-8 but not a record (bad JSON, empty device, bad `ts`, no values).
    pub invalid_record: IntCounter,
    /// Lines with a run of zero bytes (what a power cut leaves in a file's tail); whatever
    /// else the line held is still replayed.
    pub zero_filled: IntCounter,
}

impl ReplayMetrics {
    /// The handles of adapter `adapter` in the daemon's registry.
    pub fn new(metrics: &Metrics, adapter: &str) -> Self {
        Self::from_source(Source::Registry { metrics, adapter })
    }

    /// Handles that belong to no registry (tests, benches).
    pub fn detached() -> Self {
        Self::from_source(Source::Detached)
    }

    fn from_source(s: Source<'_>) -> Self {
        let kind = |kind| s.counter(|m| &m.adapter_errors, kind);
        ReplayMetrics {
            line_too_long: kind("line_too_long"),
            invalid_utf8: kind("invalid_utf8"),
            invalid_record: kind("invalid_record"),
            zero_filled: kind("zero_filled"),
        }
    }

    /// Lines skipped so far, all kinds together.
    pub fn skipped(&self) -> u64 {
        [
            &self.line_too_long,
            &self.invalid_utf8,
            &self.invalid_record,
            &self.zero_filled,
        ]
        .iter()
        .map(|c| c.get())
        .sum()
    }
}
