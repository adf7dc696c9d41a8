//! Interoperability with the formats as they are in the field today: every BTHome object id
//! and event of the current table (vectors decoded by bthome-ble 3.25.0), and Eddystone frames
//! that are mislabelled or malformed.

use super::*;
use crate::record::Value;
use serde_json::Value as J;

fn load(name: &str) -> J {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn check(case: &str, key: &str, got: Option<&Value>, want: &J) {
    let got = got.unwrap_or_else(|| panic!("{case}: `{key}` missing"));
    match (got, want) {
        (Value::F64(g), J::Number(w)) => {
            let w = w.as_f64().unwrap();
            assert!((g - w).abs() < 1e-9, "{case}: {key} = {g}, want {w}");
        }
        (Value::I64(g), J::Number(w)) => assert_eq!(Some(*g), w.as_i64(), "{case}: {key}"),
        (Value::Bool(g), J::Bool(w)) => assert_eq!(g, w, "{case}: {key}"),
        (Value::Str(g), J::String(w)) => assert_eq!(g, w, "{case}: {key}"),
        (Value::Bytes(g), J::String(w)) => assert_eq!(&hex::encode(g), w, "{case}: {key}"),
        (g, w) => panic!("{case}: {key}: got {g:?}, want {w}"),
    }
}

/// One vector per object id and per event value; the expectations are bthome-ble's output,
/// with citygate's point names where the file lists a different one.
#[test]
fn bthome_every_object_and_event_matches_bthome_ble() {
    let file = load("bthome_objects.json");
    let renames = file["point_names"]["by_object"].as_object().unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 150, "vector file shrank");
    let mut ids_seen = std::collections::BTreeSet::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let data = h(v["service_data_hex"].as_str().unwrap());
        let exp = &v["expected"];
        let got = bthome::decode(&data, None, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        ids_seen.insert(data[1]);
        let single = data.len() <= 8 && !name.starts_with("new_ids");
        let point = |k: &str| -> String {
            match renames.get(&format!("{:02x}", data[1])) {
                Some(J::String(r)) if single => r.clone(),
                _ => k.to_owned(),
            }
        };
        let mut expected_count = 0;
        for section in ["values", "binary"] {
            for (k, want) in exp[section].as_object().unwrap() {
                if k == "packet_id" {
                    assert_eq!(got.packet_id.map(i64::from), want.as_i64(), "{name}");
                    continue;
                }
                expected_count += 1;
                check(name, &point(k), got.values.get(&point(k)), want);
            }
        }
        for (k, ev) in exp["events"].as_object().unwrap() {
            expected_count += 1;
            check(name, k, got.values.get(k), &ev["event_type"]);
            if let Some(props) = ev["properties"].as_object() {
                for (p, want) in props {
                    let key = format!("{k}_{p}");
                    if want == "" {
                        assert!(!got.values.contains_key(&key), "{name}: {key} present");
                        continue;
                    }
                    expected_count += 1;
                    check(name, &key, got.values.get(&key), want);
                }
            }
        }
        if let Some(t) = exp.get("device_type_id") {
            expected_count += 1;
            check(name, "device_type_id", got.values.get("device_type_id"), t);
        }
        if let Some(fw) = exp.get("firmware_version") {
            expected_count += 1;
            check(
                name,
                "firmware_version",
                got.values.get("firmware_version"),
                fw,
            );
        }
        assert_eq!(got.values.len(), expected_count, "{name}: {:?}", got.values);
        assert_eq!(
            got.has_event,
            !exp["events"].as_object().unwrap().is_empty(),
            "{name}"
        );
        let dropped = name.contains("invalid_utf8");
        assert_eq!(got.invalid_text, u32::from(dropped), "{name}");
        if name == "unknown_id_stops" {
            assert_eq!(
                got.stopped,
                Some(bthome::Stop::UnknownObject(0x66)),
                "{name}"
            );
        } else {
            assert_eq!(got.stopped, None, "{name}");
        }
    }
    // Every id of the table has at least one vector.
    for id in (0x00..=0x2f).chain(0x3a..=0x65).chain([0xf0, 0xf1, 0xf2]) {
        assert!(ids_seen.contains(&id), "no vector for object id {id:#04x}");
    }
}

#[test]
fn bthome_dropped_text_is_reported_in_the_decoded_advertisement() {
    let d = decode_bthome(&h("4053 02c328 02ca09"), None, None).unwrap();
    assert_eq!(d.dropped_values, 1);
    assert_eq!(d.values.get("temperature"), Some(&Value::F64(25.06)));
    assert!(d.warning.unwrap().contains("not valid UTF-8"));
}

#[test]
fn bthome_command_event_counts_as_event_and_truncation_is_reported() {
    let d = decode_bthome(&h("40 3b 01 03 05"), None, None).unwrap();
    assert!(d.has_event);
    assert_eq!(d.values.get("command"), Some(&Value::Str("step_up".into())));
    assert_eq!(d.values.get("command_args"), Some(&Value::Bytes(vec![5])));
    // Two argument bytes announced, one sent.
    let b = bthome::decode(&h("40 01 64 3b 02 03 05"), None, None).unwrap();
    assert_eq!(b.stopped, Some(bthome::Stop::Truncated(0x3b)));
    assert_eq!(b.values.get("battery"), Some(&Value::I64(100)));
    // Length byte missing.
    let b = bthome::decode(&h("40 3b"), None, None).unwrap();
    assert_eq!(b.stopped, Some(bthome::Stop::Truncated(0x3b)));
}

