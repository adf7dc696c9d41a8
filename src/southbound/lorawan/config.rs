//! Config of the two LoRaWAN adapters: `type = "lorawan_udp"` (Semtech UDP forwarder + edge
//! join/network server) and `type = "lorawan_lns_mqtt"` (uplinks from ChirpStack or TTS).
//!
//! Validation is pure (no file or environment access); secrets are read by [`Secret::resolve`]
//! when the adapter is built, so `citygate check` can run where the key files are not.

use super::codec::{declarative, CodecConfig};
use super::crypto::{parse_hex_array, AesKey};
use super::region::Region;
use crate::config::issue::{ConfigIssue, Resource};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// `[southbound.<id>] type = "lorawan_udp"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LorawanUdpConfig {
    /// UDP address the packet forwarder sends to.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    #[serde(default)]
    pub region: Region,
    /// NetID (hex, 3 bytes) put in join-accepts; its NwkID prefixes OTAA DevAddrs.
    #[serde(default = "default_net_id")]
    pub net_id: String,
    /// Copies of one frame heard again within this window are dropped.
    #[serde(
        default = "default_dedup",
        deserialize_with = "crate::config::units::duration"
    )]
    pub dedup_window: Duration,
    /// RX1DROffset announced in join-accepts and used for downlinks.
    #[serde(default)]
    pub rx1_dr_offset: u8,
    /// RX1 delay in seconds announced in join-accepts (1..=15).
    #[serde(default = "default_rx_delay")]
    pub rx_delay: u8,
    /// Downlink TX power; the region default when absent.
    #[serde(default)]
    pub downlink_power_dbm: Option<i32>,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// Gateways remembered at once (where their downlinks go); when full, the one heard
    /// least recently is forgotten. A cabinet has one or a few concentrators.
    #[serde(default = "default_max_gateways")]
    pub max_gateways: usize,
    /// A gateway not heard (PULL_DATA) for this long is forgotten; keep it at least 3× the
    /// forwarder's `keepalive_interval` (10 s by default).
    #[serde(
        default = "default_gateway_idle_timeout",
        deserialize_with = "crate::config::units::duration"
    )]
    pub gateway_idle_timeout: Duration,
    /// Gateway EUIs (16 hex digits, as the forwarder's `gateway_ID`) served; empty = any.
    /// Datagrams of other gateways are dropped and counted.
    #[serde(default)]
    pub gateways: Vec<String>,
}

/// Default `max_gateways`.
pub const DEFAULT_MAX_GATEWAYS: usize = 64;

fn default_max_gateways() -> usize {
    DEFAULT_MAX_GATEWAYS
}
fn default_gateway_idle_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1700))
}
fn default_net_id() -> String {
    "000000".into()
}
fn default_dedup() -> Duration {
    Duration::from_millis(500)
}
fn default_rx_delay() -> u8 {
    1
}

/// LoRaWAN MAC version of a device; decides whether MAX_FCNT_GAP applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum MacVersion {
    #[serde(rename = "1.0.2")]
    V1_0_2,
    #[serde(rename = "1.0.3")]
    V1_0_3,
    #[default]
    #[serde(rename = "1.0.4")]
    V1_0_4,
}

impl MacVersion {
    /// MAX_FCNT_GAP, removed in 1.0.4 (RP002-1.0.5 §3.3).
    pub fn max_fcnt_gap(self) -> Option<u32> {
        match self {
            MacVersion::V1_0_4 => None,
            _ => Some(16_384),
        }
    }
}

/// One end device, keyed by DevEUI.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// 16 hex digits as printed (big-endian).
    pub dev_eui: String,
    #[serde(default)]
    pub abp: Option<AbpConfig>,
    #[serde(default)]
    pub otaa: Option<OtaaConfig>,
    #[serde(default)]
    pub codec: CodecConfig,
    #[serde(default)]
    pub mac_version: MacVersion,
}

