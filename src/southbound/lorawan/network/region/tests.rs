//! Expected values are taken from the LoRaWAN Regional Parameters RP002-1.0.4 tables; the
//! section is named next to each check.

use super::*;

#[test]
fn eu868_rx1_follows_the_offset_table() {
    let r = Region::Eu868;
    let rx1 = r.rx1(868.1, "SF7BW125", 0).unwrap();
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (868.1, 5, "SF7BW125")
    );
    assert_eq!(r.rx1(868.3, "SF7BW125", 2).unwrap().datr, "SF9BW125");
    assert_eq!(
        r.rx1(868.3, "SF10BW125", 5).unwrap().dr,
        0,
        "saturates at DR0"
    );
    assert_eq!(r.rx1(868.5, "SF7BW250", 1).unwrap().datr, "SF7BW125");
    assert!(matches!(
        r.rx1(868.5, "SF7BW500", 0),
        Err(RegionError::UnknownDatr(_))
    ));
    assert_eq!(
        r.rx1(868.5, "SF7BW125", 6),
        Err(RegionError::BadOffset(6, 5))
    );
}

#[test]
fn eu868_constants() {
    let p = Region::Eu868.params();
    assert_eq!(p.rx2_freq_hz, 869_525_000);
    assert_eq!(p.rx2_dr, 0);
    assert_eq!(JOIN_ACCEPT_DELAY1_US, 5_000_000);
    assert_eq!(RECEIVE_DELAY1_US, 1_000_000);
    assert_eq!(Region::Eu868.dr_of_datr("SF12BW125"), Some(0));
    assert_eq!(Region::Eu868.dr_of_datr("garbage"), None);
    assert_eq!(parse_datr("SFxBW125"), None);
    // §2.4.3: DR7 is FSK, DR8..11 LR-FHSS: listed, not usable.
    assert_eq!(p.data_rates[7], DataRate::Fsk { kbps: 50 });
    assert!(matches!(p.data_rates[8], DataRate::LrFhss { .. }));
    assert_eq!(p.lora_dr(7), None);
    // §2.4.6: DR0 M=59 N=51, DR5 M=250 N=242.
    assert_eq!(p.max_payload(0, false), Some(MaxPayload { m: 59, n: 51 }));
    assert_eq!(p.max_payload(5, true), Some(MaxPayload { m: 250, n: 242 }));
    // §2.4.3: TXPower 0 = 16 dBm, 7 = 2 dBm, 8 undefined.
    assert_eq!(p.tx_power_eirp_dbm(0), Some(16.0));
    assert_eq!(p.tx_power_eirp_dbm(7), Some(2.0));
    assert_eq!(p.tx_power_eirp_dbm(8), None);
    assert_eq!(Region::Eu868.join_cf_list(None), None);
}

#[test]
fn us915_sub_band_2_uplink_rx1_follows_rp002() {
    // §2.5.2: sub-band 2 = channels 8..15 = 903.9 + 0.2 n MHz; channel 65 = 904.6 MHz.
    // §2.5.7: RX1 channel = uplink channel mod 8 -> 923.3 + 0.6 (n mod 8) MHz; DR per Table
    // "US915 downlink RX1 data rate mapping": DR0 -> DR10, DR3 -> DR13, DR4 -> DR13.
    let r = Region::Us915;
    let rx1 = r.rx1(903.9, "SF10BW125", 0).unwrap();
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (923.3, 10, "SF10BW500")
    );
    let rx1 = r.rx1(904.3, "SF7BW125", 0).unwrap(); // channel 10
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (924.5, 13, "SF7BW500")
    );
    let rx1 = r.rx1(905.3, "SF9BW125", 2).unwrap(); // channel 15, DR1, offset 2 -> DR9
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (927.5, 9, "SF11BW500")
    );
    let rx1 = r.rx1(904.6, "SF8BW500", 0).unwrap(); // channel 65, DR4
    assert_eq!((rx1.freq_mhz, rx1.dr), (923.9, 13));
    // The whole §2.5.7 table, offsets 0..=3.
    let table: [[u8; 4]; 5] = [
        [10, 9, 8, 8],
        [11, 10, 9, 8],
        [12, 11, 10, 9],
        [13, 12, 11, 10],
        [13, 13, 12, 11],
    ];
    for (up, row) in table.iter().enumerate() {
        for (off, want) in row.iter().enumerate() {
            assert_eq!(
                r.rx1_dr(up as u8, off as u8),
                Ok(*want),
                "DR{up} offset {off}"
            );
        }
    }
    assert_eq!(r.rx1_dr(0, 4), Err(RegionError::BadOffset(4, 3)));
    assert_eq!(
        r.rx1(868.1, "SF10BW125", 0),
        Err(RegionError::NotAChannel(868.1))
    );
    // §2.5.7: RX2 923.3 MHz DR8 (SF12BW500).
    let p = r.params();
    assert_eq!((p.rx2_freq_hz, p.rx2_dr), (923_300_000, 8));
    assert_eq!(p.lora_dr(8).unwrap().datr(), "SF12BW500");
}

