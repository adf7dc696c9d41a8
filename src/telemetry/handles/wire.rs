//! What the northbound link costs on the wire: `citygate_northbound_bytes_total{direction}` and
//! `citygate_northbound_requests_total{binding}`, counted by the binding that sends.
//! Bytes per delivered record = bytes / `citygate_sync_records_delivered_total`; records per
//! request = delivered records / requests (docs/metrics.md).

use super::detached_counter;
use super::Metrics;
use prometheus::IntCounter;

/// Pre-labelled handles of one binding. Counters only grow.
#[derive(Clone, Debug)]
pub struct WireMetrics {
    /// Bytes of requests sent (headers and payload as the binding sees them).
    pub sent: IntCounter,
    /// Bytes of responses received.
    pub received: IntCounter,
    /// Requests sent (one per oneM2M request primitive, retries included).
    pub requests: IntCounter,
}

impl WireMetrics {
    /// The handles of binding `binding` (`http`, `mqtt`, `coap`) in the daemon's registry.
    pub fn new(m: &Metrics, binding: &str) -> Self {
        WireMetrics {
            sent: m.northbound_bytes.with_label_values(&["sent"]),
            received: m.northbound_bytes.with_label_values(&["received"]),
            requests: m.northbound_requests.with_label_values(&[binding]),
        }
    }

    /// Handles that belong to no registry (tests, benches, `citygate probe`).
    pub fn detached() -> Self {
        WireMetrics {
            sent: detached_counter(),
            received: detached_counter(),
            requests: detached_counter(),
        }
    }
}
