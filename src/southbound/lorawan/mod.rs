//! LoRaWAN southbound, two adapter types:
//! - `lorawan_udp` ([`udp_adapter`]): a Semtech UDP (GWMP v2) server with an edge join/network
//!   server for LoRaWAN 1.0.x devices;
//! - `lorawan_lns_mqtt` ([`lns_adapter`]): an MQTT client for ChirpStack / TTS integrations.
//!
//! Layout: [`transport`] (wire formats: GWMP, LNS JSON), [`network`] (frames, crypto,
//! counters, joins, sessions, regions, the network server), [`codec`] (payload codecs); the
//! config of both types and `citygate decode lorawan` sit at the top (counters:
//! [`crate::telemetry::LorawanMetrics`]). Everything
//! but the two adapters is pure code, unit-tested with the shared vectors.

pub mod codec;
pub mod config;
pub mod decode;
pub mod downlink_config;
mod environment;
pub mod lns_adapter;
pub mod lns_config;
pub mod lns_downlink;
pub mod mac_setup_config;
pub mod network;
pub mod transport;
pub mod udp_adapter;

pub use config::LorawanUdpConfig;
pub use decode::{decode_cli, DecodeKeys};
pub use lns_adapter::LnsMqttAdapter;
pub use lns_config::LnsMqttConfig;
pub use udp_adapter::LorawanUdpAdapter;
