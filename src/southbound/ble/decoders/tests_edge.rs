//! Decoder tests beyond the vector files: every BTHome object id, encryption paths, sentinel
//! and error cases, and no-panic sweeps over truncated and pseudo-random input.

use super::bthome::{BthomeError, Stop};
use super::*;
use crate::record::Value;

/// Hex with spaces allowed, for readable object boundaries.
fn h(hex_str: &str) -> Vec<u8> {
    hex::decode(hex_str.replace(' ', "")).unwrap()
}

fn bt(hex_str: &str) -> bthome::BthomeData {
    bthome::decode(&h(hex_str), None, None).unwrap()
}

fn f(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::F64(x)) => *x,
        other => panic!("not a float: {other:?}"),
    }
}

#[test]
fn bthome_every_object_id_decodes_with_its_length_and_scale() {
    // One object per id with all value bytes = 0x01 (text/raw: length 1, byte 0x41).
    for spec in bthome_table::TABLE {
        let mut payload = vec![0x40, spec.id];
        match spec.kind {
            bthome_table::Kind::Text | bthome_table::Kind::Raw => payload.extend([1, 0x41]),
            // No arguments, command 0x01 ("on").
            bthome_table::Kind::Command => payload.extend([0, 0x01]),
            _ => payload.extend(std::iter::repeat_n(0x01, spec.len)),
        }
        let d = bthome::decode(&payload, None, None).unwrap();
        assert_eq!(d.stopped, None, "id {:#04x}", spec.id);
        if spec.id == 0 {
            assert_eq!(d.packet_id, Some(1));
            continue;
        }
        assert_eq!(
            d.values.len(),
            if spec.id == 0x3c { 2 } else { 1 },
            "id {:#04x}: {:?}",
            spec.id,
            d.values
        );
        assert!(d.values.contains_key(spec.name), "id {:#04x}", spec.id);
    }
}

#[test]
fn bthome_signed_multibyte_and_scaled_values() {
    // 0x02 temperature -5.05 (0xfe07 = -505), 0x04 pressure 3 bytes, 0x3e count u32,
    // 0x5b count i32 negative, 0x58 temperature *0.35, 0x62 speed i32 /1e6.
    let d = bt("4002 07fe");
    assert_eq!(f(d.values.get("temperature")), -5.05);
    let d = bt("403e 78563412");
    assert_eq!(d.values.get("count"), Some(&Value::I64(0x1234_5678)));
    let d = bt("405b feffffff");
    assert_eq!(d.values.get("count"), Some(&Value::I64(-2)));
    let d = bt("4058 e2");
    assert_eq!(f(d.values.get("temperature")), -10.5); // -30 * 0.35
    let d = bt("4062 c0bdf0ff");
    assert_eq!(f(d.values.get("speed")), -1.0); // -1_000_000 / 1e6
    let d = bt("405c 9cffffff");
    assert_eq!(f(d.values.get("power")), -1.0);
    let d = bt("4050 00e1f505");
    assert_eq!(d.values.get("timestamp"), Some(&Value::I64(100_000_000)));
}

#[test]
fn bthome_text_events_versions_and_repeats() {
    let d = bt("4053 0548656c6c6f");
    assert_eq!(d.values.get("text"), Some(&Value::Str("Hello".into())));
    // Not UTF-8: dropped and counted (as bthome-ble does), the next object still decodes.
    let d = bt("4053 02ff fe 2e2a");
    assert_eq!(d.values.get("text"), None);
    assert_eq!(d.invalid_text, 1);
    assert_eq!(d.values.get("humidity"), Some(&Value::I64(42)));
    // Two buttons: the first "none" keeps numbering stable; hold press is 0x80.
    let d = bt("403a00 3a80");
    assert_eq!(
        d.values.get("button_2"),
        Some(&Value::Str("hold_press".into()))
    );
    assert!(!d.values.contains_key("button_1"));
    assert!(d.has_event);
    let d = bt("403a00");
    assert!(d.values.is_empty() && !d.has_event);
    let d = bt("403c 0203");
    assert_eq!(
        d.values.get("dimmer"),
        Some(&Value::Str("rotate_right".into()))
    );
    assert_eq!(d.values.get("dimmer_steps"), Some(&Value::I64(3)));
    let d = bt("40f0 0100 f1 00010204 f2 000106");
    assert_eq!(d.values.get("device_type_id"), Some(&Value::I64(1)));
    assert_eq!(
        d.values.get("firmware_version_1"),
        Some(&Value::Str("4.2.1.0".into()))
    );
    assert_eq!(
        d.values.get("firmware_version_2"),
        Some(&Value::Str("6.1.0".into()))
    );
    // Same measurement twice, from two ids: suffixed in order.
    let d = bt("4002 ca09 4513 01");
    assert_eq!(f(d.values.get("temperature_1")), 25.06);
    assert_eq!(f(d.values.get("temperature_2")), 27.5);
}

