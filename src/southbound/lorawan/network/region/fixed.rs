//! Fixed channel plans: US902-928 (RP002-1.0.4 §2.5) and AU915-928 (§2.8). 64 uplink channels
//! of 125 kHz, 8 of 500 kHz, 8 downlink channels of 500 kHz; a gateway listens to one sub-band
//! of 8 + 1 channels, which devices learn from the join-accept CFList or LinkADRReq.

use super::{mp, CfListType, DataRate, MaxPayload, RegionError, RegionParams};

/// The eight sub-bands (1..=8) of a fixed plan.
pub const SUB_BANDS: std::ops::RangeInclusive<u8> = 1..=8;

/// §2.5.3 US915 data rates: DR0..3 SF10..SF7/125, DR4 SF8/500, DR5..6 LR-FHSS 1.523 MHz,
/// DR7 RFU, DR8..13 SF12..SF7/500 (downlink), DR14..15 RFU.
const US915_DRS: &[DataRate] = &[
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
    DataRate::lora(8, 500),
    DataRate::LrFhss {
        coding_rate: "1/3",
        ocw_khz: 1523,
    },
    DataRate::LrFhss {
        coding_rate: "2/3",
        ocw_khz: 1523,
    },
    DataRate::Rfu,
    DataRate::lora(12, 500),
    DataRate::lora(11, 500),
    DataRate::lora(10, 500),
    DataRate::lora(9, 500),
    DataRate::lora(8, 500),
    DataRate::lora(7, 500),
];

/// §2.5.6 US915 maximum payload size (M): 19, 61, 133, 250, 250, 58, 133, -, 61, 137, 250 ×4.
const US915_MAX_PAYLOAD: &[Option<MaxPayload>] = &[
    mp(19),
    mp(61),
    mp(133),
    mp(250),
    mp(250),
    mp(58),
    mp(133),
    None,
    mp(61),
    mp(137),
    mp(250),
    mp(250),
    mp(250),
    mp(250),
];

/// §2.8.3 AU915 data rates: DR0..5 SF12..SF7/125, DR6 SF8/500, DR7 LR-FHSS 1.523 MHz,
/// DR8..13 SF12..SF7/500 (downlink), DR14..15 RFU.
const AU915_DRS: &[DataRate] = &[
    DataRate::lora(12, 125),
    DataRate::lora(11, 125),
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
    DataRate::lora(8, 500),
    DataRate::LrFhss {
        coding_rate: "1/3",
        ocw_khz: 1523,
    },
    DataRate::lora(12, 500),
    DataRate::lora(11, 500),
    DataRate::lora(10, 500),
    DataRate::lora(9, 500),
    DataRate::lora(8, 500),
    DataRate::lora(7, 500),
];

/// §2.8.6 AU915 maximum payload size (M), UplinkDwellTime = 0.
const AU915_MAX_PAYLOAD: &[Option<MaxPayload>] = &[
    mp(59),
    mp(59),
    mp(59),
    mp(123),
    mp(250),
    mp(250),
    mp(250),
    mp(58),
    mp(61),
    mp(137),
    mp(250),
    mp(250),
    mp(250),
    mp(250),
];

/// §2.8.6 AU915, UplinkDwellTime = 1 (400 ms): DR0/DR1 not allowed.
const AU915_MAX_PAYLOAD_DWELL: &[Option<MaxPayload>] = &[
    None,
    None,
    mp(19),
    mp(61),
    mp(133),
    mp(250),
    mp(250),
    mp(58),
    mp(61),
    mp(137),
    mp(250),
    mp(250),
    mp(250),
    mp(250),
];

pub(super) static US915: RegionParams = RegionParams {
    name: "US915",
    data_rates: US915_DRS,
    max_payload: US915_MAX_PAYLOAD,
    max_payload_dwell: None,
    // §2.5.7: RX1DROffset 0..=3.
    max_rx1_dr_offset: 3,
    // §2.5.7: RX2 923.3 MHz, DR8.
    rx2_freq_hz: 923_300_000,
    rx2_dr: 8,
    downlink_power_dbm: 20,
    // §2.5.3: default max EIRP +30 dBm; TXPower 0..=14.
    max_eirp_dbm: 30.0,
    max_tx_power_index: 14,
    default_channels_hz: &[],
    cf_list_type: CfListType::ChannelMask,
};

pub(super) static AU915: RegionParams = RegionParams {
    name: "AU915",
    data_rates: AU915_DRS,
    max_payload: AU915_MAX_PAYLOAD,
    max_payload_dwell: Some(AU915_MAX_PAYLOAD_DWELL),
    // §2.8.7: RX1DROffset 0..=5.
    max_rx1_dr_offset: 5,
    // §2.8.7: RX2 923.3 MHz, DR8.
    rx2_freq_hz: 923_300_000,
    rx2_dr: 8,
    downlink_power_dbm: 20,
    // §2.8.3: default max EIRP +30 dBm; TXPower 0..=14.
    max_eirp_dbm: 30.0,
    max_tx_power_index: 14,
    default_channels_hz: &[],
    cf_list_type: CfListType::ChannelMask,
};

