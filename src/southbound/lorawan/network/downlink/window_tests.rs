use super::*;

fn eu() -> WindowSettings {
    WindowSettings::new(Region::Eu868, 0, 1, 14)
}

fn up(now: Instant, freq: f64, datr: &str) -> Uplink {
    Uplink {
        tmst: 4_000_000,
        freq_mhz: freq,
        datr: datr.into(),
        received: now,
    }
}

#[test]
fn rx1_on_time_rx2_when_late_none_when_later() {
    let t0 = Instant::now();
    let mut dc = DutyCycle::for_region(Region::Eu868);
    let u = up(t0, 868.3, "SF9BW125");
    let w = choose(&eu(), &u, 20, &mut dc, t0 + Duration::from_millis(100)).unwrap();
    assert_eq!(
        (w.rx, w.tmst, w.freq_mhz, w.dr),
        (Rx::Rx1, 5_000_000, 868.3, 3)
    );
    assert_eq!(w.datr, "SF9BW125");
    let w = choose(&eu(), &u, 20, &mut dc, t0 + Duration::from_millis(700)).unwrap();
    assert_eq!((w.rx, w.tmst, w.freq_mhz), (Rx::Rx2, 6_000_000, 869.525));
    assert_eq!(w.datr, "SF12BW125");
    assert_eq!(
        choose(&eu(), &u, 20, &mut dc, t0 + Duration::from_millis(1700)),
        Err(NoWindow::TooLate)
    );
}

#[test]
fn rx1_dr_offset_and_size_limit() {
    let t0 = Instant::now();
    let mut dc = DutyCycle::for_region(Region::Eu868);
    let s = WindowSettings {
        rx1_dr_offset: 2,
        ..eu()
    };
    let w = choose(&s, &up(t0, 868.1, "SF7BW125"), 20, &mut dc, t0).unwrap();
    assert_eq!((w.dr, w.datr.as_str()), (3, "SF9BW125"));
    // 70 bytes of MACPayload: too large for DR0 (M = 59) in both windows at SF12 uplink.
    let e = choose(&eu(), &up(t0, 868.1, "SF12BW125"), 75, &mut dc, t0).unwrap_err();
    assert_eq!(e, NoWindow::TooLarge { len: 75, dr: 0 });
}

#[test]
fn duty_cycle_moves_to_rx2_then_refuses() {
    let t0 = Instant::now();
    let mut dc = DutyCycle::with_window(Region::Eu868, Duration::from_secs(60));
    // g1 (1 %) of 60 s is 600 ms: use it up.
    dc.record(868_100_000, 600_000, t0);
    let w = choose(&eu(), &up(t0, 868.1, "SF7BW125"), 20, &mut dc, t0).unwrap();
    assert_eq!(w.rx, Rx::Rx2, "RX1 sub-band full: RX2 in g3");
    // g3 (10 %) of 60 s is 6 s: use it up too.
    dc.record(869_525_000, 6_000_000, t0);
    let e = choose(&eu(), &up(t0, 868.1, "SF7BW125"), 20, &mut dc, t0).unwrap_err();
    assert!(
        matches!(e, NoWindow::DutyCycle(DutyCycleError::Exceeded { band, .. }) if band.starts_with("g3"))
    );
    assert_eq!(e.label(), "downlink_duty_cycle");
}

/// US915 RX1 (RP002-1.0.4 §2.5.7): channel n of 125 kHz → downlink channel n mod 8 at
/// 923.3 + 0.6 (n mod 8) MHz, DR = 10 + up DR (offset 0): SF7BW125 (DR3) → DR13 SF7BW500.
#[test]
fn us915_rx1_follows_rp002() {
    let t0 = Instant::now();
    let mut dc = DutyCycle::for_region(Region::Us915);
    let s = WindowSettings::new(Region::Us915, 0, 1, 20);
    // Channel 9 (sub-band 2) = 902.3 + 0.2 × 9 = 904.1 MHz → downlink channel 1 = 923.9 MHz.
    let w = choose(&s, &up(t0, 904.1, "SF7BW125"), 20, &mut dc, t0).unwrap();
    assert_eq!(
        (w.rx, w.dr, w.datr.as_str(), w.power_dbm),
        (Rx::Rx1, 13, "SF7BW500", 20)
    );
    assert!((w.freq_mhz - 923.9).abs() < 1e-6, "{}", w.freq_mhz);
}

#[test]
fn the_device_rx1_delay_and_rx2_settings_are_used() {
    // What RXTimingSetupReq (3 s) and RXParamSetupReq (RX2 869.525 MHz at DR3) set.
    let t0 = Instant::now();
    let mut dc = DutyCycle::for_region(Region::Eu868);
    let s = WindowSettings {
        rx_delay_s: 3,
        rx2_dr: 3,
        rx2_freq_hz: 869_525_000,
        ..eu()
    };
    let u = up(t0, 868.3, "SF7BW125");
    let w = choose(&s, &u, 20, &mut dc, t0 + Duration::from_millis(2000)).unwrap();
    assert_eq!((w.rx, w.tmst), (Rx::Rx1, 7_000_000));
    let w = choose(&s, &u, 20, &mut dc, t0 + Duration::from_millis(2700)).unwrap();
    assert_eq!((w.rx, w.tmst, w.freq_mhz), (Rx::Rx2, 8_000_000, 869.525));
    assert_eq!(w.datr, "SF9BW125");
}