#[test]
fn bthome_unknown_or_truncated_object_keeps_earlier_values() {
    let d = bt("4002ca09 3000 03bf13");
    assert_eq!(d.stopped, Some(Stop::UnknownObject(0x30)));
    assert_eq!(d.values.len(), 1);
    let d = bt("4002ca09 03bf");
    assert_eq!(d.stopped, Some(Stop::Truncated(0x03)));
    assert_eq!(d.values.len(), 1);
    let d = bt("4054");
    assert_eq!(d.stopped, Some(Stop::Truncated(0x54)));
    let d = bt("4054 05aabb");
    assert_eq!(d.stopped, Some(Stop::Truncated(0x54)));
    let dec = decode_bthome(&h("4002ca093000"), None, None).unwrap();
    assert!(dec.warning.unwrap().contains("0x30"));
}

#[test]
fn bthome_encryption_round_trip_and_errors() {
    let key: BindKey = h("231d39c1d7cc1ab1aee224cd096db932").try_into().unwrap();
    let mac: Mac = "54:48:E6:8F:80:A5".parse().unwrap();
    let objects = h("0009 02ca09 03bf13");
    let sd = bthome::encrypt(0x41, mac, &key, 0x0011_2233, &objects).unwrap();
    let d = bthome::decode(&sd, Some(mac), Some(&key)).unwrap();
    assert!(d.encrypted);
    assert_eq!(d.counter, Some(0x0011_2233));
    assert_eq!(d.packet_id, Some(9));
    assert_eq!(f(d.values.get("humidity")), 50.55);

    assert_eq!(
        bthome::decode(&sd, Some(mac), None),
        Err(BthomeError::MissingKey)
    );
    assert_eq!(
        bthome::decode(&sd, None, Some(&key)),
        Err(BthomeError::MissingMac)
    );
    let other: Mac = "54:48:E6:8F:80:A6".parse().unwrap();
    assert_eq!(
        bthome::decode(&sd, Some(other), Some(&key)),
        Err(BthomeError::DecryptFailed {
            counter: 0x0011_2233
        })
    );
    let mut tampered = sd.clone();
    tampered[2] ^= 1;
    assert!(matches!(
        bthome::decode(&tampered, Some(mac), Some(&key)),
        Err(BthomeError::DecryptFailed { .. })
    ));
    // Too short to hold counter + MIC.
    assert!(matches!(
        bthome::decode(&sd[..8], Some(mac), Some(&key)),
        Err(BthomeError::TooShort { .. })
    ));
    assert!(bthome::encrypt(0x41, mac, &key, 0, &[0u8; 300]).is_err());
}

#[test]
fn bthome_encrypted_with_mac_in_payload_needs_no_scanner_address() {
    let key = [7u8; 16];
    let mac: Mac = "A4:C1:38:8D:18:B2".parse().unwrap();
    let info = 0x43; // v2, encrypted, MAC included
    let body = bthome::encrypt(info, mac, &key, 5, &h("0164")).unwrap();
    let mut sd = vec![info];
    let mut rev = mac.0;
    rev.reverse();
    sd.extend(rev);
    sd.extend(&body[1..]);
    let d = bthome::decode(&sd, None, Some(&key)).unwrap();
    assert_eq!(d.mac, Some(mac));
    assert_eq!(d.values.get("battery"), Some(&Value::I64(100)));
}

#[test]
fn bthome_header_errors() {
    assert_eq!(bthome::decode(&[], None, None), Err(BthomeError::Empty));
    assert!(matches!(
        bthome::decode(&[0x60], None, None),
        Err(BthomeError::UnsupportedVersion { version: 3, .. })
    ));
    assert!(matches!(
        bthome::decode(&[0x42, 1, 2], None, None),
        Err(BthomeError::TooShort { need: 7, .. })
    ));
}

#[test]
fn ruuvi_errors() {
    assert_eq!(ruuvi::decode(&[]), Err(ruuvi::RuuviError::Empty));
    assert_eq!(
        ruuvi::decode(&[3, 0, 0]),
        Err(ruuvi::RuuviError::UnsupportedFormat(3))
    );
    assert_eq!(
        ruuvi::decode(&[5; 23]),
        Err(ruuvi::RuuviError::WrongLength(23))
    );
    assert!(matches!(decode_ruuvi(&[5; 25]), Err(DecodeError::Ruuvi(_))));
}

#[test]
fn ibeacon_errors_and_detection() {
    assert_eq!(
        ibeacon::decode(&[]),
        Err(ibeacon::IbeaconError::WrongLength(0))
    );
    assert_eq!(
        ibeacon::decode(&[0x10, 5]),
        Err(ibeacon::IbeaconError::NotIbeacon(0x10))
    );
    assert_eq!(
        ibeacon::decode(&[0x02, 0x15, 0]),
        Err(ibeacon::IbeaconError::WrongLength(3))
    );
    // Apple "nearby" data (type 0x10) is not an iBeacon and not detected as one.
    let adv = Advertisement {
        manufacturer_data: vec![(APPLE_COMPANY, vec![0x10, 0x05, 1, 2, 3, 4, 5])],
        ..Default::default()
    };
    let mut counts = FormatCounts::default();
    assert_eq!(counts.detect(&adv), None);
    assert_eq!(counts.unknown, 1);
    assert_eq!(
        decode(&adv, None, &DecodeContext::default()),
        Err(DecodeError::UnknownFormat)
    );
    assert!(matches!(
        decode(&adv, Some(Format::Ibeacon), &DecodeContext::default()),
        Err(DecodeError::Ibeacon(ibeacon::IbeaconError::NotIbeacon(
            0x10
        )))
    ));
    assert!(matches!(
        decode(&adv, Some(Format::Ruuvi), &DecodeContext::default()),
        Err(DecodeError::Missing(_))
    ));
}

