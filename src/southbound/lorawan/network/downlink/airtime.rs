//! LoRa time on air (Semtech AN1200.13, "LoRa Modem Designer's Guide" §4), for duty-cycle
//! accounting of downlinks.

/// Time on air of a LoRa frame of `payload_len` bytes, µs: 8 preamble symbols, explicit
/// header, coding rate 4/5, low-data-rate optimisation when a symbol lasts 16 ms or more
/// (SF11 and SF12 at 125 kHz). Downlinks are sent without payload CRC (`crc = false`).
pub fn lora_airtime_us(sf: u8, bw_khz: u16, payload_len: usize, crc: bool) -> u64 {
    let sf = i64::from(sf.clamp(5, 12));
    let bw_hz = f64::from(bw_khz.max(1)) * 1000.0;
    let t_sym_us = (1u64 << sf) as f64 / bw_hz * 1e6;
    let de = i64::from(t_sym_us >= 16_000.0);
    let pl = i64::try_from(payload_len).unwrap_or(i64::MAX / 16);
    let num = 8 * pl - 4 * sf + 28 + if crc { 16 } else { 0 };
    let den = 4 * (sf - 2 * de);
    let blocks = if num > 0 { (num + den - 1) / den } else { 0 };
    let symbols = 8.0 + (blocks * 5) as f64 + 12.25;
    (symbols * t_sym_us).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_airtimes() {
        // Semtech calculator: 13 bytes SF7/125 with CRC = 46.336 ms; SF12/125 = 1155.072 ms.
        assert_eq!(lora_airtime_us(7, 125, 13, true), 46_336);
        assert_eq!(lora_airtime_us(12, 125, 13, true), 1_155_072);
        // 51 bytes at SF12 without CRC (a full EU868 DR0 downlink): 2.3 s.
        assert_eq!(lora_airtime_us(12, 125, 51, false), 2_301_952);
        assert!(lora_airtime_us(7, 500, 13, false) < lora_airtime_us(7, 125, 13, false));
    }
}
