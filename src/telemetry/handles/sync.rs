//! Counters of the northbound syncer: requests by outcome, records delivered and
//! dead-lettered, request latency, and the two CSE gauges. The syncer updates them where it
//! settles a request, so `/metrics` is current without any polling.

use super::detached_counter;
use super::Metrics;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};

/// Pre-labelled handles for the syncer. Counters only grow.
#[derive(Clone)]
pub struct SyncMetrics {
    // citygate_sync_requests_total{outcome}
    pub created: IntCounter,
    pub already_there: IntCounter,
    pub dead_letter: IntCounter,
    /// Retries by reason (`RetryReason::as_str` of the northbound, and `tree_missing`).
    pub retry_transport: IntCounter,
    pub retry_timeout: IntCounter,
    pub retry_server: IntCounter,
    pub retry_bad_response: IntCounter,
    pub retry_tree_missing: IntCounter,
    /// Overload answers (429/503, or any retryable answer with `Retry-After`).
    pub retry_overload: IntCounter,
    /// A first permanent rejection: the record is sent once more before it is dead-lettered.
    pub retry_recheck: IntCounter,
    /// `citygate_sync_records_delivered_total`: created or found already there.
    pub records_delivered: IntCounter,
    /// `citygate_sync_records_dead_lettered_total`.
    pub records_dead_lettered: IntCounter,
    /// `citygate_sync_request_duration_seconds{operation="create"}`: every request that got
    /// an answer.
    pub request_duration: Histogram,
    /// `citygate_cse_connected`: the last request reached the CSE.
    pub cse_connected: IntGauge,
    /// `citygate_cse_registered`: the AE is registered and its tree built.
    pub cse_registered: IntGauge,
    /// `citygate_sync_in_flight_limit`: the adaptive in-flight limit now.
    pub in_flight_limit: IntGauge,
}

impl SyncMetrics {
    /// The syncer's handles in the daemon's registry.
    pub fn new(m: &Metrics) -> Self {
        let outcome = |o: &str| m.sync_requests.with_label_values(&[o]);
        SyncMetrics {
            created: outcome("created"),
            already_there: outcome("already_there"),
            dead_letter: outcome("dead_letter"),
            retry_transport: outcome("transport"),
            retry_timeout: outcome("timeout"),
            retry_server: outcome("server"),
            retry_bad_response: outcome("bad_response"),
            retry_tree_missing: outcome("tree_missing"),
            records_delivered: m.sync_records_delivered.clone(),
            records_dead_lettered: m.sync_records_dead_lettered.clone(),
            request_duration: m.sync_request_duration.with_label_values(&["create"]),
            cse_connected: m.cse_connected.clone(),
            cse_registered: m.cse_registered.clone(),
            retry_overload: outcome("overload"),
            retry_recheck: outcome("recheck"),
            in_flight_limit: m.sync_in_flight_limit.clone(),
        }
    }

    /// Handles that belong to no registry (tests, benches).
    pub fn detached() -> Self {
        let c = detached_counter;
        SyncMetrics {
            created: c(),
            already_there: c(),
            dead_letter: c(),
            retry_transport: c(),
            retry_timeout: c(),
            retry_server: c(),
            retry_bad_response: c(),
            retry_tree_missing: c(),
            records_delivered: c(),
            records_dead_lettered: c(),
            request_duration: Histogram::with_opts(HistogramOpts::new("detached", "not exported"))
                .expect("valid metric"),
            cse_connected: IntGauge::new("detached", "not exported").expect("valid metric"),
            cse_registered: IntGauge::new("detached", "not exported").expect("valid metric"),
            retry_overload: c(),
            retry_recheck: c(),
            in_flight_limit: IntGauge::new("detached", "not exported").expect("valid metric"),
        }
    }
}
