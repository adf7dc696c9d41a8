//! Modbus southbound adapter: TCP, RTU (serial) and RTU framing over TCP.
//!
//! Layers, each usable on its own:
//! - [`decode`]: registers → values (word order, scaling); pure.
//! - [`config`], [`profile`], [`validate`]: the TOML shape, device profiles, pure checks.
//! - [`device_limits`]: read limits per device and their source (config, profile, default).
//! - [`plan`]: fewest reads per device; split-and-learn on exception 02.
//! - [`timing`]: bus time estimates and the `citygate plan` report ([`timing::explain`]).
//! - [`error`]: what went wrong with a transaction, named ([`error::TxError`]).
//! - [`link`]: the watched byte stream under tokio-modbus (late answers, CRC, end of file).
//! - [`bus`]: one connection, serialized transactions, timeouts, reconnects.
//! - [`groups`]: backoff of one failing read group.
//! - [`poller`]: per-device schedules, backoff, one record per device per cycle.
//! - [`report_config`]: a device's `report` table (report by exception, off by default), and
//!   [`report_policy`]: that table checked against the device's points and resolved per point;
//!   the filter itself is [`crate::southbound::report_filter`], shared with BLE.
//! - [`adapter`]: [`ModbusAdapter`], the `Adapter` the supervisor runs.
//! - [`probe`]: the field tool behind `citygate probe`; [`write_tool`]: `citygate write`.
//! - commands (writes): [`writable`] (which points, config checks), [`encode`] (value →
//!   registers), [`write_plan`] (a command checked and turned into writes, no I/O),
//!   [`executor`] (writes, retries, read-back, outcome), [`command_queue`] (registration,
//!   commands before polls); `docs/modbus-commands.md` for technicians.
//! - counters: [`crate::telemetry::ModbusMetrics`], a handle built from the registry.
pub mod adapter;
pub mod bus;
pub mod command_queue;
pub mod config;
pub mod decode;
pub mod device_limits;
pub mod encode;
pub mod error;
pub mod executor;
pub mod groups;
pub mod link;
pub mod plan;
pub mod poller;
pub mod probe;
pub mod profile;
pub mod report_config;
pub mod report_policy;
pub mod scan;
pub mod serial_search;
pub mod timing;
pub mod validate;
pub mod writable;
pub mod writable_points;
pub mod write_plan;
pub mod write_tool;

pub use adapter::ModbusAdapter;
pub use config::{ModbusConfig, ModbusRtuConfig, ModbusRtuOverTcpConfig, ModbusTcpConfig};
