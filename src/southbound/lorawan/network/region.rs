//! Regional parameters (RP002-1.0.x) the edge server needs to answer in RX1.
//!
//! A region is a static table plus a few rules; adding US915 or AS923 means adding a table and
//! its RX1 channel/data-rate rule in [`Region::rx1`]. Timings are the RP002 defaults, the same
//! in all regions (protocols.md §2.5).

use serde::Deserialize;

/// Regions the adapter can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Region {
    #[default]
    #[serde(rename = "EU868", alias = "eu868")]
    Eu868,
}

/// One LoRa data rate: spreading factor and bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoraDr {
    pub sf: u8,
    pub bw_khz: u16,
}

impl LoraDr {
    /// The Semtech forwarder's `datr` string, e.g. `SF7BW125`.
    pub fn datr(&self) -> String {
        format!("SF{}BW{}", self.sf, self.bw_khz)
    }
}

/// Fixed parameters of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionParams {
    pub name: &'static str,
    /// LoRa data rates indexed by DR number (`None` = FSK or unused).
    pub data_rates: &'static [Option<LoraDr>],
    pub max_rx1_dr_offset: u8,
    pub rx2_freq_hz: u32,
    pub rx2_dr: u8,
    /// Downlink TX power the gateway is asked for (dBm, within the region's EIRP limit).
    pub downlink_power_dbm: i32,
}

/// RECEIVE_DELAY1 (data downlinks), µs.
pub const RECEIVE_DELAY1_US: u32 = 1_000_000;
/// RECEIVE_DELAY2 = RECEIVE_DELAY1 + 1 s, µs.
pub const RECEIVE_DELAY2_US: u32 = 2_000_000;
/// JOIN_ACCEPT_DELAY1 (join-accept in RX1), µs.
pub const JOIN_ACCEPT_DELAY1_US: u32 = 5_000_000;
/// JOIN_ACCEPT_DELAY2, µs.
pub const JOIN_ACCEPT_DELAY2_US: u32 = 6_000_000;

const EU868_DRS: &[Option<LoraDr>] = &[
    Some(LoraDr {
        sf: 12,
        bw_khz: 125,
    }),
    Some(LoraDr {
        sf: 11,
        bw_khz: 125,
    }),
    Some(LoraDr {
        sf: 10,
        bw_khz: 125,
    }),
    Some(LoraDr { sf: 9, bw_khz: 125 }),
    Some(LoraDr { sf: 8, bw_khz: 125 }),
    Some(LoraDr { sf: 7, bw_khz: 125 }),
    Some(LoraDr { sf: 7, bw_khz: 250 }),
    None, // DR7 = FSK 50 kbit/s
];

static EU868: RegionParams = RegionParams {
    name: "EU868",
    data_rates: EU868_DRS,
    max_rx1_dr_offset: 5,
    rx2_freq_hz: 869_525_000,
    rx2_dr: 0,
    downlink_power_dbm: 14,
};

/// Where and how to answer in RX1.
#[derive(Debug, Clone, PartialEq)]
pub struct Rx1 {
    pub freq_mhz: f64,
    pub dr: u8,
    pub datr: String,
}

/// Why no RX1 parameters could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("data rate {0:?} is not a LoRa data rate of this region")]
    UnknownDatr(String),
    #[error("RX1DROffset {0} is out of range (0..={1})")]
    BadOffset(u8, u8),
}

impl Region {
    pub fn params(self) -> &'static RegionParams {
        match self {
            Region::Eu868 => &EU868,
        }
    }

    /// DR index of a forwarder `datr` string such as `SF9BW125`.
    pub fn dr_of_datr(self, datr: &str) -> Option<u8> {
        let dr = parse_datr(datr)?;
        self.params()
            .data_rates
            .iter()
            .position(|d| *d == Some(dr))
            .and_then(|i| u8::try_from(i).ok())
    }

    /// RX1 frequency and data rate for an uplink heard at `up_freq_mhz` with `up_datr`.
    pub fn rx1(
        self,
        up_freq_mhz: f64,
        up_datr: &str,
        rx1_dr_offset: u8,
    ) -> Result<Rx1, RegionError> {
        let p = self.params();
        if rx1_dr_offset > p.max_rx1_dr_offset {
            return Err(RegionError::BadOffset(rx1_dr_offset, p.max_rx1_dr_offset));
        }
        let up_dr = self
            .dr_of_datr(up_datr)
            .ok_or_else(|| RegionError::UnknownDatr(up_datr.to_owned()))?;
        match self {
            // EU868: RX1 on the uplink channel; DR = max(0, up - offset) (RP002 §2.4.7).
            Region::Eu868 => {
                let dr = up_dr.saturating_sub(rx1_dr_offset);
                let datr = p.data_rates[usize::from(dr)]
                    .map(|d| d.datr())
                    .ok_or_else(|| RegionError::UnknownDatr(up_datr.to_owned()))?;
                Ok(Rx1 {
                    freq_mhz: up_freq_mhz,
                    dr,
                    datr,
                })
            }
        }
    }
}

/// `SF7BW125` → (7, 125). Returns `None` for anything else (FSK rates are numbers).
pub fn parse_datr(datr: &str) -> Option<LoraDr> {
    let rest = datr.strip_prefix("SF")?;
    let (sf, bw) = rest.split_once("BW")?;
    Some(LoraDr {
        sf: sf.parse().ok()?,
        bw_khz: bw.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu868_rx1_follows_the_offset_table() {
        let r = Region::Eu868;
        let rx1 = r.rx1(868.1, "SF7BW125", 0).unwrap();
        assert_eq!(
            (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
            (868.1, 5, "SF7BW125")
        );
        assert_eq!(r.rx1(868.3, "SF7BW125", 2).unwrap().datr, "SF9BW125");
        assert_eq!(
            r.rx1(868.3, "SF10BW125", 5).unwrap().dr,
            0,
            "saturates at DR0"
        );
        assert_eq!(r.rx1(868.5, "SF7BW250", 1).unwrap().datr, "SF7BW125");
        assert!(matches!(
            r.rx1(868.5, "SF7BW500", 0),
            Err(RegionError::UnknownDatr(_))
        ));
        assert_eq!(
            r.rx1(868.5, "SF7BW125", 6),
            Err(RegionError::BadOffset(6, 5))
        );
    }

    #[test]
    fn eu868_constants() {
        let p = Region::Eu868.params();
        assert_eq!(p.rx2_freq_hz, 869_525_000);
        assert_eq!(p.rx2_dr, 0);
        assert_eq!(JOIN_ACCEPT_DELAY1_US, 5_000_000);
        assert_eq!(RECEIVE_DELAY1_US, 1_000_000);
        assert_eq!(Region::Eu868.dr_of_datr("SF12BW125"), Some(0));
        assert_eq!(Region::Eu868.dr_of_datr("garbage"), None);
        assert_eq!(parse_datr("SFxBW125"), None);
    }
}
