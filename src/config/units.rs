//! Human units in the config: durations like `"10s"` / `"1h 30m"` and sizes like `"512MiB"`.
//!
//! Technicians write units; code works with `Duration` and bytes. Both accept an integer too
//! (seconds, bytes) so a bare `30` is not a surprise error.

use serde::{de, Deserialize, Deserializer};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(u64),
    Text(String),
}

/// Parses `"250ms"`, `"10s"`, `"1h 30m"`, `"30d"` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?}: {e}; write a number with a unit, e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"7d\"")
    })
}

/// Parses `"512MiB"`, `"64 MB"`, `"1GiB"`, `"4096"` (bytes). Binary and decimal prefixes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a number followed by a unit such as \"512MiB\"")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {s:?}: use B, KB, KiB, MB, MiB, GB or GiB"
            ))
        }
    };
    Ok((num * mult as f64).round() as u64)
}

/// `#[serde(deserialize_with = "units::duration")]`
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Int(secs) => Ok(Duration::from_secs(secs)),
        Raw::Text(s) => parse_duration(&s).map_err(de::Error::custom),
    }
}

/// `#[serde(default, deserialize_with = "units::opt_duration")]`
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// `#[serde(default, deserialize_with = "units::duration_map")]`: a table of named durations
/// (`groups = { energy = "60s" }`).
pub fn duration_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<indexmap::IndexMap<String, Duration>, D::Error> {
    let raw = indexmap::IndexMap::<String, Raw>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Raw::Int(secs) => Ok((k, Duration::from_secs(secs))),
            Raw::Text(s) => parse_duration(&s)
                .map(|d| (k, d))
                .map_err(de::Error::custom),
        })
        .collect()
}

/// `#[serde(deserialize_with = "units::size")]`
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Int(b) => Ok(b),
        Raw::Text(s) => parse_size(&s).map_err(de::Error::custom),
    }
}

/// `#[serde(default, deserialize_with = "units::opt_size")]`
pub fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

/// Stands for a duration field in the JSON Schema of the config (`#[schemars(with = …)]`):
/// a number with a unit as [`parse_duration`] reads it, or whole seconds.
pub struct DurationText;

/// The units [`parse_duration`] accepts (humantime), longest first so the pattern matches whole.
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

/// What [`parse_size`] accepts: a number and an optional unit (case does not matter).
pub const SIZE_PATTERN: &str = r"^\s*[0-9]+(\.[0-9]+)?\s*([bB]|[kKmMgG]([iI]?[bB])?)?\s*$";

impl schemars::JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: a number with a unit (\"500ms\", \"10s\", \"5m\", \"1h 30m\", \"7d\"), or whole seconds.",
            "anyOf": [
                { "type": "string", "pattern": DURATION_PATTERN },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

/// Stands for a size field in the JSON Schema of the config: `"512MiB"`, `"64 MB"`, or bytes.
pub struct SizeText;

impl schemars::JsonSchema for SizeText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a number with a unit (B, KB, KiB, MB, MiB, GB, GiB; \"512MiB\", \"64 MB\"), or bytes.",
            "anyOf": [
                { "type": "string", "pattern": SIZE_PATTERN },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("64 MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    /// The schema's patterns accept what the parsers accept (and refuse what they refuse).
    #[test]
    fn schema_patterns_agree_with_the_parsers() {
        let duration = regex_lite(DURATION_PATTERN);
        for ok in [
            "250ms", "10s", "1h 30m", "2h30m", " 7d ", "1 min", "3 hours",
        ] {
            assert!(parse_duration(ok).is_ok(), "{ok}");
            assert!(duration(ok), "pattern refuses {ok}");
        }
        for bad in ["ten seconds", "10", "s", "10 parsecs", ""] {
            assert!(!duration(bad), "pattern accepts {bad}");
        }
        let size = regex_lite(SIZE_PATTERN);
        for ok in ["512MiB", "64 MB", "1.5KiB", "4096", "1gib", "10k"] {
            assert!(parse_size(ok).is_ok(), "{ok}");
            assert!(size(ok), "pattern refuses {ok}");
        }
        for bad in ["12 parsecs", "MiB", "1ki", ""] {
            assert!(parse_size(bad).is_err(), "{bad}");
            assert!(!size(bad), "pattern accepts {bad}");
        }
    }

    /// A matcher for the schema's pattern, with the validator the schema tests use.
    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
        let schema = serde_json::json!({ "type": "string", "pattern": pattern });
        let v = jsonschema::validator_for(&schema).unwrap();
        move |s| v.is_valid(&serde_json::json!(s))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("ten seconds").is_err());
    }
}
