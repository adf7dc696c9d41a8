//! KR920-923 (RP002-1.0.4 §2.11).

use super::{mp, CfListType, DataRate, MaxPayload, RegionParams};

/// §2.11.3: DR0..5 SF12..SF7/125 kHz; DR6..15 RFU.
const DRS: &[DataRate] = &[
    DataRate::lora(12, 125),
    DataRate::lora(11, 125),
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
];

/// §2.11.6 maximum payload size (M): 59, 59, 59, 123, 250, 250.
const MAX_PAYLOAD: &[Option<MaxPayload>] = &[mp(59), mp(59), mp(59), mp(123), mp(250), mp(250)];

pub(super) static KR920: RegionParams = RegionParams {
    name: "KR920",
    data_rates: DRS,
    max_payload: MAX_PAYLOAD,
    max_payload_dwell: None,
    // §2.11.7: RX1DROffset 0..=5.
    max_rx1_dr_offset: 5,
    // §2.11.7: RX2 921.9 MHz, DR0.
    rx2_freq_hz: 921_900_000,
    rx2_dr: 0,
    downlink_power_dbm: 14,
    // §2.11.3: default max EIRP +14 dBm; TXPower 0..=7.
    max_eirp_dbm: 14.0,
    max_tx_power_index: 7,
    // §2.11.2: the three default channels.
    default_channels_hz: &[922_100_000, 922_300_000, 922_500_000],
    cf_list_type: CfListType::Frequencies,
};

/// §2.11.7: RX1 DR = max(0, upstream DR - RX1DROffset), on the uplink channel.
pub(super) fn rx1_dr(up: u8, offset: u8) -> u8 {
    up.saturating_sub(offset)
}
