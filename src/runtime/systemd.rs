//! systemd integration (`Type=notify`): READY=1 once the pipeline runs, WATCHDOG=1 only while
//! the buffer writer answers and commits, STATUS= with buffer state, depth and sync state,
//! STOPPING=1 on shutdown.
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use crate::buffer::Buffer;
use crate::telemetry::health::Health;
use sd_notify::NotifyState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn reloading() {
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        send(&[NotifyState::Reloading, now]);
    }
}

pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Pings the watchdog at half its interval, but only after the buffer writer answered a probe
/// and its last write (or write probe) succeeded: a wedged writer (stuck disk, locked database)
/// or a disk that refuses writes (read-only, full, I/O errors) stops the pings. A damaged buffer
/// still commits, so it keeps pinging (a restart would not repair it; `/readyz` raises the
/// alarm). Also refreshes STATUS= every tick (every 10 s when no watchdog is configured).
pub async fn watchdog(buffer: Buffer, health: Health, shutdown: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled();
    let tick = watchdog
        .map(|w| (w / 2).max(Duration::from_millis(100)))
        .unwrap_or(Duration::from_secs(10));
    let probe_timeout = tick.min(Duration::from_secs(2));
    if let Some(w) = watchdog {
        tracing::info!(
            interval_ms = w.as_millis() as u64,
            "systemd watchdog enabled"
        );
    }
    let mut last_state = crate::buffer::BufferHealth::Writable;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        match tokio::time::timeout(probe_timeout, buffer.stats()).await {
            Ok(Ok(s)) => {
                let state = buffer.health();
                let status = format!(
                    "buffer {}, {} records pending, northbound {}",
                    state.as_str(),
                    s.pending_records,
                    health.northbound().as_str()
                );
                if state != last_state {
                    last_state = state;
                    if state.commits() {
                        tracing::info!(
                            state = state.as_str(),
                            "buffer commits: pinging the watchdog again"
                        );
                    } else {
                        tracing::error!(
                            state = state.as_str(),
                            "buffer cannot commit: withholding the watchdog ping"
                        );
                    }
                }
                if !state.commits() {
                    send(&[NotifyState::Status(&status)]);
                } else if watchdog.is_some() {
                    send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
                } else {
                    send(&[NotifyState::Status(&status)]);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "buffer failing: withholding the watchdog ping")
            }
            Err(_) => tracing::error!(
                timeout_ms = probe_timeout.as_millis() as u64,
                "buffer writer not answering: withholding the watchdog ping"
            ),
        }
    }
}
