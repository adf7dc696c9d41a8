//! Counters of one Modbus adapter. Plain atomics so this module needs no metrics crate; the
//! lead wires a snapshot into the Prometheus registry (`citygate_modbus_*_total{adapter}`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ModbusCounters {
    /// Requests sent (each read, including retries of split reads).
    pub transactions: AtomicU64,
    /// Requests that got no answer within the device timeout.
    pub timeouts: AtomicU64,
    /// Exception responses (device refused the request).
    pub exceptions: AtomicU64,
    /// EOF, broken pipe, reset, or a response not matching the request.
    pub transport_errors: AtomicU64,
    /// Successful connects after the first one.
    pub reconnects: AtomicU64,
    /// Failed connect attempts (serial port missing, TCP refused or timed out).
    pub connect_failures: AtomicU64,
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
    pub transport_errors: u64,
    pub reconnects: u64,
    pub connect_failures: u64,
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
            transport_errors: get(&self.transport_errors),
            reconnects: get(&self.reconnects),
            connect_failures: get(&self.connect_failures),
            records: get(&self.records),
            bad_points: get(&self.bad_points),
        }
    }
}

impl crate::telemetry::counters::CounterSnapshot for ModbusCounters {
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let s = ModbusCounters::snapshot(self);
        vec![
            ("transactions", s.transactions),
            ("timeouts", s.timeouts),
            ("exceptions", s.exceptions),
            ("reconnects", s.reconnects),
            ("transport_error", s.transport_errors),
            ("connect_failure", s.connect_failures),
            ("bad_point", s.bad_points),
        ]
    }
}
