//! One line of a replay file.

use crate::record::{now_ms, parse_ts, Record, Values};
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineError {
    #[error("not valid JSON for a record: {0}")]
    Json(String),
    #[error("`device` is empty")]
    EmptyDevice,
    #[error("`ts` {0:?} is not an RFC 3339 timestamp (e.g. 2026-11-23T10:00:00Z)")]
    Timestamp(String),
    #[error("`values` is empty")]
    NoValues,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    device: String,
    ts: Option<String>,
    values: Values,
    #[serde(default)]
    meta: Values,
}

/// Parses one line into a record from `adapter`.
pub fn parse_line(adapter: &str, text: &str) -> Result<Record, LineError> {
    let line: Line = serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))?;
    if line.device.trim().is_empty() {
        return Err(LineError::EmptyDevice);
    }
    if line.values.is_empty() {
        return Err(LineError::NoValues);
    }
    let ts_ms = match line.ts {
        Some(ts) => parse_ts(&ts).ok_or(LineError::Timestamp(ts))?,
        None => now_ms(),
    };
    Ok(Record {
        adapter: adapter.to_owned(),
        device: line.device,
        ts_ms,
        values: line.values,
        meta: line.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;

    #[test]
    fn parses_the_documented_line() {
        let r = parse_line(
            "r1",
            r#"{"device": "d1", "ts": "2026-11-23T10:00:00Z", "values": {"temperature": 21.5, "door": true}}"#,
        )
        .unwrap();
        assert_eq!(r.device, "d1");
        assert_eq!(r.ts_rfc3339(), "2026-11-23T10:00:00.000Z");
        assert_eq!(r.values["temperature"], Value::F64(21.5));
        assert_eq!(r.values["door"], Value::Bool(true));
    }

    #[test]
    fn rejects_bad_lines_with_reasons() {
        assert!(matches!(parse_line("r", "{"), Err(LineError::Json(_))));
        assert_eq!(
            parse_line("r", r#"{"device":"","values":{"a":1}}"#),
            Err(LineError::EmptyDevice)
        );
        assert_eq!(
            parse_line("r", r#"{"device":"d","ts":"yesterday","values":{"a":1}}"#),
            Err(LineError::Timestamp("yesterday".into()))
        );
        assert_eq!(
            parse_line("r", r#"{"device":"d","values":{}}"#),
            Err(LineError::NoValues)
        );
        let before = now_ms();
        let r = parse_line("r", r#"{"device":"d","values":{"a":1}}"#).unwrap();
        assert!(r.ts_ms >= before);
    }
}
