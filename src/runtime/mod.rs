//! Running the pipeline: shutdown signals, adapter supervision, backoff.

pub mod backoff;
pub mod shutdown;
pub mod supervisor;
pub mod systemd;
