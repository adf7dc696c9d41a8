//! What the syncer exposes to the rest of the daemon: health for `/readyz` and STATUS, counts
//! for `citygate status` and tests, latency samples for benchmarks. Plain data behind one
//! short-held lock. Prometheus metrics do not come from here: the syncer counts them directly
//! in its [`SyncMetrics`](crate::telemetry::SyncMetrics) handle.
use super::retry::RetryReason;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Latency samples kept between two drains (older ones are dropped beyond this).
const MAX_LATENCY_SAMPLES: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncSnapshot {
    /// The last request got a oneM2M answer (false after a transport error/timeout).
    pub connected: bool,
    /// The AE is registered and the syncer is delivering.
    pub registered: bool,
    /// The CSE refuses the gateway (auth, privileges, config): syncing stopped, retried slowly.
    pub refused: bool,
    /// The AE-ID in use.
    pub ae_id: Option<String>,
    /// The last failure, for `citygate status` and logs.
    pub last_error: Option<String>,
    /// Records the CSE created (2001).
    pub delivered: u64,
    /// Records the CSE already had (4105/5106 after a lost response).
    pub already_there: u64,
    /// Records moved to the dead-letter table.
    pub dead_lettered: u64,
    /// Retries by reason (`transport`, `timeout`, `server`, `bad_response`, `tree_missing`).
    pub retries: BTreeMap<&'static str, u64>,
    /// Fetched records waiting to be sent.
    pub queued: usize,
    /// Requests in flight.
    pub in_flight: usize,
}

impl SyncSnapshot {
    /// Ready = registered and not refused (the daemon's `/readyz`).
    pub fn healthy(&self) -> bool {
        self.registered && !self.refused
    }
}

#[derive(Debug, Default)]
pub struct SyncState {
    snap: Mutex<SyncSnapshot>,
    latencies: Mutex<Vec<Duration>>,
}

impl SyncState {
    pub fn snapshot(&self) -> SyncSnapshot {
        lock(&self.snap).clone()
    }

    /// Request latencies (every request, any outcome with a response) since the last call.
    pub fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut *lock(&self.latencies))
    }

    pub(crate) fn record_latency(&self, d: Duration) {
        let mut l = lock(&self.latencies);
        if l.len() < MAX_LATENCY_SAMPLES {
            l.push(d);
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SyncSnapshot)) {
        f(&mut lock(&self.snap));
    }

    pub(crate) fn count_retry(&self, reason: &'static str) {
        *lock(&self.snap).retries.entry(reason).or_insert(0) += 1;
    }

    pub(crate) fn count_retry_reason(&self, reason: RetryReason) {
        self.count_retry(reason.as_str());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
