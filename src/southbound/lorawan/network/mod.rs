//! The edge network server for LoRaWAN 1.0.x: PHYPayload frames and their crypto, frame
//! counters, OTAA joins, device sessions, regional parameters, and the server that ties them
//! together (MIC and FCnt checks, dedupe, decryption, join-accepts, ACK downlinks). Pure code:
//! no sockets and no tasks, so it is unit-tested against the shared vectors.

pub mod adr;
pub mod crypto;
pub mod downlink;
pub mod fcnt;
pub mod frame;
mod frame_error;
pub mod join;
pub mod mac;
pub mod mac_setup;
pub mod mac_state;
pub mod region;
pub mod server;
pub mod session;
