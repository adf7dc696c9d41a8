//! Remote config: the platform replaces the gateway's config by writing a TOML text into the
//! gateway's config container, or asks for the previous one back; the gateway answers every
//! request in its status container (docs/management.md, "Remote config"). Off unless
//! `[management] remote_config = true`.
//!
//! - [`side`]: the resources at the CSE, receiving instances, writing status reports;
//! - [`verdict`]: who may write, what an instance asks, `check` plus "no inline secret";
//! - [`file`]: the atomic write that keeps `<file>.previous`, and the rollback swap;
//! - [`apply`]: the main loop's half: apply through the reload path, watch, roll back;
//! - [`watch`]: when an adapter counts as failing after a change;
//! - [`status`]: the JSON report.
//!
//! Wiring: [`channel`] gives the [`apply::Applier`] (kept by `citygate run`'s main loop) and
//! the [`side::RemoteConfigSide`] (given to the northbound side through
//! `runtime::northbound::Daemon`).
pub mod apply;
pub mod file;
pub mod side;
pub mod status;
pub mod verdict;
pub mod watch;

use crate::config::Config;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One config instance from the platform, for the main loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The instance's resource name (`rn`): reports name it.
    pub instance: String,
    /// Its creator (`cr`), as the CSE recorded it.
    pub creator: Option<String>,
    /// Its content (`con`): a TOML text or a request.
    pub con: Value,
}

/// Instances and reports waiting at most: the platform writes a config now and then.
const QUEUE: usize = 16;

/// The two halves of remote config for `config` (`None` when it is off).
pub fn channel(
    config: &Config,
) -> Option<(
    apply::Applier,
    Arc<side::RemoteConfigSide>,
    mpsc::Receiver<Job>,
)> {
    let nb = config.northbound.as_ref()?;
    if !config.management.remote_config || !nb.commands.enabled {
        return None;
    }
    let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE);
    let (reports_tx, reports_rx) = mpsc::channel(QUEUE);
    let side = side::RemoteConfigSide::new(
        config.management.remote_config_originators.clone(),
        &config.gateway.state_dir(),
        jobs_tx,
        reports_rx,
    );
    Some((apply::Applier::new(config, reports_tx), side, jobs_rx))
}
