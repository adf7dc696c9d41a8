//! `[management]`: whether the gateway shows itself and its devices to the platform as oneM2M
//! `<node>` resources with mgmtObjs, and how often counters go out (docs/config.md).
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::time::Duration;

/// Shortest `update_interval`: counters of a fleet must not load the CSE.
pub const MIN_UPDATE_INTERVAL: Duration = Duration::from_secs(60);

/// Shortest `remote_config_rollback_after`.
pub const MIN_ROLLBACK_AFTER: Duration = Duration::from_secs(1);

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
    /// The platform may replace this config by writing a TOML text into the gateway's config
    /// container (docs/management.md, "Remote config"). Needs `[northbound.commands]
    /// enabled` (the notification arrives the way commands do).
    pub remote_config: bool,
    /// The only platform originators that may write a config (the container's ACP grants
    /// them CREATE, and the instance's creator `cr` is checked on receipt).
    pub remote_config_originators: Vec<String>,
    /// After a remote change, an adapter that ran well before and keeps failing this long
    /// makes the gateway roll back to the previous config on its own.
    #[serde(deserialize_with = "crate::config::units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub remote_config_rollback_after: Duration,
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
            remote_config: false,
            remote_config_originators: Vec::new(),
            remote_config_rollback_after: Duration::from_secs(300),
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
        if self.remote_config && self.remote_config_originators.is_empty() {
            issues.push(
                ConfigIssue::new(
                    "remote_config_originators",
                    "remote_config = true needs at least one platform originator in remote_config_originators.",
                )
                .hint("e.g. remote_config_originators = [\"Cplatform\"]: only they may write a config"),
            );
        }
        if self
            .remote_config_originators
            .iter()
            .any(|o| o.is_empty() || o.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            issues.push(
                ConfigIssue::new(
                    "remote_config_originators",
                    "An originator in remote_config_originators is empty or contains spaces.",
                )
                .hint("write the platform's AE-ID as the CSE knows it, e.g. \"Cplatform\""),
            );
        }
        if self.remote_config_rollback_after < MIN_ROLLBACK_AFTER {
            issues.push(
                ConfigIssue::new(
                    "remote_config_rollback_after",
                    format!(
                        "remote_config_rollback_after = {:?} is shorter than the minimum of 1s.",
                        self.remote_config_rollback_after
                    ),
                )
                .hint("an adapter needs time to connect after a change (default 5m)"),
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
        assert!(!c.remote_config);
        let c: ManagementConfig =
            toml::from_str("remote_config = true\nremote_config_rollback_after = \"500ms\"")
                .unwrap();
        let paths: Vec<_> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            ["remote_config_originators", "remote_config_rollback_after"]
        );
    }

    #[test]
    fn remote_config_needs_the_command_route() {
        let base = "[northbound]\ncse_url = \"http://127.0.0.1:8080\"\noriginator = \"Cgw\"\n";
        let rc = "[management]\nremote_config = true\nremote_config_originators = [\"Cp\"]\n";
        let err = crate::config::load_str(
            &format!("{base}{rc}"),
            std::path::Path::new("citygate.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("citygate.toml:5:"), "{err}");
        assert!(
            err.contains("needs [northbound.commands] enabled = true"),
            "{err}"
        );
        let ok =
            format!("{base}[northbound.commands]\nenabled = true\noriginators = [\"Cp\"]\n{rc}");
        let cfg = crate::config::load_str(&ok, std::path::Path::new("c.toml")).unwrap();
        assert!(cfg.management.remote_config);
    }
}
