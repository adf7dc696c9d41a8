//! citygate: an edge gateway daemon for street-cabinet gateways.
//!
//! Field devices (Modbus, BLE, LoRaWAN) → records → a durable SQLite buffer → a oneM2M CSE.
//!
//! # Layout
//! - [`record`] — the unit every adapter emits and the buffer stores;
//! - [`config`] — the TOML file, loading with FILE:LINE:COL errors, checks;
//! - [`management`] — the gateway and its devices as oneM2M `<node>`s with mgmtObjs;
//! - [`northbound`] — oneM2M AE: registration, resource tree, syncer, HTTP and MQTT bindings;
//! - [`buffer`] — SQLite store with group commit, bounds and drop accounting;
//! - [`commands`] — commands from the platform to field devices: parsing, allow-list, results;
//! - [`southbound`] — adapters (closed enum of configs, `Adapter` trait);
//! - [`runtime`] — running the pipeline: shutdown, supervision, reload, systemd;
//! - [`backoff`] — the one retry delay (exponential, full jitter, capped);
//! - [`telemetry`] — metrics, health endpoints, logging;
//! - [`cli`] — the `citygate` command (the only place, with `main.rs`, that uses `anyhow`).

pub mod backoff;
pub mod buffer;
pub mod cli;
pub mod commands;
pub mod config;
pub mod management;
pub mod northbound;
pub mod record;
pub mod runtime;
pub mod southbound;
pub mod telemetry;
