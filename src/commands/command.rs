//! One command as the platform wrote it: the documented JSON in a contentInstance's `con`.
//!
//! ```json
//! {"id": "dim-0042", "set": {"dim_level": 40}, "not_after": "2026-11-30T22:15:00Z"}
//! {"id": "valve-7", "downlink": {"fport": 10, "hex": "01ff", "confirmed": true}}
//! ```
//!
//! `id` is the platform's name for the command (echoed in the result). Exactly one of `set`
//! (point → value, all of one device: the device is the container the instance was created in)
//! and `downlink` (a raw LoRaWAN payload, hex or base64, with its FPort). `not_after` (RFC 3339)
//! is optional; without it the adapter's default expiry applies from the instance's creation
//! time at the CSE.
use crate::record::{Value, Values};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Longest accepted command id (it is echoed in results and logs).
pub const MAX_ID_LEN: usize = 128;
/// Most points one command may set.
pub const MAX_POINTS: usize = 32;
/// Largest raw downlink payload accepted before any region limit is applied.
pub const MAX_DOWNLINK_BYTES: usize = 242;

/// A parsed command, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The CSE's resource id (`ri`) of the instance: the key of the journal, unique per CSE.
    pub key: String,
    /// The platform's command id from `con`.
    pub id: String,
    /// The device the command is for (the device id, not the container name).
    pub device: String,
    pub action: Action,
    /// When the instance was created at the CSE (`ct`), in UTC milliseconds.
    pub created_ms: i64,
    /// From `con`; `None` means "the adapter's default expiry after `created_ms`".
    pub not_after_ms: Option<i64>,
    /// The instance's creator (`cr`): who asked.
    pub creator: String,
}

/// What the command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these points of the device, in this order.
    Set(Values),
    /// Send this payload to a LoRaWAN device.
    Downlink(Downlink),
}

/// A raw LoRaWAN downlink.
#[derive(Debug, Clone, PartialEq)]
pub struct Downlink {
    pub fport: u8,
    pub payload: Vec<u8>,
    pub confirmed: bool,
}

/// Why a `con` is not a command. The message is what the result's `reason` says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandParseError {
    #[error("the command is not JSON of the documented form: {0}")]
    NotJson(String),
    #[error("the command has no \"id\" (or it is empty or longer than {MAX_ID_LEN} characters)")]
    BadId,
    #[error("the command needs exactly one of \"set\" and \"downlink\"")]
    NoAction,
    #[error("\"set\" is empty or names more than {MAX_POINTS} points")]
    BadSet,
    #[error("\"set\" value of point {point:?} is not a number, boolean or string")]
    BadValue { point: String },
    #[error("\"downlink\": {0}")]
    BadDownlink(String),
    #[error("\"not_after\" is not an RFC 3339 time: {0:?}")]
    BadNotAfter(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    id: Option<String>,
    set: Option<serde_json::Map<String, serde_json::Value>>,
    downlink: Option<WireDownlink>,
    not_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDownlink {
    fport: u8,
    hex: Option<String>,
    base64: Option<String>,
    #[serde(default)]
    confirmed: bool,
}

/// Where an instance came from, as the northbound side read it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub key: String,
    pub device: String,
    pub created_ms: i64,
    pub creator: String,
}

impl Command {
    /// Parses a `con` (the JSON value, or a string holding JSON) for the device `origin` names.
    pub fn parse(con: &serde_json::Value, origin: Origin) -> Result<Command, CommandParseError> {
        let parsed;
        let con = match con {
            serde_json::Value::String(s) => {
                parsed = serde_json::from_str::<serde_json::Value>(s)
                    .map_err(|e| CommandParseError::NotJson(e.to_string()))?;
                &parsed
            }
            other => other,
        };
        let wire: Wire = serde_json::from_value(con.clone())
            .map_err(|e| CommandParseError::NotJson(e.to_string()))?;
        let id = wire
            .id
            .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_LEN)
            .ok_or(CommandParseError::BadId)?;
        let action = match (wire.set, wire.downlink) {
            (Some(set), None) => Action::Set(parse_set(set)?),
            (None, Some(d)) => Action::Downlink(parse_downlink(d)?),
            _ => return Err(CommandParseError::NoAction),
        };
        let not_after_ms = match wire.not_after {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc).timestamp_millis())
                    .map_err(|_| CommandParseError::BadNotAfter(s))?,
            ),
        };
        Ok(Command {
            key: origin.key,
            id,
            device: origin.device,
            action,
            created_ms: origin.created_ms,
            not_after_ms,
            creator: origin.creator,
        })
    }

    /// The moment after which the command must not be executed: `not_after`, or the creation
    /// time plus `default_expiry`, whichever the command says (never later than the default
    /// allows when `not_after` is absent).
    pub fn deadline_ms(&self, default_expiry: std::time::Duration) -> i64 {
        self.not_after_ms.unwrap_or_else(|| {
            self.created_ms
                .saturating_add(default_expiry.as_millis() as i64)
        })
    }
}

fn parse_set(set: serde_json::Map<String, serde_json::Value>) -> Result<Values, CommandParseError> {
    if set.is_empty() || set.len() > MAX_POINTS {
        return Err(CommandParseError::BadSet);
    }
    let mut values = Values::new();
    for (point, v) in set {
        let value = match &v {
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::I64(i),
                None => match n.as_f64() {
                    Some(f) if f.is_finite() => Value::F64(f),
                    _ => return Err(CommandParseError::BadValue { point }),
                },
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            _ => return Err(CommandParseError::BadValue { point }),
        };
        values.insert(point, value);
    }
    Ok(values)
}

fn parse_downlink(d: WireDownlink) -> Result<Downlink, CommandParseError> {
    use base64::Engine;
    let payload = match (d.hex, d.base64) {
        (Some(h), None) => hex::decode(h.trim())
            .map_err(|e| CommandParseError::BadDownlink(format!("\"hex\" is not hex: {e}")))?,
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| CommandParseError::BadDownlink(format!("\"base64\": {e}")))?,
        _ => {
            return Err(CommandParseError::BadDownlink(
                "needs exactly one of \"hex\" and \"base64\"".into(),
            ))
        }
    };
    if d.fport == 0 || d.fport > 223 {
        return Err(CommandParseError::BadDownlink(format!(
            "fport {} is not an application port (1..=223)",
            d.fport
        )));
    }
    if payload.len() > MAX_DOWNLINK_BYTES {
        return Err(CommandParseError::BadDownlink(format!(
            "payload of {} bytes exceeds {MAX_DOWNLINK_BYTES}",
            payload.len()
        )));
    }
    Ok(Downlink {
        fport: d.fport,
        payload,
        confirmed: d.confirmed,
    })
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
