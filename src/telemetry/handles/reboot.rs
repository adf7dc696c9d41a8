//! Counters of reboot requests from the platform
//! (`citygate_management_reboot_requests_total{outcome}`): counted where the request is decided.

use super::detached_counter;
use super::Metrics;
use prometheus::IntCounter;

/// Pre-labelled handles for the reboot mgmtObj.
#[derive(Clone)]
pub struct RebootMetrics {
    /// `rbo = true` with `allow_restart = true`: the gateway drains and exits.
    pub restarting: IntCounter,
    /// `rbo = true` with `allow_restart = false`.
    pub refused: IntCounter,
    /// `far = true`: a factory reset is never done remotely.
    pub factory_reset_refused: IntCounter,
}

impl RebootMetrics {
    /// The handles in the daemon's registry.
    pub fn new(m: &Metrics) -> Self {
        let outcome = |o: &str| m.management_reboots.with_label_values(&[o]);
        RebootMetrics {
            restarting: outcome("restarting"),
            refused: outcome("refused"),
            factory_reset_refused: outcome("factory_reset_refused"),
        }
    }

    /// Counters that belong to no registry (tests).
    pub fn detached() -> Self {
        RebootMetrics {
            restarting: detached_counter(),
            refused: detached_counter(),
            factory_reset_refused: detached_counter(),
        }
    }
}
