//! Which receive window a class A downlink goes in, and with which radio parameters.
//!
//! After each uplink a class A device opens RX1 `rx_delay` seconds after the end of the uplink
//! (the forwarder's `tmst`), on the frequency and data rate RP002 derives from the uplink and
//! RX1DROffset, and RX2 one second later on the region's fixed RX2 frequency and data rate.
//! RX1 is chosen when the gateway can still get the PULL_RESP in time, the frame fits the RX1
//! data rate and the sub-band's duty cycle allows it; otherwise RX2 under the same rules;
//! otherwise the downlink waits for the device's next uplink.

use super::airtime::lora_airtime_us;
use super::duty_cycle::{DutyCycle, DutyCycleError};
use crate::southbound::lorawan::network::region::Region;
use std::time::{Duration, Instant};

/// The forwarder must have the PULL_RESP this long before the transmission (its just-in-time
/// queue, plus the network between cabinet and forwarder).
pub const LEAD_TIME: Duration = Duration::from_millis(400);

/// The uplink a downlink answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// Concentrator time at the end of the uplink, µs.
    pub tmst: u32,
    pub freq_mhz: f64,
    pub datr: String,
    /// When citygate received the PUSH_DATA.
    pub received: Instant,
}

/// Radio settings of the adapter that decide the windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSettings {
    pub region: Region,
    pub rx1_dr_offset: u8,
    /// RX1 delay in seconds (RECEIVE_DELAY1; 0 means 1).
    pub rx_delay_s: u8,
    pub power_dbm: i32,
    /// RX2 data rate and frequency (the region's unless RXParamSetupReq changed them).
    pub rx2_dr: u8,
    pub rx2_freq_hz: u32,
}

impl WindowSettings {
    /// The settings of `region` with its default RX2.
    pub fn new(region: Region, rx1_dr_offset: u8, rx_delay_s: u8, power_dbm: i32) -> Self {
        let p = region.params();
        WindowSettings {
            region,
            rx1_dr_offset,
            rx_delay_s,
            power_dbm,
            rx2_dr: p.rx2_dr,
            rx2_freq_hz: p.rx2_freq_hz,
        }
    }
}

/// Receive window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    Rx1,
    Rx2,
}

impl Rx {
    pub fn name(self) -> &'static str {
        match self {
            Rx::Rx1 => "rx1",
            Rx::Rx2 => "rx2",
        }
    }
}

/// Where and when to transmit.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub rx: Rx,
    pub tmst: u32,
    pub freq_mhz: f64,
    pub dr: u8,
    pub datr: String,
    pub power_dbm: i32,
    pub airtime_us: u64,
}

/// Why neither window can take the frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoWindow {
    #[error("the uplink was handled too late for RX1 and RX2")]
    TooLate,
    #[error("duty cycle: {0}")]
    DutyCycle(DutyCycleError),
    #[error("a {len}-byte frame exceeds the maximum at the window's data rate DR{dr}")]
    TooLarge { len: usize, dr: u8 },
    #[error("no RX1 or RX2 parameters for this uplink: {0}")]
    Region(String),
}

impl NoWindow {
    /// The metric label of the reason.
    pub fn label(&self) -> &'static str {
        match self {
            NoWindow::TooLate => "downlink_too_late",
            NoWindow::DutyCycle(_) => "downlink_duty_cycle",
            NoWindow::TooLarge { .. } => "downlink_too_large",
            NoWindow::Region(_) => "downlink_no_window",
        }
    }
}

/// Chooses the window for a frame of `phy_len` bytes answering `up`, at `now`. Does not
/// count the airtime: call [`DutyCycle::record`] once the frame is handed to the gateway.
pub fn choose(
    s: &WindowSettings,
    up: &Uplink,
    phy_len: usize,
    duty: &mut DutyCycle,
    now: Instant,
) -> Result<Window, NoWindow> {
    let delay1 = Duration::from_secs(u64::from(s.rx_delay_s.max(1)));
    let elapsed = now.saturating_duration_since(up.received);
    let p = s.region.params();
    let mut last = NoWindow::TooLate;
    let candidates = [
        (Rx::Rx1, delay1),
        (Rx::Rx2, delay1 + Duration::from_secs(1)),
    ];
    for (rx, delay) in candidates {
        if elapsed + LEAD_TIME > delay {
            continue;
        }
        let (freq_mhz, dr) = match rx {
            Rx::Rx1 => match s.region.rx1(up.freq_mhz, &up.datr, s.rx1_dr_offset) {
                Ok(r) => (r.freq_mhz, r.dr),
                Err(e) => {
                    last = NoWindow::Region(e.to_string());
                    continue;
                }
            },
            Rx::Rx2 => (f64::from(s.rx2_freq_hz) / 1e6, s.rx2_dr),
        };
        let Some(lora) = p.lora_dr(dr) else {
            last = NoWindow::Region(format!("DR{dr} is not a LoRa data rate"));
            continue;
        };
        // MACPayload = PHYPayload - MHDR - MIC.
        let fits = p
            .max_payload(dr, false)
            .is_some_and(|m| phy_len.saturating_sub(5) <= usize::from(m.m));
        if !fits {
            last = NoWindow::TooLarge { len: phy_len, dr };
            continue;
        }
        let airtime_us = lora_airtime_us(lora.sf, lora.bw_khz, phy_len, false);
        let freq_hz = (freq_mhz * 1e6).round() as u32;
        if let Err(e) = duty.check(freq_hz, airtime_us, now) {
            last = NoWindow::DutyCycle(e);
            continue;
        }
        return Ok(Window {
            rx,
            tmst: up.tmst.wrapping_add(delay.as_micros() as u32),
            freq_mhz,
            dr,
            datr: lora.datr(),
            power_dbm: s.power_dbm,
            airtime_us,
        });
    }
    Err(last)
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
