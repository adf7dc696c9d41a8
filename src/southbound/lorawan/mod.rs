//! LoRaWAN southbound: a Semtech UDP (GWMP v2) server with an edge join/network server for
//! LoRaWAN 1.0.x devices, and an MQTT client for ChirpStack / TTS integrations.
//!
//! Pure layers (frames, crypto, counters, joins, GWMP codec, region parameters, payload codecs)
//! are separate from the tokio runtime so they can be unit-tested with the shared vectors.

pub mod codec;
pub mod config;
pub mod crypto;
pub mod decode;
mod environment;
pub mod fcnt;
pub mod frame;
pub mod gateway_table;
pub mod gwmp;
pub mod join;
pub mod lns_mqtt;
pub mod lns_uplink;
pub mod metrics;
pub mod network;
pub mod region;
pub mod server;
pub mod session;

pub use config::{LnsMqttConfig, LorawanUdpConfig};
pub use decode::{decode_cli, DecodeKeys};
pub use lns_mqtt::LnsMqttAdapter;
pub use metrics::LorawanCounters;
pub use server::LorawanUdpAdapter;
