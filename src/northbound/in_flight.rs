//! The syncer's requests in flight, run inside the syncer's own task.
//!
//! Why not one spawned task per record: each record would then cross two more tasks (the
//! syncer hands it to a delivery task, whose end wakes the syncer again), and on a busy
//! two-core box every such wake-up can mean a parked worker thread being scheduled. Against a
//! CSE that serves one request at a time (ACME over MQTT) those hand-offs were a fifth of the
//! time per record. Here the deliveries are futures the syncer's task polls itself: a request
//! goes from the syncer's task to the binding (for MQTT: to the event-loop task) and its answer
//! comes straight back, one hand-off each way.
//!
//! The syncer's other awaits (reading the next records, marking delivered ones) go through
//! [`InFlight::drive`], which keeps the deliveries moving meanwhile: a request is published as
//! soon as it is started, and a buffer read never holds back the one in flight.
use super::retry::{Outcome, RetryReason};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// A settled delivery: the device, its outcome and how long it took.
pub(super) type Finished = (String, Outcome, Duration);

/// The deliveries under way, and those finished but not yet settled by the syncer.
#[derive(Default)]
pub(super) struct InFlight {
    running: FuturesUnordered<BoxFuture<'static, Finished>>,
    finished: VecDeque<Finished>,
}

impl InFlight {
    /// Deliveries not yet settled (running or finished): what counts against the limit.
    pub fn len(&self) -> usize {
        self.running.len() + self.finished.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts delivering for `device`; the future makes no progress until the syncer awaits
    /// [`next`](Self::next) or [`drive`](Self::drive). A panic inside is a failed delivery
    /// (retried), not a dead syncer.
    pub fn start(
        &mut self,
        device: String,
        delivery: impl Future<Output = Outcome> + Send + 'static,
    ) {
        let fut = async move {
            let start = Instant::now();
            let outcome = match AssertUnwindSafe(delivery).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into());
                    tracing::error!(device = %device, error = %what, "delivery failed");
                    Outcome::retry(RetryReason::BadResponse, format!("delivery failed: {what}"))
                }
            };
            (device, outcome, start.elapsed())
        };
        self.running.push(fut.boxed());
    }

    /// The next finished delivery (one finished while [`drive`](Self::drive) ran first).
    /// Pending forever when nothing is in flight (for `select!` with a guard).
    pub async fn next(&mut self) -> Finished {
        if let Some(done) = self.finished.pop_front() {
            return done;
        }
        match self.running.next().await {
            Some(done) => done,
            None => std::future::pending().await,
        }
    }

    /// Awaits `fut` while the deliveries keep going; those that finish meanwhile wait for
    /// [`next`](Self::next).
    pub async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                Some(done) = self.running.next(), if !self.running.is_empty() => {
                    self.finished.push_back(done);
                }
            }
        }
    }

    /// Drops what is still running (its requests are abandoned, as at a shutdown deadline).
    pub fn abandon(&mut self) {
        self.running = FuturesUnordered::new();
    }
}
