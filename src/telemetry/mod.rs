//! Logs, metrics, health endpoints.

pub mod config;
pub mod device_series;
pub mod handles;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod untrusted;

pub use config::TelemetryConfig;
pub use handles::{BleMetrics, LorawanMetrics, ModbusMetrics, ReplayMetrics, SyncMetrics};
pub use metrics::Metrics;
