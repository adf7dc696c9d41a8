//! `[northbound.mqtt]`: the broker settings of the MQTT binding (TS-0010).

use super::onem2m::name::is_plain_name;
use crate::config::issue::ConfigIssue;
use crate::config::secret::SecretFields;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[northbound.mqtt]`: the broker the CSE listens on (TS-0010).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
    pub broker: String,
    /// MQTT client id; default `A::<originator>` (ACME's convention), or `A::<ae_name>` while
    /// the CSE assigns the AE-ID.
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// File holding the broker password (surrounding whitespace ignored).
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the broker password.
    pub password_env: Option<String>,
    #[serde(
        default = "default_keep_alive",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub keep_alive: Duration,
    /// PEM CA bundle trusted for `mqtts://` (default: the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Originator level of the `reg_req` topic when the CSE assigns the AE-ID (`originator`
    /// `C`/`S`); default `C<ae_name>`.
    pub credential_id: Option<String>,
    /// QoS of request publishes and of the response subscription: 0 (default) or 1. Requests
    /// are idempotent (deterministic `rn`, a duplicate is answered 4105) and every request
    /// waits for its oneM2M response, retried on timeout, so QoS 1's PUBACK adds a round trip
    /// at the broker and at the CSE without making delivery safer.
    #[serde(default)]
    pub qos: u8,
}

impl MqttConfig {
    pub fn new(broker: impl Into<String>) -> Self {
        MqttConfig {
            broker: broker.into(),
            client_id: None,
            username: None,
            password_file: None,
            password_env: None,
            keep_alive: default_keep_alive(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            credential_id: None,
            qos: 0,
        }
    }

    /// The broker password's config fields (the one secret rule: [`SecretFields`]).
    pub fn password_fields(&self) -> SecretFields<'_> {
        SecretFields::external(
            "password",
            self.password_file.as_ref(),
            self.password_env.as_deref(),
        )
    }

    /// The broker password from its file or environment variable (`None` without a user).
    pub fn password(&self) -> Result<Option<String>, String> {
        if self.username.is_none() {
            return Ok(None);
        }
        self.password_fields()
            .read_required()
            .map(Some)
            .map_err(|e| e.to_string())
    }

    pub(super) fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let url = self.broker.trim();
        let ok = match url.split_once("://") {
            Some(("mqtt" | "mqtts", rest)) => {
                let hostport = rest.trim_end_matches('/');
                let (host, port) = match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse::<u16>().is_ok_and(|p| p > 0)),
                    None => (hostport, true),
                };
                !host.is_empty() && !host.contains(['/', '?', '#', '@']) && port
            }
            _ => false,
        };
        if !ok {
            issues.push(
                ConfigIssue::new(
                    "mqtt.broker",
                    format!(
                        "\"{}\" is not an mqtt:// or mqtts:// broker address.",
                        self.broker
                    ),
                )
                .hint("e.g. \"mqtt://10.0.0.5:1883\" or \"mqtts://broker.city.example:8883\""),
            );
        }
        let tls_given = self.ca_file.is_some() || self.client_cert_file.is_some();
        if tls_given && url.starts_with("mqtt://") {
            issues.push(
                ConfigIssue::new(
                    "mqtt",
                    "TLS settings are given but the broker is mqtt:// (they would be ignored).",
                )
                .hint("use an mqtts:// broker or remove ca_file / client_cert_file"),
            );
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            issues.push(
                ConfigIssue::new("mqtt", "client_cert_file and client_key_file go together.")
                    .hint("set both for mutual TLS, or neither"),
            );
        }
        if let Some(id) = &self.client_id {
            if id.is_empty() || id.len() > 128 || id.contains(['+', '#', '/']) {
                issues.push(ConfigIssue::new(
                    "mqtt.client_id",
                    format!("\"{id}\" is not a usable MQTT client id (1-128 characters, no '+', '#', '/')."),
                ));
            }
        }
        if let Some(id) = &self.credential_id {
            if !is_plain_name(id) {
                issues.push(
                    ConfigIssue::new(
                        "mqtt.credential_id",
                        format!("\"{id}\" is not a valid topic ID."),
                    )
                    .hint("letters, digits, '-', '_', '.', '~' only"),
                );
            }
        }
        match &self.username {
            Some(user) if user.is_empty() => {
                issues.push(ConfigIssue::new("mqtt.username", "The user name is empty."));
            }
            Some(_) => issues.extend(self.password_fields().issues("mqtt", true)),
            None if self.password_file.is_some() || self.password_env.is_some() => {
                issues.push(ConfigIssue::new(
                    "mqtt.username",
                    "A broker password is given without a username.",
                ));
            }
            None => {}
        }
        if self.qos > 1 {
            issues.push(ConfigIssue::new("mqtt.qos", "qos must be 0 or 1.").hint(
                "QoS 2 adds two more round trips per request and nothing a oneM2M request needs",
            ));
        }
        if self.keep_alive < Duration::from_secs(5) {
            issues.push(
                ConfigIssue::new("mqtt.keep_alive", "keep_alive must be at least 5s.")
                    .hint("e.g. \"30s\""),
            );
        }
        issues
    }
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