/// Activation by personalization: fixed address and session keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbpConfig {
    pub dev_addr: String,
    #[serde(default)]
    pub nwk_s_key: Option<String>,
    #[serde(default)]
    pub nwk_s_key_file: Option<String>,
    #[serde(default)]
    pub nwk_s_key_env: Option<String>,
    #[serde(default)]
    pub app_s_key: Option<String>,
    #[serde(default)]
    pub app_s_key_file: Option<String>,
    #[serde(default)]
    pub app_s_key_env: Option<String>,
}

/// Over-the-air activation handled by this gateway.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaaConfig {
    /// JoinEUI (AppEUI in 1.0.x), 16 hex digits.
    pub join_eui: String,
    #[serde(default)]
    pub app_key: Option<String>,
    #[serde(default)]
    pub app_key_file: Option<String>,
    #[serde(default)]
    pub app_key_env: Option<String>,
}

/// Where a key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Inline(String),
    File(String),
    Env(String),
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("give exactly one of `{0}`, `{0}_file`, `{0}_env`")]
    Choice(&'static str),
    #[error("cannot read key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("{what}: {source}")]
    Key {
        what: String,
        source: super::crypto::KeyError,
    },
}

impl Secret {
    fn pick(
        name: &'static str,
        inline: &Option<String>,
        file: &Option<String>,
        env: &Option<String>,
    ) -> Result<Secret, SecretError> {
        match (inline, file, env) {
            (Some(v), None, None) => Ok(Secret::Inline(v.clone())),
            (None, Some(f), None) => Ok(Secret::File(f.clone())),
            (None, None, Some(e)) => Ok(Secret::Env(e.clone())),
            _ => Err(SecretError::Choice(name)),
        }
    }

    /// Reads the key (file contents are trimmed).
    pub fn resolve(&self) -> Result<AesKey, SecretError> {
        let (text, what) = match self {
            Secret::Inline(v) => (v.clone(), "inline key".to_owned()),
            Secret::File(p) => (
                std::fs::read_to_string(p).map_err(|source| SecretError::File {
                    path: p.clone(),
                    source,
                })?,
                format!("key file {p}"),
            ),
            Secret::Env(e) => (
                std::env::var(e).map_err(|_| SecretError::Env(e.clone()))?,
                format!("environment variable {e}"),
            ),
        };
        AesKey::from_hex(&text).map_err(|source| SecretError::Key { what, source })
    }
}

impl AbpConfig {
    pub fn nwk_s_key(&self) -> Result<Secret, SecretError> {
        Secret::pick(
            "nwk_s_key",
            &self.nwk_s_key,
            &self.nwk_s_key_file,
            &self.nwk_s_key_env,
        )
    }
    pub fn app_s_key(&self) -> Result<Secret, SecretError> {
        Secret::pick(
            "app_s_key",
            &self.app_s_key,
            &self.app_s_key_file,
            &self.app_s_key_env,
        )
    }
}

impl OtaaConfig {
    pub fn app_key(&self) -> Result<Secret, SecretError> {
        Secret::pick(
            "app_key",
            &self.app_key,
            &self.app_key_file,
            &self.app_key_env,
        )
    }
}

/// DevEUI / JoinEUI as printed (16 hex digits) → integer.
pub fn parse_eui(s: &str) -> Option<u64> {
    parse_hex_array::<8>(s).ok().map(u64::from_be_bytes)
}

/// DevAddr as printed (8 hex digits) → integer.
pub fn parse_dev_addr(s: &str) -> Option<u32> {
    parse_hex_array::<4>(s).ok().map(u32::from_be_bytes)
}

