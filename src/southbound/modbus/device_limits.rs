//! The checks that compare a device with what its profile documents about the meter, and
//! `citygate plan`'s account of each read limit and where it came from. (The limits themselves
//! are set when the config is read: [`super::config::apply_limits`].)
//!
//! A limit (`max_registers`, `max_bits`, `max_gap`) is taken from the device table when it
//! sets one, else from the profile (the vendor's documented limit, e.g. Eastron's 40
//! parameters = 80 registers per request), else the Modbus default. Planning with the
//! documented limit means a strict meter never has to refuse a read: the poller's
//! split-on-exception recovery still exists, but it costs a refused request on every
//! recheck. `citygate plan` prints the limits with their source ([`explain`]).

use super::config::{DeviceConfig, Link, ModbusConfig};
use super::profile::device_profile;
use crate::config::issue::ConfigIssue;
use std::fmt::Write as _;

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
    use crate::southbound::modbus::config::LimitSource;

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
