//! Running the pipeline: shutdown signals, adapter supervision, backoff.

pub mod backoff;
pub mod northbound;
pub mod reload;
pub mod shutdown;
pub mod supervisor;
pub mod systemd;