/// NetID as printed (6 hex digits) → integer.
pub fn parse_net_id(s: &str) -> Option<u32> {
    parse_hex_array::<3>(s)
        .ok()
        .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

fn key_issues(
    issues: &mut Vec<ConfigIssue>,
    path: &str,
    name: &'static str,
    picked: Result<Secret, SecretError>,
) {
    match picked {
        Err(e) => issues.push(
            ConfigIssue::new(
                format!("{path}.{name}"),
                format!("The {name} source is ambiguous or missing: {e}."),
            )
            .hint(format!(
                "set `{name}_file` (preferred), `{name}_env` or `{name}`"
            )),
        ),
        Ok(Secret::Inline(v)) => {
            if let Err(e) = AesKey::from_hex(&v) {
                issues.push(
                    ConfigIssue::new(
                        format!("{path}.{name}"),
                        format!("The {name} is not a valid AES-128 key: {e}."),
                    )
                    .hint("32 hex digits"),
                );
            }
        }
        Ok(Secret::File(p)) if p.trim().is_empty() => issues.push(ConfigIssue::new(
            format!("{path}.{name}_file"),
            "The key file path is empty.",
        )),
        Ok(Secret::Env(e)) if e.trim().is_empty() => issues.push(ConfigIssue::new(
            format!("{path}.{name}_env"),
            "The environment variable name is empty.",
        )),
        Ok(_) => {}
    }
}

impl LorawanUdpConfig {
    /// All problems at once; paths are relative to the adapter's table.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if parse_net_id(&self.net_id).is_none() {
            issues.push(
                ConfigIssue::new("net_id", "net_id must be 6 hex digits.").hint("e.g. \"000013\""),
            );
        }
        if self.rx1_dr_offset > self.region.params().max_rx1_dr_offset {
            issues.push(
                ConfigIssue::new(
                    "rx1_dr_offset",
                    format!("rx1_dr_offset {} is out of range.", self.rx1_dr_offset),
                )
                .hint(format!("0..={}", self.region.params().max_rx1_dr_offset)),
            );
        }
        issues.extend(super::gateway_table::config_issues(
            self.max_gateways,
            self.gateway_idle_timeout,
            &self.gateways,
        ));
        if !(1..=15).contains(&self.rx_delay) {
            issues.push(ConfigIssue::new(
                "rx_delay",
                "rx_delay must be 1..=15 seconds.",
            ));
        }
        let mut euis: Vec<(u64, usize)> = Vec::new();
        let mut addrs: Vec<(u32, usize)> = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            let p = format!("devices.{i}");
            match parse_eui(&d.dev_eui) {
                None => issues.push(
                    ConfigIssue::new(
                        format!("{p}.dev_eui"),
                        format!("DevEUI {:?} is not 16 hex digits.", d.dev_eui),
                    )
                    .hint("as printed on the device label, e.g. \"0004a30b001c0530\""),
                ),
                Some(eui) => {
                    if let Some((_, first)) = euis.iter().find(|(e, _)| *e == eui) {
                        issues.push(ConfigIssue::new(
                            format!("{p}.dev_eui"),
                            format!("DevEUI {eui:016x} is also used by devices.{first}."),
                        ));
                    }
                    euis.push((eui, i));
                }
            }
            match (&d.abp, &d.otaa) {
                (Some(_), Some(_)) | (None, None) => issues.push(
                    ConfigIssue::new(p.clone(), "A device needs exactly one of `abp` or `otaa`.")
                        .hint("abp = { dev_addr, nwk_s_key_file, app_s_key_file } or otaa = { join_eui, app_key_file }"),
                ),
                (Some(abp), None) => {
                    let ap = format!("{p}.abp");
                    match parse_dev_addr(&abp.dev_addr) {
                        None => issues.push(ConfigIssue::new(
                            format!("{ap}.dev_addr"),
                            format!("DevAddr {:?} is not 8 hex digits.", abp.dev_addr),
                        )),
                        Some(a) => {
                            if let Some((_, first)) = addrs.iter().find(|(x, _)| *x == a) {
                                issues.push(
                                    ConfigIssue::new(
                                        format!("{ap}.dev_addr"),
                                        format!("DevAddr {a:08x} is also used by devices.{first}."),
                                    )
                                    .hint("ABP devices on one gateway need distinct DevAddrs"),
                                );
                            }
                            addrs.push((a, i));
                        }
                    }
                    key_issues(&mut issues, &ap, "nwk_s_key", abp.nwk_s_key());
                    key_issues(&mut issues, &ap, "app_s_key", abp.app_s_key());
                }
                (None, Some(otaa)) => {
                    let op = format!("{p}.otaa");
                    if parse_eui(&otaa.join_eui).is_none() {
                        issues.push(ConfigIssue::new(
                            format!("{op}.join_eui"),
                            format!("JoinEUI {:?} is not 16 hex digits.", otaa.join_eui),
                        ));
                    }
                    key_issues(&mut issues, &op, "app_key", otaa.app_key());
                }
            }
            if let CodecConfig::Declarative { ports } = &d.codec {
                issues.extend(declarative::validate(ports, &format!("{p}.codec")));
            }
        }
        issues
    }

    /// Advice that does not stop the adapter (inline keys end up in backups and bug reports).
    pub fn warnings(&self) -> Vec<ConfigIssue> {
        let mut w = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            let inline = [
                d.abp
                    .as_ref()
                    .and_then(|a| a.nwk_s_key.as_ref())
                    .map(|_| "abp.nwk_s_key"),
                d.abp
                    .as_ref()
                    .and_then(|a| a.app_s_key.as_ref())
                    .map(|_| "abp.app_s_key"),
                d.otaa
                    .as_ref()
                    .and_then(|o| o.app_key.as_ref())
                    .map(|_| "otaa.app_key"),
            ];
            for key in inline.into_iter().flatten() {
                w.push(
                    ConfigIssue::new(
                        format!("devices.{i}.{key}"),
                        "The key is written inline in the config file.",
                    )
                    .hint(format!("move it to a root-only file and use `{key}_file`")),
                );
            }
        }
        if !self.bind.ip().is_loopback() {
            w.push(
                ConfigIssue::new(
                    "bind",
                    format!(
                        "GWMP is unauthenticated and {} is not a loopback address.",
                        self.bind
                    ),
                )
                .hint(if self.gateways.is_empty() {
                    "keep the forwarder on the same box and bind 127.0.0.1, or firewall the port \
                     and list your gateway EUIs in `gateways`"
                } else {
                    "keep the forwarder on the same box and bind 127.0.0.1, or firewall the port"
                }),
            );
        }
        w
    }

    /// The UDP port this adapter owns.
    pub fn resources(&self) -> Vec<Resource> {
        vec![Resource::UdpPort(self.bind)]
    }
}

