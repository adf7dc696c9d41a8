//! BLE southbound adapter: decodes BTHome v2, Ruuvi RAWv2, iBeacon and Eddystone
//! advertisements heard through BlueZ and turns them into rate-limited records.
//!
//! Layers, each usable on its own: `decoders` (pure, bytes → values), `rate` (per-device
//! dedupe, report-on-change and heartbeat), `config` (the `[southbound.<id>]` table),
//! `pipeline` (advertisement → record, no I/O), `cli` (the `citygate decode ble` field tool),
//! `scan_tool` (`citygate scan ble`: live advertisements with RSSI),
//! `sources` + `adapter` (BlueZ over D-Bus with `bluer`; implements `Adapter`). Counters:
//! [`crate::telemetry::BleMetrics`].

pub mod adapter;
pub mod cli;
pub mod config;
pub mod decoders;
pub mod pipeline;
pub mod rate;
pub mod scan_tool;
pub mod sources;

pub use adapter::BleAdapter;
pub use cli::decode_cli;
pub use config::BleConfig;
pub use decoders::Format;
