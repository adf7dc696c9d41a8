//! The pipeline's counters, shared with the telemetry scrape (the pipeline itself stays a plain
//! single-owner struct; the scanner copies its stats here after each advertisement).

use super::pipeline::PipelineStats;
use crate::telemetry::counters::CounterSnapshot;
use std::sync::Mutex;

#[derive(Default)]
pub struct StatsExport(Mutex<PipelineStats>);

impl StatsExport {
    pub fn store(&self, stats: &PipelineStats) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = stats.clone();
    }
}

impl CounterSnapshot for StatsExport {
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        vec![
            ("heard", s.heard),
            ("ignored", s.ignored),
            ("unknown_format", s.unknown_format),
            ("decode_error", s.decode_errors),
            ("record", s.records),
            ("duplicate", s.duplicates),
            ("replay", s.replays),
            ("rate_limited", s.rate_limited),
            ("unchanged", s.unchanged),
            ("dropped_value", s.dropped_values),
        ]
    }
}