#[test]
fn eddystone_negative_temperature_uid_and_errors() {
    let d = eddystone::decode(&h("20000bb8fd800000006400000e10")).unwrap();
    let eddystone::EddystoneData::Tlm(t) = d else {
        panic!()
    };
    assert_eq!(t.temperature_c(), Some(-2.5));
    let d = eddystone::decode(&h("20000bb8ff000000000100000001")).unwrap();
    assert_eq!(d.to_values().get("temperature"), Some(&Value::F64(-1.0)));
    let uid = h("00e7 00010203040506070809 0a0b0c0d0e0f 0000");
    let d = eddystone::decode(&uid).unwrap();
    let v = d.to_values();
    assert_eq!(
        v.get("namespace"),
        Some(&Value::Str("00010203040506070809".into()))
    );
    assert_eq!(v.get("instance"), Some(&Value::Str("0a0b0c0d0e0f".into())));
    assert_eq!(v.get("tx_power"), Some(&Value::I64(-25)));
    use eddystone::EddystoneError as E;
    assert_eq!(eddystone::decode(&[]), Err(E::Empty));
    assert_eq!(
        eddystone::decode(&[0x10, 0]),
        Err(E::UnsupportedFrame(0x10))
    );
    assert_eq!(
        eddystone::decode(&[0x20, 1]),
        Err(E::UnsupportedTlmVersion(1))
    );
    assert!(matches!(
        eddystone::decode(&[0x20]),
        Err(E::TooShort { .. })
    ));
    assert!(matches!(
        eddystone::decode(&uid[..17]),
        Err(E::WrongLength { .. })
    ));
}

/// Small deterministic generator so the sweep needs no extra crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
}

#[test]
fn no_panic_on_truncations_and_random_bytes() {
    let key = [1u8; 16];
    let mac = Some(Mac([1, 2, 3, 4, 5, 6]));
    let seeds = [
        "0201060b094449592d73656e736f720a16d2fc4002c40903bf13",
        "0201061bff99040512fc5394c37c0004fffc040cac364200cdcbb8334c884f",
        "0201061aff4c000215e2c56db5dffb48d2b060d0f5a71096e000010002c5",
        "0201060303aafe1116aafe20000bb818800000006400000e10",
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for s in seeds {
        let b = hex::decode(s).unwrap();
        inputs.extend((0..=b.len()).map(|n| b[..n].to_vec()));
    }
    let mut rng = Lcg(42);
    for _ in 0..20_000 {
        let len = (rng.next() % 40) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next()).collect();
        if let Some(first) = b.first_mut() {
            *first = [0x40, 0x41, 0x43, 0x05, 0x02, 0x20, 0x00, *first][(*first % 8) as usize];
        }
        inputs.push(b);
    }
    for b in &inputs {
        let _ = Advertisement::parse_ad(b);
        let _ = bthome::decode(b, mac, Some(&key));
        let _ = bthome::decode(b, None, None);
        let _ = ruuvi::decode(b);
        let _ = ibeacon::decode(b);
        let _ = eddystone::decode(b);
        let mut six = b.clone();
        if let Some(f) = six.first_mut() {
            *f = 6;
        }
        let _ = ruuvi_air::decode(&six);
        let _ = decode_ruuvi(&six);
    }
}

#[test]
fn decoded_becomes_a_record_with_meta() {
    let d = decode_bthome(&h("40 0005 02ca09"), None, None).unwrap();
    let r = d.into_record("ble1", "kiosk", 1_000, Some(-71));
    assert_eq!(r.adapter, "ble1");
    assert_eq!(r.device, "kiosk");
    assert_eq!(r.values.get("temperature"), Some(&Value::F64(25.06)));
    assert_eq!(r.meta.get("format"), Some(&Value::Str("bthome".into())));
    assert_eq!(r.meta.get("rssi"), Some(&Value::I64(-71)));
    assert_eq!(r.meta.get("packet_id"), Some(&Value::I64(5)));
}

#[test]
fn raw_keeps_every_payload_as_bytes() {
    let adv = Advertisement::parse_ad(&h("0201060303aafe 0516aafe1000 05ff5900aabb")).unwrap();
    let d = decode(&adv, Some(Format::Raw), &DecodeContext::default()).unwrap();
    assert_eq!(
        d.values.get("manufacturer_0059"),
        Some(&Value::Bytes(vec![0xaa, 0xbb]))
    );
    assert_eq!(
        d.values.get("service_feaa"),
        Some(&Value::Bytes(vec![0x10, 0x00]))
    );
    assert_eq!(d.format.as_str(), "raw");
}
