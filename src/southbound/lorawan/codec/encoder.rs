//! The declarative codec backwards: a command's `set` values become a downlink payload laid
//! out by the same field specs (`byte_offset`, `type`, `endian`, `scale`, `value_offset`) that
//! decode uplinks. raw = (value − `value_offset`) / `scale`, rounded for integer types.
//!
//! Every field of the port must be given (a payload is written whole), nothing else may be,
//! and each raw value must fit its type: anything else is a rejection reason, never a guess.

use super::declarative::{Endian, FieldType, PortSpec};
use crate::record::{Value, Values};

/// The payload for `values` on `port`, or why it cannot be built (the `rejected` reason).
pub fn encode(port: &PortSpec, values: &Values) -> Result<Vec<u8>, String> {
    if let Some(extra) = values
        .keys()
        .find(|k| !port.fields.iter().any(|f| &f.name == *k))
    {
        return Err(format!(
            "point {extra:?} is not a field of the device's encoder"
        ));
    }
    let len = port
        .fields
        .iter()
        .map(|f| f.byte_offset.saturating_add(f.kind.size()))
        .max()
        .unwrap_or(0);
    let mut out = vec![0u8; len];
    for f in &port.fields {
        let v = values.get(&f.name).ok_or_else(|| {
            format!(
                "point {:?} is missing: the encoder writes all its fields",
                f.name
            )
        })?;
        let x = match v {
            Value::I64(i) => *i as f64,
            Value::F64(x) if x.is_finite() => *x,
            Value::Bool(b) => f64::from(u8::from(*b)),
            _ => return Err(format!("point {:?} needs a number or a boolean", f.name)),
        };
        let raw = (x - f.value_offset) / f.scale;
        let bytes = raw_bytes(f.kind, raw).ok_or_else(|| {
            format!(
                "point {:?}: {x} is out of range for its {:?} field",
                f.name, f.kind
            )
        })?;
        let mut b = bytes;
        let n = f.kind.size();
        if f.endian == Endian::Little {
            b[..n].reverse();
        }
        out[f.byte_offset..f.byte_offset + n].copy_from_slice(&b[..n]);
    }
    Ok(out)
}

/// Big-endian bytes of `raw` in `kind` (first `size` bytes used), if it fits.
fn raw_bytes(kind: FieldType, raw: f64) -> Option<[u8; 4]> {
    let int = |lo: f64, hi: f64| {
        let r = raw.round();
        (r.is_finite() && r >= lo && r <= hi).then_some(r as i64)
    };
    let mut b = [0u8; 4];
    match kind {
        FieldType::U8 => b[0] = int(0.0, 255.0)? as u8,
        FieldType::I8 => b[0] = int(-128.0, 127.0)? as i8 as u8,
        FieldType::U16 => b[..2].copy_from_slice(&(int(0.0, 65_535.0)? as u16).to_be_bytes()),
        FieldType::I16 => b[..2].copy_from_slice(&(int(-32_768.0, 32_767.0)? as i16).to_be_bytes()),
        FieldType::U32 => b.copy_from_slice(&(int(0.0, 4_294_967_295.0)? as u32).to_be_bytes()),
        FieldType::I32 => {
            b.copy_from_slice(&(int(-2_147_483_648.0, 2_147_483_647.0)? as i32).to_be_bytes())
        }
        FieldType::F32 => {
            let f = raw as f32;
            if !f.is_finite() {
                return None;
            }
            b.copy_from_slice(&f.to_be_bytes());
        }
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::southbound::lorawan::codec::declarative;

    fn port() -> PortSpec {
        toml::from_str(
            r#"fport = 10
fields = [
  { name = "valve", byte_offset = 0, type = "u8" },
  { name = "setpoint", byte_offset = 1, type = "i16", endian = "little", scale = 0.1 },
]"#,
        )
        .unwrap()
    }

    fn values(pairs: &[(&str, Value)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn encodes_what_the_decoder_reads_back() {
        let p = port();
        let v = values(&[
            ("valve", Value::Bool(true)),
            ("setpoint", Value::F64(-21.5)),
        ]);
        let bytes = encode(&p, &v).unwrap();
        assert_eq!(bytes, [0x01, 0x29, 0xff]);
        let back = declarative::decode(std::slice::from_ref(&p), 10, &bytes).unwrap();
        assert_eq!(back.values["valve"], Value::I64(1));
        assert_eq!(back.values["setpoint"], Value::F64(-21.5));
    }

    #[test]
    fn refuses_missing_extra_wrong_and_out_of_range() {
        let p = port();
        let e = encode(&p, &values(&[("valve", Value::I64(1))])).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        let e = encode(
            &p,
            &values(&[
                ("valve", Value::I64(1)),
                ("setpoint", Value::I64(1)),
                ("x", Value::I64(1)),
            ]),
        )
        .unwrap_err();
        assert!(e.contains("\"x\""), "{e}");
        let e = encode(
            &p,
            &values(&[("valve", Value::I64(256)), ("setpoint", Value::I64(1))]),
        )
        .unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = encode(
            &p,
            &values(&[
                ("valve", Value::Str("on".into())),
                ("setpoint", Value::I64(1)),
            ]),
        )
        .unwrap_err();
        assert!(e.contains("number"), "{e}");
    }
}
