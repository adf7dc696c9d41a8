//! The dispatcher: takes command instances from the northbound side (notification or
//! catch-up, whichever comes first), judges them, hands them to the adapter that owns the
//! device and reports how each ended.
//!
//! For every instance, in this order:
//! 1. journal it as `received`; an instance already in the journal is ignored (handled once);
//! 2. its creator (`cr`) must be one of the configured originators, else `rejected`;
//! 3. its `con` must parse ([`Command::parse`]), else `rejected` with the parse error;
//! 4. the device must be in the [`CommandRegistry`], else `rejected`;
//! 5. the target's [`check`](super::CommandTarget::check) (the config's allow-list), else
//!    `rejected` with its reason;
//! 6. it joins its device's queue: one command at a time per device, in arrival order (the
//!    northbound side hands instances over in `ct` order);
//! 7. at its turn, past its deadline (`not_after`, or creation + `default_expiry`) it is
//!    `expired`; otherwise the journal says `executing`, `not_after_ms` is set to the deadline
//!    (the adapter only compares with now) and the job is submitted; a full adapter queue is
//!    retried shortly (never dropped) until the deadline;
//! 8. the adapter's [`Outcome`] and the result record are committed with the journal's
//!    `finished` in one transaction ([`Journal::finish`]).
//!
//! An adapter that drops a job's answer channel stopped mid-job: like a crash mid-write, the
//! command is submitted again only if [`Safety::Idempotent`], otherwise reported `unknown`.
use super::command::{Action, Command, Origin};
use super::journal::{recovery, Instance, Journal, Stage};
use super::outcome::Outcome;
use super::registry::{CommandJob, CommandRegistry, Safety};
use crate::buffer::{Buffer, BufferError};
use crate::record::{format_ts, now_ms, Values};
use crate::telemetry::CommandMetrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The adapter name in results and metrics of commands no adapter took.
pub const NO_ADAPTER: &str = "none";
/// Pause between two tries to hand a job to a full adapter queue.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(20);
/// Pause between two tries of a buffer operation that failed (a failing disk).
const BUFFER_RETRY: Duration = Duration::from_secs(1);

/// What the dispatcher needs from `[northbound.commands]`.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub originators: Vec<String>,
    pub default_expiry: Duration,
}

/// What became of an offered instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// New: journaled and on its way (or already finished, if rejected).
    New,
    /// Already in the journal: ignored.
    Known,
}

/// Cloneable handle; the per-device workers run until `cancel`.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Journal,
    registry: Arc<CommandRegistry>,
    cfg: DispatchConfig,
    metrics: CommandMetrics,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>,
    /// One offer at a time from journal to queue: an instance reaching the dispatcher by two
    /// routes at once (notification and catch-up) cannot overtake an older one.
    offering: tokio::sync::Mutex<()>,
    cancel: CancellationToken,
}

/// A command accepted for execution, waiting for its device's turn.
struct Pending {
    command: Command,
    safety: Safety,
    adapter: String,
    /// Found `received` (not yet handed to the adapter) or being re-executed after a crash.
    stage: Stage,
}

