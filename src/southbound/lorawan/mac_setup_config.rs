//! Config of the radio settings citygate asks devices to change with MAC commands:
//! `mac_setup = { rx1_delay = 2, rx2_frequency = 869525000, rx2_dr = 3, max_duty_cycle = 7,
//! extra_channels = [...] }` on a `lorawan_udp` adapter (for all its devices) or on one device
//! (overrides the adapter's, key by key; a device's `extra_channels` replaces the adapter's
//! list). Nothing is asked unless a key is set.

use super::network::mac_setup::{Channel, RadioSetup};
use super::network::region::Region;
use crate::config::issue::ConfigIssue;
use serde::Deserialize;

/// One extra uplink channel (NewChannelReq), dynamic channel plans only.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Channel index; above the region's default channels (EU868: 3..=15, AS923: 2..=15).
    pub index: u8,
    /// Hz, a multiple of 100.
    pub frequency: u32,
    #[serde(default)]
    pub min_dr: u8,
    #[serde(default = "default_max_dr")]
    pub max_dr: u8,
}

fn default_max_dr() -> u8 {
    5
}

/// `mac_setup = { ... }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MacSetupConfig {
    /// RX1 delay in seconds, 1..=15 (RXTimingSetupReq).
    #[serde(default)]
    pub rx1_delay: Option<u8>,
    /// RX1DROffset (RXParamSetupReq), range per region.
    #[serde(default)]
    pub rx1_dr_offset: Option<u8>,
    /// RX2 data rate (RXParamSetupReq).
    #[serde(default)]
    pub rx2_dr: Option<u8>,
    /// RX2 frequency in Hz (RXParamSetupReq).
    #[serde(default)]
    pub rx2_frequency: Option<u32>,
    /// MaxDCycle 0..=15: the device's aggregated duty cycle becomes 1/2^n (DutyCycleReq).
    #[serde(default)]
    pub max_duty_cycle: Option<u8>,
    /// Extra uplink channels (NewChannelReq); EU868, AS923, IN865, KR920.
    #[serde(default)]
    pub extra_channels: Option<Vec<ChannelConfig>>,
}

impl MacSetupConfig {
    /// This (a device's) setup over `adapter`'s, key by key.
    pub fn over(&self, adapter: &MacSetupConfig) -> MacSetupConfig {
        MacSetupConfig {
            rx1_delay: self.rx1_delay.or(adapter.rx1_delay),
            rx1_dr_offset: self.rx1_dr_offset.or(adapter.rx1_dr_offset),
            rx2_dr: self.rx2_dr.or(adapter.rx2_dr),
            rx2_frequency: self.rx2_frequency.or(adapter.rx2_frequency),
            max_duty_cycle: self.max_duty_cycle.or(adapter.max_duty_cycle),
            extra_channels: self
                .extra_channels
                .clone()
                .or_else(|| adapter.extra_channels.clone()),
        }
    }

    /// What the MAC layer asks for.
    pub fn radio_setup(&self) -> RadioSetup {
        RadioSetup {
            rx1_delay_s: self.rx1_delay,
            rx1_dr_offset: self.rx1_dr_offset,
            rx2_dr: self.rx2_dr,
            rx2_freq_hz: self.rx2_frequency,
            max_dcycle: self.max_duty_cycle,
            channels: self.extra_channels.as_ref().map(|cs| {
                cs.iter()
                    .map(|c| Channel {
                        index: c.index,
                        frequency_hz: c.frequency,
                        min_dr: c.min_dr,
                        max_dr: c.max_dr,
                    })
                    .collect()
            }),
        }
    }