/// `[southbound.<id>] type = "lorawan_lns_mqtt"`: uplinks already decrypted by an LNS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    pub password_file: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(
        default = "default_keep_alive",
        deserialize_with = "crate::config::units::duration"
    )]
    pub keep_alive: Duration,
    /// Codec for devices without their own entry, used when the LNS sent no decoded object.
    #[serde(default)]
    pub codec: CodecConfig,
    /// Only these DevEUIs are recorded when the list is not empty.
    #[serde(default)]
    pub devices: Vec<LnsDeviceConfig>,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

/// Which LNS publishes the uplinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LnsDeviceConfig {
    pub dev_eui: String,
    #[serde(default)]
    pub codec: Option<CodecConfig>,
}

impl LnsMqttConfig {
    pub fn topics(&self) -> Vec<String> {
        if self.topics.is_empty() {
            vec![self.flavour.default_topic().to_owned()]
        } else {
            self.topics.clone()
        }
    }

    /// The broker password, if any, read from its source.
    pub fn password(&self) -> Result<Option<String>, SecretError> {
        match (&self.password, &self.password_file, &self.password_env) {
            (None, None, None) => Ok(None),
            (Some(p), None, None) => Ok(Some(p.clone())),
            (None, Some(f), None) => std::fs::read_to_string(f)
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|source| SecretError::File {
                    path: f.clone(),
                    source,
                }),
            (None, None, Some(e)) => std::env::var(e)
                .map(Some)
                .map_err(|_| SecretError::Env(e.clone())),
            _ => Err(SecretError::Choice("password")),
        }
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
        let secrets = [&self.password, &self.password_file, &self.password_env];
        if secrets.iter().filter(|s| s.is_some()).count() > 1 {
            issues.push(ConfigIssue::new(
                "password",
                "Give only one of `password`, `password_file`, `password_env`.",
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
        }
        issues
    }

    /// An MQTT client owns nothing exclusive on the box.
    pub fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
