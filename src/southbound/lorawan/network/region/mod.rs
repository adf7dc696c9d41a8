//! Regional parameters (LoRaWAN Regional Parameters RP002-1.0.x) the edge server needs: the
//! data-rate table, maximum payload sizes, how to answer in RX1, the RX2 defaults, TX power and
//! the join-accept CFList of each region.
//!
//! A region is a static [`RegionParams`] table plus its RX1 rules; the tables live in one file
//! per region family (`eu868.rs`, `fixed.rs` for US915/AU915, `as923.rs`, `kr920.rs`,
//! `in865.rs`), each with its RP002-1.0.4 section numbers. Timings are the RP002 defaults, the
//! same in all regions (protocols.md §2.5).

mod as923;
mod eu868;
mod fixed;
mod in865;
mod kr920;
#[cfg(test)]
mod tests;

pub use fixed::{sub_band_channel_mask, SUB_BANDS};
use serde::Deserialize;

/// Regions the adapter can serve (`region = "..."` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
pub enum Region {
    #[default]
    #[serde(rename = "EU868", alias = "eu868")]
    Eu868,
    #[serde(rename = "US915", alias = "us915")]
    Us915,
    #[serde(rename = "AU915", alias = "au915")]
    Au915,
    /// AS923-1 (called plain AS923 before RP002-1.0.2).
    #[serde(
        rename = "AS923-1",
        alias = "AS923",
        alias = "as923",
        alias = "as923-1"
    )]
    As923_1,
    #[serde(rename = "AS923-2", alias = "as923-2")]
    As923_2,
    #[serde(rename = "AS923-3", alias = "as923-3")]
    As923_3,
    #[serde(rename = "AS923-4", alias = "as923-4")]
    As923_4,
    #[serde(rename = "IN865", alias = "in865")]
    In865,
    #[serde(rename = "KR920", alias = "kr920")]
    Kr920,
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

/// One entry of a region's data-rate table. citygate's edge speaks LoRa only: FSK and LR-FHSS
/// rates are listed so DR numbers line up with RP002, and are reported as not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRate {
    Lora(LoraDr),
    /// FSK at this bit rate (kbit/s); not supported.
    Fsk {
        kbps: u16,
    },
    /// LR-FHSS with this coding rate and occupied channel width; not supported (the Semtech
    /// UDP forwarder has no LR-FHSS `datr`).
    LrFhss {
        coding_rate: &'static str,
        ocw_khz: u16,
    },
    /// Reserved for future use in this region.
    Rfu,
}

impl DataRate {
    pub const fn lora(sf: u8, bw_khz: u16) -> DataRate {
        DataRate::Lora(LoraDr { sf, bw_khz })
    }

    /// The LoRa parameters, or `None` for a rate citygate cannot use.
    pub fn as_lora(self) -> Option<LoraDr> {
        match self {
            DataRate::Lora(d) => Some(d),
            _ => None,
        }
    }
}

/// Maximum MACPayload size `m` and application payload size `n` (no FOpts) of one DR, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPayload {
    pub m: u8,
    pub n: u8,
}

/// `M` with `N = M - 8` (FHDR without FOpts is 7 bytes, FPort 1): true in every RP002 table.
pub(crate) const fn mp(m: u8) -> Option<MaxPayload> {
    Some(MaxPayload { m, n: m - 8 })
}

/// How the 16-byte CFList of a join-accept is used in a region (RP002 "Join-Accept CFList").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfListType {
    /// Type 0: up to five extra channel frequencies (dynamic channel plans).
    Frequencies,
    /// Type 1: a channel mask over the 72 channels (fixed channel plans).
    ChannelMask,
}

/// Fixed parameters of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionParams {
    pub name: &'static str,
    /// Data rates indexed by DR number.
    pub data_rates: &'static [DataRate],
    /// Max payload per DR without dwell-time limit (`None` = DR not defined).
    pub max_payload: &'static [Option<MaxPayload>],
    /// Max payload per DR with the 400 ms uplink dwell time (AS923, AU915), if the region has it.
    pub max_payload_dwell: Option<&'static [Option<MaxPayload>]>,
    pub max_rx1_dr_offset: u8,
    pub rx2_freq_hz: u32,
    pub rx2_dr: u8,
    /// Downlink TX power the gateway is asked for (dBm, within the region's EIRP limit).
    pub downlink_power_dbm: i32,
    /// The end-device's default max EIRP (dBm); TXPower n means `max_eirp_dbm - 2 n`.
    pub max_eirp_dbm: f32,
    /// Highest defined TXPower index.
    pub max_tx_power_index: u8,
    /// Channels every device knows after joining (dynamic plans), Hz.
    pub default_channels_hz: &'static [u32],
    pub cf_list_type: CfListType,
}

