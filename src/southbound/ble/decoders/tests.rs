//! Decoder tests generated from the vector files in `tests/vectors/` (one check per case),
//! plus robustness checks on malformed input.

use super::*;
use crate::record::Value;
use serde_json::Value as J;

fn load(name: &str) -> J {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hx(v: &J) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// Compares a decoded value with a JSON expectation: numbers within 1e-9, strings equal,
/// bytes against their hex form.
fn assert_value(case: &str, key: &str, got: Option<&Value>, want: &J) {
    let got = got.unwrap_or_else(|| panic!("{case}: `{key}` missing"));
    match (got, want) {
        (Value::F64(g), J::Number(w)) => {
            let w = w.as_f64().unwrap();
            assert!((g - w).abs() < 1e-9, "{case}: {key} = {g}, want {w}");
        }
        (Value::I64(g), J::Number(w)) => {
            assert_eq!(Some(*g), w.as_i64(), "{case}: {key}");
        }
        (Value::Bool(g), J::Bool(w)) => assert_eq!(g, w, "{case}: {key}"),
        (Value::Str(g), J::String(w)) => assert_eq!(g, w, "{case}: {key}"),
        (Value::Bytes(g), J::String(w)) => assert_eq!(&hex::encode(g), w, "{case}: {key}"),
        (g, w) => panic!("{case}: {key}: got {g:?}, want {w}"),
    }
}

#[test]
fn bthome_vectors() {
    let file = load("bthome.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 17, "vector file shrank");
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let data = hx(&v["service_data_hex"]);
        let mac: Mac = v["address"].as_str().unwrap().parse().unwrap();
        let key: Option<BindKey> = v
            .get("bindkey")
            .map(|k| hx(k).try_into().expect("16-byte key"));
        let exp = &v["expected"];
        let result = bthome::decode(&data, Some(mac), key.as_ref());
        if !exp["supported"].as_bool().unwrap() {
            assert!(
                matches!(result, Err(bthome::BthomeError::UnsupportedVersion { .. })),
                "{name}: {result:?}"
            );
            continue;
        }
        let encrypted = exp["encrypted"] == "bthome_bindkey";
        if encrypted && !exp["bindkey_verified"].as_bool().unwrap() {
            assert!(
                matches!(result, Err(bthome::BthomeError::DecryptFailed { .. })),
                "{name}: {result:?}"
            );
            continue;
        }
        let got = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.encrypted, encrypted, "{name}");
        assert_eq!(
            got.trigger_based,
            exp["sleepy"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(got.stopped, None, "{name}");
        let mut expected_count = 0;
        for section in ["values", "binary", "events"] {
            for (k, want) in exp[section].as_object().unwrap() {
                if k == "packet_id" {
                    assert_eq!(got.packet_id.map(|p| p as i64), want.as_i64(), "{name}");
                    continue;
                }
                expected_count += 1;
                assert_value(name, k, got.values.get(k), want);
            }
        }
        assert_eq!(got.values.len(), expected_count, "{name}: {:?}", got.values);
        assert_eq!(
            got.has_event,
            !exp["events"].as_object().unwrap().is_empty()
        );
        if let Some(nonce) = v.get("nonce_hex") {
            // The counter in the nonce is the 4 bytes before the MIC, as on air.
            let n = hx(nonce);
            let c = u32::from_le_bytes(n[9..13].try_into().unwrap());
            assert_eq!(got.counter, Some(c), "{name}");
        }
    }
}

#[test]
fn bthome_full_advertisement() {
    let file = load("bthome.json");
    let full = &file["full_advertisement_example"];
    let adv = Advertisement::parse_ad(&hx(&full["advertisement_hex"])).unwrap();
    assert_eq!(detect(&adv), Some(Format::Bthome));
    let d = decode(&adv, None, &DecodeContext::default()).unwrap();
    for (k, want) in full["expected"].as_object().unwrap() {
        assert_value("full", k, d.values.get(k), want);
    }
}

#[test]
fn ruuvi_vectors() {
    let file = load("ruuvi.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let s = &v["expected_exact"]["scaled"];
        let r = ruuvi::decode(&hx(&v["manufacturer_data_hex"])).unwrap();
        let f = |x: Option<f64>, k: &str| {
            assert_eq!(x.is_some(), !s[k].is_null(), "{name}: {k}");
            if let Some(x) = x {
                assert!(
                    (x - s[k].as_f64().unwrap()).abs() < 1e-9,
                    "{name}: {k} = {x}"
                );
            }
        };
        let n = |x: Option<i64>, k: &str| assert_eq!(x, s[k].as_i64(), "{name}: {k}");
        f(r.temperature_c, "temperature_c");
        f(r.humidity_pct, "humidity_pct");
        n(r.pressure_pa.map(i64::from), "pressure_pa");
        n(r.acc_x_mg.map(i64::from), "acc_x_mg");
        n(r.acc_y_mg.map(i64::from), "acc_y_mg");
        n(r.acc_z_mg.map(i64::from), "acc_z_mg");
        n(r.battery_mv.map(i64::from), "battery_mv");
        n(r.tx_power_dbm.map(i64::from), "tx_power_dbm");
        n(r.movement_counter.map(i64::from), "movement_counter");
        n(
            r.measurement_sequence.map(i64::from),
            "measurement_sequence",
        );
        assert_eq!(
            r.mac.map(|m| m.to_string()).as_deref(),
            s["mac"].as_str(),
            "{name}"
        );
        // The full advertisement goes through detection to the same values.
        let adv = Advertisement::parse_ad(&hx(&v["advertisement_hex"])).unwrap();
        let d = decode(&adv, None, &DecodeContext::default()).unwrap();
        assert_eq!(d.format, Format::Ruuvi);
        assert_eq!(d.values, r.to_values().0, "{name}");
        let non_null = ["temperature_c", "humidity_pct", "pressure_pa", "acc_x_mg"]
            .iter()
            .chain(&["acc_y_mg", "acc_z_mg", "battery_mv", "tx_power_dbm"])
            .chain(&["movement_counter"])
            .filter(|k| !s[**k].is_null())
            .count();
        assert_eq!(
            d.values.len(),
            non_null,
            "{name}: absent values stay absent"
        );
    }
}

#[test]
fn ibeacon_vectors() {
    let file = load("ble_beacons.json");
    let vectors = file["ibeacon"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let exp = &v["expected"];
        // The vector's manufacturer data includes the company id; BlueZ strips it.
        let md = hx(&v["manufacturer_data_hex"]);
        assert_eq!(&md[..2], &[0x4c, 0x00]);
        let b = ibeacon::decode(&md[2..]).unwrap();
        assert_eq!(b.uuid_string(), exp["uuid"].as_str().unwrap(), "{name}");
        assert_eq!(b.major as u64, exp["major"].as_u64().unwrap(), "{name}");
        assert_eq!(b.minor as u64, exp["minor"].as_u64().unwrap(), "{name}");
        assert_eq!(
            b.measured_power_dbm as i64,
            exp["measured_power_dbm"].as_i64().unwrap(),
            "{name}"
        );
        let adv = Advertisement::parse_ad(&hx(&v["advertisement_hex"])).unwrap();
        let d = decode(&adv, None, &DecodeContext::default()).unwrap();
        assert_eq!(d.format, Format::Ibeacon);
        assert_eq!(d.values, b.to_values());
    }
}

#[test]
fn eddystone_tlm_vectors() {
    let file = load("ble_beacons.json");
    let vectors = file["eddystone_tlm"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let exp = &v["expected"];
        let sd = hx(&v["service_data_hex"]);
        assert_eq!(&sd[..2], &[0xaa, 0xfe]);
        let eddystone::EddystoneData::Tlm(t) = eddystone::decode(&sd[2..]).unwrap() else {
            panic!("{name}: not TLM");
        };
        assert_eq!(
            t.vbatt_mv as u64,
            exp["vbatt_mv"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(t.temp_c_raw(), exp["temp_c"].as_f64().unwrap(), "{name}");
        assert_eq!(t.adv_cnt as u64, exp["adv_cnt"].as_u64().unwrap(), "{name}");
        assert_eq!(
            t.sec_cnt as u64,
            exp["sec_cnt_0_1s"].as_u64().unwrap(),
            "{name}"
        );
        let adv = Advertisement::parse_ad(&hx(&v["advertisement_hex"])).unwrap();
        let d = decode(&adv, None, &DecodeContext::default()).unwrap();
        assert_eq!(d.format, Format::Eddystone);
        // 0 mV and 0x8000 are "not supported": those points are absent.
        assert_eq!(d.values.contains_key("battery_voltage"), t.vbatt_mv != 0);
        assert_eq!(d.values.contains_key("temperature"), t.temp_raw != i16::MIN);
    }
}
