//! Config of commands to LoRaWAN devices and of the MAC layer of the edge network server.
//!
//! Deny by default: an adapter takes commands only with `commands = true`, and then only for
//! devices with a `downlink` allow-list, only on its FPorts, up to its size, and confirmed
//! only where allowed. ADR and DevStatus polling are off unless switched on.

use super::codec::declarative::PortSpec;
use crate::commands::{Action, Command, Downlink, Safety};
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::time::Duration;

/// `downlink = { fports = [10], max_bytes = 51, confirmed = true }` on a device.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownlinkAllow {
    /// Application ports commands may use (1..=223).
    pub fports: Vec<u8>,
    /// Largest application payload, bytes (the region's limit per data rate applies too).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Whether confirmed downlinks are allowed.
    #[serde(default)]
    pub confirmed: bool,
    /// Encoder for `set` commands: the fields of one FPort, laid out as the declarative
    /// codec reads them (`{ fport = 10, fields = [...] }`). Without it only raw downlinks.
    #[serde(default)]
    pub encoder: Option<PortSpec>,
}

/// 51 bytes: the largest payload every region accepts at its slowest downlink data rate.
fn default_max_bytes() -> usize {
    51
}

impl DownlinkAllow {
    /// The command check for a device with this allow-list (no I/O): `Err` is the
    /// `rejected` reason. A downlink is never idempotent: it is sent once or reported.
    pub fn check(&self, command: &Command) -> Result<Safety, String> {
        let encoded;
        let d = match &command.action {
            Action::Downlink(d) => d,
            Action::Set(_) => {
                encoded = self.downlink_of(&command.action)?;
                &encoded
            }
        };
        if !self.fports.contains(&d.fport) {
            return Err(format!(
                "FPort {} is not allowed for this device (allowed: {:?})",
                d.fport, self.fports
            ));
        }
        if d.payload.len() > self.max_bytes {
            return Err(format!(
                "payload of {} bytes exceeds this device's max_bytes {}",
                d.payload.len(),
                self.max_bytes
            ));
        }
        if d.confirmed && !self.confirmed {
            return Err("confirmed downlinks are not allowed for this device".into());
        }
        Ok(Safety::Once)
    }

    /// The downlink a command sends: a raw one as given, a `set` through the encoder.
    pub fn downlink_of(&self, action: &Action) -> Result<Downlink, String> {
        match action {
            Action::Downlink(d) => Ok(d.clone()),
            Action::Set(values) => {
                let Some(port) = &self.encoder else {
                    return Err("this device has no encoder; send a raw downlink".into());
                };
                Ok(Downlink {
                    fport: port.fport,
                    payload: super::codec::encoder::encode(port, values)?,
                    confirmed: false,
                })
            }
        }
    }

    /// Problems of the allow-list at `path`.
    pub fn validate(&self, path: &str) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.fports.is_empty() {
            issues.push(
                ConfigIssue::new(format!("{path}.fports"), "No FPort is allowed.")
                    .hint("list the application ports the device listens on, e.g. [10]"),
            );
        }
        if let Some(p) = self.fports.iter().find(|p| !(1..=223).contains(*p)) {
            issues.push(ConfigIssue::new(
                format!("{path}.fports"),
                format!("FPort {p} is not an application port (1..=223)."),
            ));
        }
        if let Some(port) = &self.encoder {
            issues.extend(super::codec::declarative::validate(
                std::slice::from_ref(port),
                &format!("{path}.encoder"),
            ));
            if !self.fports.contains(&port.fport) {
                issues.push(ConfigIssue::new(
                    format!("{path}.encoder.fport"),
                    format!("The encoder's FPort {} is not in `fports`.", port.fport),
                ));
            }
        }
        if !(1..=crate::commands::command::MAX_DOWNLINK_BYTES).contains(&self.max_bytes) {
            issues.push(ConfigIssue::new(
                format!("{path}.max_bytes"),
                format!(
                    "max_bytes must be 1..={}.",
                    crate::commands::command::MAX_DOWNLINK_BYTES
                ),
            ));
        }
        issues
    }
}

/// `adr = { enabled = true, margin_db = 10, min_dr = 0, max_dr = 5 }` on the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdrConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Installation margin (dB) kept above the demodulation floor (ChirpStack default 10).
    #[serde(default = "default_margin")]
    pub margin_db: f64,
    /// Lowest and highest data rate ADR may choose (the region's LoRa 125 kHz rates).
    #[serde(default)]
    pub min_dr: u8,
    #[serde(default = "default_max_dr")]
    pub max_dr: u8,
}