/// §2.5.7 US915 RX1 DR table: upstream DR0..3 -> DR10..13 at offset 0, DR4 -> DR13, each
/// offset step one DR lower, never below DR8. LR-FHSS DR5/DR6 map like DR0/DR1.
pub(super) fn us915_rx1_dr(up: u8, offset: u8) -> u8 {
    let up = match up {
        5 => 0,
        6 => 1,
        u => u.min(4),
    };
    (10 + up).saturating_sub(offset).clamp(8, 13)
}

/// §2.8.7 AU915 RX1 DR table: upstream DR0..6 -> DR8..13 at offset 0 (DR5 and DR6 both
/// DR13), one DR lower per offset step, never below DR8. LR-FHSS DR7 maps like DR1.
pub(super) fn au915_rx1_dr(up: u8, offset: u8) -> u8 {
    let up = if up == 7 { 1 } else { up.min(6) };
    (8 + up).saturating_sub(offset).clamp(8, 13)
}

/// The uplink and downlink channel grids of a fixed plan, Hz.
pub(super) struct Grid {
    /// Channel 0..=63, 125 kHz: `first_125 + n × 200 kHz`.
    first_125: u32,
    /// Channel 64..=71, 500 kHz: `first_500 + (n - 64) × 1.6 MHz`.
    first_500: u32,
    /// Downlink channel 0..=7, 500 kHz: `first_down + k × 600 kHz`.
    first_down: u32,
    /// Bandwidth (kHz) of each uplink DR, to tell which grid a frequency is on.
    drs: &'static [DataRate],
}

/// §2.5.2: 902.3 MHz + 200 kHz n, 903.0 MHz + 1.6 MHz n; downlink 923.3 MHz + 600 kHz k.
pub(super) static US915_GRID: Grid = Grid {
    first_125: 902_300_000,
    first_500: 903_000_000,
    first_down: 923_300_000,
    drs: US915_DRS,
};

/// §2.8.2: 915.2 MHz + 200 kHz n, 915.9 MHz + 1.6 MHz n; downlink 923.3 MHz + 600 kHz k.
pub(super) static AU915_GRID: Grid = Grid {
    first_125: 915_200_000,
    first_500: 915_900_000,
    first_down: 923_300_000,
    drs: AU915_DRS,
};

impl Grid {
    /// Uplink channel number (0..=71) of a frequency heard at data rate `up_dr`.
    pub(super) fn uplink_channel(&self, freq_mhz: f64, up_dr: u8) -> Option<u8> {
        let hz = (freq_mhz * 1e6).round();
        let wide = matches!(
            self.drs.get(usize::from(up_dr)).and_then(|d| d.as_lora()),
            Some(d) if d.bw_khz == 500
        );
        let (first, step, base, count) = if wide {
            (self.first_500, 1_600_000.0, 64.0, 8.0)
        } else {
            (self.first_125, 200_000.0, 0.0, 64.0)
        };
        let n = ((hz - f64::from(first)) / step).round();
        // Within 1 kHz of the grid: forwarders report frequencies rounded to 1 Hz or 100 Hz.
        let on_grid = (hz - (f64::from(first) + n * step)).abs() <= 1_000.0;
        (on_grid && (0.0..count).contains(&n)).then_some((base + n) as u8)
    }

    /// §2.5.7 / §2.8.7: RX1 channel = uplink channel modulo 8.
    pub(super) fn rx1_freq_mhz(&self, up_freq_mhz: f64, up_dr: u8) -> Result<f64, RegionError> {
        let ch = self
            .uplink_channel(up_freq_mhz, up_dr)
            .ok_or(RegionError::NotAChannel(up_freq_mhz))?;
        let hz = self.first_down + 600_000 * u32::from(ch % 8);
        Ok(f64::from(hz) / 1e6)
    }
}

/// The channel mask (ChMask0..4, channels 0..=79) enabling sub-band `k` (1..=8): its eight
/// 125 kHz channels 8(k-1)..8(k-1)+7 and its 500 kHz channel 64+(k-1).
pub fn sub_band_channel_mask(k: u8) -> Option<[u16; 5]> {
    if !SUB_BANDS.contains(&k) {
        return None;
    }
    let i = usize::from(k - 1);
    let mut masks = [0u16; 5];
    masks[i / 2] = if i % 2 == 0 { 0x00FF } else { 0xFF00 };
    masks[4] = 1 << i;
    Some(masks)
}
