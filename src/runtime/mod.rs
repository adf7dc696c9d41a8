//! Running the pipeline: shutdown signals, adapter supervision, reload, systemd.

pub mod northbound;
pub mod reload;
pub mod shutdown;
pub mod supervisor;
pub mod systemd;
