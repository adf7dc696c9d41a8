//! Which adapter executes a device's commands, and how a command reaches it.
//!
//! An adapter whose config enables commands registers one [`CommandTarget`] per device it can
//! write when it is built; a rebuilt adapter (restart, reload) registers again and replaces the
//! old entry. The dispatcher looks the device up, asks the target to [`check`](CommandTarget::check)
//! the command against the config's allow-list (no I/O), and [`submit`](CommandTarget::submit)s
//! a [`CommandJob`] to the adapter's own queue; the adapter answers on the job's channel.
//!
//! A job whose answer channel is dropped without an answer (the adapter stopped mid-job) is
//! treated like a crash mid-write: re-executed only if [`Safety::Idempotent`].
use super::command::Command;
use super::outcome::Outcome;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::oneshot;

/// Whether executing the command a second time is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Every point it writes is declared `idempotent` (absolute set points).
    Idempotent,
    /// At least one point is not: after a crash mid-write it is reported `unknown`.
    Once,
}

/// One command handed to the adapter that owns the device.
#[derive(Debug)]
pub struct CommandJob {
    pub command: Command,
    /// Answered once the command ended (`done`, `failed`, `expired` at the device's turn).
    pub done: oneshot::Sender<Outcome>,
}

/// What an adapter offers for the commands of one device.
pub trait CommandTarget: Send + Sync {
    /// The adapter id (`[southbound.<id>]`), for results and metrics.
    fn adapter(&self) -> &str;
    /// Checks the command against the config's allow-list, without I/O. `Err` is the
    /// `rejected` reason.
    fn check(&self, command: &Command) -> Result<Safety, String>;
    /// Queues the job for the adapter. Gives the job back when the queue is full or the
    /// adapter is gone.
    fn submit(&self, job: CommandJob) -> Result<(), Box<CommandJob>>;
}

/// Device id → the target that executes its commands. Shared by the runtime, the adapters
/// (which register) and the command dispatcher (which looks up).
#[derive(Default)]
pub struct CommandRegistry {
    targets: RwLock<HashMap<String, Arc<dyn CommandTarget>>>,
}

impl CommandRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers (or replaces) the target of `device`.
    pub fn register(&self, device: impl Into<String>, target: Arc<dyn CommandTarget>) {
        self.write().insert(device.into(), target);
    }

    /// Removes every device of `adapter` (it was removed from the config).
    pub fn unregister_adapter(&self, adapter: &str) {
        self.write().retain(|_, t| t.adapter() != adapter);
    }

    pub fn get(&self, device: &str) -> Option<Arc<dyn CommandTarget>> {
        self.targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .cloned()
    }

    /// The devices that accept commands, sorted (their command containers are created).
    pub fn devices(&self) -> Vec<String> {
        let mut devices: Vec<String> = self
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        devices.sort();
        devices
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<dyn CommandTarget>>> {
        self.targets.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The usual target: checks with the adapter's allow-list, queues on the adapter's bounded
/// channel (the adapter's run loop takes jobs from the receiver before its next poll).
pub struct QueuedTarget {
    adapter: String,
    check: Box<CheckFn>,
    queue: tokio::sync::mpsc::Sender<CommandJob>,
}

type CheckFn = dyn Fn(&Command) -> Result<Safety, String> + Send + Sync;

impl QueuedTarget {
    pub fn new(
        adapter: impl Into<String>,
        queue: tokio::sync::mpsc::Sender<CommandJob>,
        check: impl Fn(&Command) -> Result<Safety, String> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(QueuedTarget {
            adapter: adapter.into(),
            check: Box::new(check),
            queue,
        })
    }
}

impl CommandTarget for QueuedTarget {
    fn adapter(&self) -> &str {
        &self.adapter
    }

    fn check(&self, command: &Command) -> Result<Safety, String> {
        (self.check)(command)
    }

    fn submit(&self, job: CommandJob) -> Result<(), Box<CommandJob>> {
        self.queue.try_send(job).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(job)
            | tokio::sync::mpsc::error::TrySendError::Closed(job) => Box::new(job),
        })
    }
}
