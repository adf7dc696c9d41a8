//! Typed payloads of the LoRaWAN 1.0.x MAC commands (TS001-1.0.3 chapter 5), one struct per
//! command that carries fields. Ranges in the doc comments are what fits on the air; the encoder
//! in the parent module refuses anything outside them.

use serde::Serialize;

/// LinkADRAns status (1.0.3 §5.2): each bit acknowledges one part of the LinkADRReq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkAdrAns {
    pub power_ack: bool,
    pub data_rate_ack: bool,
    pub channel_mask_ack: bool,
}

impl LinkAdrAns {
    /// The device applied the whole request (it applies all or nothing).
    pub fn accepted(&self) -> bool {
        self.power_ack && self.data_rate_ack && self.channel_mask_ack
    }
}

/// RXParamSetupAns status (1.0.3 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RxParamSetupAns {
    pub rx1_dr_offset_ack: bool,
    pub rx2_data_rate_ack: bool,
    pub channel_ack: bool,
}

/// Battery field of DevStatusAns (1.0.3 §5.5): 0 = external power, 1..=254 = level,
/// 255 = the device could not measure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Battery {
    ExternalPower,
    /// 1 (minimum) ..= 254 (maximum).
    Level(u8),
    Unknown,
}

impl Battery {
    pub fn from_raw(b: u8) -> Battery {
        match b {
            0 => Battery::ExternalPower,
            255 => Battery::Unknown,
            n => Battery::Level(n),
        }
    }

    pub fn raw(self) -> u8 {
        match self {
            Battery::ExternalPower => 0,
            Battery::Unknown => 255,
            Battery::Level(n) => n,
        }
    }
}

/// DevStatusAns (1.0.3 §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DevStatusAns {
    pub battery: Battery,
    /// SNR margin of the last DevStatusReq, dB, 6-bit signed: -32..=31.
    pub margin_db: i8,
}

/// NewChannelAns status (1.0.3 §5.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NewChannelAns {
    pub data_rate_range_ok: bool,
    pub channel_frequency_ok: bool,
}

/// DlChannelAns status (1.0.3 §5.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DlChannelAns {
    pub uplink_frequency_exists: bool,
    pub channel_frequency_ok: bool,
}

/// LinkCheckAns (1.0.3 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkCheckAns {
    /// dB above the demodulation floor of the LinkCheckReq: 0..=254 (255 is reserved).
    pub margin_db: u8,
    /// Number of gateways that heard the LinkCheckReq.
    pub gw_cnt: u8,
}

/// LinkADRReq (1.0.3 §5.2). DR and TX power are region indexes (RP002 per region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkAdrReq {
    /// 0..=15; 15 = keep the current data rate (1.0.4).
    pub data_rate: u8,
    /// 0..=15; 15 = keep the current power (1.0.4).
    pub tx_power: u8,
    /// Bit n enables channel n of the block selected by `ch_mask_cntl`.
    pub ch_mask: u16,
    /// 0..=7, meaning per region (e.g. US915: 0..=3 = 16-channel blocks, 6 = all 125 kHz on,
    /// 7 = all 125 kHz off).
    pub ch_mask_cntl: u8,
    /// Transmissions per uplink, 0..=15 (0 = keep the current value).
    pub nb_trans: u8,
}

impl LinkAdrReq {
    /// Whether bit `n` (0..=15) of the channel mask is set.
    pub fn channel_enabled(&self, n: u8) -> bool {
        n < 16 && self.ch_mask & (1 << n) != 0
    }
}

/// DutyCycleReq (1.0.3 §5.3): aggregated duty cycle = 1 / 2^max_dcycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DutyCycleReq {
    /// 0..=15; 0 = no limit beyond the regional one.
    pub max_dcycle: u8,
}

impl DutyCycleReq {
    pub fn aggregated_duty_cycle(&self) -> f64 {
        1.0 / f64::from(1u32 << self.max_dcycle.min(15))
    }
}

/// RXParamSetupReq (1.0.3 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RxParamSetupReq {
    /// 0..=7.
    pub rx1_dr_offset: u8,
    /// 0..=15.
    pub rx2_data_rate: u8,
    /// RX2 frequency in Hz (100 Hz steps on the air).
    pub frequency_hz: u32,
}

/// NewChannelReq (1.0.3 §5.6.1). A frequency of 0 disables the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NewChannelReq {
    pub ch_index: u8,
    pub frequency_hz: u32,
    /// 0..=15.
    pub max_dr: u8,
    /// 0..=15.
    pub min_dr: u8,
}

/// RXTimingSetupReq (1.0.3 §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RxTimingSetupReq {
    /// 0..=15 seconds from the end of the uplink to RX1; 0 means 1 s.
    pub delay: u8,
}

impl RxTimingSetupReq {
    pub fn rx1_delay_s(&self) -> u8 {
        self.delay.max(1)
    }
}

/// TxParamSetupReq (1.0.3 §5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxParamSetupReq {
    /// true = 400 ms dwell-time limit on downlinks.
    pub downlink_dwell_time: bool,
    /// true = 400 ms dwell-time limit on uplinks.
    pub uplink_dwell_time: bool,
    /// 0..=15, index into [`MAX_EIRP_DBM`].
    pub max_eirp_index: u8,
}

/// MaxEIRP coding of TxParamSetupReq (1.0.3 §5.8, Table 17 in 1.0.3).
pub const MAX_EIRP_DBM: [u8; 16] = [
    8, 10, 12, 13, 14, 16, 18, 20, 21, 24, 26, 27, 29, 30, 33, 36,
];

impl TxParamSetupReq {
    pub fn max_eirp_dbm(&self) -> u8 {
        MAX_EIRP_DBM[usize::from(self.max_eirp_index & 0x0F)]
    }
}

/// DlChannelReq (1.0.3 §5.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DlChannelReq {
    pub ch_index: u8,
    pub frequency_hz: u32,
}

/// DeviceTimeAns (1.0.3 §5.9): GPS time at the end of the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceTimeAns {
    /// Seconds since the GPS epoch (1980-01-06T00:00:00Z).
    pub gps_seconds: u32,
    /// Fractional second in 1/256 s steps.
    pub fraction_256: u8,
}
