//! The `report` table of a Modbus device: report by exception (off when absent).
//!
//! ```toml
//! [[southbound.cabinet.devices]]
//! id = "meter-1"
//! unit = 1
//! profile = "eastron_sdm630"
//! report.deadband = "1%"          # every numeric point: moves up to 1 % are not sent
//! report.min_interval = "10s"     # no record within 10 s of the last one
//! report.max_interval = "15m"     # heartbeat: every point at least every 15 min
//! report.points.total_import_kwh = { deadband = 0.01 }   # per point, over the above
//! report.points.frequency = { deadband = 0.05, max_interval = "1h" }
//! ```
//!
//! (`report = { deadband = "1%", … }` on one line works too, but then the points go inside
//! it: TOML cannot add dotted keys to an inline table.)
//!
//! `deadband` is a number in the point's unit (`0.5` = ±0.5 V) or a percentage of the value last
//! sent (`"1%"`). The rules themselves live in [`crate::southbound::report_filter`]; this file
//! reads the table; `report_policy` checks it against the device's points and turns it into
//! the device's policy.

use crate::southbound::report_filter::Deadband;
use indexmap::IndexMap;
use serde::{de, Deserialize, Deserializer};
use std::time::Duration;

/// Heartbeat when `max_interval` is not set: the BLE default (`max_silence`) too.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(15 * 60);

fn default_max_interval() -> Duration {
    DEFAULT_MAX_INTERVAL
}

/// A device's `report` table.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Default deadband of the device's numeric points (0 = any change is sent).
    #[serde(default, deserialize_with = "deadband")]
    #[schemars(with = "DeadbandText")]
    pub deadband: Deadband,
    /// No record within this long of the last one (quality changes excepted).
    #[serde(default, deserialize_with = "crate::config::units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub min_interval: Duration,
    /// Heartbeat: every point is sent at least this often.
    #[serde(
        default = "default_max_interval",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub max_interval: Duration,
    /// Rules of single points, by point name, over the device's.
    #[serde(default)]
    pub points: IndexMap<String, PointReportConfig>,
}

/// The rules of one point; each key left out follows the device's `report` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointReportConfig {
    #[serde(default, deserialize_with = "opt_deadband")]
    #[schemars(with = "Option<DeadbandText>")]
    pub deadband: Option<Deadband>,
    #[serde(default, deserialize_with = "crate::config::units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub min_interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::config::units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub max_interval: Option<Duration>,
}

/// Stands for a deadband in the JSON Schema of the config: a number in the point's unit, or a
/// percentage of the last sent value (`"2%"`).
pub struct DeadbandText;

impl schemars::JsonSchema for DeadbandText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Deadband".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A deadband: a number in the point's unit (0.5), or a percentage of the last sent value (\"2%\").",
            "anyOf": [
                { "type": "number", "minimum": 0 },
                { "type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$" }
            ]
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDeadband {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Parses `"2%"` / `"0.5 %"` (percent of the last sent value).
pub fn parse_percent(s: &str) -> Result<Deadband, String> {
    s.trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(Deadband::Percent)
        .ok_or_else(|| {
            format!(
                "invalid deadband {s:?}: write a number in the point's unit (0.5) or a percentage of the last sent value (\"2%\")"
            )
        })
}

fn deadband<'de, D: Deserializer<'de>>(d: D) -> Result<Deadband, D::Error> {
    match RawDeadband::deserialize(d)? {
        RawDeadband::Int(n) => Ok(Deadband::Absolute(n as f64)),
        RawDeadband::Float(x) => Ok(Deadband::Absolute(x)),
        RawDeadband::Text(s) => parse_percent(&s).map_err(de::Error::custom),
    }
}

fn opt_deadband<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Deadband>, D::Error> {
    deadband(d).map(Some)
}

#[cfg(test)]
#[path = "report_config_tests.rs"]
mod tests;
