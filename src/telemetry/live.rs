//! What the daemon last heard from each device, and a live feed of committed records: the
//! data behind `/devices` and `/tail` (`citygate devices`, `citygate tail`), the commissioning
//! technician's view of "is this meter reporting, and what".
//!
//! Fed by every adapter's `RecordSender` once its records are committed. Bounded like the per-device metric series: only devices that have series (every
//! configured device, and up to `[telemetry] max_device_series` discovered ones per adapter)
//! keep a last record. The feed is a broadcast channel: a slow reader misses records (and is
//! told how many), the adapters never wait for it.

use crate::record::{format_ts, Record, Value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Records a `tail` reader may fall behind before it misses some.
const FEED_CAPACITY: usize = 1024;

/// Shared by every clone of [`Metrics`](super::Metrics).
#[derive(Clone)]
pub struct LiveRecords {
    last: Arc<Mutex<BTreeMap<(String, String), Record>>>,
    feed: broadcast::Sender<Arc<Record>>,
}

impl Default for LiveRecords {
    fn default() -> Self {
        LiveRecords {
            last: Arc::default(),
            feed: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

/// One row of `/devices`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub adapter: String,
    pub device: String,
    /// Source time of the last record (RFC 3339).
    pub last_seen: String,
    pub last_seen_ms: i64,
    /// The last record carried at least one value (the same rule as `citygate_device_up`).
    pub up: bool,
    pub values: BTreeMap<String, Value>,
    /// `quality.<point>` flags of the last record, by point.
    pub quality: BTreeMap<String, Value>,
}

impl LiveRecords {
    /// After a commit: remembers the last record of each device `keep` admits, and offers
    /// every record to the feed.
    pub fn committed(&self, records: &[Record], keep: impl Fn(&Record) -> bool) {
        if self.feed.receiver_count() > 0 {
            for r in records {
                // No reader left between the check and the send is fine: the record is dropped.
                let _ = self.feed.send(Arc::new(r.clone()));
            }
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        for r in records.iter().filter(|r| keep(r)) {
            last.insert((r.adapter.clone(), r.device.clone()), r.clone());
        }
    }

    /// Every device with a last record, by adapter and device id.
    pub fn devices(&self) -> Vec<DeviceView> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.values().map(view).collect()
    }

    /// A receiver of every record committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.feed.subscribe()
    }
}

fn view(r: &Record) -> DeviceView {
    DeviceView {
        adapter: r.adapter.clone(),
        device: r.device.clone(),
        last_seen: format_ts(r.ts_ms),
        last_seen_ms: r.ts_ms,
        up: !r.values.is_empty(),
        values: r
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        quality: r
            .meta
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("quality.")?.to_owned(), v.clone())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(device: &str, ts: i64, value: Option<f64>) -> Record {
        let mut r = Record::now("mb", device);
        r.ts_ms = ts;
        match value {
            Some(v) => r.values.insert("v".into(), Value::F64(v)),
            None => r
                .meta
                .insert("quality.v".into(), Value::Str("bad: timeout".into())),
        };
        r
    }

    #[test]
    fn keeps_the_last_record_of_admitted_devices() {
        let live = LiveRecords::default();
        live.committed(
            &[
                rec("a", 1, Some(1.0)),
                rec("b", 1, Some(2.0)),
                rec("a", 2, None),
            ],
            |r| r.device != "b",
        );
        let devices = live.devices();
        assert_eq!(devices.len(), 1);
        let a = &devices[0];
        assert_eq!((a.device.as_str(), a.last_seen_ms, a.up), ("a", 2, false));
        assert_eq!(a.quality["v"], Value::Str("bad: timeout".into()));
        assert!(a.values.is_empty());
    }

    #[test]
    fn the_feed_carries_every_record_to_each_reader() {
        let live = LiveRecords::default();
        live.committed(&[rec("a", 1, Some(1.0))], |_| true);
        let mut rx = live.subscribe();
        live.committed(&[rec("a", 2, Some(1.0)), rec("b", 3, Some(2.0))], |_| false);
        assert_eq!(rx.try_recv().unwrap().ts_ms, 2);
        assert_eq!(rx.try_recv().unwrap().device, "b");
        assert!(rx.try_recv().is_err());
    }
}
