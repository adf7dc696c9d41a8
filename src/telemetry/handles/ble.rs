//! Counters of one BLE adapter: advertisements by what became of them, as
//! `citygate_ble_advertisements_total{adapter, result}`.

use super::{Metrics, Source};
use prometheus::IntCounter;

/// What happened to advertisements so far. Every counter only grows.
#[derive(Clone)]
pub struct BleMetrics {
    pub heard: IntCounter,
    /// From devices neither listed nor accepted by the filters.
    pub ignored: IntCounter,
    pub unknown_format: IntCounter,
    pub decode_errors: IntCounter,
    pub records: IntCounter,
    pub duplicates: IntCounter,
    pub replays: IntCounter,
    pub rate_limited: IntCounter,
    pub unchanged: IntCounter,
    /// Values dropped from an otherwise decoded advertisement (e.g. BTHome text that is not
    /// UTF-8).
    pub dropped_values: IntCounter,
    /// Advertisements rate control kept back (`rate_limited` + `unchanged`), in the
    /// adapter-independent `citygate_readings_suppressed_total{adapter}`.
    pub suppressed: IntCounter,
}

impl BleMetrics {
    /// The handles of adapter `adapter` in the daemon's registry.
    pub fn new(metrics: &Metrics, adapter: &str) -> Self {
        Self::from_source(Source::Registry { metrics, adapter })
    }

    /// Handles that belong to no registry (tests, benches).
    pub fn detached() -> Self {
        Self::from_source(Source::Detached)
    }

    fn from_source(s: Source<'_>) -> Self {
        let result = |result| s.counter(|m| &m.ble_advertisements, result);
        BleMetrics {
            heard: result("heard"),
            ignored: result("ignored"),
            unknown_format: result("unknown_format"),
            decode_errors: result("decode_error"),
            records: result("record"),
            duplicates: result("duplicate"),
            replays: result("replay"),
            rate_limited: result("rate_limited"),
            unchanged: result("unchanged"),
            dropped_values: result("dropped_value"),
            suppressed: s.adapter_counter(|m| &m.readings_suppressed),
        }
    }
}
