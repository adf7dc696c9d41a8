//! Logs, metrics, health endpoints.

pub mod config;
pub mod counters;
pub mod device_series;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod untrusted;

pub use config::TelemetryConfig;
pub use metrics::Metrics;
