//! Logs (and, later, metrics and health endpoints).

pub mod logging;
