//! Southbound adapters: each turns device traffic into [`Record`](crate::record::Record)s.
//!
//! Adapters are a closed enum of configs tagged by `type` under `[southbound.<id>]`
//! ([`AdapterConfig`]): an exhaustive `match` instead of registration magic. Each config has a
//! pure `validate`, the `resources` it claims, and `build`, which returns an [`Adapter`] whose
//! `run` loops until shutdown. The [`supervisor`](crate::runtime::supervisor) restarts an
//! adapter whose `run` fails.

pub mod replay;

use crate::buffer::RecordSender;
use crate::config::issue::{ConfigIssue, Resource};
use tokio_util::sync::CancellationToken;

/// Why an adapter's run loop gave up; the supervisor logs it and restarts the adapter with
/// capped, jittered backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

/// A running southbound adapter. `run` loops until `shutdown` is cancelled, reconnecting to its
/// devices by itself; it returns `Err` only when it cannot continue (then it is restarted by
/// calling `run` again on the same value).
#[async_trait::async_trait]
pub trait Adapter: Send {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError>;
}

/// One `[southbound.<id>]` table.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterConfig {
    Replay(replay::ReplayConfig),
}

impl AdapterConfig {
    /// Every valid `type`, for messages.
    pub const TYPES: &'static [&'static str] = &["replay"];

    /// Deserializes the table (without its `type` key) as the given type.
    pub fn deserialize_typed<'de, D: serde::Deserializer<'de>>(
        type_name: &str,
        de: D,
    ) -> Result<Self, D::Error> {
        use serde::Deserialize;
        match type_name {
            "replay" => replay::ReplayConfig::deserialize(de).map(AdapterConfig::Replay),
            other => Err(serde::de::Error::unknown_variant(other, Self::TYPES)),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AdapterConfig::Replay(_) => "replay",
        }
    }

    /// Pure checks; paths are relative to the adapter's table.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        match self {
            AdapterConfig::Replay(c) => c.validate(),
        }
    }

    /// Checks against the machine (files exist, secrets readable); `citygate check` runs them,
    /// `citygate run` meets the same problems when building.
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        match self {
            AdapterConfig::Replay(c) => c.check_environment(),
        }
    }

    /// What this adapter owns exclusively.
    pub fn resources(&self) -> Vec<Resource> {
        match self {
            AdapterConfig::Replay(_) => Vec::new(),
        }
    }

    /// Creates the runnable adapter.
    pub fn build(&self, id: &str) -> Result<Box<dyn Adapter>, AdapterError> {
        match self {
            AdapterConfig::Replay(c) => Ok(Box::new(replay::ReplayAdapter::new(id, c.clone()))),
        }
    }
}
