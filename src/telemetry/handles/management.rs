//! Counters of the device management publisher (`citygate_management_requests_total{result}`):
//! counted where each request to the CSE settles.

use super::detached_counter;
use super::Metrics;
use prometheus::IntCounter;

/// Pre-labelled handles for the management publisher.
#[derive(Clone)]
pub struct ManagementMetrics {
    /// 2xxx: created or updated.
    pub ok: IntCounter,
    /// 4004 on an update: the resource is gone at the CSE (restarted, deleted); recreated.
    pub not_found: IntCounter,
    /// 4103 and other 4xxx: the CSE refused (usually a missing ACP grant).
    pub refused: IntCounter,
    /// No answer or 5xxx: retried later with the backoff.
    pub failed: IntCounter,
}

impl ManagementMetrics {
    /// The handles in the daemon's registry.
    pub fn new(m: &Metrics) -> Self {
        let result = |r: &str| m.management_requests.with_label_values(&[r]);
        ManagementMetrics {
            ok: result("ok"),
            not_found: result("not_found"),
            refused: result("refused"),
            failed: result("failed"),
        }
    }

    /// Counters that belong to no registry (tests).
    pub fn detached() -> Self {
        ManagementMetrics {
            ok: detached_counter(),
            not_found: detached_counter(),
            refused: detached_counter(),
            failed: detached_counter(),
        }
    }

    /// Requests counted so far, over every result.
    pub fn total(&self) -> u64 {
        self.ok.get() + self.not_found.get() + self.refused.get() + self.failed.get()
    }
}
