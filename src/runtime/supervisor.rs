//! Keeps an adapter running: builds it, runs it, and after a failure or panic waits (capped,
//! jittered backoff) and starts it again. One broken adapter never stops the others.

use crate::backoff::Backoff;
use crate::buffer::RecordSender;
use crate::commands::CommandRegistry;
use crate::southbound::{AdapterConfig, AdapterError};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run that lasted this long counts as healthy: the next failure starts backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Backoff between restarts of a failed adapter.
pub fn restart_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(60))
}

/// Backoff after a config error: restarting does not fix a config, so retry slowly (a key file
/// put in place later is still picked up) instead of hammering the log.
fn config_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(30), Duration::from_secs(600))
}

/// Runs the adapter `id` until `shutdown`, restarting it when it fails.
pub async fn supervise(
    id: String,
    config: AdapterConfig,
    out: RecordSender,
    shutdown: CancellationToken,
    mut backoff: Backoff,
    metrics: Metrics,
    commands: Arc<CommandRegistry>,
) {
    let up = metrics.adapter_up.with_label_values(&[id.as_str()]);
    let restarts = metrics.adapter_restarts.with_label_values(&[id.as_str()]);
    let mut config_wait = config_backoff();
    loop {
        up.set(1);
        let started = Instant::now();
        let outcome = match config.build(&id, &metrics, &commands) {
            Ok(mut adapter) => {
                let (out2, sd2) = (out.clone(), shutdown.clone());
                let task = tokio::spawn(async move { adapter.run(&out2, &sd2).await });
                match task.await {
                    Ok(result) => result,
                    Err(join) if join.is_panic() => Err(AdapterError::Panic(
                        "adapter panicked (a bug: please report it)".into(),
                    )),
                    Err(join) => Err(AdapterError::Panic(join.to_string())),
                }
            }
            Err(e) => Err(e),
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
                    config_wait.reset();
                }
                let delay = match error {
                    AdapterError::Config(_) => config_wait.next_delay(),
                    _ => backoff.next_delay(),
                };
                restarts.inc();
                metrics
                    .adapter_errors
                    .with_label_values(&[id.as_str(), error.kind()])
                    .inc();
                tracing::warn!(adapter = %id, kind = error.kind(), error = %error, retry_in_ms = delay.as_millis() as u64, attempt = backoff.attempts() + config_wait.attempts(), "adapter failed; restarting");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Buffer, BufferConfig};
    use crate::southbound::lorawan::LorawanUdpConfig;

    /// A key file that is not there is a config error: counted as `kind="config"` and retried
    /// on the slow config backoff, not as a generic failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn config_errors_are_labelled_and_retried_slowly() {
        let dir = tempfile::tempdir().unwrap();
        let (buffer, thread) =
            Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).expect("buffer");
        let cfg: LorawanUdpConfig = toml::from_str(
            r#"
bind = "127.0.0.1:0"
[[devices]]
dev_eui = "0004a30b001c0530"
otaa = { join_eui = "70b3d57ed0000000", app_key_file = "/nonexistent/citygate/app.key" }
"#,
        )
        .unwrap();
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(supervise(
            "lora".into(),
            AdapterConfig::LorawanUdp(cfg),
            buffer.sender_for("lora", &metrics),
            shutdown.clone(),
            restart_backoff(),
            metrics.clone(),
            CommandRegistry::new(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
        task.await.unwrap();
        let errors = |kind: &str| {
            metrics
                .adapter_errors
                .with_label_values(&["lora", kind])
                .get()
        };
        // One attempt, then a wait drawn from [0, 30 s]: a second attempt within 300 ms happens
        // 1 % of the time, a third practically never (a generic failure would retry within 0.5 s).
        assert!((1..=2).contains(&errors("config")), "{}", errors("config"));
        assert_eq!(errors("io") + errors("transport") + errors("panic"), 0);
        drop(buffer);
        thread.close();
    }
}