impl Dispatcher {
    pub fn new(
        buffer: Buffer,
        registry: Arc<CommandRegistry>,
        cfg: DispatchConfig,
        metrics: CommandMetrics,
        cancel: CancellationToken,
    ) -> Self {
        Dispatcher {
            inner: Arc::new(Inner {
                journal: Journal::new(buffer),
                registry,
                cfg,
                metrics,
                queues: Mutex::new(HashMap::new()),
                offering: tokio::sync::Mutex::new(()),
                cancel,
            }),
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Applies the crash rule to the commands left unfinished by the previous run (call once,
    /// after the adapters registered their devices and before new instances are offered).
    pub async fn recover(&self) -> Result<usize, BufferError> {
        let _one_at_a_time = self.inner.offering.lock().await;
        let open = self.inner.journal.open().await?;
        let n = open.len();
        if n > 0 {
            tracing::info!(
                commands = n,
                "resuming commands left unfinished by the last run"
            );
        }
        for (stage, instance) in open {
            self.admit(instance, stage).await;
        }
        Ok(n)
    }

    /// Offers an instance (from a notification or catch-up). Returns once it is journaled.
    pub async fn offer(&self, instance: Instance) -> Result<Offered, BufferError> {
        let _one_at_a_time = self.inner.offering.lock().await;
        if !self.inner.journal.receive(&instance).await? {
            tracing::debug!(instance = %instance.key, "command instance already handled");
            return Ok(Offered::Known);
        }
        tracing::info!(instance = %instance.key, device = %instance.device, creator = ?instance.creator, "command received");
        self.admit(instance, Stage::Received).await;
        Ok(Offered::New)
    }

    /// Offers instances in creation order, skipping known ones first in one journal read.
    pub async fn offer_all(&self, mut instances: Vec<Instance>) -> Result<usize, BufferError> {
        instances.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.key.cmp(&b.key)));
        let known = self
            .inner
            .journal
            .known(instances.iter().map(|i| i.key.clone()).collect())
            .await?;
        let mut new = 0;
        for instance in instances.into_iter().filter(|i| !known.contains(&i.key)) {
            if self.offer(instance).await? == Offered::New {
                new += 1;
            }
        }
        Ok(new)
    }

    /// Steps 2–6 for a journaled instance.
    async fn admit(&self, instance: Instance, stage: Stage) {
        let inner = &self.inner;
        let creator_ok = instance
            .creator
            .as_ref()
            .is_some_and(|c| inner.cfg.originators.iter().any(|o| o == c));
        if !creator_ok {
            let reason = match &instance.creator {
                None => "the command instance names no creator (cr), so its sender cannot be \
                         checked; the platform must create it with \"cr\": null so the CSE records \
                         who sent it"
                    .to_string(),
                Some(c) => format!(
                    "originator {c:?} may not send commands to this gateway (it is not in \
                     [northbound.commands] originators)"
                ),
            };
            let command = stub(&instance);
            return self
                .finish_now(NO_ADAPTER, &command, Outcome::rejected(reason))
                .await;
        }
        let origin = Origin {
            key: instance.key.clone(),
            device: instance.device.clone(),
            created_ms: instance.created_ms,
            creator: instance.creator.clone().unwrap_or_default(),
        };
        let command = match Command::parse(&instance.con, origin) {
            Ok(c) => c,
            Err(e) => {
                let command = stub(&instance);
                return self
                    .finish_now(NO_ADAPTER, &command, Outcome::rejected(e.to_string()))
                    .await;
            }
        };
        if stage == Stage::Executing {
            // It may have been written: the crash rule decides, never a rejection.
            if let Err(outcome) = recovery(&command, &inner.registry) {
                tracing::warn!(instance = %command.key, device = %command.device, "command was being written when citygate stopped; not repeated");
                let adapter = inner
                    .registry
                    .get(&command.device)
                    .map(|t| t.adapter().to_string());
                return self
                    .finish_now(adapter.as_deref().unwrap_or(NO_ADAPTER), &command, outcome)
                    .await;
            }
            tracing::info!(instance = %command.key, device = %command.device, "command was being written when citygate stopped; repeating it (idempotent)");
        }
        let Some(target) = inner.registry.get(&command.device) else {
            let reason = format!(
                "no adapter accepts commands for device {:?} (no adapter with commands = true lists it)",
                command.device
            );
            return self
                .finish_now(NO_ADAPTER, &command, Outcome::rejected(reason))
                .await;
        };
        let adapter = target.adapter().to_string();
        let safety = match target.check(&command) {
            Ok(safety) => safety,
            Err(reason) => {
                return self
                    .finish_now(&adapter, &command, Outcome::rejected(reason))
                    .await
            }
        };
        let pending = Pending {
            command,
            safety,
            adapter,
            stage,
        };
        self.enqueue(pending);
    }

    fn enqueue(&self, pending: Pending) {
        let device = pending.command.device.clone();
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        let tx = queues.entry(device).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(device_worker(self.clone(), rx));
            tx
        });
        if let Err(e) = tx.send(pending) {
            // The worker ended (shutting down): the journal keeps the command for the next run.
            tracing::debug!(instance = %e.0.command.key, "dispatcher stopping; command left for the next start");
        }
    }

    /// Executes one command at its device's turn (steps 7–8).
    async fn execute(&self, p: Pending) {
        let inner = &self.inner;
        let Pending {
            mut command,
            safety,
            adapter,
            stage,
        } = p;
        let deadline = command.deadline_ms(inner.cfg.default_expiry);
        command.not_after_ms = Some(deadline);
        if stage == Stage::Received {
            if let Some(outcome) = expired(&command, deadline) {
                return self.finish_now(&adapter, &command, outcome).await;
            }
            loop {
                match inner.journal.executing(&command.key).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, instance = %command.key, "cannot journal a command as executing; retrying (it is not executed before)");
                        if self.pause(BUFFER_RETRY).await {
                            return;
                        }
                    }
                }
            }
        }
        loop {
            if let Some(outcome) = expired(&command, deadline) {
                // One that was being written when citygate stopped may have been written.
                let outcome = match stage {
                    Stage::Received => outcome,
                    Stage::Executing => Outcome::Unknown {
                        reason: "citygate stopped while writing this command and its deadline                                  passed before it could be repeated: it may or may not have been                                  written; check the device"
                            .into(),
                    },
                };
                return self.finish_now(&adapter, &command, outcome).await;
            }
            let Some(target) = inner.registry.get(&command.device) else {
                let reason = format!(
                    "the adapter of device {:?} was removed before the command ran",
                    command.device
                );
                return self
                    .finish_now(&adapter, &command, Outcome::failed(reason))
                    .await;
            };
            let (done, answer) = oneshot::channel();
            let job = CommandJob {
                command: command.clone(),
                done,
            };
            if target.submit(job).is_err() {
                if self.pause(QUEUE_FULL_RETRY).await {
                    return;
                }
                continue;
            }
            let answer = tokio::select! {
                _ = inner.cancel.cancelled() => return,
                a = answer => a,
            };
            match answer {
                Ok(outcome) => {
                    let seconds = (now_ms() - command.created_ms) as f64 / 1000.0;
                    inner.metrics.executed(&adapter, seconds);
                    return self.finish_now(&adapter, &command, outcome).await;
                }
                Err(_) if safety == Safety::Idempotent => {
                    tracing::warn!(instance = %command.key, "adapter stopped while executing an idempotent command; submitting it again");
                    if self.pause(QUEUE_FULL_RETRY).await {
                        return;
                    }
                }
                Err(_) => {
                    let outcome = Outcome::Unknown {
                        reason: "the adapter stopped while writing this command, so it may or may \
                                 not have been written; it writes a point that is not declared \
                                 idempotent and was not repeated: check the device"
                            .into(),
                    };
                    return self.finish_now(&adapter, &command, outcome).await;
                }
            }
        }
    }

    /// Commits the result and the journal's `finished` (retrying a failing buffer until it
    /// works or the daemon stops: then the journal still holds the command for the next run).
    async fn finish_now(&self, adapter: &str, command: &Command, outcome: Outcome) {
        loop {
            match self.inner.journal.finish(adapter, command, &outcome).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, instance = %command.key, "cannot commit a command result; retrying");
                    if self.pause(BUFFER_RETRY).await {
                        return;
                    }
                }
            }
        }
        self.inner.metrics.finished(adapter, outcome.name());
        match &outcome {
            Outcome::Done { .. } => {
                tracing::info!(instance = %command.key, id = %command.id, device = %command.device, adapter, "command done")
            }
            Outcome::Rejected { reason }
            | Outcome::Expired { reason }
            | Outcome::Failed { reason }
            | Outcome::Unknown { reason } => {
                tracing::warn!(instance = %command.key, id = %command.id, device = %command.device, adapter, outcome = outcome.name(), reason = %reason, "command not done")
            }
        }
    }

    /// Sleeps; `true` if the daemon is stopping.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.inner.cancel.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

