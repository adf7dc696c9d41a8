//! Apple iBeacon: manufacturer data of company 0x004C, `02 15 | UUID(16) | major(2 BE) |
//! minor(2 BE) | measured power (i8, dBm at 1 m)`.

use crate::record::{Value, Values};

/// Why Apple manufacturer data is not an iBeacon frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbeaconError {
    #[error("Apple manufacturer data type {0:#04x} is not an iBeacon (0x02)")]
    NotIbeacon(u8),
    #[error("iBeacon frame needs 23 bytes after the company id (02 15 …), got {0}")]
    WrongLength(usize),
}

/// One iBeacon frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbeaconData {
    pub uuid: [u8; 16],
    pub major: u16,
    pub minor: u16,
    /// Calibrated RSSI at 1 m, for distance estimates.
    pub measured_power_dbm: i8,
}

/// Decodes the manufacturer data after the company id (`02 15 …`).
pub fn decode(data: &[u8]) -> Result<IbeaconData, IbeaconError> {
    match data.first() {
        Some(0x02) => {}
        Some(&t) => return Err(IbeaconError::NotIbeacon(t)),
        None => return Err(IbeaconError::WrongLength(0)),
    }
    if data.len() != 23 || data[1] != 0x15 {
        return Err(IbeaconError::WrongLength(data.len()));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&data[2..18]);
    Ok(IbeaconData {
        uuid,
        major: u16::from_be_bytes([data[18], data[19]]),
        minor: u16::from_be_bytes([data[20], data[21]]),
        measured_power_dbm: data[22] as i8,
    })
}

impl IbeaconData {
    /// The proximity UUID as printed (`e2c56db5-dffb-48d2-b060-d0f5a71096e0`).
    pub fn uuid_string(&self) -> String {
        let h = hex::encode(self.uuid);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Points: uuid, major, minor, measured_power (dBm).
    pub fn to_values(&self) -> Values {
        let mut v = Values::new();
        v.insert("uuid".into(), Value::Str(self.uuid_string()));
        v.insert("major".into(), Value::I64(self.major as i64));
        v.insert("minor".into(), Value::I64(self.minor as i64));
        v.insert(
            "measured_power".into(),
            Value::I64(self.measured_power_dbm as i64),
        );
        v
    }
}
