//! Counters of one Modbus adapter: transactions, timeouts, exceptions and reconnects have their
//! own `citygate_modbus_*_total{adapter}` series; every other counter is a `kind` of
//! `citygate_adapter_errors_total{adapter, kind}` (the error kinds match `TxError::kind`).

use super::{detached_counter, Metrics, Source};
use prometheus::IntCounter;

/// Pre-labelled handles for one Modbus adapter. Every counter only grows.
#[derive(Clone)]
pub struct ModbusMetrics {
    /// Requests sent (each read, including retries of split reads, and each write).
    pub transactions: IntCounter,
    /// Requests that got no answer within the device timeout.
    pub timeouts: IntCounter,
    /// Exception responses (device refused the request).
    pub exceptions: IntCounter,
    /// RTU answers whose CRC did not match their content.
    pub crc_errors: IntCounter,
    /// Bytes that never formed an answer (truncated frame, noise).
    pub bad_frames: IntCounter,
    /// Connections closed by the device (end of file).
    pub connections_closed: IntCounter,
    /// Other I/O failures of the connection: reset, broken pipe, serial port gone.
    pub transport_errors: IntCounter,
    /// Answers that did not belong to the request (other unit, function or length).
    pub protocol_errors: IntCounter,
    /// Answers that arrived after their request had timed out, and were discarded.
    pub late_responses: IntCounter,
    /// Successful connects after the first one.
    pub reconnects: IntCounter,
    /// Failed connect attempts (serial port missing, TCP refused or timed out).
    pub connect_failures: IntCounter,
    /// Read groups put on hold after a failure (the rest of the device kept being read).
    pub group_backoffs: IntCounter,
    /// Cycles after which a whole device was put on hold (no answer to any read).
    pub device_backoffs: IntCounter,
    /// Records handed to the buffer (one per device poll cycle). Not exported on its own:
    /// the buffer counts committed records in `citygate_adapter_records_total`.
    pub records: IntCounter,
    /// Point readings reported with a bad quality flag instead of a value.
    pub bad_points: IntCounter,
    /// Poll cycles report by exception kept from the buffer
    /// (`citygate_readings_suppressed_total{adapter}`).
    pub suppressed: IntCounter,
    /// `citygate_modbus_writes_total{adapter, result}`: write requests (FC 05/06/15/16) by
    /// result, one of [`WRITE_RESULTS`].
    pub writes: Vec<(&'static str, IntCounter)>,
}

/// The `result` label values of `citygate_modbus_writes_total`: `ok` (the device confirmed
/// the write) or the kind of failure (as `TxError::kind`).
pub const WRITE_RESULTS: [&str; 9] = [
    "ok",
    "exception",
    "timeout",
    "not_connected",
    "crc_error",
    "bad_frame",
    "connection_closed",
    "transport_error",
    "protocol_error",
];

/// The counters' values at one moment (tests and tools).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModbusSnapshot {
    pub transactions: u64,
    pub timeouts: u64,
    pub exceptions: u64,
    pub crc_errors: u64,
    pub bad_frames: u64,
    pub connections_closed: u64,
    pub transport_errors: u64,
    pub protocol_errors: u64,
    pub late_responses: u64,
    pub reconnects: u64,
    pub connect_failures: u64,
    pub group_backoffs: u64,
    pub device_backoffs: u64,
    pub records: u64,
    pub bad_points: u64,
    pub suppressed: u64,
}

impl ModbusMetrics {
    /// The handles of adapter `adapter` in the daemon's registry.
    pub fn new(metrics: &Metrics, adapter: &str) -> Self {
        Self::from_source(Source::Registry { metrics, adapter })
    }

    /// Handles that belong to no registry (tests, benches, `citygate probe modbus`).
    pub fn detached() -> Self {
        Self::from_source(Source::Detached)
    }

    fn from_source(s: Source<'_>) -> Self {
        let kind = |kind| s.counter(|m| &m.adapter_errors, kind);
        ModbusMetrics {
            transactions: s.adapter_counter(|m| &m.modbus_transactions),
            timeouts: s.adapter_counter(|m| &m.modbus_timeouts),
            exceptions: s.adapter_counter(|m| &m.modbus_exceptions),
            reconnects: s.adapter_counter(|m| &m.modbus_reconnects),
            crc_errors: kind("crc_error"),
            bad_frames: kind("bad_frame"),
            connections_closed: kind("connection_closed"),
            transport_errors: kind("transport_error"),
            protocol_errors: kind("protocol_error"),
            late_responses: kind("late_response"),
            connect_failures: kind("connect_failure"),
            group_backoffs: kind("group_backoff"),
            device_backoffs: kind("device_backoff"),
            bad_points: kind("bad_point"),
            suppressed: s.adapter_counter(|m| &m.readings_suppressed),
            records: detached_counter(),
            writes: WRITE_RESULTS
                .iter()
                .map(|r| (*r, s.counter(|m| &m.modbus_writes, r)))
                .collect(),
        }
    }

    /// Counts one write request with `result` (`ok` or a `TxError::kind`).
    pub fn count_write(&self, result: &str) {
        if let Some((_, c)) = self.writes.iter().find(|(r, _)| *r == result) {
            c.inc();
        }
    }

    /// Write requests counted with `result` so far.
    pub fn writes_with(&self, result: &str) -> u64 {
        self.writes
            .iter()
            .find(|(r, _)| *r == result)
            .map_or(0, |(_, c)| c.get())
    }

    pub fn snapshot(&self) -> ModbusSnapshot {
        ModbusSnapshot {
            transactions: self.transactions.get(),
            timeouts: self.timeouts.get(),
            exceptions: self.exceptions.get(),
            crc_errors: self.crc_errors.get(),
            bad_frames: self.bad_frames.get(),
            connections_closed: self.connections_closed.get(),
            transport_errors: self.transport_errors.get(),
            protocol_errors: self.protocol_errors.get(),
            late_responses: self.late_responses.get(),
            reconnects: self.reconnects.get(),
            connect_failures: self.connect_failures.get(),
            group_backoffs: self.group_backoffs.get(),
            device_backoffs: self.device_backoffs.get(),
            records: self.records.get(),
            bad_points: self.bad_points.get(),
            suppressed: self.suppressed.get(),
        }
    }
}
