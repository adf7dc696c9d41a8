//! The running set of adapters, and SIGHUP reload: parse and validate the new config fully,
//! diff it, restart only the adapters whose table changed. An invalid config changes nothing.
//! The buffer, telemetry and northbound keep running; changes to their sections are reported
//! as needing a restart (their state — open database, CSE session — is what reload protects).

use super::supervisor;
use crate::buffer::Buffer;
use crate::commands::CommandRegistry;
use crate::config::{self, Config, LoadError};
use crate::southbound::AdapterConfig;
use crate::telemetry::Metrics;
use indexmap::IndexMap;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Running {
    /// The adapter's table as loaded; equal text means nothing to do on reload.
    fingerprint: String,
    /// Child of the root token: cancelling it stops only this adapter.
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The adapters currently supervised, by id.
pub struct AdapterSet {
    running: IndexMap<String, Running>,
    buffer: Buffer,
    metrics: Metrics,
    /// Where adapters register the devices they accept commands for.
    commands: Arc<CommandRegistry>,
    root: CancellationToken,
    /// The process-wide tracker: shutdown waits for adapters with everything else, under one
    /// deadline.
    tracker: TaskTracker,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub stopped: Vec<String>,
    /// Sections that changed but only take effect after a restart of citygate.
    pub needs_restart: Vec<&'static str>,
}

fn fingerprint(a: &AdapterConfig) -> String {
    format!("{a:?}")
}

impl AdapterSet {
    pub fn new(
        buffer: Buffer,
        metrics: Metrics,
        commands: Arc<CommandRegistry>,
        root: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        AdapterSet {
            running: IndexMap::new(),
            buffer,
            metrics,
            commands,
            root,
            tracker,
        }
    }

    pub fn start(&mut self, id: &str, config: &AdapterConfig) {
        let stop = self.root.child_token();
        self.metrics.adapter_starts.with_label_values(&[id]).inc();
        self.metrics
            .device_series
            .configure(id, config.configured_devices());
        self.metrics
            .device_roster
            .configure(id, config.type_name(), config.configured_devices());
        self.metrics
            .device_roster
            .set_periods(id, config.device_periods());
        let task = self.tracker.spawn(supervisor::supervise(
            id.to_owned(),
            config.clone(),
            self.buffer.sender_for(id, &self.metrics),
            stop.clone(),
            supervisor::restart_backoff(),
            self.metrics.clone(),
            Arc::clone(&self.commands),
        ));
        self.running.insert(
            id.to_owned(),
            Running {
                fingerprint: fingerprint(config),
                stop,
                task,
            },
        );
    }

    async fn stop(&mut self, id: &str) {
        if let Some(r) = self.running.shift_remove(id) {
            self.commands.unregister_adapter(id);
            r.stop.cancel();
            if let Err(e) = r.task.await {
                tracing::warn!(adapter = %id, error = %e, "adapter task ended abnormally");
            }
        }
    }

    /// Applies a new, already validated config.
    pub async fn apply(&mut self, old: &Config, new: &Config) -> ReloadOutcome {
        let mut outcome = ReloadOutcome::default();
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            match new.southbound.get(&id) {
                None => {
                    self.stop(&id).await;
                    self.metrics.device_roster.remove_adapter(&id);
                    outcome.stopped.push(id);
                }
                Some(cfg)
                    if self
                        .running
                        .get(&id)
                        .is_some_and(|r| r.fingerprint != fingerprint(cfg)) =>
                {
                    self.stop(&id).await;
                    self.start(&id, cfg);
                    outcome.restarted.push(id);
                }
                Some(_) => {}
            }
        }
        for (id, cfg) in &new.southbound {
            if !self.running.contains_key(id) {
                self.start(id, cfg);
                outcome.started.push(id.clone());
            }
        }
        if old.buffer != new.buffer {
            outcome.needs_restart.push("buffer");
        }
        if old.telemetry != new.telemetry {
            outcome.needs_restart.push("telemetry");
        }
        if old.northbound != new.northbound {
            outcome.needs_restart.push("northbound");
        }
        if old.gateway != new.gateway {
            outcome.needs_restart.push("gateway");
        }
        if old.management != new.management {
            outcome.needs_restart.push("management");
        }
        outcome
    }
}

/// SIGHUP: loads `path`; on success applies it and returns the new config to keep.
pub async fn reload(
    path: &Path,
    current: &Config,
    set: &mut AdapterSet,
    metrics: &Metrics,
) -> Option<Config> {
    reload_with_outcome(path, current, set, metrics)
        .await
        .map(|(config, _)| config)
}

/// [`reload`], also saying what it did (remote config reports it to the platform).
pub async fn reload_with_outcome(
    path: &Path,
    current: &Config,
    set: &mut AdapterSet,
    metrics: &Metrics,
) -> Option<(Config, ReloadOutcome)> {
    let new = match config::load(path) {
        Ok(c) => c,
        Err(LoadError::Invalid(report)) => {
            metrics
                .config_reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(
                problems = report.issues.len(),
                "reload rejected, keeping the running config:\n{report}"
            );
            return None;
        }
        Err(e) => {
            metrics
                .config_reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(error = %e, "reload rejected, keeping the running config");
            return None;
        }
    };
    let outcome = set.apply(current, &new).await;
    metrics.config_reloads.with_label_values(&["applied"]).inc();
    tracing::info!(
        started = ?outcome.started,
        restarted = ?outcome.restarted,
        stopped = ?outcome.stopped,
        "config reloaded"
    );
    if !outcome.needs_restart.is_empty() {
        tracing::warn!(sections = ?outcome.needs_restart, "these sections changed and take effect only after `systemctl restart citygate`");
    }
    Some((new, outcome))
}
