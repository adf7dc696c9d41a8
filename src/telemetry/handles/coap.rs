//! Counters of the CoAP binding's message layer, as events of
//! `citygate_coap_messages_total{event}`: what UDP loss and a slow CSE cost on the wire.

use super::detached_counter;
use super::Metrics;
use prometheus::IntCounter;

/// Pre-labelled handles of the CoAP binding. Counters only grow.
#[derive(Clone)]
pub struct CoapMetrics {
    /// A confirmable message sent again because its ACK did not come in time.
    pub retransmitted: IntCounter,
    /// A response (or ACK) already received once, recognised by its message id and dropped.
    pub duplicate: IntCounter,
    /// A response that came separately, after an empty ACK (the CSE took longer than its
    /// ACK timeout).
    pub separate: IntCounter,
    /// The CSE answered a message with RST (it did not recognise the exchange).
    pub reset: IntCounter,
    /// Datagram bytes sent and received, and requests (`citygate_northbound_bytes_total`).
    pub wire: super::WireMetrics,
}

impl CoapMetrics {
    /// The binding's handles in the daemon's registry.
    pub fn new(m: &Metrics) -> Self {
        let event = |e: &str| m.coap_messages.with_label_values(&[e]);
        CoapMetrics {
            retransmitted: event("retransmitted"),
            duplicate: event("duplicate"),
            separate: event("separate"),
            reset: event("reset"),
            wire: super::WireMetrics::new(m, "coap"),
        }
    }

    /// Handles that belong to no registry (tests, benches).
    pub fn detached() -> Self {
        let c = detached_counter;
        CoapMetrics {
            retransmitted: c(),
            duplicate: c(),
            separate: c(),
            reset: c(),
            wire: super::WireMetrics::detached(),
        }
    }
}
