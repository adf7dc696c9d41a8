//! The `[southbound.<id>]` table of a `type = "ble"` adapter.
//!
//! ```toml
//! [southbound.square]
//! type = "ble"
//! adapter = "hci0"            # BlueZ adapter (default hci0)
//! scan = "passive"            # passive | active
//! min_interval = "30s"        # defaults for every device
//! max_silence = "15m"
//! accept_unlisted = false     # also record known formats from devices not listed below
//! filters = { macs = [], names = ["ATC_*"], service_uuids = ["fcd2"] }
//!
//! [[southbound.square.devices]]
//! mac = "A4:C1:38:8D:18:B2"
//! id = "kiosk-th1"
//! format = "bthome"           # auto | bthome | ruuvi | ibeacon | eddystone
//! bindkey_file = "/etc/citygate/keys/kiosk-th1.key"   # or bindkey_env / bindkey (inline)
//! min_interval = "10s"
//! deadband = { temperature = 0.2, humidity = 1.0 }
//! store_raw = true            # unknown formats: record the raw payload
//! ```
//!
//! `validate` is pure and reports every problem at once; reading key files and environment
//! variables happens only in [`DeviceConfig::load_bindkey`] when the adapter is built.

use super::decoders::{Advertisement, BindKey, BleUuid, Format, Mac};
use super::rate::RatePolicy;
use crate::config::device_id::device_id_issue;
use crate::config::issue::{ConfigIssue, Resource};
use crate::config::secret::{SecretError, SecretFields, SecretSource};
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of one BLE adapter.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BleConfig {
    /// BlueZ adapter name (`hci0`); two adapters may not share one.
    #[serde(default = "default_adapter")]
    pub adapter: String,
    #[serde(default)]
    pub scan: ScanMode,
    /// Default minimum time between two records of a device.
    #[serde(
        default = "default_min_interval",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub min_interval: Duration,
    /// Default heartbeat: report unchanged values after this long.
    #[serde(
        default = "default_max_silence",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub max_silence: Duration,
    /// Record advertisements of known formats from devices not listed in `devices`
    /// (device id `ble-<mac without colons, lower case>`), subject to `filters`.
    #[serde(default)]
    pub accept_unlisted: bool,
    /// Which unlisted devices to accept; listed devices are always accepted.
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
}

/// How BlueZ scans. Passive sends no scan requests (less air time, no scan responses);
/// active also gets scan responses (some devices put their name or data there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    #[default]
    Passive,
    Active,
}

/// Filters for unlisted devices; an empty list does not filter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub macs: Vec<String>,
    /// Exact local names, or prefixes ending in `*` (`ATC_*`).
    #[serde(default)]
    pub names: Vec<String>,
    /// Service UUIDs, 16-bit (`fcd2`) or 128-bit; matches advertised UUIDs and service data.
    #[serde(default)]
    pub service_uuids: Vec<String>,
}

/// Which decoder a device uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    #[default]
    Auto,
    Bthome,
    Ruuvi,
    Ibeacon,
    Eddystone,
}

impl FormatChoice {
    /// `None` = detect from the advertisement.
    pub fn format(self) -> Option<Format> {
        match self {
            FormatChoice::Auto => None,
            FormatChoice::Bthome => Some(Format::Bthome),
            FormatChoice::Ruuvi => Some(Format::Ruuvi),
            FormatChoice::Ibeacon => Some(Format::Ibeacon),
            FormatChoice::Eddystone => Some(Format::Eddystone),
        }
    }
}

/// One listed device.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BleDeviceConfig")]
pub struct DeviceConfig {
    pub mac: String,
    /// Stable device key; becomes the container name at the CSE.
    pub id: String,
    #[serde(default)]
    pub format: FormatChoice,
    /// BTHome bindkey, 32 hex digits, inline (prefer `bindkey_file` or `bindkey_env`).
    #[serde(default)]
    pub bindkey: Option<String>,
    #[serde(default)]
    pub bindkey_file: Option<PathBuf>,
    #[serde(default)]
    pub bindkey_env: Option<String>,
    #[serde(default, deserialize_with = "crate::config::units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub min_interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::config::units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub max_silence: Option<Duration>,
    /// Per point: changes up to this size do not trigger a record.
    #[serde(default)]
    pub deadband: IndexMap<String, f64>,
    /// Record the raw payload when the advertisement is in no known format.
    #[serde(default)]
    pub store_raw: bool,
}

/// Failure to load a bindkey when the adapter is built.
#[derive(Debug, thiserror::Error)]
pub enum BleConfigError {
    #[error("device {device}: {source}")]
    KeySource { device: String, source: SecretError },
    #[error("device {device}: `{key}` is not 32 hex digits")]
    KeyFormat { device: String, key: String },
}

