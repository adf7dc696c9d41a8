use super::*;
use crate::southbound::lorawan::network::frame::{crypt_frm_payload, data_mic};

fn rxpk(phy: &[u8], stat: i8) -> RxPk {
    RxPk {
        time: Some("2026-11-24T08:00:00.5Z".into()),
        tmst: 10,
        freq: 868.3,
        chan: None,
        rfch: None,
        stat,
        modu: "LORA".into(),
        datr: Datr::Lora("SF9BW125".into()),
        codr: None,
        lsnr: Some(-3.25),
        rssi: -101.0,
        size: None,
        data: base64::engine::general_purpose::STANDARD.encode(phy),
    }
}

fn uplink(fcnt: u32) -> Vec<u8> {
    let (nwk, app) = (AesKey::new([2; 16]), AesKey::new([1; 16]));
    let mut raw = vec![0x40, 0x04, 0x03, 0x02, 0x01, 0x00];
    raw.extend_from_slice(&(fcnt as u16).to_le_bytes());
    raw.push(5);
    let mut pl = vec![0x2a];
    crypt_frm_payload(&app, true, 0x0102_0304, fcnt, &mut pl);
    raw.extend_from_slice(&pl);
    let mic = data_mic(&nwk, true, 0x0102_0304, fcnt, &raw);
    raw.extend_from_slice(&mic);
    raw
}

fn server(state: DeviceState) -> NetworkServer {
    let dev = Device {
        dev_eui: 0x0004_a30b_001c_0531,
        otaa: None,
        codec: CodecConfig::default(),
        max_fcnt_gap: None,
        state,
    };
    let radio = RadioSettings {
        region: Region::Eu868,
        net_id: 0x13,
        rx1_dr_offset: 0,
        rx_delay_s: 1,
        power_dbm: 14,
        dedup_window: Duration::from_millis(100),
        cf_list: None,
    };
    NetworkServer::new(
        "lora",
        radio,
        vec![dev],
        Arc::new(LorawanMetrics::detached()),
    )
}

fn abp_state() -> DeviceState {
    DeviceState {
        session: Some(Session {
            dev_addr: 0x0102_0304,
            nwk_s_key: AesKey::new([2; 16]),
            app_s_key: AesKey::new([1; 16]),
            fcnt_up: Default::default(),
            fcnt_down: 0,
        }),
        ..Default::default()
    }
}

#[test]
fn counters_survive_a_restart_through_persisted_state() {
    let gw = GatewayEui([1; 8]);
    let mut ns = server(abp_state());
    let t0 = Instant::now();
    let Outcome::Uplink {
        record: Some(r), ..
    } = ns.handle_rxpk(gw, &rxpk(&uplink(5), 1), t0)
    else {
        panic!("uplink expected");
    };
    assert_eq!(r.values["payload"], Value::Str("2a".into()));
    assert_eq!(
        r.ts_ms,
        parse_ts("2026-11-24T08:00:00.500Z").unwrap(),
        "rxpk time used"
    );
    assert_eq!(r.meta["rssi"], Value::I64(-101));
    let (key, json) = ns.state_of(0).unwrap();
    assert_eq!(key, "lorawan/lora/0004a30b001c0531");

    // "Restart": a new server from the persisted JSON rejects the old frame, takes the next.
    let mut ns = server(DeviceState::from_json(&json).unwrap());
    let later = t0 + Duration::from_secs(1);
    assert_eq!(
        ns.handle_rxpk(gw, &rxpk(&uplink(5), 1), later),
        Outcome::Retransmission {
            device: 0,
            ack: None
        }
    );
    assert_eq!(
        ns.handle_rxpk(gw, &rxpk(&uplink(3), 1), later),
        Outcome::Dropped
    );
    assert_eq!(ns.counters.replay.get(), 1);
    assert!(matches!(
        ns.handle_rxpk(gw, &rxpk(&uplink(6), 1), later),
        Outcome::Uplink { .. }
    ));
    // A fresh session (state lost) would have accepted the replay: the persistence matters.
    let mut fresh = server(abp_state());
    assert!(matches!(
        fresh.handle_rxpk(gw, &rxpk(&uplink(3), 1), later),
        Outcome::Uplink { .. }
    ));
}

#[test]
fn crc_errors_garbage_and_unknown_addresses_are_counted() {
    let gw = GatewayEui([1; 8]);
    let mut ns = server(abp_state());
    let now = Instant::now();
    assert_eq!(
        ns.handle_rxpk(gw, &rxpk(&uplink(1), -1), now),
        Outcome::Dropped
    );
    let mut bad = rxpk(&[], 1);
    bad.data = "!!".into();
    assert_eq!(ns.handle_rxpk(gw, &bad, now), Outcome::Dropped);
    assert_eq!(
        ns.handle_rxpk(gw, &rxpk(&[0x40, 1, 2], 1), now),
        Outcome::Dropped
    );
    let mut other = uplink(1);
    other[1] = 0x99;
    assert_eq!(ns.handle_rxpk(gw, &rxpk(&other, 1), now), Outcome::Dropped);
    let c = &ns.counters;
    assert_eq!(
        (c.crc_error.get(), c.malformed.get(), c.unknown_device.get()),
        (1, 2, 1)
    );
}

#[test]
fn proprietary_frames_are_counted_not_checked_or_recorded() {
    let gw = GatewayEui([1; 8]);
    let mut ns = server(abp_state());
    let now = Instant::now();
    // MHDR e0 (MType 111) followed by bytes that would be a valid DevAddr/FCnt of the
    // device: nothing is attributed to it and no MIC is tried.
    let mut phy = uplink(1);
    phy[0] = 0xe0;
    assert_eq!(ns.handle_rxpk(gw, &rxpk(&phy, 1), now), Outcome::Dropped);
    assert_eq!(
        ns.handle_rxpk(gw, &rxpk(&[0xe0, 1, 2, 3], 1), now),
        Outcome::Dropped
    );
    let c = &ns.counters;
    assert_eq!(c.proprietary.get(), 2);
    for (name, other) in [
        ("malformed", &c.malformed),
        ("bad_mic", &c.bad_mic),
        ("replay", &c.replay),
        ("unknown_device", &c.unknown_device),
        ("ok", &c.ok),
    ] {
        assert_eq!(other.get(), 0, "{name}");
    }
    // The device's counter did not move: its next real uplink 1 is accepted.
    assert!(matches!(
        ns.handle_rxpk(gw, &rxpk(&uplink(1), 1), now),
        Outcome::Uplink { .. }
    ));
}
