//! The syncer's binding wrapper: every request's latency and the CSE's reachability, for
//! `/status`, the metrics and the benchmarks, measured in one place whatever the binding.
use super::binding::{Binding, BindingError};
use super::onem2m::primitive::{Request, Response};
use super::state::SyncState;
use crate::telemetry::SyncMetrics;
use std::sync::Arc;
use std::time::Instant;

/// Records latency and reachability of every request.
pub(super) struct Timed {
    pub inner: Arc<dyn Binding>,
    pub state: Arc<SyncState>,
    pub metrics: SyncMetrics,
}

#[async_trait::async_trait]
impl Binding for Timed {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let start = Instant::now();
        let result = self.inner.send(req).await;
        let connected = !matches!(
            result,
            Err(BindingError::Connect(_) | BindingError::Timeout(_) | BindingError::Transport(_))
        );
        if connected {
            let took = start.elapsed();
            self.metrics.request_duration.observe(took.as_secs_f64());
            self.state.record_latency(took);
        }
        self.metrics.cse_connected.set(i64::from(connected));
        self.state.update(|s| s.connected = connected);
        result
    }
}
