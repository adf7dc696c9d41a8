//! Turning raw Modbus registers and bits into point values.
//!
//! Every register travels big-endian on the wire; vendors differ in the order of the 16-bit
//! words of a multi-register value and (rarely) in the byte order inside each register. We
//! model that as two independent flags (see [`WordOrder`]) so the same four names work for
//! 32- and 64-bit values: `CDAB` on a 64-bit value is the full word reversal `GHEFCDAB`.
//!
//! Everything here is pure and never panics: lengths are checked before any indexing and
//! problems come back as [`DecodeError`].

use crate::record::Value;
use serde::Deserialize;
use std::fmt;

/// Why registers could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected {expected} registers, got {got}")]
    Length { expected: usize, got: usize },
    #[error("bit index {0} is out of range 0..=15")]
    BitIndex(u8),
    #[error("the device returned a value that is not a finite number")]
    NotFinite,
}

/// Order of words and bytes of a multi-register value, named by where the bytes of the
/// big-endian value `A B C D` end up on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
pub enum WordOrder {
    /// Big-endian, high word first (the Modbus convention).
    #[serde(rename = "ABCD")]
    Abcd,
    /// Low word first ("word swap"); for 64-bit values all four words are reversed.
    #[serde(rename = "CDAB")]
    Cdab,
    /// High word first, bytes swapped inside each register.
    #[serde(rename = "BADC")]
    Badc,
    /// Fully little-endian.
    #[serde(rename = "DCBA")]
    Dcba,
}

impl WordOrder {
    pub const ALL: [WordOrder; 4] = [
        WordOrder::Abcd,
        WordOrder::Cdab,
        WordOrder::Badc,
        WordOrder::Dcba,
    ];

    /// Low word first on the wire.
    pub(crate) fn word_swap(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }

    /// Bytes swapped inside each register.
    pub(crate) fn byte_swap(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }
}

impl fmt::Display for WordOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        })
    }
}

/// The data type of a point, resolved from the config (`type`, `length`, `bit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointType {
    /// A coil or discrete input, or a register read as "non-zero".
    Bool,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// Text packed two bytes per register, `n` registers long; trailing NULs and spaces cut.
    String(u16),
    /// One bit (0 = least significant) of a single register.
    Bit(u8),
}

impl PointType {
    /// How many registers (or bits, for coils and discrete inputs) the point occupies.
    pub fn registers(self) -> u16 {
        match self {
            PointType::Bool | PointType::U16 | PointType::I16 | PointType::Bit(_) => 1,
            PointType::U32 | PointType::I32 | PointType::F32 => 2,
            PointType::U64 | PointType::I64 | PointType::F64 => 4,
            PointType::String(n) => n,
        }
    }

    /// Whether the word order matters, so a missing order is a config error.
    pub fn is_multi_register_number(self) -> bool {
        matches!(
            self,
            PointType::U32
                | PointType::I32
                | PointType::F32
                | PointType::U64
                | PointType::I64
                | PointType::F64
        )
    }

    /// Whether `scale`/`offset` make sense for this type.
    pub fn is_numeric(self) -> bool {
        !matches!(
            self,
            PointType::Bool | PointType::Bit(_) | PointType::String(_)
        )
    }
}

impl fmt::Display for PointType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointType::Bool => f.write_str("bool"),
            PointType::U16 => f.write_str("u16"),
            PointType::I16 => f.write_str("i16"),
            PointType::U32 => f.write_str("u32"),
            PointType::I32 => f.write_str("i32"),
            PointType::U64 => f.write_str("u64"),
            PointType::I64 => f.write_str("i64"),
            PointType::F32 => f.write_str("f32"),
            PointType::F64 => f.write_str("f64"),
            PointType::String(n) => write!(f, "string({n})"),
            PointType::Bit(n) => write!(f, "bit({n})"),
        }
    }
}

/// A decoded value before scaling. Kept apart from [`Value`] so 64-bit unsigned numbers and
/// non-finite floats can be tested exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

/// Puts the registers of one value into big-endian byte order (`A B C D …`).
fn normalized_bytes(regs: &[u16], order: WordOrder) -> Vec<u8> {
    let mut words: Vec<u16> = regs.to_vec();
    if order.word_swap() {
        words.reverse();
    }
    let mut bytes = Vec::with_capacity(words.len() * 2);
    for w in words {
        let w = if order.byte_swap() { w.swap_bytes() } else { w };
        bytes.extend_from_slice(&w.to_be_bytes());
    }
    bytes
}

