//! Ruuvi data format 6 (Ruuvi Air), manufacturer data of company 0x0499
//! (`ruuvi/docs: communication/bluetooth-advertisements/data-format-6.md`).
//!
//! 20 bytes, big endian: temperature, humidity, pressure, PM2.5, CO2, VOC and NOx indexes
//! (9 bits, the lowest bit in the flags byte), logarithmic luminosity, measurement sequence,
//! flags and the low 3 bytes of the MAC. Every field has a "not available" value; those points
//! are left out, as for format 5. Format E1 (the Bluetooth 5 extended variant of the same
//! data) is not decoded: it is reported as an unsupported format.

use super::ruuvi::RuuviError;
use crate::record::{Value, Values};

/// Length of a format-6 payload (including the format byte).
pub const LEN: usize = 20;

/// One decoded format-6 advertisement; `None` = "not available".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuuviAirData {
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub pressure_pa: Option<u32>,
    pub pm25_ugm3: Option<f64>,
    pub co2_ppm: Option<u16>,
    pub voc_index: Option<u16>,
    pub nox_index: Option<u16>,
    pub luminosity_lux: Option<f64>,
    /// Same for every repeat of one measurement (wraps at 256).
    pub measurement_sequence: u8,
    pub calibration_in_progress: bool,
    /// Lowest 3 bytes of the MAC, `None` when all bits are set.
    pub mac_low: Option<[u8; 3]>,
}

/// Decodes the manufacturer data after the company id (`06 …`, 20 bytes).
pub fn decode(data: &[u8]) -> Result<RuuviAirData, RuuviError> {
    let d: &[u8; LEN] = data
        .try_into()
        .map_err(|_| RuuviError::Format6Length(data.len()))?;
    if d[0] != 6 {
        return Err(RuuviError::UnsupportedFormat(d[0]));
    }
    let u16_at = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let unsigned = |i: usize| Some(u16_at(i)).filter(|&v| v != u16::MAX);
    let flags = d[16];
    let nine_bit = |hi: u8, bit: u8| {
        let v = (u16::from(hi) << 1) | u16::from((flags >> bit) & 1);
        (v != 0x1ff).then_some(v)
    };
    let temp = i16::from_be_bytes([d[1], d[2]]);
    Ok(RuuviAirData {
        temperature_c: (temp != i16::MIN).then(|| f64::from(temp) * 0.005),
        humidity_pct: unsigned(3).map(|h| f64::from(h) * 0.0025),
        pressure_pa: unsigned(5).map(|p| u32::from(p) + 50_000),
        pm25_ugm3: unsigned(7).map(|p| f64::from(p) / 10.0),
        co2_ppm: unsigned(9),
        voc_index: nine_bit(d[11], 6),
        nox_index: nine_bit(d[12], 7),
        luminosity_lux: (d[13] != 255).then(|| luminosity(d[13])),
        measurement_sequence: d[15],
        calibration_in_progress: flags & 1 != 0,
        mac_low: Some([d[17], d[18], d[19]]).filter(|m| *m != [0xff; 3]),
    })
}

/// `exp(code × ln(65536) / 254) − 1`, rounded to 0.01 lux as the format document asks.
fn luminosity(code: u8) -> f64 {
    let delta = (65_536f64).ln() / 254.0;
    let v = (f64::from(code) * delta).exp() - 1.0;
    (v * 100.0).round() / 100.0
}

