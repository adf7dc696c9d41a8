//! A [`CommandTarget`] for tests: checks like an adapter would (writable points, limits,
//! idempotence from the config's rules), records every job it executes and answers `done`
//! with the values written as the read-back. Public so the integration tests and the bench
//! can stand it in for a real adapter.
use super::command::{Action, Command};
use super::outcome::Outcome;
use super::registry::{CommandJob, CommandTarget, Safety};
use super::rule::{ValueKind, WriteRule};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the recording target executed.
#[derive(Debug, Clone)]
pub struct Executed {
    pub command: Command,
    /// When the target got it (for latency measurements).
    pub at: Instant,
    /// Wall clock when it got it (UTC ms).
    pub at_ms: i64,
}

/// Records instead of writing.
pub struct RecordingTarget {
    adapter: String,
    rules: BTreeMap<String, (ValueKind, WriteRule)>,
    executed: Mutex<Vec<Executed>>,
    notify: tokio::sync::Notify,
}

impl RecordingTarget {
    /// A target of adapter `adapter` with these points (name, kind of value, rule).
    pub fn new(
        adapter: &str,
        rules: impl IntoIterator<Item = (String, ValueKind, WriteRule)>,
    ) -> Arc<Self> {
        Arc::new(RecordingTarget {
            adapter: adapter.into(),
            rules: rules.into_iter().map(|(p, k, r)| (p, (k, r))).collect(),
            executed: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Every command executed so far, in order.
    pub fn executed(&self) -> Vec<Executed> {
        self.executed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `n` commands were executed, or `timeout` passed.
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if self.executed().len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.executed().len() >= n;
            }
        }
    }
}

impl CommandTarget for RecordingTarget {
    fn adapter(&self) -> &str {
        &self.adapter
    }

    fn check(&self, command: &Command) -> Result<Safety, String> {
        let Action::Set(values) = &command.action else {
            return Err("this device takes no downlinks".into());
        };
        let mut safety = Safety::Idempotent;
        for (point, value) in values {
            let Some((kind, rule)) = self.rules.get(point) else {
                return Err(format!(
                    "device {:?} has no point {point:?}",
                    command.device
                ));
            };
            rule.check(point, *kind, value)?;
            if !rule.idempotent {
                safety = Safety::Once;
            }
        }
        Ok(safety)
    }

    fn submit(&self, job: CommandJob) -> Result<(), Box<CommandJob>> {
        let now = crate::record::now_ms();
        if job.command.not_after_ms.is_some_and(|t| now > t) {
            let _ = job.done.send(Outcome::Expired {
                reason: "past its deadline at the device's turn".into(),
            });
            return Ok(());
        }
        let read_back = match &job.command.action {
            Action::Set(values) => values.clone(),
            Action::Downlink(_) => Default::default(),
        };
        self.executed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Executed {
                command: job.command,
                at: Instant::now(),
                at_ms: now,
            });
        self.notify.notify_waiters();
        let _ = job.done.send(Outcome::Done { read_back });
        Ok(())
    }
}