    /// Problems at `path` (e.g. `mac_setup` or `devices.0.mac_setup`) for `region`.
    pub fn validate(&self, path: &str, region: Region) -> Vec<ConfigIssue> {
        let p = region.params();
        let mut issues = Vec::new();
        let mut issue = |key: &str, msg: String, hint: String| {
            issues.push(ConfigIssue::new(format!("{path}.{key}"), msg).hint(hint));
        };
        if let Some(d) = self.rx1_delay.filter(|d| !(1..=15).contains(d)) {
            issue(
                "rx1_delay",
                format!("rx1_delay {d} is out of range."),
                "1..=15 seconds".into(),
            );
        }
        if let Some(o) = self.rx1_dr_offset.filter(|o| *o > p.max_rx1_dr_offset) {
            issue(
                "rx1_dr_offset",
                format!("rx1_dr_offset {o} is out of range for {}.", p.name),
                format!("0..={}", p.max_rx1_dr_offset),
            );
        }
        if let Some(dr) = self.rx2_dr.filter(|dr| p.lora_dr(*dr).is_none()) {
            issue(
                "rx2_dr",
                format!("rx2_dr {dr} is not a LoRa data rate of {}.", p.name),
                format!("the region's default is {}", p.rx2_dr),
            );
        }
        if let Some(f) = self.rx2_frequency.filter(|f| !frequency_ok(*f)) {
            issue(
                "rx2_frequency",
                format!("rx2_frequency {f} is not a frequency in Hz in steps of 100 Hz."),
                format!("the region's default is {}", p.rx2_freq_hz),
            );
        }
        if let Some(m) = self.max_duty_cycle.filter(|m| *m > 15) {
            issue(
                "max_duty_cycle",
                format!("max_duty_cycle {m} is out of range."),
                "0..=15 (duty cycle 1/2^n; 0 = no limit beyond the region's)".into(),
            );
        }
        let Some(channels) = &self.extra_channels else {
            return issues;
        };
        if region.is_fixed_channel_plan() && !channels.is_empty() {
            issue(
                "extra_channels",
                format!(
                    "{} has a fixed channel plan: channels cannot be added.",
                    p.name
                ),
                "remove extra_channels (use sub_band)".into(),
            );
            return issues;
        }
        let first = p.default_channels_hz.len() as u8;
        for (i, c) in channels.iter().enumerate() {
            let key = format!("extra_channels.{i}");
            if !(first..=15).contains(&c.index) {
                issue(
                    &format!("{key}.index"),
                    format!("Channel index {} cannot be set.", c.index),
                    format!(
                        "{first}..=15 (0..={} are the region's default channels)",
                        first - 1
                    ),
                );
            }
            if channels[..i].iter().any(|o| o.index == c.index) {
                issue(
                    &format!("{key}.index"),
                    format!("Channel index {} is listed twice.", c.index),
                    "one entry per index".into(),
                );
            }
            if !frequency_ok(c.frequency) {
                issue(
                    &format!("{key}.frequency"),
                    format!(
                        "{} is not a frequency in Hz in steps of 100 Hz.",
                        c.frequency
                    ),
                    "e.g. 867100000".into(),
                );
            }
            if c.min_dr > c.max_dr || p.lora_dr(c.max_dr).is_none() {
                issue(
                    &key,
                    format!(
                        "min_dr {} and max_dr {} do not make a range of {} data rates.",
                        c.min_dr, c.max_dr, p.name
                    ),
                    "e.g. min_dr = 0, max_dr = 5".into(),
                );
            }
        }
        issues
    }
}

/// A radio frequency the MAC commands can carry: 100 Hz steps, 100 MHz..1677 MHz.
fn frequency_ok(hz: u32) -> bool {
    hz % 100 == 0 && (100_000_000..1_677_721_600).contains(&hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> MacSetupConfig {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn device_keys_override_the_adapter_key_by_key() {
        let adapter = parse(
            "rx1_delay = 2\nrx2_dr = 3\nextra_channels = [{ index = 3, frequency = 867100000 }]",
        );
        let dev = parse("rx2_dr = 0\nextra_channels = []");
        let m = dev.over(&adapter);
        assert_eq!((m.rx1_delay, m.rx2_dr), (Some(2), Some(0)));
        assert_eq!(m.radio_setup().channels, Some(vec![]));
        let inherited = MacSetupConfig::default().over(&adapter).radio_setup();
        assert_eq!(
            inherited.channels.unwrap(),
            [Channel {
                index: 3,
                frequency_hz: 867_100_000,
                min_dr: 0,
                max_dr: 5
            }]
        );
    }

    #[test]
    fn out_of_range_values_are_reported_with_their_path() {
        let bad = parse(
            "rx1_delay = 0\nrx1_dr_offset = 6\nrx2_dr = 7\nrx2_frequency = 869525050\nmax_duty_cycle = 16\n\
             extra_channels = [{ index = 1, frequency = 867100000 }, { index = 1, frequency = 867300000, min_dr = 5, max_dr = 2 }]",
        );
        let paths: Vec<String> = bad
            .validate("mac_setup", Region::Eu868)
            .into_iter()
            .map(|i| i.path)
            .collect();
        for want in [
            "mac_setup.rx1_delay",
            "mac_setup.rx1_dr_offset",
            "mac_setup.rx2_dr",
            "mac_setup.rx2_frequency",
            "mac_setup.max_duty_cycle",
            "mac_setup.extra_channels.0.index",
            "mac_setup.extra_channels.1.index",
            "mac_setup.extra_channels.1",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{want} missing in {paths:?}"
            );
        }
        let us = parse("extra_channels = [{ index = 3, frequency = 903900000 }]");
        assert_eq!(us.validate("m", Region::Us915).len(), 1);
        let ok = parse(
            "rx1_delay = 3\nrx2_dr = 3\nrx2_frequency = 869525000\nmax_duty_cycle = 7\n\
                        extra_channels = [{ index = 3, frequency = 867100000 }]",
        );
        assert!(ok.validate("m", Region::Eu868).is_empty());
        // AS923: two default channels, so index 2 is the first extra one.
        let as923 = parse("extra_channels = [{ index = 2, frequency = 923600000 }]");
        assert!(as923.validate("m", Region::As923_1).is_empty());
    }
}
