//! The `report` table: parsing, checks with key paths, the policy a device gets.

use super::*;
use crate::config::issue::ConfigIssue;
use crate::southbound::modbus::config::DeviceConfig;
use crate::southbound::modbus::profile::resolve_device;
use crate::southbound::modbus::report_policy::{report_issues, ReportPolicy};
use crate::southbound::report_filter::{PointRule, ReportRules};

fn device(extra: &str) -> DeviceConfig {
    toml::from_str(&format!(
        "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\n{extra}"
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn issues(extra: &str) -> Vec<ConfigIssue> {
    let d = device(extra);
    let points = resolve_device(&d).unwrap();
    report_issues(&d, &points)
}

#[test]
fn absent_means_off_and_defaults_are_documented() {
    assert_eq!(device("").report, None);
    let d = device("report = {}");
    let r = d.report.unwrap();
    assert_eq!(r.deadband, Deadband::Absolute(0.0));
    assert_eq!(r.min_interval, Duration::ZERO);
    assert_eq!(r.max_interval, DEFAULT_MAX_INTERVAL);
}

#[test]
fn numbers_are_absolute_and_percent_strings_relative() {
    let d = device(
        "report.deadband = \"1.5%\"\nreport.min_interval = \"10s\"\nreport.max_interval = \"15m\"\n\
         report.points.frequency = { deadband = 0.05, max_interval = \"1h\" }\n\
         report.points.voltage_l1 = { deadband = 2 }\n",
    );
    let r = d.report.clone().unwrap();
    assert_eq!(r.deadband, Deadband::Percent(1.5));
    assert_eq!(r.min_interval, Duration::from_secs(10));
    let points = resolve_device(&d).unwrap();
    assert!(report_issues(&d, &points).is_empty());
    let p = ReportPolicy::new(&r, &points);
    assert_eq!(
        p.point("frequency"),
        PointRule {
            deadband: Deadband::Absolute(0.05),
            min_interval: None,
            max_interval: Some(Duration::from_secs(3600)),
        }
    );
    assert_eq!(p.point("voltage_l1").deadband, Deadband::Absolute(2.0));
    // Points without their own rules get the device's, heartbeat included.
    assert_eq!(
        p.point("current_l1"),
        PointRule {
            deadband: Deadband::Percent(1.5),
            min_interval: None,
            max_interval: Some(Duration::from_secs(900)),
        }
    );
    assert!(
        p.points.len() > 10,
        "every point of the profile has its rule"
    );
}

#[test]
fn bad_values_are_reported_with_their_key_paths() {
    let e = toml::from_str::<DeviceConfig>(
        "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\nreport = { deadband = \"lots\" }",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("invalid deadband \"lots\""), "{e}");
    let e = toml::from_str::<DeviceConfig>(
        "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\nreport = { dead_band = 1 }",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown field `dead_band`"), "{e}");

    let found = issues(
        "report.deadband = -1\nreport.min_interval = \"1h\"\nreport.max_interval = \"10m\"\n\
         report.points.frequncy = { deadband = \"-2%\" }\n\
         report.points.frequency = { max_interval = \"0s\" }\n",
    );
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "report.deadband",
            "report.min_interval",
            "report.points.frequncy",
            "report.points.frequncy.deadband",
            "report.points.frequency.max_interval",
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[2].hint.as_deref(),
        Some("did you mean `frequency`?"),
        "{found:#?}"
    );
}
