//! One line of a replay file.

use crate::record::{now_ms, parse_ts, Record, Values};
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineError {
    #[error("not valid UTF-8 (first bad byte at column {column})")]
    Utf8 { column: usize },
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

/// Longest piece of input text an error message quotes (`ts` values, field names).
const QUOTE_MAX: usize = 40;

/// Parses one line as read from the file (any bytes) into a record from `adapter`.
pub fn parse_line_bytes(adapter: &str, bytes: &[u8]) -> Result<Record, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LineError::Utf8 {
        column: e.valid_up_to() + 1,
    })?;
    parse_line(adapter, text)
}

/// Parses one line into a record from `adapter`. Error messages quote at most a short piece of
/// the line, so they can be logged as they are.
pub fn parse_line(adapter: &str, text: &str) -> Result<Record, LineError> {
    let line: Line =
        serde_json::from_str(text).map_err(|e| LineError::Json(quote(&e.to_string(), 200)))?;
    if line.device.trim().is_empty() {
        return Err(LineError::EmptyDevice);
    }
    if line.values.is_empty() {
        return Err(LineError::NoValues);
    }
    let ts_ms = match line.ts {
        Some(ts) => parse_ts(&ts).ok_or_else(|| LineError::Timestamp(quote(&ts, QUOTE_MAX)))?,
        None => now_ms(),
    };
    Ok(Record {
        adapter: adapter.to_owned(),
        device: line.device,
        ts_ms,
        values: line.values,
        meta: line.meta,
        kind: Default::default(),
    })
}

/// `text` cut to at most `max` characters (an ellipsis marks the cut).
fn quote(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
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

    #[test]
    fn bad_bytes_and_long_fields_give_short_errors() {
        assert_eq!(
            parse_line_bytes("r", b"{\"device\":\"d\xff\"}"),
            Err(LineError::Utf8 { column: 13 })
        );
        let long_ts = "9".repeat(100_000);
        let line = format!(r#"{{"device":"d","ts":"{long_ts}","values":{{"a":1}}}}"#);
        let err = parse_line("r", &line).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
        let long_key = "k".repeat(100_000);
        let line = format!(r#"{{"device":"d","{long_key}":1}}"#);
        let err = parse_line("r", &line).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
        assert!(parse_line_bytes("r", br#"{"device":"d","values":{"a":1}}"#).is_ok());
    }
}