fn default_adapter() -> String {
    "hci0".into()
}
fn default_min_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_max_silence() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Parses a 32-hex-digit bindkey (surrounding whitespace ignored).
pub fn parse_bindkey(s: &str) -> Option<BindKey> {
    let mut key = [0u8; 16];
    let t = s.trim();
    (t.len() == 32 && hex::decode_to_slice(t, &mut key).is_ok()).then_some(key)
}

impl BleConfig {
    /// The one thing this adapter owns.
    pub fn resources(&self) -> Vec<Resource> {
        vec![Resource::BleAdapter(self.adapter.clone())]
    }

    /// Rate policy of a device: its own settings over the adapter's defaults.
    pub fn policy(&self, dev: Option<&DeviceConfig>) -> RatePolicy {
        RatePolicy {
            min_interval: dev
                .and_then(|d| d.min_interval)
                .unwrap_or(self.min_interval),
            max_silence: dev.and_then(|d| d.max_silence).unwrap_or(self.max_silence),
            deadband: dev
                .map(|d| d.deadband.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default(),
            ..RatePolicy::default()
        }
    }

    /// Listed devices by MAC (entries with an invalid MAC are skipped; `validate` reports them).
    pub fn devices_by_mac(&self) -> HashMap<Mac, &DeviceConfig> {
        self.devices
            .iter()
            .filter_map(|d| d.mac.parse().ok().map(|m| (m, d)))
            .collect()
    }

    /// Every problem in the table, paths relative to it.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let name_ok = |s: &str, extra: &[char]| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
        };
        if !name_ok(&self.adapter, &['-']) {
            issues.push(
                ConfigIssue::new(
                    "adapter",
                    format!("`{}` is not a BlueZ adapter name.", self.adapter),
                )
                .hint("use the name shown by `bluetoothctl list` / `hciconfig`, e.g. \"hci0\""),
            );
        }
        check_intervals(&mut issues, "", self.min_interval, self.max_silence);
        for (i, m) in self.filters.macs.iter().enumerate() {
            if m.parse::<Mac>().is_err() {
                issues.push(bad_mac(&format!("filters.macs.{i}"), m));
            }
        }
        for (i, n) in self.filters.names.iter().enumerate() {
            if n.is_empty() || n == "*" {
                issues.push(
                    ConfigIssue::new(
                        format!("filters.names.{i}"),
                        "An empty name filter matches nothing useful.",
                    )
                    .hint("give an exact name or a prefix ending in `*`, or remove the entry"),
                );
            }
        }
        for (i, u) in self.filters.service_uuids.iter().enumerate() {
            if let Err(e) = u.parse::<BleUuid>() {
                issues.push(ConfigIssue::new(
                    format!("filters.service_uuids.{i}"),
                    format!("{e}."),
                ));
            }
        }
        if self.devices.is_empty() && !self.accept_unlisted {
            issues.push(
                ConfigIssue::new("devices", "No devices are listed and `accept_unlisted` is false, so nothing would be recorded.")
                    .hint("add [[devices]] entries with mac and id, or set accept_unlisted = true"),
            );
        }
        let mut macs: HashMap<Mac, usize> = HashMap::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, d) in self.devices.iter().enumerate() {
            let p = format!("devices.{i}");
            match d.mac.parse::<Mac>() {
                Err(_) => issues.push(bad_mac(&format!("{p}.mac"), &d.mac)),
                Ok(m) => {
                    if let Some(first) = macs.insert(m, i) {
                        issues.push(ConfigIssue::new(
                            format!("{p}.mac"),
                            format!("MAC {m} is already used by devices.{first}."),
                        ));
                    }
                }
            }
            if let Some(issue) = device_id_issue(format!("{p}.id"), &d.id) {
                issues.push(issue);
            } else if let Some(first) = ids.insert(d.id.as_str(), i) {
                issues.push(ConfigIssue::new(
                    format!("{p}.id"),
                    format!("Device id `{}` is already used by devices.{first}.", d.id),
                ));
            }
            validate_key(&mut issues, &p, d);
            for (point, band) in &d.deadband {
                if !band.is_finite() || *band < 0.0 {
                    issues.push(
                        ConfigIssue::new(
                            format!("{p}.deadband.{point}"),
                            format!("Deadband {band} is not a non-negative number."),
                        )
                        .hint("0 reports every change; 0.2 ignores changes up to ±0.2"),
                    );
                }
            }
            let min = d.min_interval.unwrap_or(self.min_interval);
            let max = d.max_silence.unwrap_or(self.max_silence);
            check_intervals(&mut issues, &format!("{p}."), min, max);
        }
        issues
    }
}

