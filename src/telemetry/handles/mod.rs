//! Pre-labelled metric handles, one struct per component: the one way citygate makes metrics.
//!
//! Every metric family is defined in [`super::metrics`]; this module is where the label values
//! live. A component gets its handle once, when it is built (`LorawanMetrics::new(&metrics,
//! adapter_id)`), and counts with `handle.ok.inc()`: no atomics copied at scrape time, no
//! string routing. The registry hands out the same labelled counter for the same labels, so an
//! adapter rebuilt by the supervisor keeps counting where the previous instance stopped.
//!
//! Code that runs without a daemon (unit tests, benches, `citygate probe modbus`) uses
//! `detached()`: the same struct with counters that belong to no registry.

mod ble;
mod buffer;
mod coap;
mod commands;
mod lorawan;
mod management;
mod modbus;
mod reboot;
mod records;
mod replay;
mod sync;
mod wire;

pub use ble::BleMetrics;
pub use buffer::BufferMetrics;
pub use coap::CoapMetrics;
pub use commands::CommandMetrics;
pub use lorawan::LorawanMetrics;
pub use modbus::{ModbusMetrics, ModbusSnapshot, WRITE_RESULTS};
pub use records::RecordMetrics;
pub use replay::ReplayMetrics;
pub use sync::SyncMetrics;
pub use wire::WireMetrics;

// Device management (src/management/).
pub use management::ManagementMetrics;
pub use reboot::RebootMetrics;

use super::metrics::Metrics;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// Where a handle's counters come from: the daemon's registry (labelled with the adapter id)
/// or nowhere (detached).
#[derive(Clone, Copy)]
enum Source<'a> {
    Registry {
        metrics: &'a Metrics,
        adapter: &'a str,
    },
    Detached,
}

impl Source<'_> {
    /// The child `{adapter, <label>}` of a two-label family.
    fn counter(self, family: fn(&Metrics) -> &IntCounterVec, label: &str) -> IntCounter {
        match self {
            Source::Registry { metrics, adapter } => {
                family(metrics).with_label_values(&[adapter, label])
            }
            Source::Detached => detached_counter(),
        }
    }

    /// The child `{adapter}` of a one-label family.
    fn adapter_counter(self, family: fn(&Metrics) -> &IntCounterVec) -> IntCounter {
        match self {
            Source::Registry { metrics, adapter } => family(metrics).with_label_values(&[adapter]),
            Source::Detached => detached_counter(),
        }
    }

    /// The child `{adapter}` of a one-label gauge family.
    fn adapter_gauge(self, family: fn(&Metrics) -> &IntGaugeVec) -> IntGauge {
        match self {
            Source::Registry { metrics, adapter } => family(metrics).with_label_values(&[adapter]),
            Source::Detached => IntGauge::new("detached", "not exported").expect("valid metric"),
        }
    }
}

/// A counter that belongs to no registry (never exported).
fn detached_counter() -> IntCounter {
    IntCounter::new("detached", "not exported").expect("valid metric")
}

#[cfg(test)]
mod tests;
