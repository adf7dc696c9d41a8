use super::*;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/lorawan_uplinks.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn key(v: &Value) -> AesKey {
    AesKey::from_hex(v.as_str().unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn shared_uplink_vectors_parse_verify_and_decrypt() {
    let v = vectors();
    let cases = v["vectors"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let name = s(&c["name"]);
        let e = &c["expected"];
        let bytes = hex::decode(s(&c["phy_payload_hex"])).unwrap();
        let PhyPayload::Data(f) = parse(&bytes).unwrap() else {
            panic!("{name}: not a data frame");
        };
        assert_eq!(
            u64::from(f.mtype.code()),
            e["mtype"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(f.mtype.name(), s(&e["mtype_name"]), "{name}");
        assert_eq!(format!("{:08x}", f.dev_addr), s(&e["devaddr"]), "{name}");
        assert_eq!(format!("{:02x}", f.fctrl), s(&e["fctrl_hex"]), "{name}");
        assert_eq!(f.adr(), e["fctrl"]["adr"].as_bool().unwrap(), "{name}");
        assert_eq!(f.ack(), e["fctrl"]["ack"].as_bool().unwrap(), "{name}");
        assert_eq!(
            u64::from(f.fopts_len()),
            e["fctrl"]["fopts_len"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(u64::from(f.fcnt16), e["fcnt16"].as_u64().unwrap(), "{name}");
        assert_eq!(hex::encode(f.fopts), s(&e["fopts_hex"]), "{name}");
        assert_eq!(f.fport.map(u64::from), e["fport"].as_u64(), "{name}: fport");
        assert_eq!(
            hex::encode(f.frm_payload),
            s(&e["frm_payload_enc_hex"]),
            "{name}"
        );
        assert_eq!(hex::encode(f.mic), s(&e["mic_hex"]), "{name}");
        assert_eq!(s(&c["direction"]) == "up", f.is_uplink(), "{name}");
        let fcnt32 = e["fcnt32"].as_u64().unwrap() as u32;
        let nwk = key(&c["nwkskey"]);
        let app = key(&c["appskey"]);
        assert_eq!(
            f.mic_ok(&nwk, fcnt32),
            e["mic_valid"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(f.decrypt(&nwk, &app, fcnt32)),
            s(&e["frm_payload_hex"]),
            "{name}"
        );
        // A wrong upper half of the counter must break the MIC (rollover gotcha).
        assert!(!f.mic_ok(&nwk, fcnt32 | 0x1_0000), "{name}");
    }
}

#[test]
fn shared_negative_vectors() {
    let v = vectors();
    let cases = v["negative_vectors"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let name = s(&c["name"]);
        let bytes = hex::decode(s(&c["phy_payload_hex"])).unwrap();
        let e = &c["expected"];
        match e["error"].as_str() {
            Some("mic_mismatch") => {
                let PhyPayload::Data(f) = parse(&bytes).unwrap() else {
                    panic!("{name}");
                };
                let nwk = key(&c["nwkskey"]);
                assert!(!f.mic_ok(&nwk, u32::from(f.fcnt16)), "{name}");
                assert_eq!(
                    hex::encode(f.compute_mic(&nwk, u32::from(f.fcnt16))),
                    s(&e["computed_mic_hex"]),
                    "{name}"
                );
            }
            Some("too_short") => {
                assert!(
                    matches!(parse(&bytes), Err(FrameError::TooShort { .. })),
                    "{name}"
                );
            }
            Some("unsupported_major") => {
                assert_eq!(
                    parse(&bytes),
                    Err(FrameError::UnsupportedMajor(1)),
                    "{name}"
                );
            }
            None => {
                assert_eq!(e["mtype"].as_u64(), Some(7), "{name}");
                // The payload comes without the MHDR, as for every other frame type.
                assert_eq!(
                    parse(&bytes),
                    Ok(PhyPayload::Proprietary(&bytes[1..])),
                    "{name}"
                );
            }
            Some(other) => panic!("{name}: unknown expected error {other}"),
        }
    }
}

#[test]
fn rollover_frame_needs_the_full_counter() {
    // Built here, checked below against the independent lorawan crate.
    let nwk = AesKey::from_hex("f6acc31a06b72b4d6b0d5e6226aac462").unwrap();
    let app = AesKey::from_hex("be69ef63d9a704ac1f2c26f01274bccb").unwrap();
    let mut raw = vec![0x40, 0x34, 0x12, 0x0b, 0x26, 0x00, 0x02, 0x00, 0x02];
    let mut pl = b"hi".to_vec();
    crypt_frm_payload(&app, true, 0x260b1234, 0x0001_0002, &mut pl);
    raw.extend_from_slice(&pl);
    let mic = data_mic(&nwk, true, 0x260b1234, 0x0001_0002, &raw);
    raw.extend_from_slice(&mic);
    let PhyPayload::Data(f) = parse(&raw).unwrap() else {
        panic!("data");
    };
    assert!(!f.mic_ok(&nwk, 2));
    assert!(f.mic_ok(&nwk, 0x0001_0002));
    assert_eq!(f.decrypt(&nwk, &app, 0x0001_0002), b"hi");

    // Cross-check with lora-rs.
    use lorawan::keys::AES128;
    use lorawan::parser::{parse as lr_parse, DataHeader, PhyPayload as LrPhy};
    let mut buf = raw.clone();
    let Ok(LrPhy::Data(lorawan::parser::DataPayload::Encrypted(enc))) = lr_parse(&mut buf[..])
    else {
        panic!("lorawan crate did not parse the frame");
    };
    assert_eq!(enc.fhdr().fcnt(), 2);
    assert!(enc.validate_mic(&AES128(*nwk.bytes()), 0x0001_0002));
}

#[test]
fn fport0_is_decrypted_with_nwkskey() {
    let nwk = AesKey::from_hex("44024241ed4ce9a68c6a8bc055233fd3").unwrap();
    let app = AesKey::from_hex("ec925802ae430ca77fd3dd73cb2cc588").unwrap();
    let mac = [0x02u8]; // LinkCheckReq
    let mut raw = vec![0x40, 0xf1, 0x7d, 0xbe, 0x49, 0x00, 0x05, 0x00, 0x00];
    let mut enc = mac.to_vec();
    crypt_frm_payload(&nwk, true, 0x49be7df1, 5, &mut enc);
    raw.extend_from_slice(&enc);
    let mic = data_mic(&nwk, true, 0x49be7df1, 5, &raw);
    raw.extend_from_slice(&mic);
    let PhyPayload::Data(f) = parse(&raw).unwrap() else {
        panic!("data");
    };
    assert_eq!(f.fport, Some(0));
    assert_eq!(f.decrypt(&nwk, &app, 5), mac);
    // FOpts together with FPort 0 is malformed.
    let mut bad = raw.clone();
    bad[5] = 0x01;
    bad.insert(8, 0x02);
    assert_eq!(parse(&bad), Err(FrameError::FOptsWithPort0));
}

#[test]
fn ack_downlink_matches_published_frame_and_lora_rs() {
    // lora_packet_downlink_ack: unconfirmed down, ACK bit, FCnt 2, FPort 1, no payload.
    let nwk = AesKey::from_hex("44024241ed4ce9a68c6a8bc055233fd3").unwrap();
    let app = AesKey::from_hex("ec925802ae430ca77fd3dd73cb2cc588").unwrap();
    let d = DataDown {
        confirmed: false,
        dev_addr: 0x49be7df1,
        ack: true,
        adr: false,
        fpending: false,
        fcnt32: 2,
        fopts: &[],
        fport: Some(1),
        payload: &[],
    };
    assert_eq!(
        hex::encode(build_data_down(&d, &nwk, &app)),
        "60f17dbe4920020001f9d65d27"
    );
    // With a payload: lora-rs must verify the MIC and decrypt it back.
    let d = DataDown {
        payload: b"on",
        fcnt32: 0x0002_0001,
        ..d
    };
    let mut phy = build_data_down(&d, &nwk, &app);
    use lorawan::keys::AES128;
    use lorawan::parser::{parse as lr_parse, DataPayload, FRMPayload, PhyPayload as LrPhy};
    let Ok(LrPhy::Data(DataPayload::Encrypted(enc))) = lr_parse(&mut phy[..]) else {
        panic!("lorawan crate did not parse the downlink");
    };
    assert!(enc.validate_mic(&AES128(*nwk.bytes()), 0x0002_0001));
    let dec = enc
        .decrypt(
            Some(&AES128(*nwk.bytes())),
            Some(&AES128(*app.bytes())),
            0x0002_0001,
        )
        .unwrap();
    let FRMPayload::Data(data) = dec.frm_payload() else {
        panic!("no data");
    };
    assert_eq!(data, b"on");
}

#[test]
fn parser_never_panics_on_truncations_and_garbage() {
    let v = vectors();
    for c in v["vectors"].as_array().unwrap() {
        let bytes = hex::decode(s(&c["phy_payload_hex"])).unwrap();
        for n in 0..=bytes.len() {
            let _ = parse(&bytes[..n]);
        }
    }
    let mut x: u32 = 0x1234_5678;
    for len in 0..64usize {
        let buf: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if let Ok(PhyPayload::Data(f)) = parse(&buf) {
            assert!(f.frm_payload.len() + f.fopts.len() + 12 <= buf.len());
        }
    }
}