impl RuuviAirData {
    /// Points: temperature (°C), humidity (%), pressure (Pa), pm25 (µg/m³), carbon_dioxide
    /// (ppm), voc_index, nox_index, illuminance (lx), calibration_in_progress; the sequence and
    /// the MAC suffix go to `meta`.
    pub fn to_values(&self) -> (Values, Values) {
        let mut v = Values::new();
        let mut put = |k: &str, x: Option<Value>| {
            if let Some(x) = x {
                v.insert(k.to_owned(), x);
            }
        };
        put("temperature", self.temperature_c.map(Value::F64));
        put("humidity", self.humidity_pct.map(Value::F64));
        put("pressure", self.pressure_pa.map(|p| Value::I64(p.into())));
        put("pm25", self.pm25_ugm3.map(Value::F64));
        put("carbon_dioxide", self.co2_ppm.map(|c| Value::I64(c.into())));
        put("voc_index", self.voc_index.map(|c| Value::I64(c.into())));
        put("nox_index", self.nox_index.map(|c| Value::I64(c.into())));
        put("illuminance", self.luminosity_lux.map(Value::F64));
        put(
            "calibration_in_progress",
            Some(Value::Bool(self.calibration_in_progress)),
        );
        let mut meta = Values::new();
        meta.insert(
            "measurement_sequence".into(),
            Value::I64(self.measurement_sequence.into()),
        );
        if let Some(m) = self.mac_low {
            meta.insert(
                "mac_suffix".into(),
                Value::Str(format!("{:02X}:{:02X}:{:02X}", m[0], m[1], m[2])),
            );
        }
        (v, meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("value present");
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// The test vectors of the format document (reserved byte `XX` written as `ff`).
    #[test]
    fn ruuvi_docs_vectors() {
        let d = decode(&h("06170c5668c79e007000c90501d9ffcd004c884f")).unwrap();
        close(d.temperature_c, 29.5);
        close(d.humidity_pct, 55.3);
        assert_eq!(d.pressure_pa, Some(101_102));
        close(d.pm25_ugm3, 11.2);
        assert_eq!(d.co2_ppm, Some(201));
        assert_eq!((d.voc_index, d.nox_index), (Some(10), Some(2)));
        close(d.luminosity_lux, 13_026.67);
        assert_eq!(d.measurement_sequence, 205);
        assert!(!d.calibration_in_progress);
        assert_eq!(d.mac_low, Some([0x4c, 0x88, 0x4f]));

        let d = decode(&h("067fff9c40fffe27109c40fafafeffff074c8f4f")).unwrap();
        close(d.temperature_c, 163.835);
        close(d.humidity_pct, 100.0);
        assert_eq!(d.pressure_pa, Some(115_534));
        close(d.pm25_ugm3, 1000.0);
        assert_eq!(d.co2_ppm, Some(40_000));
        assert_eq!((d.voc_index, d.nox_index), (Some(500), Some(500)));
        close(d.luminosity_lux, 65_535.0);
        assert_eq!(d.measurement_sequence, 255);
        assert!(d.calibration_in_progress);

        let d = decode(&h("0680010000000000000000000000ff00004c884f")).unwrap();
        close(d.temperature_c, -163.835);
        assert_eq!(d.pressure_pa, Some(50_000));
        close(d.luminosity_lux, 0.0);
        assert_eq!((d.voc_index, d.nox_index), (Some(0), Some(0)));

        let d = decode(&h("068000ffffffffffffffffffffffffffffffffff")).unwrap();
        let (values, meta) = d.to_values();
        // Every measurement is "not available": only the calibration flag remains.
        assert_eq!(values.len(), 1, "{values:?}");
        assert_eq!(
            values.get("calibration_in_progress"),
            Some(&Value::Bool(true))
        );
        assert_eq!(meta.get("measurement_sequence"), Some(&Value::I64(255)));
        assert!(!meta.contains_key("mac_suffix"));
    }

    #[test]
    fn wrong_length_and_format_are_errors() {
        let ok = h("06170c5668c79e007000c90501d9ffcd004c884f");
        assert_eq!(decode(&ok[..19]), Err(RuuviError::Format6Length(19)));
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(RuuviError::Format6Length(21)));
        let mut other = ok;
        other[0] = 0xe1;
        assert_eq!(decode(&other), Err(RuuviError::UnsupportedFormat(0xe1)));
    }
}
