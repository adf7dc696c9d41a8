//! Running the pipeline: shutdown signals, adapter supervision, reload, systemd, the HTTP
//! endpoints.

pub mod endpoints;
pub mod memory;
pub mod northbound;
pub mod reload;
pub mod shutdown;
pub mod supervisor;
pub mod systemd;