fn default_margin() -> f64 {
    10.0
}
fn default_max_dr() -> u8 {
    5
}

impl Default for AdrConfig {
    fn default() -> Self {
        AdrConfig {
            enabled: false,
            margin_db: default_margin(),
            min_dr: 0,
            max_dr: default_max_dr(),
        }
    }
}

impl AdrConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.min_dr > self.max_dr || self.max_dr > 15 {
            issues.push(ConfigIssue::new(
                "adr",
                format!(
                    "adr.min_dr {} and adr.max_dr {} do not make a range of data rates.",
                    self.min_dr, self.max_dr
                ),
            ));
        }
        if !(0.0..=30.0).contains(&self.margin_db) {
            issues.push(ConfigIssue::new(
                "adr.margin_db",
                "adr.margin_db must be 0..=30 dB.",
            ));
        }
        issues
    }
}

/// `dev_status_interval = "24h"`: how often DevStatusReq is sent (absent = never).
pub fn validate_dev_status_interval(d: Option<Duration>) -> Vec<ConfigIssue> {
    match d {
        Some(d) if d < Duration::from_secs(60) => vec![ConfigIssue::new(
            "dev_status_interval",
            "dev_status_interval below one minute would spend the gateway's duty cycle on it.",
        )
        .hint("e.g. \"24h\"")],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Downlink;

    fn cmd(action: Action) -> Command {
        Command {
            key: "k".into(),
            id: "i".into(),
            device: "d".into(),
            action,
            created_ms: 0,
            not_after_ms: None,
            creator: "C".into(),
        }
    }

    fn down(fport: u8, len: usize, confirmed: bool) -> Command {
        cmd(Action::Downlink(Downlink {
            fport,
            payload: vec![0; len],
            confirmed,
        }))
    }

    #[test]
    fn allow_list_is_deny_by_default() {
        let a: DownlinkAllow = toml::from_str("fports = [10]").unwrap();
        assert_eq!((a.max_bytes, a.confirmed), (51, false));
        assert_eq!(a.check(&down(10, 51, false)), Ok(Safety::Once));
        assert!(a
            .check(&down(11, 1, false))
            .unwrap_err()
            .contains("FPort 11"));
        assert!(a
            .check(&down(10, 52, false))
            .unwrap_err()
            .contains("max_bytes"));
        assert!(a
            .check(&down(10, 1, true))
            .unwrap_err()
            .contains("confirmed"));
        let set = cmd(Action::Set(Default::default()));
        assert_eq!(
            a.check(&set).unwrap_err(),
            "this device has no encoder; send a raw downlink"
        );
        let bad: DownlinkAllow = toml::from_str("fports = [0, 224]\nmax_bytes = 0").unwrap();
        assert_eq!(bad.validate("devices.0.downlink").len(), 2);
    }

    #[test]
    fn set_commands_go_through_the_encoder() {
        let a: DownlinkAllow = toml::from_str(
            "fports = [10]\nencoder = { fport = 10, fields = [{ name = \"valve\", byte_offset = 0, type = \"u8\" }] }",
        )
        .unwrap();
        assert!(a.validate("d").is_empty());
        let mut v = crate::record::Values::new();
        v.insert("valve".into(), crate::record::Value::I64(3));
        let set = cmd(Action::Set(v.clone()));
        assert_eq!(a.check(&set), Ok(Safety::Once));
        assert_eq!(
            a.downlink_of(&set.action),
            Ok(Downlink {
                fport: 10,
                payload: vec![3],
                confirmed: false
            })
        );
        v.insert("valve".into(), crate::record::Value::I64(300));
        assert!(a
            .check(&cmd(Action::Set(v)))
            .unwrap_err()
            .contains("out of range"));
        let bad: DownlinkAllow = toml::from_str(
            "fports = [11]\nencoder = { fport = 10, fields = [{ name = \"valve\", byte_offset = 0, type = \"u8\" }] }",
        )
        .unwrap();
        assert_eq!(bad.validate("d").len(), 1, "encoder port not allowed");
    }

    #[test]
    fn adr_defaults_and_validation() {
        let a: AdrConfig = toml::from_str("enabled = true").unwrap();
        assert_eq!((a.margin_db, a.min_dr, a.max_dr), (10.0, 0, 5));
        assert!(a.validate().is_empty());
        let bad: AdrConfig = toml::from_str("min_dr = 4\nmax_dr = 2").unwrap();
        assert_eq!(bad.validate().len(), 1);
        assert_eq!(
            validate_dev_status_interval(Some(Duration::from_secs(5))).len(),
            1
        );
    }
}
