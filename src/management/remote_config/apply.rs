//! The daemon's half of remote config, run by the main loop (which owns the running config
//! and the adapters, like SIGHUP): decide on a config instance, write the file, apply it
//! through the reload path, watch the adapters afterwards and roll back on its own when one
//! that ran before keeps failing. Every decision becomes a [`StatusReport`] for the platform.
use super::file;
use super::status::{Outcome, StatusReport};
use super::verdict::{authorise, check_remote, parse_content, Content};
use super::watch::{self, Watch};
use super::Job;
use crate::config::Config;
use crate::runtime::reload::{reload_with_outcome, AdapterSet};
use crate::telemetry::untrusted::Untrusted;
use crate::telemetry::Metrics;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often the adapters are looked at while a change is watched.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Decides on config instances and carries them out.
pub struct Applier {
    /// The config file citygate runs from.
    path: PathBuf,
    originators: Vec<String>,
    rollback_after: Duration,
    reports: mpsc::Sender<StatusReport>,
    watch: Option<Watch>,
}

impl Applier {
    /// Like the rest of `[management]`, the remote config keys are read at start: a change
    /// to them (remote or not) takes effect when citygate restarts.
    pub fn new(config: &Config, reports: mpsc::Sender<StatusReport>) -> Self {
        Applier {
            path: config.source.clone(),
            originators: config.management.remote_config_originators.clone(),
            rollback_after: config.management.remote_config_rollback_after,
            reports,
            watch: None,
        }
    }

    /// A change is being watched (the main loop then calls [`Applier::look`] every
    /// [`LOOK_EVERY`]).
    pub fn watching(&self) -> bool {
        self.watch.is_some()
    }

    /// The config was reloaded by other means (SIGHUP): the last remote change is no longer
    /// what runs, so it is not watched any more.
    pub fn forget_watch(&mut self) {
        self.watch = None;
    }

    /// Decides on one instance and reports the decision.
    pub async fn handle(
        &mut self,
        job: Job,
        current: &mut Config,
        set: &mut AdapterSet,
        metrics: &Metrics,
    ) {
        let report = self.decide(&job, current, set, metrics).await;
        self.report(report).await;
    }

    async fn decide(
        &mut self,
        job: &Job,
        current: &mut Config,
        set: &mut AdapterSet,
        metrics: &Metrics,
    ) -> StatusReport {
        let instance = job.instance.as_str();
        if let Err(why) = authorise(job.creator.as_deref(), &self.originators) {
            return StatusReport::rejected(Some(instance), why);
        }
        match parse_content(&job.con) {
            Err(why) => StatusReport::rejected(Some(instance), why),
            Ok(Content::Rollback) => {
                let by = job.creator.as_deref().unwrap_or_default();
                let reason = format!("rollback requested by {by}");
                self.roll_back(Some(instance), reason, current, set, metrics)
                    .await
            }
            Ok(Content::Config(text)) => self.apply(instance, &text, current, set, metrics).await,
        }
    }

