//! The unit every adapter emits and the buffer stores: one reading of one device.
//!
//! One Modbus poll cycle of a device, one LoRaWAN uplink or one (rate-limited) BLE
//! advertisement becomes one [`Record`]. The buffer assigns the sequence number when the
//! record is committed ([`StoredRecord`]); adapters never invent one.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// One value of a point. Untagged so the JSON form reads naturally (`21.5`, `true`, `"on"`).
///
/// `Bytes` is the one exception: it serializes as `{"hex": "…"}` so that it survives a round
/// trip through the buffer without being confused with a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(String),
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Hex {
        hex: String,
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        Hex {
            hex: hex::encode(bytes),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let h = Hex::deserialize(d)?;
        hex::decode(h.hex).map_err(serde::de::Error::custom)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

/// Points in the order the adapter produced them (the order of the device's point map).
pub type Values = IndexMap<String, Value>;

/// A reading before it is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The adapter id (`[southbound.<id>]`) that produced the record.
    pub adapter: String,
    /// Stable device key; becomes the device's container name at the CSE.
    pub device: String,
    /// Source time in UTC milliseconds since the Unix epoch (when the value was measured).
    pub ts_ms: i64,
    pub values: Values,
    /// Radio metadata and quality flags (`rssi`, `snr`, `fcnt`, `quality.<point>` …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub meta: Values,
    /// A reading (the default, not written in JSON) or the result of a command.
    #[serde(default, skip_serializing_if = "RecordKind::is_reading")]
    pub kind: RecordKind,
}

/// What a record reports; it decides the container the record is delivered to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A reading of the device: its own container.
    #[default]
    Reading,
    /// How a command ended (see `crate::commands::outcome`): the device's result container.
    CommandResult,
}

impl RecordKind {
    pub fn is_reading(&self) -> bool {
        *self == RecordKind::Reading
    }
}

impl Record {
    /// A record stamped with the current wall clock time.
    pub fn now(adapter: impl Into<String>, device: impl Into<String>) -> Self {
        Record {
            adapter: adapter.into(),
            device: device.into(),
            ts_ms: now_ms(),
            values: Values::new(),
            meta: Values::new(),
            kind: RecordKind::Reading,
        }
    }

    /// Builder-style helper to add a value.
    pub fn with(mut self, point: impl Into<String>, value: impl Into<Value>) -> Self {
        self.values.insert(point.into(), value.into());
        self
    }

    /// The source time as RFC 3339 with milliseconds (`2026-11-23T10:00:00.000Z`).
    pub fn ts_rfc3339(&self) -> String {
        format_ts(self.ts_ms)
    }
}

/// A record the buffer has committed, with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Assigned by the buffer: strictly increasing, never reused, even after deletes.
    pub seq: u64,
    pub record: Record,
}

/// Current wall clock as UTC milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Formats UTC milliseconds as RFC 3339 (`Z`, millisecond precision).
pub fn format_ts(ts_ms: i64) -> String {
    match Utc.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ts_ms.to_string(),
    }
}

/// Formats UTC milliseconds in oneM2M basic format `YYYYMMDDTHHMMSS,ffffff`.
pub fn format_onem2m_ts(ts_ms: i64) -> Option<String> {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(ts_ms).single()?;
    Some(t.format("%Y%m%dT%H%M%S,%6f").to_string())
}

/// Parses a oneM2M basic-format time (`YYYYMMDDTHHMMSS`, optionally `,ffffff`, as UTC) into
/// UTC milliseconds.
pub fn parse_onem2m_ts(s: &str) -> Option<i64> {
    use chrono::NaiveDateTime;
    let (whole, fraction) = s.trim().split_once(',').unwrap_or((s.trim(), ""));
    let t = NaiveDateTime::parse_from_str(whole, "%Y%m%dT%H%M%S").ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{:0<3}", fraction.get(..3).unwrap_or(fraction))
        .parse()
        .ok()?;
    Some(t.and_utc().timestamp_millis() + ms)
}

/// Parses an RFC 3339 timestamp into UTC milliseconds.
pub fn parse_ts(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json() {
        let r = Record {
            adapter: "a".into(),
            device: "d1".into(),
            ts_ms: 1_795_000_000_123,
            values: [
                ("t".to_string(), Value::F64(21.5)),
                ("n".to_string(), Value::I64(-3)),
                ("whole".to_string(), Value::F64(2.0)),
                ("door".to_string(), Value::Bool(true)),
                ("s".to_string(), Value::Str("on".into())),
                ("raw".to_string(), Value::Bytes(vec![1, 2, 0xff])),
            ]
            .into_iter()
            .collect(),
            meta: Values::new(),
            kind: RecordKind::Reading,
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(json.contains(r#""raw":{"hex":"0102ff"}"#), "{json}");
    }

    #[test]
    fn timestamps_format_both_ways() {
        let ms = parse_ts("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(format_ts(ms), "2026-11-23T10:00:00.000Z");
        assert_eq!(
            format_onem2m_ts(ms).unwrap(),
            "20261123T100000,000000".to_string()
        );
        assert_eq!(parse_onem2m_ts("20261123T100000,000000"), Some(ms));
        assert_eq!(parse_onem2m_ts("20261123T100000,250000"), Some(ms + 250));
        assert_eq!(parse_onem2m_ts("20261123T100000"), Some(ms));
        assert_eq!(parse_onem2m_ts("yesterday"), None);
    }
}