#[test]
fn us915_and_au915_tables() {
    let us = Region::Us915.params();
    // §2.5.6: DR0 M=19 N=11, DR4 250/242, DR8 61/53, DR9 137/129; DR7 undefined.
    assert_eq!(us.max_payload(0, false), Some(MaxPayload { m: 19, n: 11 }));
    assert_eq!(
        us.max_payload(4, false),
        Some(MaxPayload { m: 250, n: 242 })
    );
    assert_eq!(us.max_payload(8, false), Some(MaxPayload { m: 61, n: 53 }));
    assert_eq!(
        us.max_payload(9, false),
        Some(MaxPayload { m: 137, n: 129 })
    );
    assert_eq!(us.max_payload(7, false), None);
    // §2.5.3: DR5/DR6 LR-FHSS; TXPower 0 = 30 dBm, 14 = 2 dBm.
    assert!(matches!(us.data_rates[5], DataRate::LrFhss { .. }));
    assert_eq!(us.tx_power_eirp_dbm(14), Some(2.0));
    // SF8BW500 is DR4 (uplink) and DR12 (downlink): the uplink DR wins.
    assert_eq!(Region::Us915.dr_of_datr("SF8BW500"), Some(4));

    let au = Region::Au915;
    // §2.8.2: 125 kHz channel n = 915.2 + 0.2 n MHz; §2.8.7: DR0..6 -> DR8..13 at offset 0.
    let rx1 = au.rx1(916.8, "SF12BW125", 0).unwrap(); // channel 8 = sub-band 2
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (923.3, 8, "SF12BW500")
    );
    let rx1 = au.rx1(917.0, "SF7BW125", 1).unwrap(); // channel 9, DR5, offset 1 -> DR12
    assert_eq!((rx1.freq_mhz, rx1.dr), (923.9, 12));
    assert_eq!(au.rx1_dr(6, 0), Ok(13));
    assert_eq!(au.rx1_dr(6, 5), Ok(9));
    assert_eq!(au.rx1_dr(2, 5), Ok(8));
    // §2.8.6: dwell time on: DR0/1 not allowed, DR2 M=19.
    let p = au.params();
    assert_eq!(p.max_payload(0, true), None);
    assert_eq!(p.max_payload(2, true), Some(MaxPayload { m: 19, n: 11 }));
    assert_eq!(p.max_payload(2, false), Some(MaxPayload { m: 59, n: 51 }));
}

#[test]
fn sub_band_cf_list_is_a_type_1_channel_mask() {
    // §2.5.4: ChMask0..4 little endian, RFU, CFListType = 1. Sub-band 2 = channels 8..15 + 65.
    assert_eq!(sub_band_channel_mask(2), Some([0xFF00, 0, 0, 0, 0x0002]));
    assert_eq!(sub_band_channel_mask(1), Some([0x00FF, 0, 0, 0, 0x0001]));
    assert_eq!(sub_band_channel_mask(8), Some([0, 0, 0, 0xFF00, 0x0080]));
    assert_eq!(sub_band_channel_mask(0), None);
    assert_eq!(sub_band_channel_mask(9), None);
    let cf = Region::Us915.join_cf_list(Some(2)).unwrap();
    assert_eq!(
        cf,
        [0x00, 0xFF, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0x01]
    );
    assert_eq!(Region::Us915.join_cf_list(None), None);
    assert_eq!(Region::Kr920.join_cf_list(Some(2)), None);
}

#[test]
fn cf_list_type_0_frequencies() {
    // §2.4.4: five 24-bit frequencies in 100 Hz, then CFListType 0. 867.1 MHz = 0x844F18.
    let cf = cf_list_frequencies(&[867_100_000, 867_300_000]).unwrap();
    assert_eq!(&cf[..6], &[0x18, 0x4F, 0x84, 0xE8, 0x56, 0x84]);
    assert_eq!(&cf[6..], &[0; 10]);
    assert_eq!(
        cf_list_frequencies(&[1; 6]),
        Err(RegionError::TooManyChannels(6))
    );
}

