//! How LoRaWAN traffic reaches citygate: the Semtech UDP packet forwarder protocol (GWMP v2)
//! and the uplink JSON of network servers' MQTT integrations (ChirpStack v4, TTS v3). Wire
//! formats only; the adapters that run them are `udp_adapter.rs` and `lns_adapter.rs`.

pub mod gateway_table;
pub mod gwmp;
pub mod lns_uplink;
