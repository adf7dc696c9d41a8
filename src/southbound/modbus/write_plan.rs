//! A command checked against a device's writable points and turned into write transactions,
//! without I/O: the `check` of the device's command target and the first step of executing it.
//!
//! Every point the command names must exist, be writable ([`WriteRule::check`] with the
//! point's [`ValueKind`]) and take the value on the wire after inverse scale and offset
//! ([`super::encode`]). One failing point rejects the whole command: nothing is written.
//!
//! Points are written in the command's order. Neighbours in that order that are adjacent in
//! the same table (the next point starts where the previous ends) share one transaction (FC 15
//! for coils, FC 16 for registers), up to the Modbus limits of one write; every other point is
//! its own transaction (FC 05 for one coil, FC 06 for one register, FC 16 for a 32/64-bit
//! value).
use super::config::{DeviceConfig, Table};
use super::decode::PointType;
use super::encode::{encode_value, WriteData, WriteRequest};
use super::profile::Point;
use super::writable::{unwritable_reason, write_rules};
use crate::commands::{Action, Command, Safety, ValueKind, WriteRule};
use crate::telemetry::untrusted::snippet;
use std::time::Duration;

/// Most registers one FC 16 request may carry.
pub const MAX_WRITE_REGISTERS: usize = 123;
/// Most coils one FC 15 request may carry.
pub const MAX_WRITE_COILS: usize = 1968;

/// What the gateway knows about writing one device.
#[derive(Debug, Clone)]
pub struct DeviceWrites {
    pub device: String,
    pub unit: u8,
    /// Per request, as for polling.
    pub timeout: Duration,
    /// Every point of the device (the resolved list the poller reads).
    pub points: Vec<Point>,
    /// The write rule of each point, same order.
    pub rules: Vec<WriteRule>,
}

/// One write transaction and the points (indices into [`DeviceWrites::points`]) it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWrite {
    pub request: WriteRequest,
    pub points: Vec<usize>,
    /// Every point it covers is idempotent: repeating it is harmless.
    pub idempotent: bool,
}

/// What a command does to the device.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub safety: Safety,
    pub writes: Vec<PlannedWrite>,
}

impl DeviceWrites {
    /// `points` as [`super::profile::resolve_device`] gives them for `device`.
    pub fn new(device: &DeviceConfig, points: Vec<Point>) -> Self {
        let mut rules = write_rules(device);
        rules.resize(points.len(), WriteRule::default());
        DeviceWrites {
            device: device.id.clone(),
            unit: device.unit,
            timeout: device.timeout,
            points,
            rules,
        }
    }

    /// Whether any point may be written.
    pub fn any_writable(&self) -> bool {
        self.rules.iter().any(|r| r.writable)
    }

    /// Checks `command`; `Err` is the `rejected` reason.
    pub fn check(&self, command: &Command) -> Result<WritePlan, String> {
        let values = match &command.action {
            Action::Set(values) => values,
            Action::Downlink(_) => {
                return Err(format!(
                "device {:?} is a Modbus device: it takes \"set\" commands, not LoRaWAN downlinks",
                self.device
            ))
            }
        };
        if values.is_empty() {
            return Err("the command sets no point".into());
        }
        let mut encoded: Vec<(usize, WriteData)> = Vec::with_capacity(values.len());
        for (name, value) in values {
            let Some(i) = self.points.iter().position(|p| &p.name == name) else {
                return Err(format!(
                    "device {:?} has no point {:?}",
                    self.device,
                    snippet(name.as_bytes())
                ));
            };
            let p = &self.points[i];
            if let Some(why) = unwritable_reason(p.table, p.kind) {
                return Err(format!("point {name:?} cannot be written: {why}"));
            }
            let kind = if p.kind == PointType::Bool {
                ValueKind::Bool
            } else {
                ValueKind::Number
            };
            self.rules[i].check(name, kind, value)?;
            let data = encode_value(p.table, p.kind, p.order, p.scaling, value)
                .map_err(|e| format!("point {name:?}: {e}"))?;
            encoded.push((i, data));
        }
        let safety = if encoded.iter().all(|(i, _)| self.rules[*i].idempotent) {
            Safety::Idempotent
        } else {
            Safety::Once
        };
        Ok(WritePlan {
            safety,
            writes: self.merge(encoded),
        })
    }

    /// Groups neighbours (in command order) that are adjacent on the device.
    fn merge(&self, encoded: Vec<(usize, WriteData)>) -> Vec<PlannedWrite> {
        let mut out: Vec<PlannedWrite> = Vec::new();
        for (i, data) in encoded {
            let p = &self.points[i];
            let idempotent = self.rules[i].idempotent;
            if let Some(last) = out.last_mut() {
                let end = u32::from(last.request.address) + last.request.data.len() as u32;
                let limit = if p.table.is_bits() {
                    MAX_WRITE_COILS
                } else {
                    MAX_WRITE_REGISTERS
                };
                let fits = last.request.table == p.table
                    && end == u32::from(p.address)
                    && last.request.data.len() + data.len() <= limit;
                let merged = match (&mut last.request.data, &data) {
                    (WriteData::Coils(a), WriteData::Coils(b)) if fits => {
                        a.extend_from_slice(b);
                        true
                    }
                    (WriteData::Registers(a), WriteData::Registers(b)) if fits => {
                        a.extend_from_slice(b);
                        true
                    }
                    _ => false,
                };
                if merged {
                    last.points.push(i);
                    last.idempotent &= idempotent;
                    continue;
                }
            }
            out.push(PlannedWrite {
                request: WriteRequest {
                    table: p.table,
                    address: p.address,
                    data,
                },
                points: vec![i],
                idempotent,
            });
        }
        out
    }
}

/// The table a write goes to, for messages.
pub fn table_name(table: Table) -> &'static str {
    match table {
        Table::Coil => "coil",
        Table::Holding => "holding register",
        Table::Input => "input register",
        Table::Discrete => "discrete input",
    }
}

#[cfg(test)]
#[path = "write_plan_tests.rs"]
mod tests;
