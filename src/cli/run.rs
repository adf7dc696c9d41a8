//! `citygate run`: open the buffer, start telemetry and the adapters, tell systemd we are
//! ready, run until SIGTERM, drain.

use crate::buffer::Buffer;
use crate::config::Config;
use crate::runtime::endpoints::{self as http, TelemetryState};
use crate::runtime::reload::{self, AdapterSet};
use crate::runtime::shutdown::{self, Signal, Signals};
use crate::runtime::systemd;
use crate::telemetry::health::Health;
use crate::telemetry::Metrics;
use anyhow::Context;
use std::process::ExitCode;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if !replay_files_usable(&cfg) {
        return Ok(ExitCode::from(crate::config::EXIT_CONFIG));
    }
    // Multi-thread on purpose: a current-thread runtime saves 0.5 MiB but polls and delivers
    // less on a busy machine (docs/benchmarks.md, "Memory per gateway").
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
    // Cancelled when the platform asks for a restart (reboot mgmtObj).
    let restart = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Metrics::new();
    metrics
        .device_series
        .set_cap(cfg.telemetry.max_device_series);
    let health = Health::new(&metrics);
    let result = rt.block_on(async {
        if cfg.telemetry.enabled {
            buffer
                .publish_metrics(crate::telemetry::BufferMetrics::new(&metrics))
                .await
                .context("starting the buffer's metrics")?;
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
        // Adapters register the devices they accept commands for; the northbound side looks
        // them up when a command arrives.
        let commands = crate::commands::CommandRegistry::new();
        // Remote config: the northbound side receives, the loop below decides and applies.
        let (mut remote, remote_side, mut remote_jobs) =
            match crate::management::remote_config::channel(&cfg) {
                Some((applier, side, jobs)) => (Some(applier), Some(side), Some(jobs)),
                None => (None, None, None),
            };
        if let Some(nb) = &cfg.northbound {
            crate::runtime::northbound::start(
                nb,
                &cfg.management,
                &crate::runtime::northbound::Daemon {
                    buffer: &buffer,
                    metrics: &metrics,
                    health: &health,
                    commands: &commands,
                    token: &token,
                    tracker: &tracker,
                    restart: &restart,
                    remote_config: remote_side.as_ref(),
                },
            )
            .context("starting the northbound binding ([northbound])")?;
        }
        let mut adapters = AdapterSet::new(
            buffer.clone(),
            metrics.clone(),
            commands,
            token.clone(),
            tracker.clone(),
        );
        for (id, adapter) in &cfg.southbound {
            adapters.start(id, adapter);
        }
        tracker.spawn(systemd::watchdog(buffer.clone(), health.clone(), token.clone()));
        let mut signals = Signals::new().context("installing signal handlers")?;
        systemd::ready("running");
        tracker.spawn(crate::runtime::memory::release_startup_pages_after(
            crate::runtime::memory::STARTUP_SETTLE,
            token.clone(),
        ));
        tracing::info!(
            gateway = %cfg.gateway.name,
            config = %cfg.source.display(),
            adapters = cfg.southbound.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "citygate running"
        );
        let mut current = cfg.clone();
        let mut look = tokio::time::interval(crate::management::remote_config::apply::LOOK_EVERY);
        let signal = loop {
            let watching = remote.as_ref().is_some_and(|r| r.watching());
            let signal = tokio::select! {
                s = signals.next() => s,
                _ = restart.cancelled() => Signal::Stop("restart requested by the platform"),
                Some(job) = next_job(&mut remote_jobs) => {
                    if let Some(r) = remote.as_mut() {
                        r.handle(job, &mut current, &mut adapters, &metrics).await;
                    }
                    continue;
                }
                _ = look.tick(), if watching => {
                    if let Some(r) = remote.as_mut() {
                        r.look(&mut current, &mut adapters, &metrics).await;
                    }
                    continue;
                }
            };
            match signal {
                Signal::Stop(name) => break name,
                Signal::Reload => {
                    systemd::reloading();
                    tracing::info!(config = %current.source.display(), "SIGHUP: reloading the config");
                    if let Some(new) = reload::reload(&current.source, &current, &mut adapters, &metrics).await {
                        current = new;
                        if let Some(r) = remote.as_mut() {
                            r.forget_watch();
                        }
                    }
                    systemd::reloaded("running");
                }
            }
        };
        tracing::info!(signal, "stopping: draining adapters and the buffer");
        systemd::stopping();
        // One deadline for everything on the tracker: adapters (their last records are
        // committed before they return), the syncer's in-flight requests, telemetry. Then the
        // buffer thread commits what is still queued and checkpoints (below).
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
    if restart.is_cancelled() {
        let code = shutdown::EXIT_RESTART;
        tracing::info!(clean, exit_code = code, "citygate stopped for a restart");
        return Ok(ExitCode::from(code));
    }
    tracing::info!(clean, "citygate stopped");
    Ok(ExitCode::SUCCESS)
}

/// The next remote config instance (never, when remote config is off).
async fn next_job(
    jobs: &mut Option<tokio::sync::mpsc::Receiver<crate::management::remote_config::Job>>,
) -> Option<crate::management::remote_config::Job> {
    match jobs {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The check `citygate check` makes on replay files, made again before anything starts: a
/// directory, FIFO or device (`/dev/zero` never ends) is refused with the key that names it.
fn replay_files_usable(cfg: &Config) -> bool {
    let mut usable = true;
    for (id, adapter) in &cfg.southbound {
        if let crate::southbound::AdapterConfig::Replay(replay) = adapter {
            for issue in replay.check_environment() {
                let hint = issue.hint.as_deref().unwrap_or("");
                tracing::error!(adapter = %id, key = %format!("southbound.{id}.{}", issue.path), hint, "{}; not starting", issue.message);
                usable = false;
            }
        }
    }
    usable
}
