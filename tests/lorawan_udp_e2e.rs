//! End to end: a packet-forwarder simulator on 127.0.0.1 talks GWMP v2 to the adapter; an OTAA
//! device joins, sends uplinks across a 16-bit FCnt rollover, a replay is rejected, a
//! confirmed uplink is acknowledged, and records land in the (stub) buffer.

mod common;

use base64::Engine;
use citygate::record::Value;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{self, PhyPayload};
use citygate::southbound::lorawan::network::join::{derive_session_keys, JoinAccept};
use citygate::southbound::lorawan::transport::gwmp::{self, GatewayEui, Packet, PushPayload};
use citygate::southbound::lorawan::{LorawanUdpAdapter, LorawanUdpConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::LorawanMetrics;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(5);
// chirpstack_join_request in lorawan_join.json.
const APP_KEY: &str = "0102030405060708090a0b0c0d0e0f10";
const JOIN_REQUEST: &str = "0001010101010101010202020202020202030309b97b32";
const GW: GatewayEui = GatewayEui([0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35]);
const GW2: GatewayEui = GatewayEui([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);

struct Sim {
    sock: UdpSocket,
    server: SocketAddr,
    token: u16,
}

impl Sim {
    async fn recv(&self) -> Packet {
        let mut buf = vec![0u8; 4096];
        let (n, _) = timeout(T, self.sock.recv_from(&mut buf))
            .await
            .expect("no answer from server")
            .unwrap();
        gwmp::parse(&buf[..n]).unwrap()
    }

    fn next_token(&mut self) -> [u8; 2] {
        self.token = self.token.wrapping_add(1);
        self.token.to_be_bytes()
    }

    async fn send(&self, p: &Packet) {
        self.sock
            .send_to(&gwmp::encode(p), self.server)
            .await
            .unwrap();
    }

    /// PUSH_DATA with one rxpk; waits for the matching PUSH_ACK.
    async fn push(&mut self, gw: GatewayEui, phy: &[u8], tmst: u32) {
        let token = self.next_token();
        let rx = common::lorawan::rxpk(phy, tmst);
        let p = Packet::PushData {
            version: 2,
            token,
            gateway: gw,
            payload: PushPayload {
                rxpk: vec![rx],
                stat: None,
            },
        };
        self.send(&p).await;
        match self.recv().await {
            Packet::PushAck { token: t, .. } => assert_eq!(t, token),
            other => panic!("expected PUSH_ACK, got {other:?}"),
        }
    }
}

async fn wait_for(counter: &prometheus::IntCounter, name: &str, want: u64) {
    let ok = timeout(T, async {
        while counter.get() != want {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "counter {name} never reached {want}: {}",
        counter.get()
    );
}

#[tokio::test]
async fn otaa_join_rollover_replay_and_ack() {
    let cfg: LorawanUdpConfig = toml::from_str(&format!(
        r#"
bind = "127.0.0.1:0"
net_id = "000013"
dedup_window = "100ms"
[[devices]]
dev_eui = "0202020202020202"
codec = {{ type = "cayenne_lpp" }}
otaa = {{ join_eui = "0101010101010101", app_key = "{APP_KEY}" }}
"#
    ))
    .unwrap();
    assert!(cfg.validate().is_empty());
    // The adapter counts into a daemon registry: the test reads what /metrics exports.
    let metrics = citygate::telemetry::Metrics::new();
    let mut adapter =
        LorawanUdpAdapter::new("lora", &cfg, LorawanMetrics::new(&metrics, "lora")).unwrap();
    let counters = adapter.counters();
    let mut bound = adapter.bound_addr();
    let sink = common::Sink::new();
    let out = sink.sender();
    let shutdown = CancellationToken::new();
    let task = {
        let (out, shutdown) = (out.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(&out, &shutdown).await })
    };
    let server = timeout(T, bound.wait_for(|a| a.is_some()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut sim = Sim {
        sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        server,
        token: 0x1000,
    };

    // Garbage first: counted, loop survives.
    sim.sock.send_to(b"\x02\x00", server).await.unwrap();
    wait_for(&counters.malformed, "malformed", 1).await;

    // PULL_DATA opens the downlink path.
    let token = sim.next_token();
    sim.send(&Packet::PullData {
        version: 2,
        token,
        gateway: GW,
    })
    .await;
    assert_eq!(sim.recv().await, Packet::PullAck { version: 2, token });

    // Join near the 32-bit tmst wrap: the join-accept must be due 5 s later, wrapped.
    let tmst = u32::MAX - 1_000_000;
    sim.push(GW, &hex::decode(JOIN_REQUEST).unwrap(), tmst)
        .await;
    let Packet::PullResp {
        token: resp_token,
        payload,
        ..
    } = sim.recv().await
    else {
        panic!("expected PULL_RESP with the join-accept");
    };
    let txpk = payload.txpk;
    assert_eq!(txpk.tmst, Some(tmst.wrapping_add(5_000_000)));
    assert_eq!(txpk.tmst, Some(3_999_999));
    assert_eq!(txpk.freq, 868.1);
    assert_eq!(txpk.datr, gwmp::Datr::Lora("SF7BW125".into()));
    assert!(txpk.ipol && !txpk.imme);
    let phy = base64::engine::general_purpose::STANDARD
        .decode(&txpk.data)
        .unwrap();
    assert_eq!(txpk.size as usize, phy.len());
    let app_key = AesKey::from_hex(APP_KEY).unwrap();
    let (ja, mic_ok) = JoinAccept::decrypt(&phy, &app_key).unwrap();
    assert!(mic_ok);
    assert_eq!(ja.net_id, 0x13);
    assert_eq!(ja.dev_addr >> 25, 0x13, "DevAddr carries the NwkID");
    // Independent check of the join-accept with lora-rs.
    let mut lr = phy.clone();
    let enc = lorawan::parser::EncryptedJoinAcceptPayload::new(&mut lr[..]).unwrap();
    assert!(enc
        .decrypt(&lorawan::keys::AppKey::from(*app_key.bytes()))
        .validate_mic(&lorawan::keys::AppKey::from(*app_key.bytes())));
    sim.send(&Packet::TxAck {
        version: 2,
        token: resp_token,
        gateway: GW,
        payload: None,
    })
    .await;
    wait_for(&counters.tx_ack_ok, "tx_ack_ok", 1).await;

    // The same join-request again (after the dedup window) reuses the DevNonce: rejected.
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.push(GW, &hex::decode(JOIN_REQUEST).unwrap(), 7).await;
    wait_for(&counters.replay, "replay", 1).await;

    let keys = derive_session_keys(&app_key, ja.app_nonce, ja.net_id, 0x0303);
    let (nwk, app) = (keys.nwk_s_key, keys.app_s_key);
    let payload = hex::decode("016700f3").unwrap();
    let fcnts = [0u32, 1, 65_534, 65_535, 65_536, 65_537];
    for (n, f) in fcnts.iter().enumerate() {
        sim.push(
            GW,
            &common::lorawan::uplink(false, ja.dev_addr, *f, &nwk, &app, &payload),
            1000 + n as u32,
        )
        .await;
        wait_for(&counters.ok, "ok", n as u64 + 1).await;
    }
    // Heard by a second gateway at once: duplicate.
    let last = common::lorawan::uplink(false, ja.dev_addr, 65_537, &nwk, &app, &payload);
    sim.push(GW2, &last, 5).await;
    wait_for(&counters.duplicate, "duplicate", 1).await;
    // Replay of an old frame after the dedup window: rejected, nothing recorded.
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.push(
        GW,
        &common::lorawan::uplink(false, ja.dev_addr, 1, &nwk, &app, &payload),
        6,
    )
    .await;
    wait_for(&counters.replay, "replay", 2).await;
    // Forged MIC.
    let mut forged = common::lorawan::uplink(false, ja.dev_addr, 65_538, &nwk, &app, &payload);
    let n = forged.len();
    forged[n - 1] ^= 0xff;
    sim.push(GW, &forged, 7).await;
    wait_for(&counters.bad_mic, "bad_mic", 1).await;

    // Confirmed uplink: ACK downlink in RX1 (tmst + 1 s), FCnt down 0, ACK bit, valid MIC.
    sim.push(
        GW,
        &common::lorawan::uplink(true, ja.dev_addr, 65_538, &nwk, &app, &payload),
        2_000_000,
    )
    .await;
    let Packet::PullResp { payload: resp, .. } = sim.recv().await else {
        panic!("expected the ACK downlink");
    };
    assert_eq!(resp.txpk.tmst, Some(3_000_000));
    let down = base64::engine::general_purpose::STANDARD
        .decode(&resp.txpk.data)
        .unwrap();
    let Ok(PhyPayload::Data(d)) = frame::parse(&down) else {
        panic!("not a data frame")
    };
    assert!(!d.is_uplink() && d.ack() && d.fcnt16 == 0 && d.dev_addr == ja.dev_addr);
    assert!(d.mic_ok(&nwk, 0));

    let records = sink.records().await;
    assert_eq!(records.len(), 7);
    let got: Vec<i64> = records
        .iter()
        .map(|r| match r.meta["fcnt"] {
            Value::I64(v) => v,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, [0, 1, 65_534, 65_535, 65_536, 65_537, 65_538]);
    let r = &records[0];
    assert_eq!(r.adapter, "lora");
    assert_eq!(r.device, "0202020202020202");
    assert_eq!(r.values["temperature_1"], Value::F64(24.3));
    assert_eq!(r.meta["unit.temperature_1"], Value::Str("Cel".into()));
    assert_eq!(r.meta["rssi"], Value::I64(-42));
    assert_eq!(r.meta["snr"], Value::F64(9.5));
    assert_eq!(r.meta["freq"], Value::F64(868.1));
    assert_eq!(r.meta["datr"], Value::Str("SF7BW125".into()));
    assert_eq!(r.meta["fport"], Value::I64(2));
    assert_eq!(r.meta["gateway"], Value::Str("0016c001ff10a235".into()));
    assert_eq!(records[6].meta["confirmed"], Value::Bool(true));
    assert_eq!(counters.join_accepted.get(), 1);
    assert_eq!(counters.unknown_device.get(), 0);
    let frames = |result: &str| {
        metrics
            .lorawan_frames
            .with_label_values(&["lora", result])
            .get()
    };
    assert_eq!(frames("join_accepted"), 1);
    assert_eq!(frames("bad_mic"), 1);

    shutdown.cancel();
    let res = timeout(T, task)
        .await
        .expect("adapter did not stop")
        .unwrap();
    assert!(res.is_ok());
}

/// An AS923 device joins through GWMP in each of the four groups, then sends a confirmed
/// uplink; the join-accept and the ACK follow LoRaWAN Regional Parameters RP002-1.0.4 §2.10:
/// - §2.10.2: default channels 923.2 / 923.4 MHz for AS923-1; AS923-2, -3, -4 are AS923-1
///   shifted by -1.8, -6.6 and -5.9 MHz.
/// - §2.10.7: RX1 on the uplink channel; RX1 DR = min(5, max(0, up DR - effective offset)),
///   where RX1DROffset 0..=5 are offsets 0..=5 and 6, 7 are -1, -2 (the downlink goes one
///   or two DRs faster); join-accepts in RX1 at the join-request's DR (JOIN_ACCEPT_DELAY1 5 s).
/// - §2.10.7: RX2 default DR2, so DLSettings carries RX2DR 2 (and the configured offset).
/// - §2.10.3: DR2 = SF10BW125, DR3 = SF9BW125.
#[tokio::test]
async fn as923_join_and_rx1_follow_rp002_in_all_four_groups() {
    use common::lorawan::Forwarder;
    let groups = [
        ("AS923-1", 923.2),
        ("AS923-2", 921.4),
        ("AS923-3", 916.6),
        ("AS923-4", 917.3),
    ];
    for (region, ch0) in groups {
        let cfg: LorawanUdpConfig = toml::from_str(&format!(
            r#"
bind = "127.0.0.1:0"
region = "{region}"
rx1_dr_offset = 6
net_id = "000013"
[[devices]]
dev_eui = "0202020202020202"
otaa = {{ join_eui = "0101010101010101", app_key = "{APP_KEY}" }}
"#
        ))
        .unwrap();
        assert!(cfg.validate().is_empty(), "{region}: {:?}", cfg.validate());
        let mut adapter = LorawanUdpAdapter::new("lora", &cfg, LorawanMetrics::detached()).unwrap();
        let mut bound = adapter.bound_addr();
        let sink = common::Sink::new();
        let shutdown = CancellationToken::new();
        let task = {
            let (out, s) = (sink.sender(), shutdown.clone());
            tokio::spawn(async move { adapter.run(&out, &s).await })
        };
        let server = timeout(T, bound.wait_for(|a| a.is_some()))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let mut fwd = Forwarder::new(server).await;
        fwd.pull().await;

        // Join-request on the group's second default channel at DR2.
        let ch1 = ch0 + 0.2;
        let mut rx = common::lorawan::rxpk(&hex::decode(JOIN_REQUEST).unwrap(), 1_000_000);
        rx.freq = ch1;
        rx.datr = gwmp::Datr::Lora("SF10BW125".into());
        fwd.push(rx).await;
        let (token, txpk) = fwd.pull_resp(5.0).await.expect("join-accept");
        fwd.tx_ack(token, None).await;
        assert_eq!(txpk.tmst, Some(6_000_000), "{region}: JOIN_ACCEPT_DELAY1");
        assert!((txpk.freq - ch1).abs() < 1e-6, "{region}: {}", txpk.freq);
        assert_eq!(txpk.datr, gwmp::Datr::Lora("SF10BW125".into()), "{region}");
        let phy = base64::engine::general_purpose::STANDARD
            .decode(&txpk.data)
            .unwrap();
        let app_key = AesKey::from_hex(APP_KEY).unwrap();
        let (ja, mic_ok) = JoinAccept::decrypt(&phy, &app_key).unwrap();
        assert!(mic_ok);
        assert_eq!(
            ja.dl_settings,
            6 << 4 | 2,
            "{region}: RX1DROffset 6, RX2 DR2"
        );
        assert_eq!(ja.cf_list, None, "{region}: default channels only");

        // Confirmed uplink at DR2 on the first default channel: ACK in RX1 on that channel at
        // DR2 - (-1) = DR3.
        let keys = derive_session_keys(&app_key, ja.app_nonce, ja.net_id, 0x0303);
        let up =
            common::lorawan::uplink(true, ja.dev_addr, 0, &keys.nwk_s_key, &keys.app_s_key, &[1]);
        let mut rx = common::lorawan::rxpk(&up, 9_000_000);
        rx.freq = ch0;
        rx.datr = gwmp::Datr::Lora("SF10BW125".into());
        fwd.push(rx).await;
        let (_, txpk) = fwd.pull_resp(5.0).await.expect("ACK");
        assert_eq!(txpk.tmst, Some(10_000_000), "{region}");
        assert!((txpk.freq - ch0).abs() < 1e-6, "{region}: {}", txpk.freq);
        assert_eq!(txpk.datr, gwmp::Datr::Lora("SF9BW125".into()), "{region}");
        let down = base64::engine::general_purpose::STANDARD
            .decode(&txpk.data)
            .unwrap();
        let Ok(PhyPayload::Data(d)) = frame::parse(&down) else {
            panic!("not a data frame")
        };
        assert!(d.ack() && d.mic_ok(&keys.nwk_s_key, 0));
        shutdown.cancel();
        timeout(T, task).await.unwrap().unwrap().unwrap();
    }
}
