//! Eddystone (google/eddystone): service data under UUID 0xFEAA. Decodes the UID frame
//! (0x00) and the plain TLM frame (0x20, version 0); other frames are reported as
//! unsupported (encrypted TLM needs the EID identity key, out of scope).
//!
//! Frames are checked as strictly as the spec lays them out: a UID frame is 20 bytes with
//! two RFU bytes that must be 0x00 (18 bytes, RFU left out, is accepted as beacons in the
//! field send it), a plain TLM frame is exactly 14 bytes. Anything else is an error, so a
//! mislabelled or cut frame is reported instead of being read as plausible numbers. Whether
//! an advertisement is Eddystone at all is decided by the caller
//! (`decoders::detect`: the 0xFEAA service UUID must be listed).

use crate::record::{Value, Values};

/// Why Eddystone service data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EddystoneError {
    #[error("Eddystone service data is empty")]
    Empty,
    #[error("Eddystone frame type {0:#04x} is not supported (UID 0x00 and TLM 0x20 are)")]
    UnsupportedFrame(u8),
    #[error("Eddystone-TLM version {0} is not supported (plain TLM is version 0)")]
    UnsupportedTlmVersion(u8),
    #[error("Eddystone {frame} frame needs {need} bytes, got {len}")]
    TooShort {
        frame: &'static str,
        need: usize,
        len: usize,
    },
    #[error("Eddystone {frame} frame must be {expected} bytes, got {len}: not a well-formed {frame} frame")]
    WrongLength {
        frame: &'static str,
        expected: &'static str,
        len: usize,
    },
    #[error("Eddystone UID frame: RFU bytes must be 00 00, got {0:02x} {1:02x}")]
    UidRfu(u8, u8),
}

/// A plain telemetry frame, fields as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlm {
    /// Battery voltage in mV; 0 = not supported by the beacon.
    pub vbatt_mv: u16,
    /// Beacon temperature, signed 8.8 fixed point; 0x8000 (−128 °C) = not supported.
    pub temp_raw: i16,
    /// Advertising PDUs sent since power-up.
    pub adv_cnt: u32,
    /// Time since power-up in 0.1 s.
    pub sec_cnt: u32,
}

/// A decoded Eddystone frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EddystoneData {
    Uid {
        /// Calibrated TX power at 0 m.
        tx_power_dbm: i8,
        namespace: [u8; 10],
        instance: [u8; 6],
    },
    Tlm(Tlm),
}

/// Decodes the service data after the 0xFEAA UUID.
pub fn decode(data: &[u8]) -> Result<EddystoneData, EddystoneError> {
    let frame = *data.first().ok_or(EddystoneError::Empty)?;
    match frame {
        0x00 => {
            // 18 bytes + 2 RFU bytes (0x00) that some beacons leave out.
            let d = match data.len() {
                18 => data,
                20 if data[18] == 0 && data[19] == 0 => &data[..18],
                20 => return Err(EddystoneError::UidRfu(data[18], data[19])),
                len => {
                    return Err(EddystoneError::WrongLength {
                        frame: "UID",
                        expected: "20 (or 18 without the RFU bytes)",
                        len,
                    })
                }
            };
            let mut namespace = [0u8; 10];
            namespace.copy_from_slice(&d[2..12]);
            let mut instance = [0u8; 6];
            instance.copy_from_slice(&d[12..18]);
            Ok(EddystoneData::Uid {
                tx_power_dbm: d[1] as i8,
                namespace,
                instance,
            })
        }
        0x20 => {
            let version = *data.get(1).ok_or(EddystoneError::TooShort {
                frame: "TLM",
                need: 14,
                len: data.len(),
            })?;
            if version != 0 {
                return Err(EddystoneError::UnsupportedTlmVersion(version));
            }
            if data.len() != 14 {
                return Err(EddystoneError::WrongLength {
                    frame: "TLM",
                    expected: "14",
                    len: data.len(),
                });
            }
            let d = data;
            Ok(EddystoneData::Tlm(Tlm {
                vbatt_mv: u16::from_be_bytes([d[2], d[3]]),
                temp_raw: i16::from_be_bytes([d[4], d[5]]),
                adv_cnt: u32::from_be_bytes([d[6], d[7], d[8], d[9]]),
                sec_cnt: u32::from_be_bytes([d[10], d[11], d[12], d[13]]),
            }))
        }
        other => Err(EddystoneError::UnsupportedFrame(other)),
    }
}

impl Tlm {
    /// Temperature in °C (8.8 fixed point, so −2.5 °C is 0xFD80), `None` if unsupported.
    pub fn temperature_c(&self) -> Option<f64> {
        (self.temp_raw != i16::MIN).then_some(self.temp_c_raw())
    }
    /// The temperature as sent, including the −128 °C "not supported" value.
    pub fn temp_c_raw(&self) -> f64 {
        self.temp_raw as f64 / 256.0
    }
    pub fn battery_mv(&self) -> Option<u16> {
        (self.vbatt_mv != 0).then_some(self.vbatt_mv)
    }
}

impl EddystoneData {
    /// TLM points: battery_voltage (mV), temperature (°C), adv_count, uptime (s);
    /// UID points: namespace, instance (hex), tx_power (dBm). Unsupported TLM fields are absent.
    pub fn to_values(&self) -> Values {
        let mut v = Values::new();
        match self {
            EddystoneData::Uid {
                tx_power_dbm,
                namespace,
                instance,
            } => {
                v.insert("namespace".into(), Value::Str(hex::encode(namespace)));
                v.insert("instance".into(), Value::Str(hex::encode(instance)));
                v.insert("tx_power".into(), Value::I64(*tx_power_dbm as i64));
            }
            EddystoneData::Tlm(t) => {
                if let Some(b) = t.battery_mv() {
                    v.insert("battery_voltage".into(), Value::I64(b as i64));
                }
                if let Some(c) = t.temperature_c() {
                    v.insert("temperature".into(), Value::F64(c));
                }
                v.insert("adv_count".into(), Value::I64(t.adv_cnt as i64));
                v.insert("uptime".into(), Value::F64(t.sec_cnt as f64 / 10.0));
            }
        }
        v
    }
}