/// One device's commands, one at a time, in the order they were accepted.
async fn device_worker(d: Dispatcher, mut rx: mpsc::UnboundedReceiver<Pending>) {
    loop {
        let next = tokio::select! {
            _ = d.inner.cancel.cancelled() => return,
            n = rx.recv() => n,
        };
        match next {
            Some(p) => d.execute(p).await,
            None => return,
        }
    }
}

fn expired(command: &Command, deadline: i64) -> Option<Outcome> {
    let now = now_ms();
    (now > deadline).then(|| Outcome::Expired {
        reason: format!(
            "not executed: its deadline {} had passed when its turn came (command created {})",
            format_ts(deadline),
            format_ts(command.created_ms)
        ),
    })
}

/// A command for the result of an instance that did not parse or was not allowed: its `id` if
/// one can be read from `con`, nothing to do.
fn stub(instance: &Instance) -> Command {
    let con = match &instance.con {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
        other => other.clone(),
    };
    let id = con
        .get("id")
        .and_then(|v| v.as_str())
        .map(|s| s.chars().take(super::command::MAX_ID_LEN).collect())
        .unwrap_or_default();
    Command {
        key: instance.key.clone(),
        id,
        device: instance.device.clone(),
        action: Action::Set(Values::new()),
        created_ms: instance.created_ms,
        not_after_ms: None,
        creator: instance.creator.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "dispatcher_tests.rs"]
mod tests;
