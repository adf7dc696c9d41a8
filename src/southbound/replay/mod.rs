//! `type = "replay"`: re-injects captured readings from a JSON-lines file.
//!
//! Technicians use it to replay a capture into the platform (after an outage of the platform's
//! own storage, or to test a dashboard), one record a line:
//! `{"device": "d1", "ts": "2026-11-23T10:00:00Z", "values": {"temperature": 21.5, "door": true}}`
//! (`ts` optional: now; `meta` optional).
//!
//! Captures come from other systems and may be damaged: lines are read in bounded chunks
//! ([`LineReader`]), and a line that is too long, not UTF-8, not a record, or zero bytes left
//! by a power cut is counted ([`crate::telemetry::ReplayMetrics`]) and skipped, never fatal.

mod adapter;
mod config;
mod line;
mod reader;
mod skipped;

pub use adapter::ReplayAdapter;
pub use config::{ReplayConfig, DEFAULT_MAX_LINE_BYTES};
pub use line::{parse_line, parse_line_bytes, LineError};
pub use reader::{Content, LineReader, RawLine};
