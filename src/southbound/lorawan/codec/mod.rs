//! Payload codecs: turn a decrypted FRMPayload into named values.
//!
//! All codecs are pure and total: any byte string gives either values or a [`CodecError`],
//! never a panic, because payloads come from devices whose firmware we do not control.

pub mod cayenne_lpp;
pub mod declarative;
pub mod encoder;
pub mod raw;

use crate::record::Values;
use indexmap::IndexMap;
use serde::Deserialize;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("payload too short: field {field} needs bytes {start}..{end}, payload has {len}")]
    TooShort {
        field: String,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("unknown Cayenne LPP type {kind} at byte {at}")]
    UnknownLppType { kind: u8, at: usize },
    #[error("no fields declared for FPort {0}")]
    NoPort(u8),
}

/// Decoded values plus the unit of each value that has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub values: Values,
    pub units: IndexMap<String, String>,
}

/// A device's codec, chosen in its config (`codec = { type = "cayenne_lpp" }`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CodecConfig {
    /// The payload itself as `payload` (hex or base64 string), plus `fport`.
    Raw {
        #[serde(default)]
        encoding: raw::RawEncoding,
    },
    CayenneLpp,
    Declarative {
        ports: Vec<declarative::PortSpec>,
    },
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig::Raw {
            encoding: raw::RawEncoding::Hex,
        }
    }
}

impl CodecConfig {
    pub fn decode(&self, fport: u8, payload: &[u8]) -> Result<Decoded, CodecError> {
        match self {
            CodecConfig::Raw { encoding } => Ok(raw::decode(*encoding, payload)),
            CodecConfig::CayenneLpp => cayenne_lpp::decode(payload),
            CodecConfig::Declarative { ports } => declarative::decode(ports, fport, payload),
        }
    }
}
