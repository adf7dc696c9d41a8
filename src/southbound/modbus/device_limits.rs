//! A device's read limits and where each came from, and the checks that compare a device
//! with what its profile documents about the meter.
//!
//! A limit (`max_registers`, `max_bits`, `max_gap`) is taken from the device table when it
//! sets one, else from the profile (the vendor's documented limit, e.g. Eastron's 40
//! parameters = 80 registers per request), else the Modbus default. Planning with the
//! documented limit means a strict meter never has to refuse a read: the poller's
//! split-on-exception recovery still exists, but it costs a refused request on every
//! recheck. `citygate plan` prints the limits with their source ([`explain`]).

use super::config::{
    DeviceConfig, Link, ModbusConfig, Parity, DEFAULT_MAX_BITS, DEFAULT_MAX_GAP,
    DEFAULT_MAX_REGISTERS,
};
use super::profile::{device_profile, Profile};
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::fmt::Write as _;

/// The limits as written in a device table; `None` = not set there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfiguredLimits {
    pub max_registers: Option<u16>,
    pub max_bits: Option<u16>,
    pub max_gap: Option<u16>,
}

/// Where one effective limit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitSource {
    /// The device table in the adapter config.
    Config,
    /// The named profile (the vendor's documented limit).
    Profile(String),
    /// Neither sets it: the Modbus default.
    #[default]
    Default,
}

impl std::fmt::Display for LimitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitSource::Config => f.write_str("adapter config"),
            LimitSource::Profile(name) => write!(f, "profile {name}"),
            LimitSource::Default => f.write_str("default"),
        }
    }
}

/// Sources of a device's three limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSources {
    pub max_registers: LimitSource,
    pub max_bits: LimitSource,
    pub max_gap: LimitSource,
}

/// A meter's factory serial settings as its profile documents them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorySerial {
    pub baud: u32,
    pub parity: Parity,
    #[serde(default = "eight")]
    pub data_bits: u8,
    #[serde(default = "one")]
    pub stop_bits: u8,
    /// Where the settings are documented (vendor manual and section).
    #[serde(default)]
    pub source: Option<String>,
}

fn eight() -> u8 {
    8
}
fn one() -> u8 {
    1
}

/// Sets the effective limits of `device` from its configured values, then `profile`
/// (`(name, profile)`), then the defaults.
pub fn apply(device: &mut DeviceConfig, profile: Option<(&str, &Profile)>) {
    let pick = |configured: Option<u16>, from_profile: Option<u16>, default: u16| match (
        configured,
        from_profile,
        profile,
    ) {
        (Some(v), _, _) => (v, LimitSource::Config),
        (None, Some(v), Some((name, _))) => (v, LimitSource::Profile(name.to_owned())),
        _ => (default, LimitSource::Default),
    };
    let p = profile.map(|(_, p)| p);
    let c = device.configured;
    let (v, s) = pick(
        c.max_registers,
        p.and_then(|p| p.max_registers),
        DEFAULT_MAX_REGISTERS,
    );
    device.max_registers = v;
    device.limit_sources.max_registers = s;
    let (v, s) = pick(c.max_bits, p.and_then(|p| p.max_bits), DEFAULT_MAX_BITS);
    device.max_bits = v;
    device.limit_sources.max_bits = s;
    let (v, s) = pick(c.max_gap, p.and_then(|p| p.max_gap), DEFAULT_MAX_GAP);
    device.max_gap = v;
    device.limit_sources.max_gap = s;
}

