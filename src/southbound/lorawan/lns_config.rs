//! Config of `type = "lorawan_lns_mqtt"`: uplinks (and commands) through an existing LoRaWAN
//! network server's MQTT integration (ChirpStack v4, The Things Stack v3).

use super::codec::{declarative, CodecConfig};
use super::config::parse_eui;
use super::downlink_config::DownlinkAllow;
use crate::config::issue::{ConfigIssue, Resource};
use crate::config::secret::SecretFields;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[southbound.<id>] type = "lorawan_lns_mqtt"`: uplinks already decrypted by an LNS.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LnsMqttConfig {
    /// `mqtt://host:1883` or `mqtts://host:8883`.
    pub broker: String,
    pub flavour: Flavour,
    /// Subscriptions; the flavour's uplink topic when empty.
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(
        default = "default_keep_alive",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub keep_alive: Duration,
    /// Codec for devices without their own entry, used when the LNS sent no decoded object.
    #[serde(default)]
    pub codec: CodecConfig,
    /// Only these DevEUIs are recorded when the list is not empty.
    #[serde(default)]
    pub devices: Vec<LnsDeviceConfig>,
    /// Accept commands (downlinks queued at the network server) for devices with a
    /// `downlink` allow-list; off by default.
    #[serde(default)]
    pub commands: bool,
    /// ChirpStack application id (UUID) or TTS application id with tenant (`app@tenant`),
    /// for the downlink topic.
    #[serde(default)]
    pub application_id: Option<String>,
    /// `mqtts://`: PEM CA bundle trusted (default: the system bundle), and an optional client
    /// certificate with its key for mutual TLS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

/// Which LNS publishes the uplinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    Chirpstack,
    Ttn,
}

impl Flavour {
    pub fn default_topic(self) -> &'static str {
        match self {
            Flavour::Chirpstack => "application/+/device/+/event/up",
            Flavour::Ttn => "v3/+/devices/+/up",
        }
    }
}

/// Per-device codec for the LNS adapter.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LnsDeviceConfig {
    pub dev_eui: String,
    #[serde(default)]
    pub codec: Option<CodecConfig>,
    /// What commands may send to the device; nothing without it.
    #[serde(default)]
    pub downlink: Option<DownlinkAllow>,
    /// TTS end-device id (the downlink topic names the device by it, not by DevEUI).
    #[serde(default)]
    pub device_id: Option<String>,
}

impl LnsMqttConfig {
    pub fn topics(&self) -> Vec<String> {
        if self.topics.is_empty() {
            vec![self.flavour.default_topic().to_owned()]
        } else {
            self.topics.clone()
        }
    }

    /// The broker password's config fields (optional; the one secret rule).
    pub fn password(&self) -> SecretFields<'_> {
        SecretFields::with_inline(
            "password",
            self.password.as_deref(),
            self.password_file.as_ref(),
            self.password_env.as_deref(),
        )
    }

    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let scheme_ok = ["mqtt://", "mqtts://", "tcp://", "ssl://"]
            .iter()
            .any(|s| self.broker.starts_with(s));
        if !scheme_ok {
            issues.push(
                ConfigIssue::new(
                    "broker",
                    format!("Broker URL {:?} has no MQTT scheme.", self.broker),
                )
                .hint("mqtt://host:1883 or mqtts://host:8883"),
            );
        }
        issues.extend(self.password().issues("", false));
        if self.password().given() && self.username.is_none() {
            issues.push(ConfigIssue::new(
                "username",
                "A broker password is given without a username.",
            ));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if t.is_empty() || t.contains('#') && !t.ends_with('#') {
                issues.push(ConfigIssue::new(
                    format!("topics.{i}"),
                    format!("Topic filter {t:?} is invalid."),
                ));
            }
        }
        if let CodecConfig::Declarative { ports } = &self.codec {
            issues.extend(declarative::validate(ports, "codec"));
        }
        let mut euis: Vec<u64> = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            match parse_eui(&d.dev_eui) {
                None => issues.push(ConfigIssue::new(
                    format!("devices.{i}.dev_eui"),
                    format!("DevEUI {:?} is not 16 hex digits.", d.dev_eui),
                )),
                Some(e) if euis.contains(&e) => issues.push(ConfigIssue::new(
                    format!("devices.{i}.dev_eui"),
                    format!("DevEUI {e:016x} is listed twice."),
                )),
                Some(e) => euis.push(e),
            }
            if let Some(CodecConfig::Declarative { ports }) = &d.codec {
                issues.extend(declarative::validate(ports, &format!("devices.{i}.codec")));
            }
            if let Some(allow) = &d.downlink {
                issues.extend(allow.validate(&format!("devices.{i}.downlink")));
            }
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            issues.push(ConfigIssue::new(
                "client_cert_file",
                "A client certificate needs its key (client_cert_file and client_key_file).",
            ));
        }
        let tls_files = self.ca_file.is_some() || self.client_cert_file.is_some();
        if tls_files && !(self.broker.starts_with("mqtts://") || self.broker.starts_with("ssl://"))
        {
            issues.push(
                ConfigIssue::new(
                    "ca_file",
                    "TLS files are set but the broker is not mqtts://.",
                )
                .hint("use an mqtts:// broker or remove ca_file / client_cert_file"),
            );
        }
        issues.extend(downlink_issues(self));
        issues
    }

    /// An MQTT client owns nothing exclusive on the box.
    pub fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
}

/// Config problems of the command settings.
pub(super) fn downlink_issues(cfg: &LnsMqttConfig) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let with_downlink = cfg.devices.iter().any(|d| d.downlink.is_some());
    if cfg.commands && with_downlink && cfg.application_id.as_deref().map_or(true, str::is_empty) {
        issues.push(
            ConfigIssue::new(
                "application_id",
                "Commands need the application id for the downlink topic.",
            )
            .hint("ChirpStack: the application's UUID; TTS: \"my-app@my-tenant\""),
        );
    }
    if cfg.flavour == Flavour::Ttn {
        for (i, d) in cfg.devices.iter().enumerate() {
            if d.downlink.is_some() && d.device_id.is_none() {
                issues.push(
                    ConfigIssue::new(
                        format!("devices.{i}.device_id"),
                        "TTS names the device by its end-device id in the downlink topic.",
                    )
                    .hint("the id shown in the TTS console, e.g. \"valve-7\""),
                );
            }
        }
    }
    issues
}
