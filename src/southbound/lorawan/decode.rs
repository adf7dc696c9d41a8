//! Field tool behind `citygate decode lorawan --hex PHYPAYLOAD [--nwkskey K --appskey K |
//! --appkey K] [--fcnt-msb N] [--json]`: shows what a frame says and whether the keys fit.

use super::network::crypto::AesKey;
use super::network::frame::{self, PhyPayload};
use super::network::join::JoinAccept;
use super::network::mac;
use serde_json::{json, Map, Value};

/// Keys and options given on the command line.
#[derive(Debug, Clone, Default)]
pub struct DecodeKeys<'a> {
    pub nwk_s_key: Option<&'a str>,
    pub app_s_key: Option<&'a str>,
    pub app_key: Option<&'a str>,
    /// Upper 16 bits of the uplink counter (after a rollover); 0 when not given.
    pub fcnt_msb: u16,
    pub json: bool,
}

/// Decodes `hex` and renders the result as text lines or pretty JSON. Never panics; bad input
/// is reported in the output (`error` field).
pub fn decode_cli(hex_text: &str, keys: &DecodeKeys<'_>) -> String {
    let v = decode_value(hex_text, keys);
    if keys.json {
        return serde_json::to_string_pretty(&v).unwrap_or_default();
    }
    let Value::Object(m) = v else {
        return String::new();
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn key(k: Option<&str>, name: &str, out: &mut Map<String, Value>) -> Option<AesKey> {
    match AesKey::from_hex(k?) {
        Ok(k) => Some(k),
        Err(e) => {
            out.insert(format!("{name}_error"), json!(e.to_string()));
            None
        }
    }
}

fn decode_value(hex_text: &str, keys: &DecodeKeys<'_>) -> Value {
    let mut o = Map::new();
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = match hex::decode(&clean) {
        Ok(b) => b,
        Err(e) => {
            o.insert("error".into(), json!(format!("not hex: {e}")));
            return Value::Object(o);
        }
    };
    let nwk = key(keys.nwk_s_key, "nwkskey", &mut o);
    let app = key(keys.app_s_key, "appskey", &mut o);
    let app_key = key(keys.app_key, "appkey", &mut o);
    match frame::parse(&bytes) {
        Err(e) => {
            o.insert("error".into(), json!(e.to_string()));
        }
        Ok(PhyPayload::Proprietary(p)) => {
            // No DevAddr, FCnt or MIC in a proprietary frame: keys given are not used.
            o.insert("mtype".into(), json!("Proprietary"));
            o.insert("mhdr".into(), json!(format!("{:02x}", bytes[0])));
            o.insert("payload".into(), json!(hex::encode(p)));
            o.insert(
                "note".into(),
                json!("vendor-defined frame: no MIC or FCnt to check"),
            );
        }
        Ok(PhyPayload::JoinRequest(jr)) => {
            o.insert("mtype".into(), json!("JoinRequest"));
            o.insert("join_eui".into(), json!(format!("{:016x}", jr.join_eui)));
            o.insert("dev_eui".into(), json!(format!("{:016x}", jr.dev_eui)));
            o.insert("dev_nonce".into(), json!(jr.dev_nonce));
            o.insert("mic".into(), json!(hex::encode(jr.mic)));
            if let Some(k) = &app_key {
                let ok = jr.mic_ok(k);
                o.insert("mic_ok".into(), json!(ok));
                if !ok {
                    o.insert("mic_expected".into(), json!(hex::encode(jr.compute_mic(k))));
                }
            }
        }
        Ok(PhyPayload::JoinAccept(p)) => {
            o.insert("mtype".into(), json!("JoinAccept"));
            match app_key.map(|k| JoinAccept::decrypt(p, &k)) {
                None => {
                    o.insert("note".into(), json!("encrypted; give --appkey to read it"));
                }
                Some(Err(e)) => {
                    o.insert("error".into(), json!(e.to_string()));
                }
                Some(Ok((ja, ok))) => {
                    o.insert("app_nonce".into(), json!(format!("{:06x}", ja.app_nonce)));
                    o.insert("net_id".into(), json!(format!("{:06x}", ja.net_id)));
                    o.insert("dev_addr".into(), json!(format!("{:08x}", ja.dev_addr)));
                    o.insert("rx1_dr_offset".into(), json!(ja.rx1_dr_offset()));
                    o.insert("rx2_data_rate".into(), json!(ja.rx2_data_rate()));
                    o.insert("rx_delay".into(), json!(ja.rx_delay));
                    o.insert("cf_list".into(), json!(ja.cf_list.map(hex::encode)));
                    o.insert("mic_ok".into(), json!(ok));
                }
            }
        }
        Ok(PhyPayload::Data(f)) => {
            let fcnt32 = (u32::from(keys.fcnt_msb) << 16) | u32::from(f.fcnt16);
            o.insert("mtype".into(), json!(f.mtype.name()));
            o.insert("dev_addr".into(), json!(format!("{:08x}", f.dev_addr)));
            o.insert("fctrl".into(), json!(format!("{:02x}", f.fctrl)));
            o.insert("adr".into(), json!(f.adr()));
            o.insert("ack".into(), json!(f.ack()));
            o.insert("fcnt".into(), json!(fcnt32));
            o.insert("fopts".into(), json!(hex::encode(f.fopts)));
            o.insert("fport".into(), json!(f.fport));
            o.insert("frm_payload".into(), json!(hex::encode(f.frm_payload)));
            o.insert("mic".into(), json!(hex::encode(f.mic)));
            if let Some(n) = &nwk {
                let ok = f.mic_ok(n, fcnt32);
                o.insert("mic_ok".into(), json!(ok));
                if !ok {
                    o.insert(
                        "mic_expected".into(),
                        json!(hex::encode(f.compute_mic(n, fcnt32))),
                    );
                }
            }
            // FPort 0 needs only the NwkSKey; application ports need the AppSKey.
            let dec_key = if f.fport == Some(0) {
                nwk.as_ref()
            } else {
                app.as_ref()
            };
            if !f.fopts.is_empty() {
                insert_mac_commands(&mut o, "fopts_mac", f.fopts, f.is_uplink());
            }
            if let (Some(k), Some(_)) = (dec_key, f.fport) {
                let plain = f.decrypt(k, k, fcnt32);
                o.insert("payload".into(), json!(hex::encode(&plain)));
                if f.fport == Some(0) {
                    insert_mac_commands(&mut o, "payload_mac", &plain, f.is_uplink());
                }
            }
        }
    }
    Value::Object(o)
}

/// Adds the MAC commands in `bytes` under `name` (a list of `{"command": ..., fields}`), and
/// under `{name}_error` why parsing stopped early, if it did.
fn insert_mac_commands(o: &mut Map<String, Value>, name: &str, bytes: &[u8], uplink: bool) {
    let (cmds, error) = if uplink {
        let p = mac::parse_uplink(bytes);
        (json!(p.commands), p.error)
    } else {
        let p = mac::parse_downlink(bytes);
        (json!(p.commands), p.error)
    };
    o.insert(name.into(), cmds);
    if let Some(e) = error {
        o.insert(format!("{name}_error"), json!(e.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frame_text_and_json() {
        let keys = DecodeKeys {
            nwk_s_key: Some("44024241ed4ce9a68c6a8bc055233fd3"),
            app_s_key: Some("ec925802ae430ca77fd3dd73cb2cc588"),
            ..Default::default()
        };
        let text = decode_cli("40f17dbe4900020001954378762b11ff0d", &keys);
        assert!(text.contains("dev_addr: 49be7df1"), "{text}");
        assert!(text.contains("mic_ok: true"), "{text}");
        assert!(text.contains("payload: 74657374"), "{text}");
        let j: Value = serde_json::from_str(&decode_cli(
            "40f17dbe49000300012a3518aa",
            &DecodeKeys { json: true, ..keys },
        ))
        .unwrap();
        assert_eq!(j["mic_ok"], json!(false));
        assert_eq!(j["mic_expected"], json!("2a3518af"));
    }

    #[test]
    fn proprietary_frame_payload_without_mhdr_and_no_mic_check() {
        // chirpstack lrwn test_proprietary: MHDR e0, payload 01 02 03.
        let keys = DecodeKeys {
            nwk_s_key: Some("2b7e151628aed2a6abf7158809cf4f3c"),
            app_s_key: Some("2b7e151628aed2a6abf7158809cf4f3c"),
            json: true,
            ..DecodeKeys::default()
        };
        let j: Value = serde_json::from_str(&decode_cli("e0010203", &keys)).unwrap();
        assert_eq!(j["mtype"], "Proprietary");
        assert_eq!(j["mhdr"], "e0");
        assert_eq!(j["payload"], "010203");
        for absent in ["mic", "mic_ok", "fcnt", "dev_addr", "error"] {
            assert!(j.get(absent).is_none(), "{absent}: {j}");
        }
        // Only the MHDR: an empty payload, still no error.
        let j: Value = serde_json::from_str(&decode_cli("ff", &keys)).unwrap();
        assert_eq!(j["payload"], "");
        assert_eq!(j["mhdr"], "ff");
        let text = decode_cli("e0 0102", &DecodeKeys::default());
        assert!(text.contains("payload: 0102"), "{text}");
        assert!(!text.contains("e00102"), "{text}");
    }

    #[test]
    fn join_frames_and_bad_input() {
        let k = DecodeKeys {
            app_key: Some("00112233445566778899aabbccddeeff"),
            json: true,
            ..Default::default()
        };
        let j: Value =
            serde_json::from_str(&decode_cli("20493eeb51fba2116f810edb3742975142", &k)).unwrap();
        assert_eq!(j["dev_addr"], json!("02031980"));
        assert_eq!(j["mic_ok"], json!(true));
        let j: Value = serde_json::from_str(&decode_cli("zz", &k)).unwrap();
        assert!(j["error"].as_str().unwrap().starts_with("not hex"));
        let j: Value = serde_json::from_str(&decode_cli("40f1", &k)).unwrap();
        assert!(j["error"].as_str().unwrap().contains("too short"));
        let t = decode_cli(
            "00040302010403020105040302050403022d106a990e12",
            &DecodeKeys::default(),
        );
        assert!(t.contains("dev_nonce: 4141"), "{t}");
    }

    #[test]
    fn mac_commands_in_fopts_and_on_fport_0() {
        // Unconfirmed uplink, FOptsLen 4: LinkCheckReq, DevStatusAns(battery 128, margin -1).
        let j: Value = serde_json::from_str(&decode_cli(
            "40f17dbe490401000206803f00000000",
            &DecodeKeys {
                json: true,
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(j["fopts_mac"][0]["command"], json!("LinkCheckReq"));
        assert_eq!(j["fopts_mac"][1]["command"], json!("DevStatusAns"));
        assert_eq!(j["fopts_mac"][1]["battery"], json!({"Level": 128}));
        assert_eq!(j["fopts_mac"][1]["margin_db"], json!(-1));
        // A truncated FOpts shows what parsed and the error.
        let t = decode_cli("40f17dbe49020100020600000000", &DecodeKeys::default());
        assert!(
            t.contains("fopts_mac: [{\"command\":\"LinkCheckReq\"}]"),
            "{t}"
        );
        assert!(
            t.contains("DevStatusAns (CID 0x06) at offset 1 is truncated"),
            "{t}"
        );

        // Downlink on FPort 0: LinkADRReq encrypted with the NwkSKey.
        let nwk = "44024241ed4ce9a68c6a8bc055233fd3";
        let k = AesKey::from_hex(nwk).unwrap();
        let cmds = mac::encode_downlink(&[mac::DownlinkCommand::LinkAdrReq(mac::LinkAdrReq {
            data_rate: 5,
            tx_power: 1,
            ch_mask: 0x0007,
            ch_mask_cntl: 0,
            nb_trans: 1,
        })])
        .unwrap();
        let phy = frame::build_data_down(
            &frame::DataDown {
                confirmed: false,
                dev_addr: 0x49be7df1,
                ack: false,
                adr: false,
                fpending: false,
                fcnt32: 7,
                fopts: &[],
                fport: Some(0),
                payload: &cmds,
            },
            &k,
            &k,
        );
        let keys = DecodeKeys {
            nwk_s_key: Some(nwk),
            json: true,
            ..Default::default()
        };
        let j: Value = serde_json::from_str(&decode_cli(&hex::encode(&phy), &keys)).unwrap();
        assert_eq!(j["mic_ok"], json!(true));
        let adr = &j["payload_mac"][0];
        assert_eq!(adr["command"], json!("LinkADRReq"));
        assert_eq!(
            (
                &adr["data_rate"],
                &adr["tx_power"],
                &adr["ch_mask"],
                &adr["nb_trans"]
            ),
            (&json!(5), &json!(1), &json!(7), &json!(1))
        );
        assert!(j.get("payload_mac_error").is_none());
    }
}
