//! `citygate run`: open the buffer, start the adapters, run until SIGTERM, drain.

use crate::buffer::Buffer;
use crate::config::Config;
use crate::runtime::{shutdown, supervisor};
use anyhow::Context;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
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
    let outcome = rt.block_on(async {
        for (id, adapter) in &cfg.southbound {
            tracker.spawn(supervisor::supervise(
                id.clone(),
                adapter.clone(),
                buffer.sender(),
                token.clone(),
                supervisor::restart_backoff(),
            ));
        }
        tracing::info!(
            gateway = %cfg.gateway.name,
            config = %cfg.source.display(),
            adapters = cfg.southbound.len(),
            "citygate running"
        );
        let signal = shutdown::signal().await;
        tracing::info!(signal, "stopping: draining adapters and the buffer");
        let clean = shutdown::drain(&token, &tracker, shutdown::DRAIN_DEADLINE).await;
        if !clean {
            tracing::warn!("some tasks did not stop within the deadline");
        }
        clean
    });
    drop(buffer);
    buffer_thread.close();
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    tracing::info!(clean = outcome, "citygate stopped");
    Ok(ExitCode::SUCCESS)
}