fn bad_mac(path: &str, value: &str) -> ConfigIssue {
    ConfigIssue::new(path, format!("`{value}` is not a MAC address."))
        .hint("write six hex byte pairs like \"A4:C1:38:8D:18:B2\"")
}

fn check_intervals(issues: &mut Vec<ConfigIssue>, prefix: &str, min: Duration, max: Duration) {
    if max.is_zero() {
        issues.push(ConfigIssue::new(
            format!("{prefix}max_silence"),
            "max_silence must be longer than zero.",
        ));
    } else if min > max {
        issues.push(
            ConfigIssue::new(
                format!("{prefix}min_interval"),
                format!(
                    "min_interval ({}) is longer than max_silence ({}).",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            )
            .hint("the heartbeat cannot be more frequent than the minimum interval"),
        );
    }
}

fn validate_key(issues: &mut Vec<ConfigIssue>, p: &str, d: &DeviceConfig) {
    let key = d.bindkey_fields();
    issues.extend(key.issues(p, false));
    if key.given() && !matches!(d.format, FormatChoice::Auto | FormatChoice::Bthome) {
        issues.push(
            ConfigIssue::new(format!("{p}.format"), "Only BTHome devices use a bindkey.")
                .hint("set format = \"bthome\" or remove the key"),
        );
    }
    if let Ok(Some(SecretSource::Inline(k))) = key.source() {
        if !k.trim().is_empty() && parse_bindkey(k).is_none() {
            issues.push(
                ConfigIssue::new(format!("{p}.bindkey"), "The bindkey is not 32 hex digits (16 bytes).")
                    .hint("copy the key from the device's BTHome configuration, e.g. \"231d39c1d7cc1ab1aee224cd096db932\""),
            );
        }
    }
}

impl DeviceConfig {
    /// The parsed MAC (`validate` has reported a bad one).
    pub fn mac(&self) -> Option<Mac> {
        self.mac.parse().ok()
    }

    /// The bindkey's config fields (optional; the one secret rule).
    pub fn bindkey_fields(&self) -> SecretFields<'_> {
        SecretFields::with_inline(
            "bindkey",
            self.bindkey.as_deref(),
            self.bindkey_file.as_ref(),
            self.bindkey_env.as_deref(),
        )
    }

    /// Reads the bindkey from wherever it is configured. Reads files and the environment,
    /// so it runs when the adapter is built, not in `validate`.
    pub fn load_bindkey(&self) -> Result<Option<BindKey>, BleConfigError> {
        let fields = self.bindkey_fields();
        let text = fields.read().map_err(|source| BleConfigError::KeySource {
            device: self.id.clone(),
            source,
        })?;
        match text {
            None => Ok(None),
            Some(t) => parse_bindkey(&t)
                .map(Some)
                .ok_or_else(|| BleConfigError::KeyFormat {
                    device: self.id.clone(),
                    key: fields.key(),
                }),
        }
    }
}

impl Filters {
    /// True if an unlisted device's advertisement passes every non-empty filter.
    pub fn matches(&self, adv: &Advertisement) -> bool {
        let mac_ok = self.macs.is_empty()
            || adv
                .address
                .is_some_and(|a| self.macs.iter().any(|m| m.parse::<Mac>().ok() == Some(a)));
        let name_ok = self.names.is_empty()
            || adv.name.as_deref().is_some_and(|n| {
                self.names.iter().any(|f| match f.strip_suffix('*') {
                    Some(prefix) => !prefix.is_empty() && n.starts_with(prefix),
                    None => n == f,
                })
            });
        let uuid_ok = self.service_uuids.is_empty() || {
            let wanted: Vec<BleUuid> = self
                .service_uuids
                .iter()
                .filter_map(|u| u.parse().ok())
                .collect();
            adv.service_uuids
                .iter()
                .chain(adv.service_data.iter().map(|(u, _)| u))
                .any(|u| wanted.contains(u))
        };
        mac_ok && name_ok && uuid_ok
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

impl BleConfig {
    /// `citygate check` against this machine: every bindkey file or variable must be readable
    /// and hold a valid key.
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            let issue = d
                .bindkey_fields()
                .check_environment(&format!("devices.{i}"), |v| {
                    parse_bindkey(v)
                        .map(|_| ())
                        .ok_or_else(|| "The bindkey is not 32 hex digits (16 bytes).".to_owned())
                });
            out.extend(issue.map(|i| i.hint("a bindkey is 32 hex characters")));
        }
        out
    }
}
