//! `[telemetry]`: where `/metrics` and the health endpoints listen.

use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Serve `/metrics`, `/healthz`, `/readyz` and `/status`.
    pub enabled: bool,
    /// Loopback by default: expose it through a reverse proxy or change it deliberately.
    pub listen: SocketAddr,
    /// Runtime-discovered devices per adapter that get their own `citygate_device_*` series;
    /// configured devices always do. Beyond it: `citygate_device_series_overflow_total`.
    pub max_device_series: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9810)),
            max_device_series: super::device_series::DEFAULT_MAX_DEVICE_SERIES,
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        Vec::new()
    }
}
