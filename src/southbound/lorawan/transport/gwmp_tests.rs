use super::*;
use crate::southbound::lorawan::network::frame::{self, PhyPayload};
use base64::Engine;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/gwmp.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn token_of(p: &Packet) -> [u8; 2] {
    match p {
        Packet::PushData { token, .. }
        | Packet::PushAck { token, .. }
        | Packet::PullData { token, .. }
        | Packet::PullResp { token, .. }
        | Packet::PullAck { token, .. }
        | Packet::TxAck { token, .. } => *token,
    }
}

fn type_name(p: &Packet) -> &'static str {
    match p {
        Packet::PushData { .. } => "PUSH_DATA",
        Packet::PushAck { .. } => "PUSH_ACK",
        Packet::PullData { .. } => "PULL_DATA",
        Packet::PullResp { .. } => "PULL_RESP",
        Packet::PullAck { .. } => "PULL_ACK",
        Packet::TxAck { .. } => "TX_ACK",
    }
}

#[test]
fn shared_gwmp_vectors() {
    let v = vectors();
    let cases = v["vectors"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for c in cases {
        let name = s(&c["name"]);
        let d = &c["decoded"];
        let bytes = hex::decode(s(&c["datagram_hex"])).unwrap();
        let p = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(type_name(&p), s(&d["type"]), "{name}");
        assert_eq!(hex::encode(token_of(&p)), s(&d["token_hex"]), "{name}");
        match &p {
            Packet::PushData {
                gateway, payload, ..
            } => {
                assert_eq!(gateway.to_string(), s(&d["gateway_eui"]), "{name}");
                // The body equals the vector's decoded JSON, read independently.
                let want: PushPayload = serde_json::from_value(d["json"].clone()).unwrap();
                assert_eq!(payload, &want, "{name}");
                if let Some(rx) = d["json"]["rxpk"].get(0) {
                    assert_eq!(
                        u64::from(payload.rxpk[0].tmst),
                        rx["tmst"].as_u64().unwrap()
                    );
                    assert_eq!(payload.rxpk[0].rssi, rx["rssi"].as_f64().unwrap());
                    assert_eq!(payload.rxpk[0].lsnr, rx["lsnr"].as_f64());
                }
                if let Some(st) = d["json"].get("stat") {
                    let got = payload.stat.as_ref().unwrap();
                    assert_eq!(got.rxnb, st["rxnb"].as_u64().unwrap(), "{name}");
                    assert_eq!(got.time.as_deref(), st["time"].as_str(), "{name}");
                }
            }
            Packet::PullData { gateway, .. } | Packet::TxAck { gateway, .. } => {
                assert_eq!(gateway.to_string(), s(&d["gateway_eui"]), "{name}");
            }
            Packet::PullResp { payload, .. } => {
                assert_eq!(serde_json::to_value(payload).unwrap(), d["json"], "{name}");
                let phy = base64::engine::general_purpose::STANDARD
                    .decode(&payload.txpk.data)
                    .unwrap();
                assert_eq!(hex::encode(phy), s(&c["txpk_phy_hex"]), "{name}");
            }
            Packet::PushAck { .. } | Packet::PullAck { .. } => {}
        }
        // Datagrams without JSON, and our own PULL_RESP, encode byte for byte.
        if !matches!(p, Packet::PushData { .. }) {
            assert_eq!(hex::encode(encode(&p)), s(&c["datagram_hex"]), "{name}");
        }
        if let Some(ack) = c["ack_to_send_hex"].as_str() {
            let ack_packet = match p {
                Packet::PushData { version, token, .. } => Packet::PushAck { version, token },
                Packet::PullData { version, token, .. } => Packet::PullAck { version, token },
                _ => panic!("{name}: ack for unexpected type"),
            };
            assert_eq!(hex::encode(encode(&ack_packet)), ack, "{name}");
        }
        if let Some(phy_hex) = c["rxpk0_phy_hex"].as_str() {
            let Packet::PushData { payload, .. } = &p else {
                panic!("{name}");
            };
            let phy = base64::engine::general_purpose::STANDARD
                .decode(&payload.rxpk[0].data)
                .unwrap();
            assert_eq!(hex::encode(&phy), phy_hex, "{name}");
            let l = &c["rxpk0_lorawan"];
            let Ok(PhyPayload::JoinRequest(jr)) = frame::parse(&phy) else {
                panic!("{name}: not a join-request");
            };
            assert_eq!(format!("{:016x}", jr.join_eui), s(&l["appeui"]), "{name}");
            assert_eq!(format!("{:016x}", jr.dev_eui), s(&l["deveui"]), "{name}");
            assert_eq!(u64::from(jr.dev_nonce), l["devnonce"].as_u64().unwrap());
            assert_eq!(hex::encode(jr.mic), s(&l["mic"]), "{name}");
        }
    }
}

#[test]
fn tx_ack_with_error_and_fsk_datr() {
    let mut d = hex::decode("02abcd050016c001ff10a235").unwrap();
    d.extend_from_slice(br#"{"txpk_ack":{"error":"TOO_LATE"}}"#);
    let Packet::TxAck {
        payload: Some(p), ..
    } = parse(&d).unwrap()
    else {
        panic!("TX_ACK with payload expected");
    };
    assert_eq!(p.txpk_ack.error(), Some("TOO_LATE"));
    let none = TxAckInfo {
        error: Some("NONE".into()),
        warn: None,
    };
    assert_eq!(none.error(), None);
    let mut push = hex::decode("0201020011223344556677 88".replace(' ', "")).unwrap();
    push.extend_from_slice(
        br#"{"rxpk":[{"tmst":1,"freq":868.3,"stat":1,"modu":"FSK","datr":50000,"rssi":-80.5,"data":"","extra":1}]}"#,
    );
    let Packet::PushData { payload, .. } = parse(&push).unwrap() else {
        panic!("push");
    };
    assert_eq!(payload.rxpk[0].datr, Datr::Fsk(50000));
    assert_eq!(payload.rxpk[0].datr.to_string(), "50000");
}

#[test]
fn malformed_datagrams_are_errors_never_panics() {
    assert!(matches!(parse(&[]), Err(GwmpError::TooShort { .. })));
    assert_eq!(parse(&[3, 0, 0, 0]), Err(GwmpError::Version(3)));
    assert_eq!(parse(&[2, 0, 0, 9]), Err(GwmpError::Identifier(9)));
    assert!(matches!(
        parse(&[2, 0, 0, 0, 1, 2]),
        Err(GwmpError::TooShort { .. })
    ));
    assert!(matches!(
        parse(&[2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{']),
        Err(GwmpError::Json { .. })
    ));
    // Every prefix of every vector parses or errors.
    for c in vectors()["vectors"].as_array().unwrap() {
        let bytes = hex::decode(s(&c["datagram_hex"])).unwrap();
        for n in 0..bytes.len() {
            let _ = parse(&bytes[..n]);
        }
    }
}
