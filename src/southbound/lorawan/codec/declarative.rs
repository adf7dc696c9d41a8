//! Declarative payload codec: per FPort a list of fixed-position fields, written in TOML by
//! the technician instead of a JavaScript decoder.
//!
//! ```toml
//! codec = { type = "declarative", ports = [
//!   { fport = 2, fields = [
//!     { name = "temperature", byte_offset = 0, type = "i16", endian = "big", scale = 0.1, unit = "Cel" },
//!     { name = "battery", byte_offset = 2, type = "u8", scale = 0.02, value_offset = 2.0, unit = "V" },
//!   ] },
//! ] }
//! ```
//! value = raw × `scale` + `value_offset`. Integer fields without scaling stay integers.

use super::{CodecError, Decoded};
use crate::config::issue::ConfigIssue;
use crate::record::Value;
use serde::Deserialize;

/// The fields sent on one FPort.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub fport: u8,
    pub fields: Vec<FieldSpec>,
}

/// One value at a fixed position in the payload.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    pub byte_offset: usize,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub endian: Endian,
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default)]
    pub value_offset: f64,
    #[serde(default)]
    pub unit: Option<String>,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl FieldType {
    pub fn size(self) -> usize {
        match self {
            FieldType::U8 | FieldType::I8 => 1,
            FieldType::U16 | FieldType::I16 => 2,
            FieldType::U32 | FieldType::I32 | FieldType::F32 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    #[default]
    Big,
    Little,
}

impl FieldSpec {
    fn read(&self, payload: &[u8]) -> Result<Value, CodecError> {
        let start = self.byte_offset;
        let end = start.saturating_add(self.kind.size());
        let b = payload
            .get(start..end)
            .ok_or_else(|| CodecError::TooShort {
                field: self.name.clone(),
                start,
                end,
                len: payload.len(),
            })?;
        let mut buf = [0u8; 4];
        buf[..b.len()].copy_from_slice(b);
        if self.endian == Endian::Little {
            buf[..b.len()].reverse();
        }
        // `buf[..size]` is now big-endian.
        let raw: f64 = match self.kind {
            FieldType::U8 => f64::from(buf[0]),
            FieldType::I8 => f64::from(buf[0] as i8),
            FieldType::U16 => f64::from(u16::from_be_bytes([buf[0], buf[1]])),
            FieldType::I16 => f64::from(i16::from_be_bytes([buf[0], buf[1]])),
            FieldType::U32 => f64::from(u32::from_be_bytes(buf)),
            FieldType::I32 => f64::from(i32::from_be_bytes(buf)),
            FieldType::F32 => f64::from(f32::from_be_bytes(buf)),
        };
        let unscaled = self.scale == 1.0 && self.value_offset == 0.0;
        Ok(if unscaled && self.kind != FieldType::F32 {
            Value::I64(raw as i64)
        } else {
            Value::F64(raw * self.scale + self.value_offset)
        })
    }
}

/// Decodes with the fields of `fport`; a port without fields is an error (the record would be
/// empty), a payload too short for any field fails the whole payload.
pub fn decode(ports: &[PortSpec], fport: u8, payload: &[u8]) -> Result<Decoded, CodecError> {
    let port = ports
        .iter()
        .find(|p| p.fport == fport)
        .ok_or(CodecError::NoPort(fport))?;
    let mut out = Decoded::default();
    for f in &port.fields {
        out.values.insert(f.name.clone(), f.read(payload)?);
        if let Some(u) = &f.unit {
            out.units.insert(f.name.clone(), u.clone());
        }
    }
    Ok(out)
}

/// Checks ports and fields: FPort range, duplicates, overlapping bytes, bad scale.
/// `path` is the dotted path of the codec table.
pub fn validate(ports: &[PortSpec], path: &str) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    for (pi, port) in ports.iter().enumerate() {
        let pp = format!("{path}.ports.{pi}");
        if !(1..=223).contains(&port.fport) {
            issues.push(
                ConfigIssue::new(
                    format!("{pp}.fport"),
                    format!("FPort {} is not an application port.", port.fport),
                )
                .hint("use 1..=223 (0 carries MAC commands, 224 is the test protocol)"),
            );
        }
        if ports[..pi].iter().any(|p| p.fport == port.fport) {
            issues.push(ConfigIssue::new(
                format!("{pp}.fport"),
                format!("FPort {} is declared twice.", port.fport),
            ));
        }
        if port.fields.is_empty() {
            issues.push(ConfigIssue::new(
                format!("{pp}.fields"),
                "A port needs at least one field.",
            ));
        }
        for (fi, f) in port.fields.iter().enumerate() {
            let fp = format!("{pp}.fields.{fi}");
            if f.name.trim().is_empty() {
                issues.push(ConfigIssue::new(
                    format!("{fp}.name"),
                    "Field name is empty.",
                ));
            }
            if port.fields[..fi].iter().any(|o| o.name == f.name) {
                issues.push(ConfigIssue::new(
                    format!("{fp}.name"),
                    format!("Field name {:?} is used twice on this port.", f.name),
                ));
            }
            if !f.scale.is_finite() || f.scale == 0.0 || !f.value_offset.is_finite() {
                issues.push(
                    ConfigIssue::new(
                        format!("{fp}.scale"),
                        format!("Field {:?} has an unusable scale or value_offset.", f.name),
                    )
                    .hint("scale must be a finite non-zero number, value_offset finite"),
                );
            }
            let (s, e) = (f.byte_offset, f.byte_offset.saturating_add(f.kind.size()));
            if let Some(o) = port.fields[..fi]
                .iter()
                .find(|o| s < o.byte_offset.saturating_add(o.kind.size()) && o.byte_offset < e)
            {
                issues.push(
                    ConfigIssue::new(
                        format!("{fp}.byte_offset"),
                        format!(
                            "Field {:?} (bytes {s}..{e}) overlaps field {:?}.",
                            f.name, o.name
                        ),
                    )
                    .hint("each byte of the payload can belong to one field only"),
                );
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<PortSpec> {
        #[derive(Deserialize)]
        struct W {
            codec: super::super::CodecConfig,
        }
        let w: W = toml::from_str(
            r#"
codec = { type = "declarative", ports = [
  { fport = 2, fields = [
    { name = "temperature", byte_offset = 0, type = "i16", scale = 0.1, unit = "Cel" },
    { name = "battery", byte_offset = 2, type = "u8", scale = 0.02, value_offset = 2.0, unit = "V" },
    { name = "count", byte_offset = 3, type = "u32", endian = "little" },
    { name = "ratio", byte_offset = 7, type = "f32" },
    { name = "delta", byte_offset = 11, type = "i8" },
  ] },
] }
"#,
        )
        .unwrap();
        match w.codec {
            super::super::CodecConfig::Declarative { ports } => ports,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_all_types_with_scale_and_endianness() {
        let p = ports();
        assert!(validate(&p, "codec").is_empty());
        let mut payload = vec![0xff, 0x9c, 50, 0x01, 0x02, 0x00, 0x00];
        payload.extend_from_slice(&1.5f32.to_be_bytes());
        payload.push(0xfe);
        let d = decode(&p, 2, &payload).unwrap();
        let Value::F64(t) = d.values["temperature"] else {
            panic!()
        };
        assert!((t + 10.0).abs() < 1e-9, "{t}");
        let Value::F64(b) = d.values["battery"] else {
            panic!()
        };
        assert!((b - 3.0).abs() < 1e-9, "{b}");
        assert_eq!(d.values["count"], Value::I64(0x0201));
        assert_eq!(d.values["ratio"], Value::F64(1.5));
        assert_eq!(d.values["delta"], Value::I64(-2));
        assert_eq!(d.units["temperature"], "Cel");
        assert!(!d.units.contains_key("count"));
    }

    #[test]
    fn short_payload_and_unknown_port_are_errors() {
        let p = ports();
        assert!(matches!(
            decode(&p, 2, &[0, 1, 2]),
            Err(CodecError::TooShort { .. })
        ));
        assert_eq!(decode(&p, 9, &[0; 12]), Err(CodecError::NoPort(9)));
        for n in 0..12 {
            let _ = decode(&p, 2, &vec![0xaa; n]);
        }
        let huge = PortSpec {
            fport: 1,
            fields: vec![FieldSpec {
                name: "x".into(),
                byte_offset: usize::MAX,
                kind: FieldType::U32,
                endian: Endian::Big,
                scale: 1.0,
                value_offset: 0.0,
                unit: None,
            }],
        };
        assert!(decode(&[huge], 1, &[0; 8]).is_err());
    }

    #[test]
    fn validation_finds_overlaps_duplicates_and_bad_ports() {
        let mut p = ports();
        p[0].fields[1].byte_offset = 1; // overlaps temperature (0..2)
        p[0].fields[2].name = "temperature".into();
        p[0].fields[3].scale = 0.0;
        p.push(PortSpec {
            fport: 0,
            fields: vec![],
        });
        p.push(PortSpec {
            fport: 2,
            fields: vec![p[0].fields[0].clone()],
        });
        let issues = validate(&p, "devices.0.codec");
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"devices.0.codec.ports.0.fields.1.byte_offset"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"devices.0.codec.ports.0.fields.2.name"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"devices.0.codec.ports.0.fields.3.scale"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"devices.0.codec.ports.1.fport"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"devices.0.codec.ports.1.fields"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"devices.0.codec.ports.2.fport"),
            "{paths:?}"
        );
        assert_eq!(issues.len(), 6, "{issues:#?}");
    }
}
