//! What every adapter's committed records count: `citygate_adapter_records_total{adapter}` and
//! the per-device series (`citygate_device_up`, `citygate_device_last_seen_timestamp_seconds`,
//! bounded by [`DeviceSeries`](crate::telemetry::device_series::DeviceSeries)).

use super::Metrics;
use crate::record::Record;
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

    /// After a commit: `committed` records stored; `devices` holds what each record handed in
    /// says of its device, in order.
    pub fn committed(&self, committed: u64, devices: &[DeviceSeen]) {
        self.records.inc_by(committed);
        let now = crate::record::now_ms() as f64 / 1000.0;
        for seen in devices {
            // A poll where every point failed still yields a record (with quality flags in
            // meta) but no value: the device is down.
            self.metrics
                .observe_device(&self.adapter, &seen.device, seen.has_values, now);
            if let Some(battery) = seen.battery {
                self.metrics
                    .device_roster
                    .battery(&self.adapter, &seen.device, battery);
            }
        }
    }
}

/// What one record says of its device: who, whether any value came (liveness), its battery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSeen {
    pub device: String,
    pub has_values: bool,
    pub battery: Option<Battery>,
}

impl DeviceSeen {
    pub fn of(record: &Record) -> Self {
        DeviceSeen {
            device: record.device.clone(),
            has_values: !record.values.is_empty(),
            battery: Battery::of(record),
        }
    }
}
