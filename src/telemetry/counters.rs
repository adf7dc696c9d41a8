//! Adapters count their events in plain atomics (no Prometheus inside protocol code); this
//! module copies those counts into the registry before each scrape.
//!
//! An adapter rebuilt by the supervisor starts with fresh atomics, so the last values of the
//! previous instance are folded into a base: exported counters never go backwards.

use super::metrics::Metrics;
use prometheus::IntCounter;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Something that can list its counters as `(name, value)` pairs, values only growing.
pub trait CounterSnapshot: Send + Sync {
    fn snapshot(&self) -> Vec<(&'static str, u64)>;

    /// Current levels (`(name, value)`, may go down), exported as gauges of the running
    /// instance only.
    fn gauges(&self) -> Vec<(&'static str, i64)> {
        Vec::new()
    }
}

/// Which metrics an adapter's counters map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterFamily {
    Lorawan,
    Modbus,
    Ble,
    /// Replay: skipped lines by kind, as `citygate_adapter_errors_total`.
    Replay,
}

type Key = (String, CounterFamily);

#[derive(Default)]
struct Source {
    base: BTreeMap<&'static str, u64>,
    current: Option<Arc<dyn CounterSnapshot>>,
}

/// The registered sources, shared by the supervisor (writes) and the scrape (reads).
#[derive(Default, Clone)]
pub struct CounterSources {
    inner: Arc<Mutex<HashMap<Key, Source>>>,
}

impl CounterSources {
    /// Registers the counters of a (re)built adapter.
    pub fn register(
        &self,
        adapter: &str,
        family: CounterFamily,
        counters: Arc<dyn CounterSnapshot>,
    ) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let source = map.entry((adapter.to_owned(), family)).or_default();
        if let Some(old) = source.current.take() {
            for (name, v) in old.snapshot() {
                *source.base.entry(name).or_default() += v;
            }
        }
        source.current = Some(counters);
    }

    /// Brings the Prometheus counters up to date.
    pub fn export(&self, metrics: &Metrics) {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for ((adapter, family), source) in map.iter() {
            let mut totals = source.base.clone();
            if let Some(c) = &source.current {
                for (name, v) in c.snapshot() {
                    *totals.entry(name).or_default() += v;
                }
            }
            for (name, total) in totals {
                let counter = metric_for(metrics, *family, adapter, name);
                let seen = counter.get();
                if total > seen {
                    counter.inc_by(total - seen);
                }
            }
            if let Some(c) = &source.current {
                for (name, level) in c.gauges() {
                    if let Some(g) = gauge_for(metrics, *family, adapter, name) {
                        g.set(level);
                    }
                }
            }
        }
    }
}

fn metric_for(m: &Metrics, family: CounterFamily, adapter: &str, name: &str) -> IntCounter {
    match family {
        CounterFamily::Lorawan => {
            if let Some(event) = name.strip_prefix("gateway_table_") {
                m.lorawan_gateway_table.with_label_values(&[adapter, event])
            } else if name.starts_with("gateway_")
                || name.starts_with("downlink")
                || name.starts_with("tx_ack")
            {
                m.lorawan_gateway_packets
                    .with_label_values(&[adapter, name])
            } else {
                m.lorawan_frames.with_label_values(&[adapter, name])
            }
        }
        CounterFamily::Modbus => match name {
            "transactions" => m.modbus_transactions.with_label_values(&[adapter]),
            "timeouts" => m.modbus_timeouts.with_label_values(&[adapter]),
            "exceptions" => m.modbus_exceptions.with_label_values(&[adapter]),
            "reconnects" => m.modbus_reconnects.with_label_values(&[adapter]),
            other => m.adapter_errors.with_label_values(&[adapter, other]),
        },
        CounterFamily::Ble => m.ble_advertisements.with_label_values(&[adapter, name]),
        CounterFamily::Replay => m.adapter_errors.with_label_values(&[adapter, name]),
    }
}

fn gauge_for(
    m: &Metrics,
    family: CounterFamily,
    adapter: &str,
    name: &str,
) -> Option<prometheus::IntGauge> {
    match (family, name) {
        (CounterFamily::Lorawan, "gateways") => {
            Some(m.lorawan_gateways.with_label_values(&[adapter]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Fake(AtomicU64);
    impl CounterSnapshot for Fake {
        fn snapshot(&self) -> Vec<(&'static str, u64)> {
            vec![("ok", self.0.load(Ordering::Relaxed))]
        }
    }

    #[test]
    fn restarts_never_make_counters_go_back() {
        let m = Metrics::new();
        let sources = CounterSources::default();
        let first = Arc::new(Fake(AtomicU64::new(5)));
        sources.register("lw", CounterFamily::Lorawan, first.clone());
        sources.export(&m);
        first.0.store(7, Ordering::Relaxed);
        sources.register(
            "lw",
            CounterFamily::Lorawan,
            Arc::new(Fake(AtomicU64::new(2))),
        );
        sources.export(&m);
        assert_eq!(m.lorawan_frames.with_label_values(&["lw", "ok"]).get(), 9);
    }
}
