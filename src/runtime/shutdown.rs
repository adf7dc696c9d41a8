//! Two-phase shutdown: a `CancellationToken` tells every task to stop at its next safe point,
//! a `TaskTracker` waits for them, with a deadline below systemd's `TimeoutStopSec`.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long tasks get to finish after SIGTERM before the buffer is closed anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops citygate");
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Cancels `token`, then waits for the tracked tasks up to `deadline`. Returns whether every
/// task finished in time.
pub async fn drain(token: &CancellationToken, tracker: &TaskTracker, deadline: Duration) -> bool {
    token.cancel();
    tracker.close();
    tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
}
