//! Logs, metrics, health endpoints.

pub mod battery;
pub mod config;
pub mod device_roster;
pub mod device_series;
pub mod handles;
pub mod health;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod problem_log;
pub mod untrusted;

pub use config::TelemetryConfig;
pub use handles::CoapMetrics;
pub use handles::WireMetrics;
pub use handles::{
    BleMetrics, BufferMetrics, CommandMetrics, LorawanMetrics, ModbusMetrics, ReplayMetrics,
    SyncMetrics,
};
pub use metrics::Metrics;