/// Flags, UUID list 0xFEAA, service data: the TLM example of the Eddystone spec.
const TLM_LISTED: &str = "020106 0303aafe 1116aafe20000bb818800000006400000e10";
/// The same service data without the UUID list.
const TLM_UNLISTED: &str = "020106 1116aafe20000bb818800000006400000e10";

#[test]
fn eddystone_needs_the_service_uuid_list() {
    let listed = Advertisement::parse_ad(&h(TLM_LISTED)).unwrap();
    assert_eq!(detect(&listed), Some(Format::Eddystone));
    let unlisted = Advertisement::parse_ad(&h(TLM_UNLISTED)).unwrap();
    assert_eq!(detect(&unlisted), None);
    let ctx = DecodeContext::default();
    assert_eq!(
        decode(&unlisted, None, &ctx),
        Err(DecodeError::EddystoneUnlisted)
    );
    let mut counts = FormatCounts::default();
    counts.detect(&unlisted);
    assert_eq!(counts.unknown, 1);
    // Said explicitly (config `format = "eddystone"` / `--format eddystone`): decoded.
    let d = decode(&unlisted, Some(Format::Eddystone), &ctx).unwrap();
    assert_eq!(d.values.get("temperature"), Some(&Value::F64(24.5)));
}

#[test]
fn eddystone_field_tool_reports_a_mislabelled_advertisement() {
    use crate::southbound::ble::cli::decode_cli;
    let err = decode_cli(TLM_UNLISTED, None, None, None, false).unwrap_err();
    assert!(err.to_string().contains("UUID list"), "{err}");
    let out = decode_cli(TLM_UNLISTED, Some(Format::Eddystone), None, None, false).unwrap();
    assert!(out.contains("temperature = 24.5"), "{out}");
}

#[test]
fn eddystone_malformed_frames_are_errors_not_values() {
    use eddystone::EddystoneError as E;
    let tlm = h("20000bb818800000006400000e10");
    // A TLM frame with trailing bytes (e.g. a UID-length frame labelled TLM).
    let mut long = tlm.clone();
    long.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        eddystone::decode(&long),
        Err(E::WrongLength {
            frame: "TLM",
            len: 20,
            ..
        })
    ));
    assert!(matches!(
        eddystone::decode(&tlm[..13]),
        Err(E::WrongLength {
            frame: "TLM",
            len: 13,
            ..
        })
    ));
    let uid = h("00e7 00010203040506070809 0a0b0c0d0e0f 0000");
    assert!(eddystone::decode(&uid).is_ok());
    assert!(eddystone::decode(&uid[..18]).is_ok());
    assert!(matches!(
        eddystone::decode(&uid[..19]),
        Err(E::WrongLength {
            frame: "UID",
            len: 19,
            ..
        })
    ));
    let mut rfu = uid.clone();
    rfu[19] = 0x42;
    assert_eq!(eddystone::decode(&rfu), Err(E::UidRfu(0, 0x42)));
    // A TLM labelled as UID (frame type 0x00, 14 bytes): not read as a namespace.
    let mut relabelled = tlm.clone();
    relabelled[0] = 0x00;
    assert!(matches!(
        eddystone::decode(&relabelled),
        Err(E::WrongLength {
            frame: "UID",
            len: 14,
            ..
        })
    ));
    // Through the dispatcher the error reaches the caller (the adapter logs and counts it).
    let adv = Advertisement::parse_ad(&h(
        "0303aafe 1716aafe20000bb818800000006400000e10000000000000",
    ))
    .unwrap();
    assert!(matches!(
        decode(&adv, None, &DecodeContext::default()),
        Err(DecodeError::Eddystone(E::WrongLength { .. }))
    ));
}

#[test]
fn ruuvi_air_format_6_is_detected_and_decoded() {
    // Flags + manufacturer data 0x0499 with the format-6 vector of ruuvi/docs.
    let adv = Advertisement::parse_ad(&h(
        "020106 17ff9904 06170c5668c79e007000c90501d9ffcd004c884f",
    ))
    .unwrap();
    assert_eq!(detect(&adv), Some(Format::Ruuvi));
    let d = decode(&adv, None, &DecodeContext::default()).unwrap();
    assert_eq!(d.values.get("carbon_dioxide"), Some(&Value::I64(201)));
    assert_eq!(d.values.get("pressure"), Some(&Value::I64(101_102)));
    assert_eq!(
        d.sequence,
        Some(Sequence {
            value: 205,
            modulus: 256
        })
    );
    assert_eq!(
        d.meta.get("mac_suffix"),
        Some(&Value::Str("4C:88:4F".into()))
    );
    // E1 (the extended variant) and other formats: reported, not decoded.
    assert!(matches!(
        decode_ruuvi(&h("e1170c")),
        Err(DecodeError::Ruuvi(ruuvi::RuuviError::UnsupportedFormat(
            0xe1
        )))
    ));
}
