//! Turning a commanded value into the registers or coil that hold it: the inverse of
//! [`super::decode`].
//!
//! A point reports `value = raw × scale + offset`, so a command's value is written as
//! `raw = (value − offset) / scale`. For an integer register `raw` must be a whole number:
//! it is rounded to the nearest integer when it lies within [`INTEGRAL_TOLERANCE`] of one
//! (floating-point noise: 23.4 / 0.1 = 233.99999999999997 is written as 234) and refused
//! otherwise (23.45 with scale 0.1 is not a step of the point's resolution), never silently
//! rounded. It must then fit the register type (0..=65535 for `u16`, …). A float register
//! takes the nearest `f32`/`f64` (a finite value beyond the `f32` range is refused). Words
//! and bytes are laid out in the point's word order, exactly as [`super::decode`] reads them,
//! so encoding then decoding gives the value back.
//!
//! Pure and never panics.
use super::config::Table;
use super::decode::{PointType, Scaling, WordOrder};
use crate::record::Value;

/// Largest distance of `raw` from a whole number that is taken as floating-point noise.
pub const INTEGRAL_TOLERANCE: f64 = 1e-6;

/// What one write puts on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteData {
    Coils(Vec<bool>),
    Registers(Vec<u16>),
}

impl WriteData {
    /// Coils or registers written.
    pub fn len(&self) -> usize {
        match self {
            WriteData::Coils(c) => c.len(),
            WriteData::Registers(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One write transaction: FC 05 (one coil), 15 (several), 06 (one register), 16 (several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    pub table: Table,
    pub address: u16,
    pub data: WriteData,
}

impl WriteRequest {
    pub fn function_code(&self) -> u8 {
        match (&self.data, self.data.len()) {
            (WriteData::Coils(_), 1) => 0x05,
            (WriteData::Coils(_), _) => 0x0F,
            (WriteData::Registers(_), 1) => 0x06,
            (WriteData::Registers(_), _) => 0x10,
        }
    }
}

/// Why a value cannot be written to a point; the message completes "point X: …".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("takes true or false, not {0}")]
    NotBool(String),
    #[error("takes a number, not {0}")]
    NotNumber(String),
    #[error("{value} gives the raw value {raw} (after offset {offset} and scale {scale}), which is not a whole number, so it cannot be written to a {kind} register: use a multiple of the point's resolution {scale}")]
    NotIntegral {
        value: f64,
        raw: f64,
        scale: f64,
        offset: f64,
        kind: PointType,
    },
    #[error("{value} gives the raw value {raw} (after offset {offset} and scale {scale}), outside the {kind} register's range {min}..={max}")]
    OutOfRange {
        value: f64,
        raw: String,
        scale: f64,
        offset: f64,
        kind: PointType,
        min: String,
        max: String,
    },
    #[error("a point of type {0} cannot be written")]
    Unwritable(PointType),
}

/// The data that makes a point of `kind` in `table` (with `order`, `scaling`) read `value`.
pub fn encode_value(
    table: Table,
    kind: PointType,
    order: WordOrder,
    scaling: Scaling,
    value: &Value,
) -> Result<WriteData, EncodeError> {
    let shown = || serde_json::to_string(value).unwrap_or_default();
    if kind == PointType::Bool {
        let b = match value {
            Value::Bool(b) => *b,
            Value::I64(0) => false,
            Value::I64(1) => true,
            _ => return Err(EncodeError::NotBool(shown())),
        };
        return Ok(match table {
            Table::Coil | Table::Discrete => WriteData::Coils(vec![b]),
            Table::Holding | Table::Input => WriteData::Registers(vec![u16::from(b)]),
        });
    }
    if !kind.is_numeric() {
        return Err(EncodeError::Unwritable(kind));
    }
    let exact = match value {
        Value::I64(i) if scaling.scale.is_none() && scaling.offset.is_none() => Some(*i),
        _ => None,
    };
    let number = match value {
        Value::I64(i) => *i as f64,
        Value::F64(f) if f.is_finite() => *f,
        _ => return Err(EncodeError::NotNumber(shown())),
    };
    let scale = scaling.scale.unwrap_or(1.0);
    let offset = scaling.offset.unwrap_or(0.0);
    let raw = (number - offset) / scale;
    let bytes: Vec<u8> = match kind {
        PointType::F32 => {
            let f = raw as f32;
            if !f.is_finite() || !raw.is_finite() {
                return Err(out_of_range(number, raw.to_string(), scaling, kind));
            }
            f.to_be_bytes().to_vec()
        }
        PointType::F64 => {
            if !raw.is_finite() {
                return Err(out_of_range(number, raw.to_string(), scaling, kind));
            }
            raw.to_be_bytes().to_vec()
        }
        _ => {
            let int = match exact {
                Some(i) => i128::from(i),
                None => whole(raw).ok_or(EncodeError::NotIntegral {
                    value: number,
                    raw,
                    scale,
                    offset,
                    kind,
                })?,
            };
            integer_bytes(kind, int)
                .ok_or_else(|| out_of_range(number, int.to_string(), scaling, kind))?
        }
    };
    Ok(WriteData::Registers(to_registers(&bytes, order)))
}

/// `raw` as a whole number, if it is one up to floating-point noise.
fn whole(raw: f64) -> Option<i128> {
    if !raw.is_finite() {
        return None;
    }
    let r = raw.round();
    let tolerance = INTEGRAL_TOLERANCE.max(r.abs() * 4.0 * f64::EPSILON);
    // Beyond ±2^100 no register type fits; the cast below saturates, the range check refuses.
    ((raw - r).abs() <= tolerance).then_some(r.clamp(-1e30, 1e30) as i128)
}

/// Big-endian bytes of `v` as `kind`, or `None` when it does not fit.
fn integer_bytes(kind: PointType, v: i128) -> Option<Vec<u8>> {
    Some(match kind {
        PointType::U16 => u16::try_from(v).ok()?.to_be_bytes().to_vec(),
        PointType::I16 => i16::try_from(v).ok()?.to_be_bytes().to_vec(),
        PointType::U32 => u32::try_from(v).ok()?.to_be_bytes().to_vec(),
        PointType::I32 => i32::try_from(v).ok()?.to_be_bytes().to_vec(),
        PointType::U64 => u64::try_from(v).ok()?.to_be_bytes().to_vec(),
        PointType::I64 => i64::try_from(v).ok()?.to_be_bytes().to_vec(),
        _ => return None,
    })
}

fn range_of(kind: PointType) -> (String, String) {
    match kind {
        PointType::U16 => ("0".into(), u16::MAX.to_string()),
        PointType::I16 => (i16::MIN.to_string(), i16::MAX.to_string()),
        PointType::U32 => ("0".into(), u32::MAX.to_string()),
        PointType::I32 => (i32::MIN.to_string(), i32::MAX.to_string()),
        PointType::U64 => ("0".into(), u64::MAX.to_string()),
        PointType::I64 => (i64::MIN.to_string(), i64::MAX.to_string()),
        PointType::F32 => (f32::MIN.to_string(), f32::MAX.to_string()),
        _ => (f64::MIN.to_string(), f64::MAX.to_string()),
    }
}

fn out_of_range(value: f64, raw: String, scaling: Scaling, kind: PointType) -> EncodeError {
    let (min, max) = range_of(kind);
    EncodeError::OutOfRange {
        value,
        raw,
        scale: scaling.scale.unwrap_or(1.0),
        offset: scaling.offset.unwrap_or(0.0),
        kind,
        min,
        max,
    }
}

/// Big-endian value bytes (`A B C D …`) to registers on the wire in `order`: the inverse of
/// the decoder's normalisation (bytes swapped in each word, then words reversed).
pub fn to_registers(bytes: &[u8], order: WordOrder) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            let w = u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]);
            if order.byte_swap() {
                w.swap_bytes()
            } else {
                w
            }
        })
        .collect();
    if order.word_swap() {
        words.reverse();
    }
    words
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
