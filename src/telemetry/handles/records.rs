//! What every adapter's committed records count: `citygate_adapter_records_total{adapter}` and
//! the per-device series (`citygate_device_up`, `citygate_device_last_seen_timestamp_seconds`,
//! bounded by [`DeviceSeries`](crate::telemetry::device_series::DeviceSeries)).

use super::Metrics;
use crate::telemetry::battery::Battery;
use prometheus::IntCounter;

/// Pre-labelled handle of one adapter's record counts, held by its `RecordSender`.
pub struct RecordMetrics {
    adapter: String,
    records: IntCounter,
    /// Device labels are only known per record: their series are made through the registry.
    metrics: Metrics,
}

impl RecordMetrics {
    pub fn new(metrics: &Metrics, adapter: &str) -> Self {
        RecordMetrics {
            adapter: adapter.to_owned(),
            records: metrics.adapter_records.with_label_values(&[adapter]),
            metrics: metrics.clone(),
        }
    }

    /// After a commit of `records` (`committed` of them stored): the device series, and the
    /// battery levels the management view reports, and the live view of `/devices` and `/tail`.
    pub fn committed(&self, committed: u64, records: &[crate::record::Record]) {
        self.records.inc_by(committed);
        let now = crate::record::now_ms() as f64 / 1000.0;
        for r in records {
            // A poll where every point failed still yields a record (with quality flags in
            // meta) but no value: the device is down.
            self.metrics
                .observe_device(&self.adapter, &r.device, !r.values.is_empty(), now);
            if let Some(battery) = Battery::of(r) {
                self.metrics
                    .device_roster
                    .battery(&self.adapter, &r.device, battery);
            }
        }
        let series = &self.metrics.device_series;
        self.metrics
            .live
            .committed(records, |r| series.admit(&self.adapter, &r.device));
    }
}
