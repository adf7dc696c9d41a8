//! `citygate run`: open the buffer, start telemetry and the adapters, tell systemd we are
//! ready, run until SIGTERM, drain.

use crate::buffer::Buffer;
use crate::config::Config;
use crate::runtime::{shutdown, supervisor, systemd};
use crate::telemetry::health::Health;
use crate::telemetry::http::{self, TelemetryState};
use crate::telemetry::Metrics;
use anyhow::Context;
use std::process::ExitCode;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("citygate")
        .build()
        .context("starting the async runtime")?;
    let state_dir = cfg.gateway.state_dir();
    let path = cfg.buffer.db_path(&state_dir);
    let (buffer, buffer_thread) = Buffer::open(&path, &cfg.buffer)
        .with_context(|| format!("opening the buffer {}", path.display()))?;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Metrics::new();
    let health = Health::default();
    let result = rt.block_on(async {
        if cfg.telemetry.enabled {
            let state = TelemetryState {
                metrics: metrics.clone(),
                buffer: buffer.clone(),
                health: health.clone(),
                started,
                gateway: cfg.gateway.name.clone(),
                adapters: cfg
                    .southbound
                    .iter()
                    .map(|(id, a)| (id.clone(), a.type_name().to_owned()))
                    .collect(),
            };
            let server = http::serve(cfg.telemetry.listen, state, token.clone())
                .await
                .with_context(|| {
                    format!("listening on {} ([telemetry] listen)", cfg.telemetry.listen)
                })?;
            tracker.spawn(async move {
                let _ = server.await;
            });
        }
        for (id, adapter) in &cfg.southbound {
            tracker.spawn(supervisor::supervise(
                id.clone(),
                adapter.clone(),
                buffer.sender_for(id, &metrics),
                token.clone(),
                supervisor::restart_backoff(),
                metrics.clone(),
            ));
        }
        tracker.spawn(systemd::watchdog(
            buffer.clone(),
            health.clone(),
            token.clone(),
        ));
        systemd::ready("running");
        tracing::info!(
            gateway = %cfg.gateway.name,
            config = %cfg.source.display(),
            adapters = cfg.southbound.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "citygate running"
        );
        let signal = shutdown::signal().await;
        tracing::info!(signal, "stopping: draining adapters and the buffer");
        systemd::stopping();
        let clean = shutdown::drain(&token, &tracker, shutdown::DRAIN_DEADLINE).await;
        if !clean {
            tracing::warn!("some tasks did not stop within the deadline");
        }
        anyhow::Ok(clean)
    });
    drop(buffer);
    buffer_thread.close();
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    let clean = result?;
    tracing::info!(clean, "citygate stopped");
    Ok(ExitCode::SUCCESS)
}
