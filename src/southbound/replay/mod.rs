//! `type = "replay"`: re-injects captured readings from a JSON-lines file.
//!
//! Technicians use it to replay a capture into the platform (after an outage of the platform's
//! own storage, or to test a dashboard), one record a line:
//! `{"device": "d1", "ts": "2026-11-23T10:00:00Z", "values": {"temperature": 21.5, "door": true}}`
//! (`ts` optional: now; `meta` optional).

mod adapter;
mod config;
mod line;

pub use adapter::ReplayAdapter;
pub use config::ReplayConfig;
pub use line::{parse_line, LineError};
