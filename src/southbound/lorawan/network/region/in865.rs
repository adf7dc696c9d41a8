//! IN865-867 (RP002-1.0.4 §2.12).

use super::{mp, CfListType, DataRate, MaxPayload, RegionParams};

/// §2.12.3: DR0..5 SF12..SF7/125 kHz, DR6 RFU, DR7 FSK 50 kbit/s, DR8..15 RFU.
const DRS: &[DataRate] = &[
    DataRate::lora(12, 125),
    DataRate::lora(11, 125),
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
    DataRate::Rfu,
    DataRate::Fsk { kbps: 50 },
];

/// §2.12.6 maximum payload size (M): 59, 59, 59, 123, 250, 250, undefined, 250.
const MAX_PAYLOAD: &[Option<MaxPayload>] = &[
    mp(59),
    mp(59),
    mp(59),
    mp(123),
    mp(250),
    mp(250),
    None,
    mp(250),
];

pub(super) static IN865: RegionParams = RegionParams {
    name: "IN865",
    data_rates: DRS,
    max_payload: MAX_PAYLOAD,
    max_payload_dwell: None,
    // §2.12.7: RX1DROffset 0..=7 (6 and 7 raise the downlink DR).
    max_rx1_dr_offset: 7,
    // §2.12.7: RX2 866.550 MHz, DR2.
    rx2_freq_hz: 866_550_000,
    rx2_dr: 2,
    downlink_power_dbm: 20,
    // §2.12.3: default max EIRP +30 dBm; TXPower 0..=10.
    max_eirp_dbm: 30.0,
    max_tx_power_index: 10,
    // §2.12.2: the three default channels.
    default_channels_hz: &[865_062_500, 865_402_500, 865_985_000],
    cf_list_type: CfListType::Frequencies,
};

/// §2.12.7: RX1 DR = min(5, max(0, upstream DR - effective offset)), effective offsets
/// 0, 1, 2, 3, 4, 5, -1, -2 for RX1DROffset 0..=7; on the uplink channel.
pub(super) fn rx1_dr(up: u8, offset: u8) -> u8 {
    super::as923::effective_offset_dr(up, offset, 0)
}
