//! Northbound: delivers buffered records to a oneM2M CSE.
//!
//! - [`config`]: the `[northbound]` table and its validation;
//! - [`onem2m`]: primitives, resource bodies, the AE/container tree;
//! - [`binding`]: the transport seam ([`Binding`]), [`http`] implements TS-0009, [`mqtt`]
//!   TS-0010, [`coap`] TS-0008;
//! - [`retry`]: outcome classification and backoff; [`sync`]: the [`Syncer`] loop, which
//!   dead-letters a record only when the CSE rejects it twice (`rejection_check`);
//!   [`concurrency`]: its adaptive in-flight limit (AIMD);
//! - [`commands`]: the command side (command containers, ACPs, subscriptions, polling
//!   channel, notifications, catch-up) feeding the [`crate::commands::Dispatcher`], configured
//!   by [`commands_config`];
//! - [`state`]: health and counters for `/readyz`, STATUS and `citygate status`; [`store`]: what the syncer needs from the
//!   buffer ([`SyncStore`]).
//!
//! Wiring: `install_crypto_provider()` once, `HttpBinding::new(&cfg)` (or `MqttBinding::new`
//! inside the runtime for `binding = "mqtt"`), then
//! `Syncer::new(cfg, Arc::new(binding), buffer, SyncMetrics::new(&metrics))`, keep
//! `syncer.state()` for health and spawn `syncer.run(cancel)`. Metrics are counted by the
//! syncer itself through its [`SyncMetrics`](crate::telemetry::SyncMetrics) handle.
pub mod auth_config;
pub mod binding;
pub mod binding_error;
pub mod coap;
mod coap_endpoint;
pub mod coap_options;
pub mod coap_timing;
pub mod commands;
pub mod commands_config;
pub mod concurrency;
pub mod config;
mod environment;
pub mod http;
mod in_flight;
pub mod instance_check;
pub mod mqtt;
pub mod mqtt_config;
mod mqtt_primitive;
pub mod onem2m;
mod rejection_check;
pub mod retry;
pub mod serialization;
pub mod state;
pub mod store;
pub mod sync;
mod timed;

pub use binding::{Binding, BindingError};
pub use coap::CoapBinding;
pub use config::NorthboundConfig;
pub use http::{install_crypto_provider, HttpBinding};
pub use mqtt::MqttBinding;
pub use state::{SyncSnapshot, SyncState};
pub use store::{StoreError, SyncStore};
pub use sync::Syncer;
