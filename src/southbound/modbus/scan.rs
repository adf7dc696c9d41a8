//! The field tool behind `citygate scan modbus`: which unit ids answer on a bus. The
//! technician commissioning a cabinet finds the meters whose address nobody wrote down.
//!
//! Each unit id in the range gets one small read, one after the other (a serial bus carries one
//! transaction at a time, and a TCP gateway in front of one often does too). A unit answers if
//! it sends registers or an exception (an exception proves a device is there, it just does not
//! have that register); silence until the timeout means nobody is there. A garbled answer (bad
//! CRC, broken frame) on a serial line is reported separately: something is there, but baud
//! rate or parity are probably wrong.
use super::bus::Bus;
use super::error::TxError;
use super::plan::ReadRequest;
use super::probe::{ProbeError, Target};
use crate::telemetry::ModbusMetrics;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// What one unit id did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answered the read with data.
    Data,
    /// Answered with an exception (named): a device is there.
    Exception(String),
    /// Bytes came back that did not form a valid answer.
    Garbled(String),
}

/// How often a scan waits for the bus to reconnect before it gives the bus up.
const RECONNECT_WAITS: u32 = 3;

/// One unit id that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub unit: u8,
    pub reply: Reply,
}

/// Reads `read` from every unit in `units`, waiting `timeout` for each. Fails only when the
/// bus itself cannot be reached (connection refused, serial port missing).
pub async fn scan(
    target: &Target,
    units: RangeInclusive<u8>,
    read: &ReadRequest,
    timeout: Duration,
) -> Result<Vec<Found>, ProbeError> {
    scan_until(target, units, read, timeout, |_| false).await
}

/// Like [`scan`], but stops after the first reply for which `stop` is true.
pub async fn scan_until(
    target: &Target,
    units: RangeInclusive<u8>,
    read: &ReadRequest,
    timeout: Duration,
    stop: impl Fn(&Reply) -> bool,
) -> Result<Vec<Found>, ProbeError> {
    let mut bus = Bus::new(
        Arc::clone(&target.connector),
        target.framing,
        target.gap,
        Arc::new(ModbusMetrics::detached()),
    );
    let mut found = Vec::new();
    for unit in units {
        let mut waits = 0;
        let reply = loop {
            match bus.read(unit, read, timeout).await {
                Ok(_) => break Some(Reply::Data),
                Err(TxError::Exception(code)) => {
                    break Some(Reply::Exception(TxError::Exception(code).to_string()))
                }
                Err(e @ (TxError::Crc { .. } | TxError::BadFrame(_) | TxError::Protocol(_))) => {
                    break Some(Reply::Garbled(e.to_string()))
                }
                // Nobody there; or a TCP device closed the connection for an unknown unit
                // (the next unit reconnects).
                Err(TxError::Timeout | TxError::Closed | TxError::Transport(_)) => break None,
                // After such a close the bus spaces its reconnects: wait with it and ask this
                // unit again. A bus that cannot be reached at all is an error.
                Err(TxError::NotConnected(_))
                    if bus.ever_connected() && waits < RECONNECT_WAITS =>
                {
                    waits += 1;
                    tokio::time::sleep(bus.reconnect_wait()).await;
                }
                Err(e @ TxError::NotConnected(_)) => return Err(ProbeError::Transaction(e)),
            }
        };
        let Some(reply) = reply else {
            continue;
        };
        let done = stop(&reply);
        found.push(Found { unit, reply });
        if done {
            break;
        }
    }
    Ok(found)
}

/// Parses `FIRST-LAST` or a single unit id (1..=247; 0 is broadcast and never answers).
pub fn parse_units(spec: &str) -> Result<RangeInclusive<u8>, String> {
    let unit = |s: &str| {
        s.trim()
            .parse::<u8>()
            .ok()
            .filter(|u| (1..=247).contains(u))
            .ok_or_else(|| format!("{s:?} is not a unit id 1..247"))
    };
    let (first, last) = match spec.split_once('-') {
        Some((a, b)) => (unit(a)?, unit(b)?),
        None => (unit(spec)?, unit(spec)?),
    };
    if first > last {
        return Err(format!("{spec:?}: the first unit is after the last"));
    }
    Ok(first..=last)
}

/// The report: one line per unit that answered, and a summary.
pub fn render(target: &Target, units: &RangeInclusive<u8>, found: &[Found]) -> String {
    let mut out = format!(
        "{}: units {}..={}\n",
        target.connector.describe(),
        units.start(),
        units.end()
    );
    for f in found {
        let what = match &f.reply {
            Reply::Data => "answers".to_string(),
            Reply::Exception(e) => format!("answers with {e} (a device is there)"),
            Reply::Garbled(e) => {
                format!("garbled answer: {e} (wrong baud rate or parity? two devices with one id?)")
            }
        };
        out.push_str(&format!("unit {:>3}  {what}\n", f.unit));
    }
    let answering: Vec<String> = found
        .iter()
        .filter(|f| !matches!(f.reply, Reply::Garbled(_)))
        .map(|f| f.unit.to_string())
        .collect();
    if answering.is_empty() {
        out.push_str("no unit answered\n");
    } else {
        out.push_str(&format!("answering units: {}\n", answering.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ranges() {
        assert_eq!(parse_units("1-247").unwrap(), 1..=247);
        assert_eq!(parse_units("5").unwrap(), 5..=5);
        assert!(parse_units("0-3").unwrap_err().contains("not a unit id"));
        assert!(parse_units("9-3").unwrap_err().contains("after the last"));
        assert!(parse_units("1-300").is_err());
    }
}
