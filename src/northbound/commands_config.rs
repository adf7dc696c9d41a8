//! `[northbound.commands]`: whether the gateway takes commands from the platform, and from
//! whom. Off by default; nothing of the command path runs (no containers, no polling) while
//! `enabled = false`.
use super::onem2m::name::is_plain_name;
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::time::Duration;

/// `[northbound.commands]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The only originators (AE-IDs of the city platform) allowed to CREATE command
    /// instances: written into the command containers' access control policy and checked
    /// again against each instance's creator (`cr`).
    #[serde(default)]
    pub originators: Vec<String>,
    /// A command without `not_after` expires this long after its creation at the CSE.
    #[serde(
        default = "default_expiry",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub default_expiry: Duration,
    /// How often the command containers are read for instances whose notification was lost
    /// (also on start and after every reconnect).
    #[serde(
        default = "default_catch_up_interval",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub catch_up_interval: Duration,
    /// HTTP: how long one long-poll of the polling channel waits at the CSE (its `rqet`).
    #[serde(
        default = "default_poll_timeout",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub poll_timeout: Duration,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            enabled: false,
            originators: Vec::new(),
            default_expiry: default_expiry(),
            catch_up_interval: default_catch_up_interval(),
            poll_timeout: default_poll_timeout(),
        }
    }
}

impl CommandsConfig {
    /// Problems, with paths relative to `[northbound]`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !self.enabled {
            return issues;
        }
        if self.originators.is_empty() {
            issues.push(
                ConfigIssue::new(
                    "commands.originators",
                    "commands are enabled but no originator may send them.",
                )
                .hint("name the platform's AE-ID, e.g. originators = [\"Cplatform\"]"),
            );
        }
        for (i, o) in self.originators.iter().enumerate() {
            let ok = (o.starts_with('C') || o.starts_with('S')) && o.len() > 1 && is_plain_name(o);
            if !ok {
                issues.push(
                    ConfigIssue::new(
                        format!("commands.originators.{i}"),
                        format!("\"{o}\" is not an AE-ID."),
                    )
                    .hint("an AE-ID starts with C or S, e.g. \"Cplatform\""),
                );
            }
        }
        if self.default_expiry < Duration::from_secs(1) {
            issues.push(
                ConfigIssue::new(
                    "commands.default_expiry",
                    "default_expiry must be at least 1s.",
                )
                .hint("e.g. \"5m\""),
            );
        }
        if self.catch_up_interval < Duration::from_secs(1) {
            issues.push(
                ConfigIssue::new(
                    "commands.catch_up_interval",
                    "catch_up_interval must be at least 1s.",
                )
                .hint("e.g. \"60s\""),
            );
        }
        if self.poll_timeout < Duration::from_secs(1)
            || self.poll_timeout > Duration::from_secs(600)
        {
            issues.push(
                ConfigIssue::new(
                    "commands.poll_timeout",
                    "poll_timeout must be between 1s and 10m.",
                )
                .hint("e.g. \"30s\""),
            );
        }
        issues
    }
}

fn default_expiry() -> Duration {
    Duration::from_secs(300)
}

fn default_catch_up_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_poll_timeout() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CommandsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn off_by_default_and_defaults_are_documented_ones() {
        let c = parse("");
        assert!(!c.enabled);
        assert_eq!(c.default_expiry, Duration::from_secs(300));
        assert_eq!(c.catch_up_interval, Duration::from_secs(60));
        assert_eq!(c.poll_timeout, Duration::from_secs(30));
        assert!(c.validate().is_empty());
    }

    #[test]
    fn enabled_needs_valid_originators() {
        let paths: Vec<String> = parse("enabled = true")
            .validate()
            .into_iter()
            .map(|i| i.path)
            .collect();
        assert_eq!(paths, ["commands.originators"]);
        let c = parse(
            "enabled = true\noriginators = [\"Cplatform\", \"platform\"]\ndefault_expiry = \"2m\"",
        );
        let paths: Vec<String> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, ["commands.originators.1"]);
        assert_eq!(c.default_expiry, Duration::from_secs(120));
    }
}
