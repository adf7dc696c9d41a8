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
//! reads them, checks them and turns them into a [`ReportPolicy`] for one device.

use super::config::DeviceConfig;
use super::profile::Point;
use crate::config::issue::ConfigIssue;
use crate::config::report::did_you_mean;
use crate::southbound::report_filter::{Deadband, PointRule, ReportRules};
use indexmap::IndexMap;
use serde::{de, Deserialize, Deserializer};
use std::collections::HashMap;
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

/// The report rules of one device, ready for the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPolicy {
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// Every point of the device, with the device's values filled in where the point sets
    /// none. Each point has its own heartbeat, so points of a slow group or ones that rarely
    /// change are refreshed on time even when other points keep the device's records coming.
    pub points: HashMap<String, PointRule>,
    /// Rule of a point not in `points` (none is, after [`ReportPolicy::new`]).
    pub default: PointRule,
}

impl ReportPolicy {
    /// The policy of a device with report table `cfg` and resolved `points`.
    pub fn new(cfg: &ReportConfig, points: &[Point]) -> Self {
        let default = PointRule {
            deadband: cfg.deadband,
            min_interval: None,
            max_interval: Some(cfg.max_interval),
        };
        let points = points
            .iter()
            .map(|p| {
                let own = cfg.points.get(&p.name).cloned().unwrap_or_default();
                let rule = PointRule {
                    deadband: own.deadband.unwrap_or(cfg.deadband),
                    min_interval: own.min_interval,
                    max_interval: Some(own.max_interval.unwrap_or(cfg.max_interval)),
                };
                (p.name.clone(), rule)
            })
            .collect();
        ReportPolicy {
            min_interval: cfg.min_interval,
            max_interval: cfg.max_interval,
            points,
            default,
        }
    }
}

impl ReportRules for ReportPolicy {
    fn min_interval(&self) -> Duration {
        self.min_interval
    }
    fn max_interval(&self) -> Duration {
        self.max_interval
    }
    fn point(&self, name: &str) -> PointRule {
        self.points.get(name).copied().unwrap_or(self.default)
    }
}

/// Problems in `device`'s `report` table (paths relative to the device table).
pub fn report_issues(device: &DeviceConfig, points: &[Point]) -> Vec<ConfigIssue> {
    let Some(cfg) = &device.report else {
        return Vec::new();
    };
    let mut issues = Vec::new();
    check_deadband(&mut issues, "report.deadband", cfg.deadband);
    check_intervals(&mut issues, "report.", cfg.min_interval, cfg.max_interval);
    for (name, p) in &cfg.points {
        let at = format!("report.points.{name}");
        if !points.iter().any(|q| &q.name == name) {
            let names: Vec<&str> = points.iter().map(|q| q.name.as_str()).collect();
            let hint = match did_you_mean(name, &names) {
                Some(n) => format!("did you mean `{n}`?"),
                None => "use a point name of the device's profile or points (see `citygate plan`)"
                    .into(),
            };
            issues.push(
                ConfigIssue::new(
                    at.clone(),
                    format!("Device {:?} has no point {name:?}.", device.id),
                )
                .hint(hint),
            );
        }
        if let Some(d) = p.deadband {
            check_deadband(&mut issues, &format!("{at}.deadband"), d);
        }
        if p.min_interval.is_some() || p.max_interval.is_some() {
            check_intervals(
                &mut issues,
                &format!("{at}."),
                p.min_interval.unwrap_or(cfg.min_interval),
                p.max_interval.unwrap_or(cfg.max_interval),
            );
        }
    }
    issues
}

fn check_deadband(issues: &mut Vec<ConfigIssue>, path: &str, d: Deadband) {
    let (value, unit) = match d {
        Deadband::Absolute(v) => (v, ""),
        Deadband::Percent(v) => (v, "%"),
    };
    if !value.is_finite() || value < 0.0 {
        issues.push(
            ConfigIssue::new(
                path,
                format!("Deadband {value}{unit} is not a non-negative number."),
            )
            .hint("0 sends every change; 0.5 ignores moves up to ±0.5; \"1%\" ignores moves up to 1 % of the last sent value"),
        );
    }
}

fn check_intervals(issues: &mut Vec<ConfigIssue>, prefix: &str, min: Duration, max: Duration) {
    if max.is_zero() {
        issues.push(ConfigIssue::new(
            format!("{prefix}max_interval"),
            "max_interval must be longer than zero.",
        ));
    } else if min > max {
        issues.push(
            ConfigIssue::new(
                format!("{prefix}min_interval"),
                format!(
                    "min_interval ({}) is longer than max_interval ({}).",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            )
            .hint("the heartbeat cannot be more frequent than the minimum interval"),
        );
    }
}

#[cfg(test)]
#[path = "report_config_tests.rs"]
mod tests;
