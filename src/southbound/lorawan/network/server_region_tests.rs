//! Join-accepts and ACKs follow the configured region's RX1 rules (RP002-1.0.4), end to end
//! through [`NetworkServer::handle_rxpk`]: a US915 device on sub-band 2 and an AS923 device.

use super::*;
use crate::southbound::lorawan::network::region::sub_band_channel_mask;

const DEV_EUI: u64 = 0x0004_a30b_001c_0540;
const JOIN_EUI: u64 = 0x70b3_d57e_d000_0000;

fn server(region: Region, sub_band: Option<u8>) -> NetworkServer {
    let dev = Device {
        dev_eui: DEV_EUI,
        otaa: Some(OtaaKeys {
            join_eui: JOIN_EUI,
            app_key: AesKey::new([9; 16]),
        }),
        codec: CodecConfig::default(),
        max_fcnt_gap: None,
        state: DeviceState::default(),
    };
    let radio = RadioSettings {
        region,
        net_id: 0x13,
        rx1_dr_offset: 0,
        rx_delay_s: 1,
        power_dbm: region.params().downlink_power_dbm,
        dedup_window: Duration::from_millis(100),
        cf_list: region.join_cf_list(sub_band),
    };
    NetworkServer::new("lw", radio, vec![dev], Arc::new(LorawanMetrics::detached()))
}

fn join_rxpk(freq: f64, datr: &str) -> RxPk {
    let jr = JoinRequest::build(JOIN_EUI, DEV_EUI, 0x0101, &AesKey::new([9; 16]));
    RxPk {
        time: None,
        tmst: 1_000_000,
        freq,
        chan: None,
        rfch: None,
        stat: 1,
        modu: "LORA".into(),
        datr: Datr::Lora(datr.into()),
        codr: None,
        lsnr: Some(5.0),
        rssi: -90.0,
        size: None,
        data: base64::engine::general_purpose::STANDARD.encode(jr.raw()),
    }
}

fn join(ns: &mut NetworkServer, freq: f64, datr: &str) -> (TxPk, JoinAccept) {
    let out = ns.handle_rxpk(GatewayEui([1; 8]), &join_rxpk(freq, datr), Instant::now());
    let Outcome::Join { txpk, .. } = out else {
        panic!("join-accept expected, got {out:?}");
    };
    let phy = base64::engine::general_purpose::STANDARD
        .decode(&txpk.data)
        .unwrap();
    let (ja, mic_ok) = JoinAccept::decrypt(&phy, &AesKey::new([9; 16])).unwrap();
    assert!(mic_ok);
    (txpk, ja)
}

#[test]
fn us915_sub_band_2_join_accept_uses_rp002_rx1_and_a_channel_mask() {
    let mut ns = server(Region::Us915, Some(2));
    // Uplink on channel 12 (902.3 + 0.2 × 12 = 904.7 MHz) at DR0 (SF10BW125).
    let (txpk, ja) = join(&mut ns, 904.7, "SF10BW125");
    // RP002-1.0.4 §2.5.7: RX1 channel 12 mod 8 = 4 -> 923.3 + 0.6 × 4 = 925.7 MHz; DR0 at
    // RX1DROffset 0 -> DR10 = SF10BW500. JOIN_ACCEPT_DELAY1 = 5 s.
    assert_eq!(txpk.freq, 925.7);
    assert_eq!(txpk.datr, Datr::Lora("SF10BW500".into()));
    assert_eq!(txpk.tmst, Some(6_000_000));
    assert_eq!(txpk.powe, 20);
    // §2.5.7: RX2 DR8 announced in DLSettings; §2.5.4: CFList type 1 = sub-band 2 only.
    assert_eq!(ja.rx2_data_rate(), 8);
    let cf = ja.cf_list.expect("CFList present");
    assert_eq!(cf[15], 1, "CFListType 1");
    let mask = sub_band_channel_mask(2).unwrap();
    for (i, m) in mask.iter().enumerate() {
        assert_eq!(u16::from_le_bytes([cf[2 * i], cf[2 * i + 1]]), *m);
    }
}

#[test]
fn us915_without_sub_band_sends_no_cf_list() {
    let mut ns = server(Region::Us915, None);
    let (txpk, ja) = join(&mut ns, 903.0, "SF8BW500"); // channel 64, DR4
    assert_eq!(
        (txpk.freq, &txpk.datr),
        (923.3, &Datr::Lora("SF7BW500".into()))
    );
    assert_eq!(ja.cf_list, None);
}

#[test]
fn as923_join_accept_answers_on_the_uplink_channel() {
    let mut ns = server(Region::As923_1, None);
    // RP002-1.0.4 §2.10.7: RX1 on the uplink channel, DR2 at offset 0 stays DR2.
    let (txpk, ja) = join(&mut ns, 923.4, "SF10BW125");
    assert_eq!(txpk.freq, 923.4);
    assert_eq!(txpk.datr, Datr::Lora("SF10BW125".into()));
    assert_eq!(ja.rx2_data_rate(), 2);
    assert_eq!(ja.cf_list, None);
}

/// A confirmed uplink of an ABP device (DevAddr 01020304) with FCnt 1, built by hand.
fn confirmed_uplink() -> Vec<u8> {
    use crate::southbound::lorawan::network::frame::{crypt_frm_payload, data_mic};
    let (nwk, app) = (AesKey::new([2; 16]), AesKey::new([1; 16]));
    let mut raw = vec![0x80, 0x04, 0x03, 0x02, 0x01, 0x00, 0x01, 0x00, 5];
    let mut pl = vec![0x2a];
    crypt_frm_payload(&app, true, 0x0102_0304, 1, &mut pl);
    raw.extend_from_slice(&pl);
    let mic = data_mic(&nwk, true, 0x0102_0304, 1, &raw);
    raw.extend_from_slice(&mic);
    raw
}

#[test]
fn us915_ack_goes_out_in_rx1_or_rx2_per_rp002() {
    let mut ns = server(Region::Us915, Some(2));
    ns.devices[0].state.session = Some(Session {
        dev_addr: 0x0102_0304,
        nwk_s_key: AesKey::new([2; 16]),
        app_s_key: AesKey::new([1; 16]),
        fcnt_up: Default::default(),
        fcnt_down: 0,
    });
    // Channel 9 (904.1 MHz) at DR2 (SF8BW125).
    let mut rx = join_rxpk(904.1, "SF8BW125");
    rx.data = base64::engine::general_purpose::STANDARD.encode(confirmed_uplink());
    let out = ns.handle_rxpk(GatewayEui([1; 8]), &rx, Instant::now());
    let Outcome::Uplink { ack: Some(ack), .. } = out else {
        panic!("confirmed uplink expected, got {out:?}");
    };
    // RP002-1.0.4 §2.5.7: RX1 = 923.3 + 0.6 × (9 mod 8) = 923.9 MHz, DR2 -> DR12 (SF8BW500).
    let rx1 = ns.build_ack(&ack, false).unwrap();
    assert_eq!(
        (rx1.freq, &rx1.datr),
        (923.9, &Datr::Lora("SF8BW500".into()))
    );
    assert_eq!(rx1.tmst, Some(2_000_000));
    // RX2: 923.3 MHz DR8 (SF12BW500), one second later.
    let rx2 = ns.build_ack(&ack, true).unwrap();
    assert_eq!(
        (rx2.freq, &rx2.datr),
        (923.3, &Datr::Lora("SF12BW500".into()))
    );
    assert_eq!(rx2.tmst, Some(3_000_000));
}
