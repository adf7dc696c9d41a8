//! EU863-870 (RP002-1.0.4 §2.4).

use super::{mp, CfListType, DataRate, MaxPayload, RegionParams};

/// §2.4.3 data-rate table: DR0..5 SF12..SF7/125 kHz, DR6 SF7/250 kHz, DR7 FSK 50 kbit/s,
/// DR8..11 LR-FHSS, DR12..14 RFU.
const DRS: &[DataRate] = &[
    DataRate::lora(12, 125),
    DataRate::lora(11, 125),
    DataRate::lora(10, 125),
    DataRate::lora(9, 125),
    DataRate::lora(8, 125),
    DataRate::lora(7, 125),
    DataRate::lora(7, 250),
    DataRate::Fsk { kbps: 50 },
    DataRate::LrFhss {
        coding_rate: "1/3",
        ocw_khz: 137,
    },
    DataRate::LrFhss {
        coding_rate: "2/3",
        ocw_khz: 137,
    },
    DataRate::LrFhss {
        coding_rate: "1/3",
        ocw_khz: 336,
    },
    DataRate::LrFhss {
        coding_rate: "2/3",
        ocw_khz: 336,
    },
    DataRate::Rfu,
    DataRate::Rfu,
    DataRate::Rfu,
];

/// §2.4.6 maximum payload size (M): 59, 59, 59, 123, 250, 250, 250, 250, 58, 123, 58, 123.
const MAX_PAYLOAD: &[Option<MaxPayload>] = &[
    mp(59),
    mp(59),
    mp(59),
    mp(123),
    mp(250),
    mp(250),
    mp(250),
    mp(250),
    mp(58),
    mp(123),
    mp(58),
    mp(123),
];

pub(super) static EU868: RegionParams = RegionParams {
    name: "EU868",
    data_rates: DRS,
    max_payload: MAX_PAYLOAD,
    max_payload_dwell: None,
    // §2.4.7: RX1DROffset 0..=5.
    max_rx1_dr_offset: 5,
    // §2.4.7: RX2 869.525 MHz, DR0.
    rx2_freq_hz: 869_525_000,
    rx2_dr: 0,
    downlink_power_dbm: 14,
    // §2.4.3: default max EIRP +16 dBm; TXPower 0..=7.
    max_eirp_dbm: 16.0,
    max_tx_power_index: 7,
    // §2.4.2: the three default channels.
    default_channels_hz: &[868_100_000, 868_300_000, 868_500_000],
    cf_list_type: CfListType::Frequencies,
};

/// §2.4.7: RX1 DR = max(0, upstream DR - RX1DROffset), on the uplink channel.
pub(super) fn rx1_dr(up: u8, offset: u8) -> u8 {
    up.saturating_sub(offset)
}
