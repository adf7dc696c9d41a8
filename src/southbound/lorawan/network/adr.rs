//! Adaptive data rate, ChirpStack's default algorithm (chirpstack `adr/default.rs`): from the
//! best SNR of the device's last [`HISTORY`] uplinks, the margin above the SNR its data rate
//! needs, less an installation margin, gives steps of 3 dB; each step raises the data rate
//! (up to `max_dr`), then lowers the TX power; a negative margin raises the power again. The
//! data rate is never lowered by ADR: a device that loses the network does that itself
//! (ADRACKReq, then its own back-off).

/// Uplinks whose SNR is remembered.
pub const HISTORY: usize = 20;

/// Demodulation floor of LoRa per spreading factor, dB (Semtech SX1276 datasheet table 13,
/// as ChirpStack's `required_snr_for_sf`).
pub fn required_snr_db(sf: u8) -> f64 {
    match sf {
        5 => -2.5,
        6 => -5.0,
        7 => -7.5,
        8 => -10.0,
        9 => -12.5,
        10 => -15.0,
        11 => -17.5,
        _ => -20.0,
    }
}

/// What ADR decides for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdrStep {
    pub dr: u8,
    /// TXPower index (0 = max EIRP, each step 2 dB less).
    pub tx_power: u8,
}

/// The data rate and TX power index the device should use, given the best SNR `max_snr` of
/// its recent uplinks at `dr` (spreading factor `sf`) and power index `tx_power`.
pub fn decide(
    max_snr: f64,
    sf: u8,
    current: AdrStep,
    margin_db: f64,
    max_dr: u8,
    max_tx_power: u8,
) -> AdrStep {
    let snr_margin = max_snr - required_snr_db(sf) - margin_db;
    let mut steps = (snr_margin / 3.0).floor() as i32;
    let mut next = current;
    while steps > 0 && next.dr < max_dr {
        next.dr += 1;
        steps -= 1;
    }
    while steps > 0 && next.tx_power < max_tx_power {
        next.tx_power += 1;
        steps -= 1;
    }
    while steps < 0 && next.tx_power > 0 {
        next.tx_power -= 1;
        steps += 1;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_snr_steps_data_rate_up_then_power_down() {
        let at = |dr, tx_power| AdrStep { dr, tx_power };
        // DR0 (SF12), best SNR 10 dB: 10 + 20 - 10 = 20 dB = 6 steps: DR5, then 1 power step.
        assert_eq!(decide(10.0, 12, at(0, 0), 10.0, 5, 7), at(5, 1));
        // Capped by max_dr.
        assert_eq!(decide(10.0, 12, at(0, 0), 10.0, 3, 7), at(3, 3));
        // SF7 at -2 dB: -2 + 7.5 - 10 = -4.5 → -2 steps: power back up, DR kept.
        assert_eq!(decide(-2.0, 7, at(5, 3), 10.0, 5, 7), at(5, 1));
        // Poor SNR at DR0: stays put.
        assert_eq!(decide(-15.0, 12, at(0, 0), 10.0, 5, 7), at(0, 0));
        assert_eq!(required_snr_db(9), -12.5);
    }
}
