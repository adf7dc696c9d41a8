//! Keeps an adapter running: builds it, runs it, and after a failure or panic waits (capped,
//! jittered backoff) and starts it again. One broken adapter never stops the others.

use super::backoff::Backoff;
use crate::buffer::RecordSender;
use crate::southbound::AdapterConfig;
use crate::telemetry::Metrics;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run that lasted this long counts as healthy: the next failure starts backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Backoff between restarts of a failed adapter.
pub fn restart_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(60))
}

/// Runs the adapter `id` until `shutdown`, restarting it when it fails.
pub async fn supervise(
    id: String,
    config: AdapterConfig,
    out: RecordSender,
    shutdown: CancellationToken,
    mut backoff: Backoff,
    metrics: Metrics,
) {
    let up = metrics.adapter_up.with_label_values(&[id.as_str()]);
    let restarts = metrics.adapter_restarts.with_label_values(&[id.as_str()]);
    loop {
        up.set(1);
        let started = Instant::now();
        let outcome = match config.build(&id) {
            Ok(mut adapter) => {
                if let Some((family, counters)) = adapter.counters() {
                    metrics.counter_sources.register(&id, family, counters);
                }
                let (out2, sd2) = (out.clone(), shutdown.clone());
                let task = tokio::spawn(async move { adapter.run(&out2, &sd2).await });
                match task.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(join) if join.is_panic() => {
                        Err("adapter panicked (a bug: please report it)".to_string())
                    }
                    Err(join) => Err(join.to_string()),
                }
            }
            Err(e) => Err(format!("cannot start: {e}")),
        };
        up.set(0);
        if shutdown.is_cancelled() {
            tracing::debug!(adapter = %id, "adapter stopped");
            return;
        }
        match outcome {
            Ok(()) => {
                tracing::info!(adapter = %id, "adapter finished");
                return;
            }
            Err(error) => {
                if started.elapsed() >= HEALTHY_RUN {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                restarts.inc();
                metrics
                    .adapter_errors
                    .with_label_values(&[id.as_str(), "failed"])
                    .inc();
                tracing::warn!(adapter = %id, error = %error, retry_in_ms = delay.as_millis() as u64, attempt = backoff.attempt(), "adapter failed; restarting");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                // A restart cannot help while the buffer refuses writes: wait for it instead
                // of restarting into the same error (the buffer retries its disk with backoff).
                if !out.buffer_commits() {
                    tracing::warn!(adapter = %id, "buffer cannot commit; restarting the adapter once it can");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = out.wait_until_buffer_commits() => {}
                    }
                }
            }
        }
    }
}