    async fn apply(
        &mut self,
        instance: &str,
        text: &str,
        current: &mut Config,
        set: &mut AdapterSet,
        metrics: &Metrics,
    ) -> StatusReport {
        let verdict = check_remote(text, &self.path, &format!("remote:{instance}"));
        if verdict.config.is_none() {
            return StatusReport {
                problems: verdict.problems.clone(),
                warnings: verdict.warnings,
                ..StatusReport::rejected(
                    Some(instance),
                    format!(
                        "the config has {} problem(s); nothing was changed",
                        verdict.problems.len()
                    ),
                )
            };
        }
        if std::fs::read_to_string(&self.path).ok().as_deref() == Some(text) {
            return StatusReport {
                warnings: verdict.warnings,
                ..StatusReport::new(Some(instance), Outcome::Applied)
                    .reason("the config is the one already running; nothing to do")
            };
        }
        let ids: Vec<String> = current.southbound.keys().cloned().collect();
        let before = watch::read(metrics, &ids);
        if let Err(e) = file::replace_keeping_previous(&self.path, text) {
            return StatusReport::rejected(Some(instance), e.to_string());
        }
        let Some((new, outcome)) = reload_with_outcome(&self.path, current, set, metrics).await
        else {
            // Checked a moment ago: only a change of the machine in between gets here.
            let restored = file::swap_with_previous(&self.path);
            return StatusReport::rejected(
                Some(instance),
                format!(
                    "the config was written but did not load (see the gateway's log); the running one was put back ({})",
                    if restored.is_ok() { "done" } else { "failed" }
                ),
            );
        };
        *current = new;
        self.watch = Watch::new(
            instance,
            &before,
            |id| current.southbound.contains_key(id),
            self.rollback_after,
            Instant::now(),
        );
        StatusReport {
            warnings: verdict.warnings,
            ..StatusReport::new(Some(instance), Outcome::Applied).with_outcome(&outcome)
        }
    }

    async fn roll_back(
        &mut self,
        instance: Option<&str>,
        reason: String,
        current: &mut Config,
        set: &mut AdapterSet,
        metrics: &Metrics,
    ) -> StatusReport {
        self.watch = None;
        if let Err(e) = file::swap_with_previous(&self.path) {
            return StatusReport::rejected(instance, e.to_string());
        }
        match reload_with_outcome(&self.path, current, set, metrics).await {
            Some((new, outcome)) => {
                *current = new;
                StatusReport::new(instance, Outcome::RolledBack)
                    .reason(reason)
                    .with_outcome(&outcome)
            }
            None => {
                let _ = file::swap_with_previous(&self.path);
                StatusReport::rejected(
                    instance,
                    "the previous config does not load any more (see the gateway's log); nothing was changed",
                )
            }
        }
    }

    /// One look at the adapters after a change: rolls back when one has failed for
    /// `remote_config_rollback_after`.
    pub async fn look(&mut self, current: &mut Config, set: &mut AdapterSet, metrics: &Metrics) {
        let Some(w) = &mut self.watch else {
            return;
        };
        let health = watch::read(metrics, &w.adapters());
        match w.look(&health, Instant::now()) {
            watch::Verdict::Watching => {}
            watch::Verdict::Done => {
                tracing::info!(instance = %Untrusted(&w.instance), "remote config change judged good; no longer watched");
                self.watch = None;
            }
            watch::Verdict::RollBack { adapter } => {
                let instance = w.instance.clone();
                let reason = format!(
                    "adapter `{adapter}` ran before the change of {instance} and has failed for {} since; rolled back automatically",
                    humantime::format_duration(self.rollback_after)
                );
                tracing::warn!(adapter = %adapter, instance = %Untrusted(&instance), "{reason}");
                let mut report = self
                    .roll_back(Some(&instance), reason, current, set, metrics)
                    .await;
                report.automatic = report.result == Outcome::RolledBack;
                self.report(report).await;
            }
        }
    }

    /// Logs the decision and hands it to the status writer.
    async fn report(&self, report: StatusReport) {
        let instance = report.instance.as_deref().unwrap_or("-");
        let reason = report.reason.as_deref().unwrap_or("");
        match report.result {
            Outcome::Rejected => tracing::warn!(
                instance = %Untrusted(instance),
                problems = report.problems.len(),
                reason = %Untrusted(reason),
                "remote config rejected"
            ),
            Outcome::Applied => tracing::info!(
                instance = %Untrusted(instance),
                restarted = ?report.restarted,
                started = ?report.started,
                stopped = ?report.stopped,
                "remote config applied"
            ),
            Outcome::RolledBack => tracing::warn!(
                instance = %Untrusted(instance),
                reason = %Untrusted(reason),
                "remote config rolled back"
            ),
        }
        if self.reports.send(report).await.is_err() {
            tracing::debug!("no status writer: the report stays in the log only");
        }
    }
}
