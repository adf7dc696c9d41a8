//! The battery state a record reports, in the terms of oneM2M's battery mgmtObj (level in
//! percent, `m2m:batteryStatus`).
//!
//! The mapping from value names, in one place (see docs/management.md):
//! - `battery` or `battery_level`: a level in percent, 0..=100 (BTHome object 0x01; a LoRaWAN
//!   codec field named so). When the record says the value has another unit (`unit.battery` in
//!   its meta, e.g. a codec that reports volts), it is not a level and is ignored.
//! - `battery_charging` true (BTHome 0x16) → charging; `battery_low` true (BTHome 0x15) or a
//!   level of 10 % or less → low battery; otherwise normal.
//! - `battery_voltage` (Ruuvi, Eddystone TLM, in mV) gives no level: a voltage says nothing
//!   about the charge left without the cell's discharge curve, so those devices get no
//!   battery mgmtObj rather than a made-up percentage.
use crate::record::{Record, Value};

/// Level at or below which a battery is reported as low.
pub const LOW_PERCENT: u8 = 10;

/// `m2m:batteryStatus` (TS-0004 enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatteryStatus {
    Normal = 1,
    Charging = 2,
    LowBattery = 5,
}

/// A battery level and status reported by a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Battery {
    pub percent: u8,
    pub status: BatteryStatus,
}

impl Battery {
    /// The battery state in a record, if it reports a level (see the module docs).
    pub fn of(record: &Record) -> Option<Battery> {
        let percent = ["battery", "battery_level"].iter().find_map(|name| {
            let unit = record.meta.get(&format!("unit.{name}"));
            if matches!(unit, Some(Value::Str(u)) if u != "%") {
                return None;
            }
            percent_of(record.values.get(*name)?)
        })?;
        let flag = |name: &str| matches!(record.values.get(name), Some(Value::Bool(true)));
        let status = if flag("battery_charging") {
            BatteryStatus::Charging
        } else if flag("battery_low") || percent <= LOW_PERCENT {
            BatteryStatus::LowBattery
        } else {
            BatteryStatus::Normal
        };
        Some(Battery { percent, status })
    }
}

/// A number in 0..=100, rounded; anything else is not a level.
fn percent_of(v: &Value) -> Option<u8> {
    let f = match v {
        Value::I64(i) => *i as f64,
        Value::F64(f) => *f,
        _ => return None,
    };
    (f.is_finite() && (0.0..=100.0).contains(&f)).then(|| f.round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_statuses() {
        let r = Record::now("ble", "tag").with("battery", 87i64);
        assert_eq!(
            Battery::of(&r),
            Some(Battery {
                percent: 87,
                status: BatteryStatus::Normal
            })
        );
        let r = Record::now("ble", "tag")
            .with("battery", 55.6)
            .with("battery_charging", true);
        assert_eq!(
            Battery::of(&r).map(|b| (b.percent, b.status)),
            Some((56, BatteryStatus::Charging))
        );
        let r = Record::now("ble", "tag").with("battery", 9i64);
        assert_eq!(
            Battery::of(&r).map(|b| b.status),
            Some(BatteryStatus::LowBattery)
        );
        let r = Record::now("ble", "tag")
            .with("battery_level", 50i64)
            .with("battery_low", true);
        assert_eq!(
            Battery::of(&r).map(|b| b.status),
            Some(BatteryStatus::LowBattery)
        );
    }

    #[test]
    fn voltages_and_other_units_are_not_levels() {
        assert_eq!(
            Battery::of(&Record::now("ble", "ruuvi").with("battery_voltage", 2950i64)),
            None
        );
        let mut r = Record::now("lora", "node").with("battery", 3.3);
        r.meta.insert("unit.battery".into(), Value::Str("V".into()));
        assert_eq!(Battery::of(&r), None);
        assert_eq!(
            Battery::of(&Record::now("x", "y").with("battery", 250i64)),
            None
        );
        assert_eq!(
            Battery::of(&Record::now("x", "y").with("battery", "full")),
            None
        );
    }
}
