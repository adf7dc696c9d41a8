use super::*;
use crate::southbound::lorawan::network::frame::{parse, PhyPayload};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/lorawan_join.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn key(v: &Value) -> AesKey {
    AesKey::from_hex(s(v)).unwrap()
}

fn be_hex_u32(v: &Value) -> u32 {
    u32::from_str_radix(s(v), 16).unwrap()
}

#[test]
fn shared_join_request_vectors() {
    let v = vectors();
    let cases = v["join_requests"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let name = s(&c["name"]);
        let e = &c["expected"];
        let bytes = hex::decode(s(&c["phy_payload_hex"])).unwrap();
        let Ok(PhyPayload::JoinRequest(jr)) = parse(&bytes) else {
            panic!("{name}: not a join-request");
        };
        assert_eq!(format!("{:016x}", jr.join_eui), s(&e["appeui"]), "{name}");
        assert_eq!(format!("{:016x}", jr.dev_eui), s(&e["deveui"]), "{name}");
        assert_eq!(
            hex::encode(jr.dev_nonce.to_le_bytes()),
            s(&e["devnonce_wire_hex"]),
            "{name}"
        );
        assert_eq!(
            u64::from(jr.dev_nonce),
            e["devnonce"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(hex::encode(jr.mic), s(&e["mic_hex"]), "{name}");
        let app_key = key(&c["appkey"]);
        assert_eq!(
            jr.mic_ok(&app_key),
            e["mic_valid"].as_bool().unwrap(),
            "{name}"
        );
        // Rebuilding from the fields gives the same bytes.
        let again = JoinRequest::build(jr.join_eui, jr.dev_eui, jr.dev_nonce, &app_key);
        assert_eq!(again.raw().as_slice(), bytes.as_slice(), "{name}");
        assert!(!jr.mic_ok(&AesKey::new([0x55; 16])), "{name}: wrong key");
    }
}

#[test]
fn shared_join_accept_vectors_decrypt_and_reencrypt() {
    let v = vectors();
    let cases = v["join_accepts"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let name = s(&c["name"]);
        let e = &c["expected"];
        let phy = hex::decode(s(&c["phy_payload_hex"])).unwrap();
        let app_key = key(&c["appkey"]);
        let (ja, mic_ok) = JoinAccept::decrypt(&phy, &app_key).unwrap();
        assert!(mic_ok, "{name}");
        assert_eq!(ja.app_nonce, be_hex_u32(&e["appnonce"]), "{name}");
        assert_eq!(ja.net_id, be_hex_u32(&e["netid"]), "{name}");
        assert_eq!(ja.dev_addr, be_hex_u32(&e["devaddr"]), "{name}");
        assert_eq!(
            u64::from(ja.dl_settings),
            e["dlsettings"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(ja.rx1_dr_offset()),
            e["rx1_dr_offset"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(ja.rx2_data_rate()),
            e["rx2_data_rate"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(ja.rx_delay),
            e["rx_delay"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ja.cf_list.is_none(),
            s(&e["cflist_hex"]).is_empty(),
            "{name}"
        );
        assert_eq!(
            hex::encode(ja.encode_plain(&app_key)),
            s(&e["plaintext_phy_hex"]),
            "{name}"
        );
        assert_eq!(
            hex::encode(ja.encrypt(&app_key)),
            s(&c["phy_payload_hex"]),
            "{name}"
        );
    }
}

#[test]
fn shared_plaintext_join_accept_mic() {
    let v = vectors();
    let cases = v["join_accept_plaintext_mic"].as_array().unwrap();
    assert_eq!(cases.len(), 1);
    for c in cases {
        let e = &c["expected"];
        let plain = hex::decode(s(&c["plaintext_phy_hex"])).unwrap();
        let ja = JoinAccept::from_plain(&plain).unwrap();
        assert_eq!(ja.app_nonce, be_hex_u32(&e["appnonce"]));
        assert_eq!(ja.net_id, be_hex_u32(&e["netid"]));
        assert_eq!(ja.dev_addr, be_hex_u32(&e["devaddr"]));
        let app_key = key(&c["appkey"]);
        assert_eq!(
            hex::encode(ja.encode_plain(&app_key)),
            s(&c["plaintext_phy_hex"])
        );
    }
}

#[test]
fn shared_key_derivation_vectors() {
    let v = vectors();
    let cases = v["key_derivation"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let name = s(&c["name"]);
        let e = &c["expected"];
        let keys = derive_session_keys(
            &key(&c["appkey"]),
            be_hex_u32(&c["appnonce"]),
            be_hex_u32(&c["netid"]),
            be_hex_u32(&c["devnonce"]) as u16,
        );
        assert_eq!(
            hex::encode(keys.nwk_s_key.bytes()),
            s(&e["nwkskey"]),
            "{name}"
        );
        assert_eq!(
            hex::encode(keys.app_s_key.bytes()),
            s(&e["appskey"]),
            "{name}"
        );
    }
}

#[test]
fn join_accept_with_cflist_is_read_by_lora_rs() {
    let app_key = AesKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let mut cf = [0u8; 16];
    // 867.1 MHz in 100 Hz units, little-endian 24-bit, then CFListType 0.
    cf[..3].copy_from_slice(&8_671_000u32.to_le_bytes()[..3]);
    let ja = JoinAccept {
        app_nonce: 0x00ab_cdef,
        net_id: 0x13,
        dev_addr: 0x260b_1234,
        dl_settings: 0x13,
        rx_delay: 1,
        cf_list: Some(cf),
    };
    let mut phy = ja.encrypt(&app_key);
    assert_eq!(phy.len(), 33);
    let (back, mic_ok) = JoinAccept::decrypt(&phy, &app_key).unwrap();
    assert!(mic_ok);
    assert_eq!(back, ja);
    let enc = lorawan::parser::EncryptedJoinAcceptPayload::new(&mut phy[..]).unwrap();
    let dec = enc.decrypt(&lorawan::keys::AppKey::from(*app_key.bytes()));
    assert!(dec.validate_mic(&lorawan::keys::AppKey::from(*app_key.bytes())));
    // lora-rs keeps DevAddr in wire (little-endian) order.
    assert_eq!(dec.dev_addr().as_ref(), 0x260b_1234u32.to_le_bytes());
    assert_eq!(dec.rx_delay(), 1);
    // Wrong key: decrypts to garbage with a bad MIC, no panic.
    let (_, ok) = JoinAccept::decrypt(&ja.encrypt(&app_key), &AesKey::new([9; 16])).unwrap();
    assert!(!ok);
    assert!(JoinAccept::decrypt(&[0x20; 5], &app_key).is_err());
}

#[test]
fn dev_nonce_history_rejects_reuse_and_stays_bounded() {
    let mut h = DevNonceHistory::default();
    assert!(h.record(7));
    assert!(!h.record(7));
    assert!(h.is_used(7));
    for n in 0..(DevNonceHistory::CAPACITY as u16 + 10) {
        h.record(1000 + n);
    }
    assert_eq!(h.len(), DevNonceHistory::CAPACITY);
    assert!(!h.is_used(7), "oldest value evicted");
    let json = serde_json::to_string(&h).unwrap();
    let back: DevNonceHistory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h);
}
