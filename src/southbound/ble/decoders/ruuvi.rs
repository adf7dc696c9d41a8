//! Ruuvi Data Format 5 (RAWv2), manufacturer data of company 0x0499
//! (`ruuvi/docs: communication/bluetooth-advertisements/data-format-5-rawv2.md`).
//!
//! 24 bytes, big endian. Every field has a "not available" sentinel; those become `None`
//! (and absent points), as the format document says — unlike ruuvitag-sensor, which reports
//! the raw sentinel for movement, sequence and MAC.

use super::addr::Mac;
use crate::record::{Value, Values};

/// Why manufacturer data of company 0x0499 could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuuviError {
    #[error("Ruuvi manufacturer data is empty")]
    Empty,
    #[error("Ruuvi data format {0:#04x} is not supported (5, RAWv2, and 6, Ruuvi Air, are)")]
    UnsupportedFormat(u8),
    #[error("Ruuvi format 5 needs 24 bytes, got {0}")]
    WrongLength(usize),
    #[error("Ruuvi format 6 needs 20 bytes, got {0}")]
    Format6Length(usize),
}

/// One decoded Ruuvi format-5 advertisement; `None` = the sensor reported "not available".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuuviData {
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub pressure_pa: Option<u32>,
    pub acc_x_mg: Option<i16>,
    pub acc_y_mg: Option<i16>,
    pub acc_z_mg: Option<i16>,
    pub battery_mv: Option<u16>,
    pub tx_power_dbm: Option<i8>,
    pub movement_counter: Option<u8>,
    /// Same for every repeat of one measurement: used for dedupe.
    pub measurement_sequence: Option<u16>,
    pub mac: Option<Mac>,
}

/// Decodes the manufacturer data after the company id (`05 …`, 24 bytes).
pub fn decode(data: &[u8]) -> Result<RuuviData, RuuviError> {
    let format = *data.first().ok_or(RuuviError::Empty)?;
    if format != 5 {
        return Err(RuuviError::UnsupportedFormat(format));
    }
    let d: &[u8; 24] = data
        .try_into()
        .map_err(|_| RuuviError::WrongLength(data.len()))?;
    let u16_at = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let i16_at = |i: usize| i16::from_be_bytes([d[i], d[i + 1]]);
    let signed = |i: usize| Some(i16_at(i)).filter(|&v| v != i16::MIN);
    let unsigned = |i: usize| Some(u16_at(i)).filter(|&v| v != u16::MAX);
    let power = u16_at(13);
    let battery = power >> 5;
    let tx = power & 0x1f;
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&d[18..24]);
    Ok(RuuviData {
        temperature_c: signed(1).map(|t| t as f64 / 200.0),
        humidity_pct: unsigned(3).map(|h| h as f64 / 400.0),
        pressure_pa: unsigned(5).map(|p| p as u32 + 50_000),
        acc_x_mg: signed(7),
        acc_y_mg: signed(9),
        acc_z_mg: signed(11),
        battery_mv: (battery != 2047).then_some(battery + 1600),
        tx_power_dbm: (tx != 31).then_some(-40 + 2 * tx as i8),
        movement_counter: Some(d[15]).filter(|&m| m != 255),
        measurement_sequence: unsigned(16),
        mac: Some(Mac(mac)).filter(|m| m.0 != [0xff; 6]),
    })
}

impl RuuviData {
    /// Points: temperature (°C), humidity (%), pressure (Pa), acceleration_x/y/z (mG),
    /// battery_voltage (mV), tx_power (dBm), movement_counter. Absent values are left out.
    /// The MAC and measurement sequence are identity/dedupe data and go to `meta`.
    pub fn to_values(&self) -> (Values, Values) {
        let mut v = Values::new();
        let mut put = |k: &str, x: Option<Value>| {
            if let Some(x) = x {
                v.insert(k.to_owned(), x);
            }
        };
        put("temperature", self.temperature_c.map(Value::F64));
        put("humidity", self.humidity_pct.map(Value::F64));
        put("pressure", self.pressure_pa.map(|p| Value::I64(p as i64)));
        put(
            "acceleration_x",
            self.acc_x_mg.map(|a| Value::I64(a as i64)),
        );
        put(
            "acceleration_y",
            self.acc_y_mg.map(|a| Value::I64(a as i64)),
        );
        put(
            "acceleration_z",
            self.acc_z_mg.map(|a| Value::I64(a as i64)),
        );
        put(
            "battery_voltage",
            self.battery_mv.map(|b| Value::I64(b as i64)),
        );
        put("tx_power", self.tx_power_dbm.map(|t| Value::I64(t as i64)));
        put(
            "movement_counter",
            self.movement_counter.map(|m| Value::I64(m as i64)),
        );
        let mut meta = Values::new();
        if let Some(s) = self.measurement_sequence {
            meta.insert("measurement_sequence".into(), Value::I64(s as i64));
        }
        if let Some(m) = self.mac {
            meta.insert("mac".into(), Value::Str(m.to_string()));
        }
        (v, meta)
    }
}