impl RegionParams {
    /// The LoRa parameters of `dr`, if it is a LoRa rate of this region.
    pub fn lora_dr(&self, dr: u8) -> Option<LoraDr> {
        self.data_rates.get(usize::from(dr))?.as_lora()
    }

    /// Max payload of `dr`; `dwell` selects the 400 ms dwell-time column where there is one.
    pub fn max_payload(&self, dr: u8, dwell: bool) -> Option<MaxPayload> {
        let table = match (dwell, self.max_payload_dwell) {
            (true, Some(t)) => t,
            _ => self.max_payload,
        };
        table.get(usize::from(dr)).copied().flatten()
    }

    /// EIRP of TXPower index `i` (RP002: MaxEIRP - 2 dB per step).
    pub fn tx_power_eirp_dbm(&self, i: u8) -> Option<f32> {
        (i <= self.max_tx_power_index).then(|| self.max_eirp_dbm - 2.0 * f32::from(i))
    }
}

/// RECEIVE_DELAY1 (data downlinks), µs.
pub const RECEIVE_DELAY1_US: u32 = 1_000_000;
/// RECEIVE_DELAY2 = RECEIVE_DELAY1 + 1 s, µs.
pub const RECEIVE_DELAY2_US: u32 = 2_000_000;
/// JOIN_ACCEPT_DELAY1 (join-accept in RX1), µs.
pub const JOIN_ACCEPT_DELAY1_US: u32 = 5_000_000;
/// JOIN_ACCEPT_DELAY2, µs.
pub const JOIN_ACCEPT_DELAY2_US: u32 = 6_000_000;

/// Where and how to answer in RX1.
#[derive(Debug, Clone, PartialEq)]
pub struct Rx1 {
    pub freq_mhz: f64,
    pub dr: u8,
    pub datr: String,
}

/// Why no RX1 parameters could be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegionError {
    #[error("data rate {0:?} is not a LoRa data rate of this region")]
    UnknownDatr(String),
    #[error("RX1DROffset {0} is out of range (0..={1})")]
    BadOffset(u8, u8),
    #[error("{0} MHz is not an uplink channel of this region")]
    NotAChannel(f64),
    #[error("RX1 data rate DR{0} is not a LoRa data rate of this region")]
    NotLora(u8),
    #[error("a CFList holds at most 5 frequencies, got {0}")]
    TooManyChannels(usize),
}

