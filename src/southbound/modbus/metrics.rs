//! Counters of one Modbus adapter. Plain atomics so this module needs no metrics crate; a
//! snapshot is copied into the Prometheus registry before each scrape: transactions,
//! timeouts, exceptions and reconnects have their own `citygate_modbus_*_total{adapter}`
//! series, every other counter is a `kind` of `citygate_adapter_errors_total{adapter,kind}`.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ModbusCounters {
    /// Requests sent (each read, including retries of split reads).
    pub transactions: AtomicU64,
    /// Requests that got no answer within the device timeout.
    pub timeouts: AtomicU64,
    /// Exception responses (device refused the request).
    pub exceptions: AtomicU64,
    /// RTU answers whose CRC did not match their content.
    pub crc_errors: AtomicU64,
    /// Bytes that never formed an answer (truncated frame, noise).
    pub bad_frames: AtomicU64,
    /// Connections closed by the device (end of file).
    pub connections_closed: AtomicU64,
    /// Other I/O failures of the connection: reset, broken pipe, serial port gone.
    pub transport_errors: AtomicU64,
    /// Answers that did not belong to the request (other unit, function or length).
    pub protocol_errors: AtomicU64,
    /// Answers that arrived after their request had timed out, and were discarded.
    pub late_responses: AtomicU64,
    /// Successful connects after the first one.
    pub reconnects: AtomicU64,
    /// Failed connect attempts (serial port missing, TCP refused or timed out).
    pub connect_failures: AtomicU64,
    /// Read groups put on hold after a failure (the rest of the device kept being read).
    pub group_backoffs: AtomicU64,
    /// Cycles after which a whole device was put on hold (no answer to any read).
    pub device_backoffs: AtomicU64,
    /// Records handed to the buffer (one per device poll cycle).
    pub records: AtomicU64,
    /// Point readings reported with a bad quality flag instead of a value.
    pub bad_points: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
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
}

impl ModbusCounters {
    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            transactions: get(&self.transactions),
            timeouts: get(&self.timeouts),
            exceptions: get(&self.exceptions),
            crc_errors: get(&self.crc_errors),
            bad_frames: get(&self.bad_frames),
            connections_closed: get(&self.connections_closed),
            transport_errors: get(&self.transport_errors),
            protocol_errors: get(&self.protocol_errors),
            late_responses: get(&self.late_responses),
            reconnects: get(&self.reconnects),
            connect_failures: get(&self.connect_failures),
            group_backoffs: get(&self.group_backoffs),
            device_backoffs: get(&self.device_backoffs),
            records: get(&self.records),
            bad_points: get(&self.bad_points),
        }
    }
}

impl crate::telemetry::counters::CounterSnapshot for ModbusCounters {
    /// Names after the first four are the `kind` label of `citygate_adapter_errors_total`;
    /// the error kinds match [`super::error::TxError::kind`].
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let s = ModbusCounters::snapshot(self);
        vec![
            ("transactions", s.transactions),
            ("timeouts", s.timeouts),
            ("exceptions", s.exceptions),
            ("reconnects", s.reconnects),
            ("crc_error", s.crc_errors),
            ("bad_frame", s.bad_frames),
            ("connection_closed", s.connections_closed),
            ("transport_error", s.transport_errors),
            ("protocol_error", s.protocol_errors),
            ("late_response", s.late_responses),
            ("connect_failure", s.connect_failures),
            ("group_backoff", s.group_backoffs),
            ("device_backoff", s.device_backoffs),
            ("bad_point", s.bad_points),
        ]
    }
}