#[test]
fn as923_uplink_rx1_follows_rp002() {
    // §2.10.7: RX1 on the uplink channel; DR = min(5, max(0, up - effective offset)),
    // RX1DROffset 6 and 7 = effective -1 and -2.
    let r = Region::As923_1;
    let rx1 = r.rx1(923.2, "SF10BW125", 0).unwrap();
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (923.2, 2, "SF10BW125")
    );
    let rx1 = r.rx1(923.4, "SF9BW125", 6).unwrap(); // DR3 + 1
    assert_eq!(
        (rx1.freq_mhz, rx1.dr, rx1.datr.as_str()),
        (923.4, 4, "SF8BW125")
    );
    assert_eq!(r.rx1_dr(5, 7), Ok(5), "capped at DR5");
    assert_eq!(r.rx1_dr(6, 0), Ok(5), "SF7BW250 answers at DR5");
    assert_eq!(r.rx1_dr(1, 3), Ok(0));
    // DownlinkDwellTime = 1: MinDR 2.
    assert_eq!(as923::rx1_dr(1, 3, true), 2);
    // §2.10.7: RX2 on the first default channel at DR2, per group (§2.10.2 offsets).
    let rx2: Vec<(u32, u8)> = [
        Region::As923_1,
        Region::As923_2,
        Region::As923_3,
        Region::As923_4,
    ]
    .iter()
    .map(|r| (r.params().rx2_freq_hz, r.params().rx2_dr))
    .collect();
    assert_eq!(
        rx2,
        vec![
            (923_200_000, 2),
            (921_400_000, 2),
            (916_600_000, 2),
            (917_300_000, 2)
        ]
    );
    // §2.10.6: dwell time columns.
    let p = r.params();
    assert_eq!(p.max_payload(2, false), Some(MaxPayload { m: 123, n: 115 }));
    assert_eq!(p.max_payload(2, true), Some(MaxPayload { m: 19, n: 11 }));
    assert_eq!(p.max_payload(0, true), None);
    assert_eq!(p.max_payload(4, true), Some(MaxPayload { m: 133, n: 125 }));
    assert_eq!(p.tx_power_eirp_dbm(0), Some(16.0));
}

#[test]
fn kr920_and_in865() {
    // §2.11.7: RX2 921.9 MHz DR0; RX1 DR = up - offset.
    let kr = Region::Kr920;
    assert_eq!(
        (kr.params().rx2_freq_hz, kr.params().rx2_dr),
        (921_900_000, 0)
    );
    let rx1 = kr.rx1(922.1, "SF7BW125", 2).unwrap();
    assert_eq!((rx1.freq_mhz, rx1.dr), (922.1, 3));
    assert_eq!(kr.params().max_eirp_dbm, 14.0);
    assert_eq!(kr.dr_of_datr("SF7BW250"), None);
    // §2.12.7: RX2 866.55 MHz DR2; offsets 6/7 raise the DR, capped at DR5.
    let r#in = Region::In865;
    assert_eq!(
        (r#in.params().rx2_freq_hz, r#in.params().rx2_dr),
        (866_550_000, 2)
    );
    assert_eq!(r#in.rx1_dr(3, 7), Ok(5));
    assert_eq!(r#in.rx1_dr(3, 6), Ok(4));
    assert_eq!(r#in.rx1_dr(3, 5), Ok(0));
    // §2.12.3/§2.12.6: DR6 RFU, DR7 FSK with M=250.
    let p = r#in.params();
    assert_eq!(p.data_rates[6], DataRate::Rfu);
    assert_eq!(p.max_payload(6, false), None);
    assert_eq!(p.max_payload(7, false), Some(MaxPayload { m: 250, n: 242 }));
    assert_eq!(p.tx_power_eirp_dbm(10), Some(10.0));
    assert_eq!(p.default_channels_hz.len(), 3);
}

#[test]
fn every_table_is_consistent() {
    for r in [
        Region::Eu868,
        Region::Us915,
        Region::Au915,
        Region::As923_1,
        Region::As923_2,
        Region::As923_3,
        Region::As923_4,
        Region::In865,
        Region::Kr920,
    ] {
        let p = r.params();
        assert!(p.lora_dr(p.rx2_dr).is_some(), "{}: RX2 DR is LoRa", p.name);
        assert!(p.max_payload.len() <= p.data_rates.len(), "{}", p.name);
        for (dr, d) in p.data_rates.iter().enumerate() {
            if d.as_lora().is_some() {
                assert!(
                    p.max_payload(dr as u8, false).is_some(),
                    "{} DR{dr}",
                    p.name
                );
            }
        }
        // Every LoRa uplink DR has an RX1 answer at every offset.
        for up in 0..p.data_rates.len() as u8 {
            if p.lora_dr(up).is_some() && r.dr_of_datr(&p.lora_dr(up).unwrap().datr()) == Some(up) {
                for off in 0..=p.max_rx1_dr_offset {
                    let dr = r.rx1_dr(up, off).unwrap();
                    assert!(p.lora_dr(dr).is_some(), "{} DR{up} offset {off}", p.name);
                }
            }
        }
    }
}
