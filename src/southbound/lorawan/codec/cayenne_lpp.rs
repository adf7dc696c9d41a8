//! Cayenne Low Power Payload (myDevices Cayenne LPP 1.0 plus the common extensions of
//! `ElectronicCats/CayenneLPP`): repeated `channel | type | value`, values big-endian.
//!
//! The extension list grows: ElectronicCats' current `src/CayenneLPP.h` and
//! `decoders/decoder.js` add 143 (PPM, 2 bytes) and 144 (RGB, 3 bytes), which are here too.
//! A type that is not in the table cannot be skipped (its length is unknown), so it fails the
//! payload with [`CodecError::UnknownLppType`] rather than guessing.
//!
//! Each value is named `<type>_<channel>` (`temperature_1`); multi-axis values get a suffix
//! (`accelerometer_3_x`, `gps_4_latitude`).

use super::{CodecError, Decoded};
use crate::record::Value;

/// How one LPP type's value bytes are read.
#[derive(Clone, Copy)]
enum Shape {
    /// One big-endian integer of `len` bytes, divided by `div` (1 = keep as integer).
    Scalar { signed: bool, div: f64 },
    /// Three signed 16-bit axes divided by `div`.
    Xyz { div: f64 },
    /// Three signed 24-bit values: latitude, longitude (1e-4 deg), altitude (0.01 m).
    Gps,
    /// Three bytes r, g, b.
    Rgb,
}

struct LppType {
    code: u8,
    name: &'static str,
    len: usize,
    shape: Shape,
    unit: Option<&'static str>,
}

const fn scalar(
    code: u8,
    name: &'static str,
    len: usize,
    signed: bool,
    div: f64,
    unit: Option<&'static str>,
) -> LppType {
    LppType {
        code,
        name,
        len,
        shape: Shape::Scalar { signed, div },
        unit,
    }
}

const TYPES: &[LppType] = &[
    scalar(0, "digital_input", 1, false, 1.0, None),
    scalar(1, "digital_output", 1, false, 1.0, None),
    scalar(2, "analog_input", 2, true, 100.0, None),
    scalar(3, "analog_output", 2, true, 100.0, None),
    scalar(100, "generic_sensor", 4, false, 1.0, None),
    scalar(101, "illuminance", 2, false, 1.0, Some("lx")),
    scalar(102, "presence", 1, false, 1.0, None),
    scalar(103, "temperature", 2, true, 10.0, Some("Cel")),
    scalar(104, "humidity", 1, false, 2.0, Some("%RH")),
    LppType {
        code: 113,
        name: "accelerometer",
        len: 6,
        shape: Shape::Xyz { div: 1000.0 },
        unit: Some("g"),
    },
    scalar(115, "barometer", 2, false, 10.0, Some("hPa")),
    scalar(116, "voltage", 2, false, 100.0, Some("V")),
    scalar(117, "current", 2, false, 1000.0, Some("A")),
    scalar(118, "frequency", 4, false, 1.0, Some("Hz")),
    scalar(120, "percentage", 1, false, 1.0, Some("%")),
    scalar(121, "altitude", 2, true, 1.0, Some("m")),
    scalar(125, "concentration", 2, false, 1.0, Some("ppm")),
    scalar(128, "power", 2, false, 1.0, Some("W")),
    scalar(130, "distance", 4, false, 1000.0, Some("m")),
    scalar(131, "energy", 4, false, 1000.0, Some("kWh")),
    scalar(132, "direction", 2, false, 1.0, Some("deg")),
    scalar(133, "unix_time", 4, false, 1.0, Some("s")),
    LppType {
        code: 134,
        name: "gyrometer",
        len: 6,
        shape: Shape::Xyz { div: 100.0 },
        unit: Some("deg/s"),
    },
    LppType {
        code: 135,
        name: "colour",
        len: 3,
        shape: Shape::Rgb,
        unit: None,
    },
    LppType {
        code: 136,
        name: "gps",
        len: 9,
        shape: Shape::Gps,
        unit: None,
    },
    scalar(142, "switch", 1, false, 1.0, None),
    scalar(143, "ppm", 2, false, 1.0, Some("ppm")),
    LppType {
        code: 144,
        name: "rgb",
        len: 3,
        shape: Shape::Rgb,
        unit: None,
    },
];

fn be_int(bytes: &[u8], signed: bool) -> i64 {
    let mut v: i64 = 0;
    for b in bytes {
        v = (v << 8) | i64::from(*b);
    }
    let bits = 8 * bytes.len() as u32;
    if signed && bits > 0 && bits < 64 && v & (1 << (bits - 1)) != 0 {
        v -= 1 << bits;
    }
    v
}

fn scaled(raw: i64, div: f64) -> Value {
    if div == 1.0 {
        Value::I64(raw)
    } else {
        Value::F64(raw as f64 / div)
    }
}

