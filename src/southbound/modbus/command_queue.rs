//! Commands on a bus: the registered targets, the queue each bus task takes jobs from, and
//! the rule that commands go before polls.
//!
//! With `commands = true`, the adapter registers one [`QueuedTarget`] per device that has a
//! writable point, in the [`CommandRegistry`], each feeding the bounded queue of the bus task
//! that owns the device's connection. The bus task takes queued jobs before each poll
//! transaction (between the reads of a cycle too, not only between cycles), so a command waits
//! at most for the one read in progress, and while it idles it waits for jobs as well as for
//! the next poll. Each job is answered exactly once: by [`super::executor::execute`], or, for
//! jobs still queued when the bus task stops, with `failed` ("not executed").
use super::bus::Bus;
use super::executor::execute;
use super::write_plan::DeviceWrites;
use crate::commands::{CommandJob, CommandRegistry, Outcome, QueuedTarget};
use crate::telemetry::untrusted::snippet;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Jobs waiting for one bus.
pub const COMMAND_QUEUE: usize = 64;

/// The commands side of one bus task.
pub struct CommandQueue {
    adapter: String,
    rx: Option<mpsc::Receiver<CommandJob>>,
    devices: HashMap<String, Arc<DeviceWrites>>,
}

impl CommandQueue {
    /// A bus without commands: never yields a job.
    pub fn none(adapter: impl Into<String>) -> Self {
        CommandQueue {
            adapter: adapter.into(),
            rx: None,
            devices: HashMap::new(),
        }
    }

    /// Registers every device of `devices` that has a writable point in `registry` (replacing
    /// an earlier registration of the same device) and returns the queue its jobs arrive on.
    pub fn register(adapter: &str, devices: Vec<DeviceWrites>, registry: &CommandRegistry) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mut map = HashMap::new();
        for dw in devices.into_iter().filter(DeviceWrites::any_writable) {
            let dw = Arc::new(dw);
            let check = Arc::clone(&dw);
            registry.register(
                dw.device.clone(),
                QueuedTarget::new(adapter, tx.clone(), move |c| {
                    check.check(c).map(|plan| plan.safety)
                }),
            );
            map.insert(dw.device.clone(), dw);
        }
        CommandQueue {
            adapter: adapter.to_string(),
            rx: (!map.is_empty()).then_some(rx),
            devices: map,
        }
    }

    /// The devices whose commands arrive here.
    pub fn devices(&self) -> Vec<String> {
        let mut d: Vec<String> = self.devices.keys().cloned().collect();
        d.sort();
        d
    }

    /// Waits for the next job; never returns while there is no queue.
    pub async fn recv(&mut self) -> Option<CommandJob> {
        match &mut self.rx {
            Some(rx) => match rx.recv().await {
                Some(job) => Some(job),
                None => {
                    // Every target was replaced or dropped: no job can come any more.
                    self.rx = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }

    /// Executes every job already queued, in order.
    pub async fn serve_pending(&mut self, bus: &mut Bus) {
        loop {
            let Some(job) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                return;
            };
            self.run(job, bus).await;
        }
    }

    /// Executes one job and answers it.
    pub async fn run(&self, job: CommandJob, bus: &mut Bus) {
        let command = &job.command;
        let outcome = match self.devices.get(&command.device) {
            Some(dw) => execute(dw, command, bus).await,
            None => Outcome::rejected(format!(
                "device {:?} is not a writable device of adapter {:?}",
                snippet(command.device.as_bytes()),
                self.adapter
            )),
        };
        match &outcome {
            Outcome::Done { .. } => {
                tracing::info!(adapter = %self.adapter, device = %command.device, command = %snippet(command.id.as_bytes()), "modbus command done")
            }
            other => {
                tracing::warn!(adapter = %self.adapter, device = %command.device, command = %snippet(command.id.as_bytes()), outcome = other.name(), reason = ?other, "modbus command not done")
            }
        }
        // The dispatcher may have given up waiting; the outcome is then its to infer.
        let _ = job.done.send(outcome);
    }

    /// Stops taking jobs and answers those still queued: they were not executed.
    pub fn close(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        rx.close();
        while let Ok(job) = rx.try_recv() {
            let _ = job.done.send(Outcome::failed(
                "not executed: the Modbus adapter stopped before the command's turn; nothing was written",
            ));
        }
    }
}

impl Drop for CommandQueue {
    fn drop(&mut self) {
        self.close();
    }
}
