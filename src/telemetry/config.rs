//! `[telemetry]`: where `/metrics` and the health endpoints listen.

use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Serve `/metrics`, `/healthz`, `/readyz` and `/status`.
    pub enabled: bool,
    /// Loopback by default: expose it through a reverse proxy or change it deliberately.
    pub listen: SocketAddr,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9810)),
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        Vec::new()
    }
}