/// Decodes a whole LPP payload; any truncated or unknown item fails the payload.
pub fn decode(payload: &[u8]) -> Result<Decoded, CodecError> {
    let mut out = Decoded::default();
    let mut at = 0;
    while at < payload.len() {
        let (Some(&channel), Some(&code)) = (payload.get(at), payload.get(at + 1)) else {
            return Err(CodecError::TooShort {
                field: "lpp header".into(),
                start: at,
                end: at + 2,
                len: payload.len(),
            });
        };
        let t = TYPES
            .iter()
            .find(|t| t.code == code)
            .ok_or(CodecError::UnknownLppType {
                kind: code,
                at: at + 1,
            })?;
        let start = at + 2;
        let end = start + t.len;
        let name = format!("{}_{}", t.name, channel);
        let data = payload
            .get(start..end)
            .ok_or_else(|| CodecError::TooShort {
                field: name.clone(),
                start,
                end,
                len: payload.len(),
            })?;
        let mut put = |n: String, v: Value| {
            if let Some(u) = t.unit {
                out.units.insert(n.clone(), u.to_owned());
            }
            out.values.insert(n, v);
        };
        match t.shape {
            Shape::Scalar { signed, div } => put(name, scaled(be_int(data, signed), div)),
            Shape::Xyz { div } => {
                for (i, axis) in ["x", "y", "z"].iter().enumerate() {
                    let v = be_int(&data[2 * i..2 * i + 2], true);
                    put(format!("{name}_{axis}"), scaled(v, div));
                }
            }
            Shape::Rgb => {
                for (i, c) in ["r", "g", "b"].iter().enumerate() {
                    put(format!("{name}_{c}"), Value::I64(i64::from(data[i])));
                }
            }
            Shape::Gps => {
                let parts = [
                    ("latitude", 10_000.0),
                    ("longitude", 10_000.0),
                    ("altitude", 100.0),
                ];
                for (i, (part, div)) in parts.iter().enumerate() {
                    let v = be_int(&data[3 * i..3 * i + 3], true);
                    put(format!("{name}_{part}"), Value::F64(v as f64 / div));
                }
            }
        }
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_uplink_payload_is_24_3_degrees() {
        // Decrypted FRMPayload of otaa_chain_fcnt0_port2 (lorawan_uplinks.json) and the
        // ChirpStack `object` for it in lns_integrations.json: temperatureSensor 1 = 24.3.
        let d = decode(&hex::decode("016700f3").unwrap()).unwrap();
        assert_eq!(d.values["temperature_1"], Value::F64(24.3));
        assert_eq!(d.units["temperature_1"], "Cel");
    }

    #[test]
    fn cayenne_documentation_examples() {
        // From the Cayenne LPP documentation: two temperatures, then accelerometer, then GPS.
        let d = decode(&hex::decode("03670110056700ff").unwrap()).unwrap();
        assert_eq!(d.values["temperature_3"], Value::F64(27.2));
        assert_eq!(d.values["temperature_5"], Value::F64(25.5));
        let d = decode(&hex::decode("067104d2fb2e0000").unwrap()).unwrap();
        assert_eq!(d.values["accelerometer_6_x"], Value::F64(1.234));
        assert_eq!(d.values["accelerometer_6_y"], Value::F64(-1.234));
        assert_eq!(d.values["accelerometer_6_z"], Value::F64(0.0));
        let d = decode(&hex::decode("018806765ff2960a0003e8").unwrap()).unwrap();
        assert_eq!(d.values["gps_1_latitude"], Value::F64(42.3519));
        assert_eq!(d.values["gps_1_longitude"], Value::F64(-87.9094));
        assert_eq!(d.values["gps_1_altitude"], Value::F64(10.0));
    }

    #[test]
    fn negative_temperature_humidity_and_integers() {
        let d = decode(&hex::decode("0167ff9c026861030100").unwrap()).unwrap();
        assert_eq!(d.values["temperature_1"], Value::F64(-10.0));
        assert_eq!(d.values["humidity_2"], Value::F64(48.5));
        assert_eq!(d.values["digital_output_3"], Value::I64(0));
        assert_eq!(d.values.len(), 3, "{:?}", d.values);
    }

    #[test]
    fn electroniccats_ppm_and_rgb_extensions() {
        // addPPM(1, 500) and addRGB(2, 255, 128, 0) of ElectronicCats/CayenneLPP, with a
        // temperature after them to show that decoding goes on.
        let d = decode(&hex::decode("018f01f40290ff8000036700f3").unwrap()).unwrap();
        assert_eq!(d.values["ppm_1"], Value::I64(500));
        assert_eq!(d.units["ppm_1"], "ppm");
        assert_eq!(d.values["rgb_2_r"], Value::I64(255));
        assert_eq!(d.values["rgb_2_g"], Value::I64(128));
        assert_eq!(d.values["rgb_2_b"], Value::I64(0));
        assert_eq!(d.values["temperature_3"], Value::F64(24.3));
        assert!(matches!(
            decode(&hex::decode("0190ff80").unwrap()),
            Err(CodecError::TooShort { .. })
        ));
    }

    #[test]
    fn truncated_and_unknown_are_errors() {
        assert!(matches!(
            decode(&[1, 0x67, 0]),
            Err(CodecError::TooShort { .. })
        ));
        assert!(matches!(decode(&[1]), Err(CodecError::TooShort { .. })));
        assert_eq!(
            decode(&[1, 0xfe, 0]),
            Err(CodecError::UnknownLppType { kind: 0xfe, at: 1 })
        );
        assert_eq!(decode(&[]).unwrap().values.len(), 0);
        for n in 0..=255u8 {
            let _ = decode(&[n, n, n, n, n]);
        }
    }
}
