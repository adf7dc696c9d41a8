//! Logs, metrics, health endpoints.

pub mod config;
pub mod counters;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;

pub use config::TelemetryConfig;
pub use metrics::Metrics;
