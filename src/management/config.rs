//! `[management]`: whether the gateway shows itself and its devices to the platform as oneM2M
//! `<node>` resources with mgmtObjs, and how often counters go out (docs/config.md).
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::time::Duration;

/// Shortest `update_interval`: counters of a fleet must not load the CSE.
pub const MIN_UPDATE_INTERVAL: Duration = Duration::from_secs(60);

/// Longest `debounce`: a status change must reach the platform promptly.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    /// Publish the node, its mgmtObjs and one node per field device (needs `[northbound]`).
    pub enabled: bool,
    /// Free text for deviceInfo `loc` (street, cabinet number); empty = not sent.
    pub location: String,
    /// deviceInfo `man`: who built the box (the cabinet hardware varies per site).
    pub manufacturer: String,
    /// deviceInfo `mod`: the box model.
    pub model: String,
    /// Counters (memory, eventLog, battery levels) go out at most this often, and only when
    /// they changed.
    #[serde(deserialize_with = "crate::config::units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub update_interval: Duration,
    /// New devices and status changes go out this long after the first change, so a burst
    /// (a bus that fails with all its devices) is one pass, not one per device.
    #[serde(deserialize_with = "crate::config::units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub debounce: Duration,
    /// The platform may make the gateway restart through the reboot mgmtObj (`rbo = true`):
    /// drain, exit with [`crate::runtime::shutdown::EXIT_RESTART`], systemd starts it again.
    /// Off: the request is refused (reset, logged, counted). Needs `[northbound.commands]
    /// enabled` (the notification arrives the way commands do).
    pub allow_restart: bool,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            enabled: false,
            location: String::new(),
            manufacturer: "unknown".into(),
            model: "citygate gateway".into(),
            update_interval: Duration::from_secs(300),
            debounce: Duration::from_secs(1),
            allow_restart: false,
        }
    }
}

impl ManagementConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.update_interval < MIN_UPDATE_INTERVAL {
            issues.push(
                ConfigIssue::new(
                    "update_interval",
                    format!(
                        "update_interval = {:?} is shorter than the minimum of 1m.",
                        self.update_interval
                    ),
                )
                .hint("counters go out at most this often; use 1m or more (default 5m)"),
            );
        }
        if self.debounce > MAX_DEBOUNCE {
            issues.push(
                ConfigIssue::new(
                    "debounce",
                    format!(
                        "debounce = {:?} is longer than the maximum of 1m.",
                        self.debounce
                    ),
                )
                .hint("status changes should reach the platform promptly (default 1s)"),
            );
        }
        for (key, value) in [
            ("location", &self.location),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
        ] {
            if value.chars().count() > 256 || value.chars().any(char::is_control) {
                issues.push(
                    ConfigIssue::new(
                        key,
                        format!("{key} must be one line of at most 256 characters."),
                    )
                    .hint("it is sent as text in deviceInfo"),
                );
            }
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c: ManagementConfig = toml::from_str("").unwrap();
        assert!(!c.enabled);
        assert_eq!(c.update_interval, Duration::from_secs(300));
        assert!(c.validate().is_empty());
        let c: ManagementConfig = toml::from_str(
            "enabled = true\nupdate_interval = \"30s\"\ndebounce = \"2m\"\nlocation = \"a\\nb\"",
        )
        .unwrap();
        let paths: Vec<_> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, ["update_interval", "debounce", "location"]);
        assert!(!c.allow_restart);
        assert!(toml::from_str::<ManagementConfig>("allow_reboot = true").is_err());
    }
}
