//! The field tool behind `citygate write modbus`: write one value to a device, read it back
//! and show both, raw and in engineering units.
//!
//! It needs no config and applies no allow-list: it is for a technician at the cabinet, with
//! the device's register map in hand, checking that a set point or relay answers before the
//! platform is allowed to command it. The value goes through the same encoding as a command
//! ([`super::encode`]: inverse scale and offset, range and whole-number checks, word order).
use super::bus::{Bus, ReadData, TxError};
use super::config::{Table, TypeName};
use super::decode::{decode_point, PointType, Scaling, WordOrder};
use super::encode::{encode_value, EncodeError, WriteData, WriteRequest};
use super::plan::ReadRequest;
use super::probe::{parse_url, ProbeError, PROBE_TIMEOUT};
use super::writable::unwritable_reason;
use crate::record::Value;
use crate::telemetry::ModbusMetrics;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// What to write, as given on the command line.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    pub unit: u8,
    pub table: String,
    pub address: String,
    pub kind: String,
    pub value: String,
    pub order: Option<String>,
    pub scale: Option<f64>,
    pub offset: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteToolError {
    #[error(transparent)]
    Target(#[from] ProbeError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {value:?}: {source}")]
    Value {
        value: String,
        source: Box<EncodeError>,
    },
    #[error("the write was not confirmed: {0}")]
    Write(TxError),
    #[error("the device confirmed the write, but reading it back failed: {0}")]
    ReadBack(TxError),
}

/// The result of a write: the report to print and whether the read-back matches.
#[derive(Debug, Clone)]
pub struct WriteReport {
    pub text: String,
    pub matches: bool,
}

fn parse_enum<T: for<'de> Deserialize<'de>>(
    what: &str,
    s: &str,
    valid: &str,
) -> Result<T, WriteToolError> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de)
        .map_err(|_| WriteToolError::Usage(format!("{what} {s:?} is not one of {valid}")))
}

fn parse_address(s: &str) -> Result<u16, WriteToolError> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
    .ok_or_else(|| {
        WriteToolError::Usage(format!(
            "address {s:?} is not 0..=65535 (decimal or 0x hex)"
        ))
    })
}

/// `true`/`false`/`on`/`off` for booleans, else an integer, else a float.
fn parse_value(kind: PointType, s: &str) -> Result<Value, WriteToolError> {
    let bad = || WriteToolError::Usage(format!("value {s:?} is not a number or true/false"));
    if kind == PointType::Bool {
        return match s.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        };
    }
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::I64(i));
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::F64)
        .ok_or_else(bad)
}

/// Writes once, reads back once, and renders both.
pub async fn write(url: &str, spec: &WriteSpec) -> Result<WriteReport, WriteToolError> {
    let target = parse_url(url)?;
    let table: Table = parse_enum("table", &spec.table, "coil, holding")?;
    let address = parse_address(&spec.address)?;
    let type_name: TypeName = parse_enum(
        "type",
        &spec.kind,
        "bool, u16, i16, u32, i32, u64, i64, f32, f64",
    )?;
    let kind = match type_name {
        TypeName::Bool => PointType::Bool,
        TypeName::U16 => PointType::U16,
        TypeName::I16 => PointType::I16,
        TypeName::U32 => PointType::U32,
        TypeName::I32 => PointType::I32,
        TypeName::U64 => PointType::U64,
        TypeName::I64 => PointType::I64,
        TypeName::F32 => PointType::F32,
        TypeName::F64 => PointType::F64,
        TypeName::String => PointType::String(1),
        TypeName::Bit => PointType::Bit(0),
    };
    if let Some(why) = unwritable_reason(table, kind) {
        return Err(WriteToolError::Usage(format!("cannot write there: {why}")));
    }
    if table == Table::Coil && kind != PointType::Bool {
        return Err(WriteToolError::Usage(
            "a coil holds a bool (--type bool)".into(),
        ));
    }
    let order: WordOrder = match &spec.order {
        Some(o) => parse_enum("order", o, "ABCD, CDAB, BADC, DCBA")?,
        None => WordOrder::Abcd,
    };
    if u32::from(address) + u32::from(kind.registers()) > 0x1_0000 {
        return Err(WriteToolError::Usage(format!(
            "a {kind} at address {address} runs past the last address 65535"
        )));
    }
    let scaling = Scaling {
        scale: spec.scale,
        offset: spec.offset,
    };
    if scaling.scale == Some(0.0)
        || [spec.scale, spec.offset]
            .iter()
            .flatten()
            .any(|v| !v.is_finite())
    {
        return Err(WriteToolError::Usage(
            "--scale and --offset must be finite, --scale non-zero".into(),
        ));
    }
    let value = parse_value(kind, &spec.value)?;
    let data = encode_value(table, kind, order, scaling, &value).map_err(|source| {
        WriteToolError::Value {
            value: spec.value.clone(),
            source: Box::new(source),
        }
    })?;
    let req = WriteRequest {
        table,
        address,
        data,
    };
    let mut bus = Bus::new(
        Arc::clone(&target.connector),
        target.framing,
        target.gap,
        Arc::new(ModbusMetrics::detached()),
    );
    bus.write(spec.unit, &req, PROBE_TIMEOUT)
        .await
        .map_err(WriteToolError::Write)?;
    let read = ReadRequest {
        table,
        address,
        count: req.data.len() as u16,
        points: Vec::new(),
    };
    let back = bus
        .read(spec.unit, &read, PROBE_TIMEOUT)
        .await
        .map_err(WriteToolError::ReadBack)?;
    let (back_value, matches) = match (&back, &req.data) {
        (ReadData::Bits(b), WriteData::Coils(c)) => (b.first().map(|v| Value::Bool(*v)), b == c),
        (ReadData::Registers(r), WriteData::Registers(w)) => {
            (decode_point(kind, order, scaling, r).ok(), r == w)
        }
        _ => (None, false),
    };
    let layout = if kind.is_multi_register_number() {
        format!("{kind}, order {order}")
    } else {
        kind.to_string()
    };
    let mut text = format!(
        "{} unit {}: fc{:02} {} {address} ({layout})\n",
        target.connector.describe(),
        spec.unit,
        req.function_code(),
        table.name(),
    );
    let show =
        |v: Option<&Value>| v.map_or("?".into(), |v| serde_json::to_string(v).unwrap_or_default());
    let _ = writeln!(
        text,
        "wrote      {:>24}  raw {}",
        show(Some(&value)),
        raw(&req.data)
    );
    let raw_back = match &back {
        ReadData::Bits(b) => raw(&WriteData::Coils(b.clone())),
        ReadData::Registers(r) => raw(&WriteData::Registers(r.clone())),
    };
    let _ = writeln!(
        text,
        "read back  {:>24}  raw {raw_back}",
        show(back_value.as_ref())
    );
    text.push_str(if matches {
        "the device holds what was written\n"
    } else {
        "DIFFERENT: the device holds something else than what was written (it may clamp, refuse silently or change it itself)\n"
    });
    Ok(WriteReport { text, matches })
}

fn raw(data: &WriteData) -> String {
    match data {
        WriteData::Coils(c) => c
            .iter()
            .map(|b| u8::from(*b).to_string())
            .collect::<Vec<_>>()
            .join(" "),
        WriteData::Registers(r) => r
            .iter()
            .map(|w| format!("0x{w:04X}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}