impl Region {
    pub fn params(self) -> &'static RegionParams {
        match self {
            Region::Eu868 => &eu868::EU868,
            Region::Us915 => &fixed::US915,
            Region::Au915 => &fixed::AU915,
            Region::As923_1 => &as923::AS923_1,
            Region::As923_2 => &as923::AS923_2,
            Region::As923_3 => &as923::AS923_3,
            Region::As923_4 => &as923::AS923_4,
            Region::In865 => &in865::IN865,
            Region::Kr920 => &kr920::KR920,
        }
    }

    /// US915 and AU915: 64 + 8 fixed uplink channels, chosen by a sub-band / channel mask.
    pub fn is_fixed_channel_plan(self) -> bool {
        matches!(self, Region::Us915 | Region::Au915)
    }

    /// DR index of a forwarder `datr` string such as `SF9BW125`. Uplink rates come first in
    /// every table, so a rate listed twice (US915 SF8BW500 = DR4 and DR12) gives the uplink DR.
    pub fn dr_of_datr(self, datr: &str) -> Option<u8> {
        let dr = parse_datr(datr)?;
        self.params()
            .data_rates
            .iter()
            .position(|d| d.as_lora() == Some(dr))
            .and_then(|i| u8::try_from(i).ok())
    }

    /// RX1 data rate for an uplink at `up_dr` (downlink dwell time off, the RP002 default).
    pub fn rx1_dr(self, up_dr: u8, rx1_dr_offset: u8) -> Result<u8, RegionError> {
        let max = self.params().max_rx1_dr_offset;
        if rx1_dr_offset > max {
            return Err(RegionError::BadOffset(rx1_dr_offset, max));
        }
        Ok(match self {
            Region::Eu868 => eu868::rx1_dr(up_dr, rx1_dr_offset),
            Region::Us915 => fixed::us915_rx1_dr(up_dr, rx1_dr_offset),
            Region::Au915 => fixed::au915_rx1_dr(up_dr, rx1_dr_offset),
            Region::As923_1 | Region::As923_2 | Region::As923_3 | Region::As923_4 => {
                as923::rx1_dr(up_dr, rx1_dr_offset, false)
            }
            Region::In865 => in865::rx1_dr(up_dr, rx1_dr_offset),
            Region::Kr920 => kr920::rx1_dr(up_dr, rx1_dr_offset),
        })
    }

    /// RX1 frequency for an uplink heard at `up_freq_mhz` with data rate `up_dr`.
    pub fn rx1_freq_mhz(self, up_freq_mhz: f64, up_dr: u8) -> Result<f64, RegionError> {
        match self {
            Region::Us915 => fixed::US915_GRID.rx1_freq_mhz(up_freq_mhz, up_dr),
            Region::Au915 => fixed::AU915_GRID.rx1_freq_mhz(up_freq_mhz, up_dr),
            // Dynamic plans answer on the uplink channel by default.
            _ => Ok(up_freq_mhz),
        }
    }

    /// RX1 frequency and data rate for an uplink heard at `up_freq_mhz` with `up_datr`.
    pub fn rx1(
        self,
        up_freq_mhz: f64,
        up_datr: &str,
        rx1_dr_offset: u8,
    ) -> Result<Rx1, RegionError> {
        let max = self.params().max_rx1_dr_offset;
        if rx1_dr_offset > max {
            return Err(RegionError::BadOffset(rx1_dr_offset, max));
        }
        let up_dr = self
            .dr_of_datr(up_datr)
            .ok_or_else(|| RegionError::UnknownDatr(up_datr.to_owned()))?;
        let dr = self.rx1_dr(up_dr, rx1_dr_offset)?;
        let datr = self
            .params()
            .lora_dr(dr)
            .ok_or(RegionError::NotLora(dr))?
            .datr();
        Ok(Rx1 {
            freq_mhz: self.rx1_freq_mhz(up_freq_mhz, up_dr)?,
            dr,
            datr,
        })
    }

    /// The CFList citygate puts in join-accepts: for US915/AU915 with a sub-band, a type 1
    /// channel mask enabling that sub-band's eight 125 kHz channels and its 500 kHz channel;
    /// otherwise none (the device keeps the region's default channels).
    pub fn join_cf_list(self, sub_band: Option<u8>) -> Option<[u8; 16]> {
        if !self.is_fixed_channel_plan() {
            return None;
        }
        Some(cf_list_channel_mask(&sub_band_channel_mask(sub_band?)?))
    }
}

/// CFList type 0: up to five channel frequencies (Hz, 100 Hz steps), unused ones 0, then the
/// CFListType byte 0 (RP002-1.0.4 §2.4.4 and the same section of every dynamic plan).
pub fn cf_list_frequencies(freqs_hz: &[u32]) -> Result<[u8; 16], RegionError> {
    if freqs_hz.len() > 5 {
        return Err(RegionError::TooManyChannels(freqs_hz.len()));
    }
    let mut out = [0u8; 16];
    for (slot, hz) in out.chunks_exact_mut(3).zip(freqs_hz) {
        let v = (hz / 100).min(0x00FF_FFFF).to_le_bytes();
        slot.copy_from_slice(&v[..3]);
    }
    Ok(out)
}

/// CFList type 1: ChMask0..ChMask4 (channels 0..=79, little endian), 5 RFU bytes, then the
/// CFListType byte 1 (RP002-1.0.4 §2.5.4 US915, §2.8.4 AU915).
pub fn cf_list_channel_mask(masks: &[u16; 5]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, m) in out.chunks_exact_mut(2).zip(masks) {
        slot.copy_from_slice(&m.to_le_bytes());
    }
    out[15] = 1;
    out
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