/// Warnings for one device (paths relative to the device table): a configured limit above
/// the one its profile documents, and, on a local serial bus, factory serial settings of the
/// profile that differ from the adapter's.
pub fn device_warnings(link: &Link, device: &DeviceConfig) -> Vec<ConfigIssue> {
    let mut out = Vec::new();
    let Some(Ok(profile)) = device_profile(device) else {
        return out;
    };
    let name = device.profile.as_deref().unwrap_or_default();
    for (field, configured, documented) in [
        (
            "max_registers",
            device.configured.max_registers,
            profile.max_registers,
        ),
        ("max_bits", device.configured.max_bits, profile.max_bits),
    ] {
        if let (Some(c), Some(d)) = (configured, documented) {
            if c > d {
                out.push(
                    ConfigIssue::new(
                        field,
                        format!("{field} = {c} is above the {d} that profile {name} documents for this meter: a strict meter refuses such reads."),
                    )
                    .hint(format!("remove {field} to use the profile's limit, or keep it if this meter's firmware is known to accept more")),
                );
            }
        }
    }
    if let (Link::Rtu(s), Some(f)) = (link, &profile.serial) {
        let mut diffs = Vec::new();
        if s.baud != f.baud {
            diffs.push(format!("baud {} (adapter {})", f.baud, s.baud));
        }
        if s.parity != f.parity {
            diffs.push(format!("parity {:?} (adapter {:?})", f.parity, s.parity).to_lowercase());
        }
        if s.data_bits != f.data_bits {
            diffs.push(format!(
                "data_bits {} (adapter {})",
                f.data_bits, s.data_bits
            ));
        }
        if s.stop_bits != f.stop_bits {
            diffs.push(format!(
                "stop_bits {} (adapter {})",
                f.stop_bits, s.stop_bits
            ));
        }
        if !diffs.is_empty() {
            out.push(
                ConfigIssue::new(
                    "profile",
                    format!(
                        "Profile {name} documents factory serial settings {}; a meter left at its factory settings will not answer.",
                        diffs.join(", ")
                    ),
                )
                .hint(format!(
                    "set baud/parity/data_bits/stop_bits on the adapter to match the meters, or ignore this if they were reconfigured{}",
                    f.source
                        .as_deref()
                        .map(|s| format!(" (factory settings: {s})"))
                        .unwrap_or_default()
                )),
            );
        }
    }
    out
}

/// The `citygate plan` lines that show each device's limits and their source.
pub fn explain(config: &ModbusConfig) -> String {
    let mut out = String::from("device read limits (source):\n");
    for d in config.devices() {
        let s = &d.limit_sources;
        let _ = writeln!(
            out,
            "  {}: max_registers {} ({}), max_bits {} ({}), max_gap {} ({})",
            d.id, d.max_registers, s.max_registers, d.max_bits, s.max_bits, d.max_gap, s.max_gap
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtu(parity: &str, device: &str) -> ModbusConfig {
        toml::from_str(&format!(
            "type = \"modbus_rtu\"\nport = \"/dev/null\"\nbaud = 9600\n{parity}\n[[devices]]\n{device}"
        ))
        .unwrap()
    }

    #[test]
    fn sdm630_takes_eastron_limit_from_its_profile() {
        let c = rtu("", "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"");
        let d = &c.devices()[0];
        assert_eq!(d.max_registers, 80);
        assert_eq!(
            d.limit_sources.max_registers,
            LimitSource::Profile("eastron_sdm630".into())
        );
        assert_eq!(
            (d.max_bits, &d.limit_sources.max_bits),
            (2000, &LimitSource::Default)
        );
        let text = explain(&c);
        assert!(
            text.contains("m: max_registers 80 (profile eastron_sdm630), max_bits 2000 (default)"),
            "{text}"
        );
    }

    #[test]
    fn device_value_wins_and_is_warned_when_above_the_profile() {
        let c = rtu(
            "parity = \"none\"",
            "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\nmax_registers = 100",
        );
        let d = &c.devices()[0];
        assert_eq!(
            (d.max_registers, &d.limit_sources.max_registers),
            (100, &LimitSource::Config)
        );
        let w = device_warnings(&c.link(), d);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "max_registers");
        // Lower than documented: fine, no warning.
        let c = rtu(
            "parity = \"none\"",
            "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\nmax_registers = 40",
        );
        assert!(device_warnings(&c.link(), &c.devices()[0]).is_empty());
        // No profile: the Modbus default.
        let c = rtu("", "id = \"m\"\nunit = 1\npoints = []");
        let d = &c.devices()[0];
        assert_eq!(
            (d.max_registers, &d.limit_sources.max_registers),
            (125, &LimitSource::Default)
        );
    }

    #[test]
    fn serial_settings_differing_from_the_profile_are_warned() {
        // Default parity (even) against Eastron's factory 8N1.
        let c = rtu("", "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"");
        let w = device_warnings(&c.link(), &c.devices()[0]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "profile");
        assert!(
            w[0].message.contains("parity none (adapter even)"),
            "{}",
            w[0].message
        );
        let c = rtu(
            "parity = \"none\"",
            "id = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"",
        );
        assert!(device_warnings(&c.link(), &c.devices()[0]).is_empty());
        // Over TCP the serial side is the converter's business: no serial warning.
        let c: ModbusConfig = toml::from_str(
            "type = \"modbus_tcp\"\nhost = \"127.0.0.1:502\"\n[[devices]]\nid = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"",
        )
        .unwrap();
        assert!(device_warnings(&c.link(), &c.devices()[0]).is_empty());
    }
}