fn exact<const N: usize>(bytes: &[u8]) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length {
        expected: N / 2,
        got: bytes.len() / 2,
    })
}

/// Decodes registers of one point. `regs` must hold exactly `kind.registers()` registers.
/// For 16-bit types only the byte swap of `order` applies; strings ignore the word swap.
pub fn decode_registers(
    kind: PointType,
    order: WordOrder,
    regs: &[u16],
) -> Result<Raw, DecodeError> {
    let expected = usize::from(kind.registers());
    if regs.len() != expected {
        return Err(DecodeError::Length {
            expected,
            got: regs.len(),
        });
    }
    let be = normalized_bytes(regs, order);
    Ok(match kind {
        PointType::Bool => Raw::Bool(be.iter().any(|b| *b != 0)),
        PointType::U16 => Raw::Unsigned(u64::from(u16::from_be_bytes(exact(&be)?))),
        PointType::I16 => Raw::Signed(i64::from(i16::from_be_bytes(exact(&be)?))),
        PointType::U32 => Raw::Unsigned(u64::from(u32::from_be_bytes(exact(&be)?))),
        PointType::I32 => Raw::Signed(i64::from(i32::from_be_bytes(exact(&be)?))),
        PointType::U64 => Raw::Unsigned(u64::from_be_bytes(exact(&be)?)),
        PointType::I64 => Raw::Signed(i64::from_be_bytes(exact(&be)?)),
        PointType::F32 => Raw::Float(f64::from(f32::from_be_bytes(exact(&be)?))),
        PointType::F64 => Raw::Float(f64::from_be_bytes(exact(&be)?)),
        PointType::String(_) => {
            // Strings keep register order; only the byte swap applies.
            let mut bytes = Vec::with_capacity(regs.len() * 2);
            for w in regs {
                let w = if order.byte_swap() {
                    w.swap_bytes()
                } else {
                    *w
                };
                bytes.extend_from_slice(&w.to_be_bytes());
            }
            let text = String::from_utf8_lossy(&bytes);
            Raw::Text(text.trim_end_matches(['\0', ' ']).to_string())
        }
        PointType::Bit(n) => {
            if n > 15 {
                return Err(DecodeError::BitIndex(n));
            }
            let word = u16::from_be_bytes(exact(&be)?);
            Raw::Bool((word >> n) & 1 == 1)
        }
    })
}

/// How a raw value becomes the stored one: `value = raw * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    pub scale: Option<f64>,
    pub offset: Option<f64>,
}

impl Scaling {
    pub const NONE: Scaling = Scaling {
        scale: None,
        offset: None,
    };

    fn is_identity(&self) -> bool {
        self.scale.is_none() && self.offset.is_none()
    }
}

/// Turns a raw value into the record value. Integers stay exact (`I64`) unless scaled or
/// beyond `i64`; scaled values and floats become `F64`. Non-finite floats are refused because
/// they cannot be represented in the JSON the CSE receives.
pub fn to_value(raw: Raw, scaling: Scaling) -> Result<Value, DecodeError> {
    let as_float = match raw {
        Raw::Bool(b) => return Ok(Value::Bool(b)),
        Raw::Text(s) => return Ok(Value::Str(s)),
        Raw::Unsigned(u) if scaling.is_identity() => {
            return Ok(match i64::try_from(u) {
                Ok(i) => Value::I64(i),
                Err(_) => Value::F64(u as f64),
            })
        }
        Raw::Signed(i) if scaling.is_identity() => return Ok(Value::I64(i)),
        Raw::Unsigned(u) => u as f64,
        Raw::Signed(i) => i as f64,
        Raw::Float(f) => f,
    };
    let v = as_float * scaling.scale.unwrap_or(1.0) + scaling.offset.unwrap_or(0.0);
    if v.is_finite() {
        Ok(Value::F64(v))
    } else {
        Err(DecodeError::NotFinite)
    }
}

/// Decodes and scales one register-backed point in one step.
pub fn decode_point(
    kind: PointType,
    order: WordOrder,
    scaling: Scaling,
    regs: &[u16],
) -> Result<Value, DecodeError> {
    to_value(decode_registers(kind, order, regs)?, scaling)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
