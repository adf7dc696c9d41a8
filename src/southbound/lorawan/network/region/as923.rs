//! AS923-1..4 (RP002-1.0.4 §2.10): one channel plan shifted by a per-group frequency offset
//! (AS923-2 -1.8 MHz, AS923-3 -6.6 MHz, AS923-4 -5.9 MHz from AS923-1).

use super::{mp, CfListType, DataRate, MaxPayload, RegionParams};

/// §2.10.3: DR0..5 SF12..SF7/125 kHz, DR6 SF7/250 kHz, DR7 FSK 50 kbit/s, DR8..15 RFU.
const DRS: &[DataRate] = &[
    DataRate::lora(12, 125),
    DataRate::lora(11, 125),
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
    DataRate::lora(7, 250),
    DataRate::Fsk { kbps: 50 },
];

/// §2.10.6 maximum payload size (M), UplinkDwellTime = 0: 59, 59, 123, 123, 250, 250, 250, 250.
const MAX_PAYLOAD: &[Option<MaxPayload>] = &[
    mp(59),
    mp(59),
    mp(123),
    mp(123),
    mp(250),
    mp(250),
    mp(250),
    mp(250),
];

/// §2.10.6, UplinkDwellTime = 1 (400 ms): DR0/DR1 not allowed, 19, 61, 133, 250, 250, 250.
const MAX_PAYLOAD_DWELL: &[Option<MaxPayload>] = &[
    None,
    None,
    mp(19),
    mp(61),
    mp(133),
    mp(250),
    mp(250),
    mp(250),
];

/// One AS923 group: everything but the channels is shared. RX2 is on the first default channel.
const fn group(name: &'static str, channels: &'static [u32; 2]) -> RegionParams {
    RegionParams {
        name,
        data_rates: DRS,
        max_payload: MAX_PAYLOAD,
        max_payload_dwell: Some(MAX_PAYLOAD_DWELL),
        // §2.10.7: RX1DROffset 0..=7 (6 and 7 raise the downlink DR).
        max_rx1_dr_offset: 7,
        // §2.10.7: RX2 on the group's first default channel (923.2 MHz for AS923-1), DR2.
        rx2_freq_hz: channels[0],
        rx2_dr: 2,
        downlink_power_dbm: 14,
        // §2.10.3: default max EIRP +16 dBm; TXPower 0..=7.
        max_eirp_dbm: 16.0,
        max_tx_power_index: 7,
        default_channels_hz: channels,
        cf_list_type: CfListType::Frequencies,
    }
}

/// §2.10.2: AS923-1 default channels 923.2 and 923.4 MHz.
pub(super) static AS923_1: RegionParams = group("AS923-1", &[923_200_000, 923_400_000]);
/// §2.10.2: AS923-2 = AS923-1 - 1.8 MHz: 921.4 and 921.6 MHz.
pub(super) static AS923_2: RegionParams = group("AS923-2", &[921_400_000, 921_600_000]);
/// §2.10.2: AS923-3 = AS923-1 - 6.6 MHz: 916.6 and 916.8 MHz.
pub(super) static AS923_3: RegionParams = group("AS923-3", &[916_600_000, 916_800_000]);
/// §2.10.2: AS923-4 = AS923-1 - 5.9 MHz: 917.3 and 917.5 MHz.
pub(super) static AS923_4: RegionParams = group("AS923-4", &[917_300_000, 917_500_000]);

/// §2.10.7: RX1 DR = min(5, max(MinDR, upstream DR - effective offset)), MinDR = 2 with
/// DownlinkDwellTime = 1 else 0; on the uplink channel.
pub(super) fn rx1_dr(up: u8, offset: u8, downlink_dwell_time: bool) -> u8 {
    effective_offset_dr(up, offset, if downlink_dwell_time { 2 } else { 0 })
}

/// RX1DROffset 0..=7 stand for effective offsets 0, 1, 2, 3, 4, 5, -1, -2 (AS923, IN865).
pub(super) fn effective_offset_dr(up: u8, offset: u8, min_dr: i16) -> u8 {
    let eff: i16 = match offset {
        6 => -1,
        7 => -2,
        o => i16::from(o),
    };
    let dr = (i16::from(up) - eff).max(min_dr).min(5);
    dr as u8
}
