//! Logs, metrics, health endpoints.

pub mod config;
pub mod device_series;
pub mod handles;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod untrusted;

pub use config::TelemetryConfig;
pub use handles::{
    BleMetrics, BufferMetrics, CommandMetrics, LorawanMetrics, ModbusMetrics, ReplayMetrics,
    SyncMetrics,
};
pub use metrics::Metrics;
