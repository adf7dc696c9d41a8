//! Two-phase shutdown: a `CancellationToken` tells every task to stop at its next safe point,
//! a `TaskTracker` waits for them, with a deadline below systemd's `TimeoutStopSec`.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long tasks get to finish after SIGTERM before the buffer is closed anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Exit code after a restart the platform asked for (reboot mgmtObj, docs/management.md):
/// EX_TEMPFAIL, "try again". Not 0, so `Restart=on-failure` restarts the service; the unit
/// also lists it in `RestartForceExitStatus=` and `SuccessExitStatus=` (restarted, not failed).
pub const EXIT_RESTART: u8 = 75;

/// What the main loop waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop(&'static str),
    Reload,
}

/// Listens for SIGTERM, SIGINT and SIGHUP for the life of the process.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    pub async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Signal::Stop("SIGTERM"),
                _ = tokio::signal::ctrl_c() => Signal::Stop("SIGINT"),
                _ = self.hup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop("SIGINT")
        }
    }
}

/// Cancels `token`, then waits for the tracked tasks up to `deadline`. Returns whether every
/// task finished in time.
pub async fn drain(token: &CancellationToken, tracker: &TaskTracker, deadline: Duration) -> bool {
    token.cancel();
    tracker.close();
    tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
}
