//! A Modbus device's report policy: its `report` table ([`super::report_config`]) checked
//! against the device's points and resolved per point, ready for the filter in
//! [`crate::southbound::report_filter`].
use super::config::DeviceConfig;
use super::profile::Point;
use super::report_config::ReportConfig;
use crate::config::issue::ConfigIssue;
use crate::config::report::did_you_mean;
use crate::southbound::report_filter::{Deadband, PointRule, ReportRules};
use std::collections::HashMap;
use std::time::Duration;

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
