//! Config of `type = "lorawan_udp"` (Semtech UDP forwarder + edge join/network server) and the
//! helpers both LoRaWAN adapters share; `type = "lorawan_lns_mqtt"` (uplinks from ChirpStack or
//! TTS) is in `lns_config.rs`, commands, ADR and DevStatus in `downlink_config.rs`.
//!
//! Validation is pure (no file or environment access); secrets are read by [`load_key`]
//! when the adapter is built, so `citygate check` can run where the key files are not.

use super::codec::{declarative, CodecConfig};
use super::downlink_config::{AdrConfig, DownlinkAllow};
use super::mac_setup_config::MacSetupConfig;
use super::network::crypto::{parse_hex_array, AesKey};
use super::network::region::Region;
use super::transport::gwmp::GatewayEui;
use crate::config::issue::{ConfigIssue, Resource};
use crate::config::secret::{SecretError, SecretFields, SecretSource};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[southbound.<id>] type = "lorawan_udp"`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LorawanUdpConfig {
    /// UDP address the packet forwarder sends to.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    #[serde(default)]
    pub region: Region,
    /// US915/AU915: the gateway's sub-band (1..=8), sent to joining devices as a CFList
    /// channel mask so they use only the 8 + 1 channels the gateway hears.
    #[serde(default)]
    pub sub_band: Option<u8>,
    /// NetID (hex, 3 bytes) put in join-accepts; its NwkID prefixes OTAA DevAddrs.
    #[serde(default = "default_net_id")]
    pub net_id: String,
    /// Copies of one frame heard again within this window are dropped.
    #[serde(
        default = "default_dedup",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
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
    #[schemars(with = "crate::config::units::DurationText")]
    pub gateway_idle_timeout: Duration,
    /// Gateway EUIs (16 hex digits, as the forwarder's `gateway_ID`) served; empty = any.
    /// Datagrams of other gateways are dropped and counted.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Accept commands (downlinks) for devices with a `downlink` allow-list; off by default.
    #[serde(default)]
    pub commands: bool,
    /// Adaptive data rate (see `downlink_config.rs`); off by default.
    #[serde(default)]
    pub adr: AdrConfig,
    /// How often devices are asked for battery and margin (DevStatusReq); never when absent.
    #[serde(default, deserialize_with = "crate::config::units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub dev_status_interval: Option<Duration>,
    /// Radio settings asked of every device with MAC commands (see `mac_setup_config.rs`);
    /// nothing is asked when empty.
    #[serde(default)]
    pub mac_setup: MacSetupConfig,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LorawanDeviceConfig")]
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
    /// What commands may send to the device; nothing without it.
    #[serde(default)]
    pub downlink: Option<DownlinkAllow>,
    /// This device's radio settings, over the adapter's `mac_setup` key by key.
    #[serde(default)]
    pub mac_setup: Option<MacSetupConfig>,
}

impl DeviceConfig {
    /// The settings asked of this device: its own `mac_setup` over the adapter's.
    pub fn mac_setup(&self, adapter: &MacSetupConfig) -> MacSetupConfig {
        match &self.mac_setup {
            Some(m) => m.over(adapter),
            None => adapter.clone(),
        }
    }
}

/// Activation by personalization: fixed address and session keys.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbpConfig {
    pub dev_addr: String,
    #[serde(default)]
    pub nwk_s_key: Option<String>,
    #[serde(default)]
    pub nwk_s_key_file: Option<PathBuf>,
    #[serde(default)]
    pub nwk_s_key_env: Option<String>,
    #[serde(default)]
    pub app_s_key: Option<String>,
    #[serde(default)]
    pub app_s_key_file: Option<PathBuf>,
    #[serde(default)]
    pub app_s_key_env: Option<String>,
}

/// Over-the-air activation handled by this gateway.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtaaConfig {
    /// JoinEUI (AppEUI in 1.0.x), 16 hex digits.
    pub join_eui: String,
    #[serde(default)]
    pub app_key: Option<String>,
    #[serde(default)]
    pub app_key_file: Option<PathBuf>,
    #[serde(default)]
    pub app_key_env: Option<String>,
}

/// Why a LoRaWAN key could not be had: no readable source, or not an AES-128 key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Source(#[from] SecretError),
    #[error("{what}: {source}")]
    Format {
        what: String,
        source: super::network::crypto::KeyError,
    },
}

/// Reads a key through the one secret rule and parses it (the key is never in the message).
pub fn load_key(fields: SecretFields<'_>) -> Result<AesKey, KeyError> {
    let text = fields.read_required()?;
    AesKey::from_hex(&text).map_err(|source| KeyError::Format {
        what: format!("`{}`", fields.key()),
        source,
    })
}

impl AbpConfig {
    pub fn nwk_s_key(&self) -> SecretFields<'_> {
        SecretFields::with_inline(
            "nwk_s_key",
            self.nwk_s_key.as_deref(),
            self.nwk_s_key_file.as_ref(),
            self.nwk_s_key_env.as_deref(),
        )
    }
    pub fn app_s_key(&self) -> SecretFields<'_> {
        SecretFields::with_inline(
            "app_s_key",
            self.app_s_key.as_deref(),
            self.app_s_key_file.as_ref(),
            self.app_s_key_env.as_deref(),
        )
    }
}

impl OtaaConfig {
    pub fn app_key(&self) -> SecretFields<'_> {
        SecretFields::with_inline(
            "app_key",
            self.app_key.as_deref(),
            self.app_key_file.as_ref(),
            self.app_key_env.as_deref(),
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

/// The one secret rule, plus: an inline key must be a valid AES-128 key.
fn key_issues(issues: &mut Vec<ConfigIssue>, path: &str, key: SecretFields<'_>) {
    issues.extend(key.issues(path, true));
    // Only an unambiguous, non-empty inline key is worth parsing: the rest is reported above.
    if let Ok(Some(SecretSource::Inline(v))) = key.source() {
        if v.trim().is_empty() {
            return;
        }
        if let Err(e) = AesKey::from_hex(v) {
            issues.push(
                ConfigIssue::new(
                    format!("{path}.{}", key.name),
                    format!("The {} is not a valid AES-128 key: {e}.", key.name),
                )
                .hint("32 hex digits"),
            );
        }
    }
}

/// `sub_band` only means something for the fixed channel plans, and only 1..=8.
fn sub_band_issues(region: Region, sub_band: Option<u8>) -> Option<ConfigIssue> {
    let k = sub_band?;
    if !region.is_fixed_channel_plan() {
        return Some(
            ConfigIssue::new(
                "sub_band",
                format!(
                    "sub_band applies to US915 and AU915 only, not {}.",
                    region.params().name
                ),
            )
            .hint("remove sub_band, or set region = \"US915\" / \"AU915\""),
        );
    }
    if !super::network::region::SUB_BANDS.contains(&k) {
        return Some(
            ConfigIssue::new("sub_band", format!("sub_band {k} is out of range."))
                .hint("1..=8 (sub-band 2 = channels 8..15 and 65, as most US gateways)"),
        );
    }
    None
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
        issues.extend(sub_band_issues(self.region, self.sub_band));
        issues.extend(gateway_table_issues(
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
                    key_issues(&mut issues, &ap, abp.nwk_s_key());
                    key_issues(&mut issues, &ap, abp.app_s_key());
                }
                (None, Some(otaa)) => {
                    let op = format!("{p}.otaa");
                    if parse_eui(&otaa.join_eui).is_none() {
                        issues.push(ConfigIssue::new(
                            format!("{op}.join_eui"),
                            format!("JoinEUI {:?} is not 16 hex digits.", otaa.join_eui),
                        ));
                    }
                    key_issues(&mut issues, &op, otaa.app_key());
                }
            }
            if let CodecConfig::Declarative { ports } = &d.codec {
                issues.extend(declarative::validate(ports, &format!("{p}.codec")));
            }
            if let Some(allow) = &d.downlink {
                issues.extend(allow.validate(&format!("{p}.downlink")));
            }
            if let Some(m) = &d.mac_setup {
                issues.extend(m.validate(&format!("{p}.mac_setup"), self.region));
            }
        }
        issues.extend(self.mac_setup.validate("mac_setup", self.region));
        issues.extend(self.adr.validate());
        issues.extend(super::downlink_config::validate_dev_status_interval(
            self.dev_status_interval,
        ));
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

/// The allow-list of the config (`gateways`), or the index of the first invalid EUI.
pub fn parse_gateway_allow_list(gateways: &[String]) -> Result<Vec<GatewayEui>, usize> {
    gateways
        .iter()
        .enumerate()
        .map(|(i, g)| parse_eui(g).map(|e| GatewayEui(e.to_be_bytes())).ok_or(i))
        .collect()
}

/// Checks of `max_gateways`, `gateway_idle_timeout` and `gateways`.
fn gateway_table_issues(max: usize, idle: Duration, gateways: &[String]) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if max == 0 || max > 10_000 {
        issues.push(
            ConfigIssue::new("max_gateways", "max_gateways must be 1..=10000.")
                .hint(format!("the default is {DEFAULT_MAX_GATEWAYS}")),
        );
    }
    if idle < Duration::from_secs(1) {
        issues.push(
            ConfigIssue::new(
                "gateway_idle_timeout",
                "gateway_idle_timeout must be at least 1s.",
            )
            .hint("at least 3× the forwarder's keepalive_interval, e.g. \"2m\""),
        );
    }
    for (i, g) in gateways.iter().enumerate() {
        if parse_eui(g).is_none() {
            issues.push(
                ConfigIssue::new(
                    format!("gateways.{i}"),
                    format!("Gateway EUI {g:?} is not 16 hex digits."),
                )
                .hint("the forwarder's gateway_ID, e.g. \"aa555a0000000000\""),
            );
        }
    }
    issues
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
