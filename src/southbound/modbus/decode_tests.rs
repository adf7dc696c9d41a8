//! Decoder tests; the word-order cases are generated from `tests/vectors/modbus_float.json`.
use super::*;

const FLOAT_VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/modbus_float.json"
));

/// Maps the vector file's order labels onto ours (16-bit `BA` is a byte swap, 64-bit labels
/// spell out eight bytes).
fn order_for(label: &str) -> WordOrder {
    match label.split_whitespace().next().unwrap_or("") {
        "ABCD" | "AB" | "ABCDEFGH" => WordOrder::Abcd,
        "CDAB" | "GHEFCDAB" => WordOrder::Cdab,
        "BADC" | "BA" | "BADCFEHG" => WordOrder::Badc,
        "DCBA" | "HGFEDCBA" => WordOrder::Dcba,
        other => panic!("unknown order label {other}"),
    }
}

fn kind_for(label: &str) -> PointType {
    match label {
        "float32" => PointType::F32,
        "float64" => PointType::F64,
        "int32" => PointType::I32,
        "uint32" => PointType::U32,
        "int16" => PointType::I16,
        "uint16" => PointType::U16,
        other => panic!("unknown type {other}"),
    }
}

/// The expected value; floats come from the exact IEEE-754 hex in the file because JSON
/// number parsing is not guaranteed to round-trip the last digit.
fn expected_raw(kind: PointType, case: &serde_json::Value) -> Raw {
    let hex = case["ieee754_be_hex"].as_str().or(case["be_hex"].as_str());
    match (kind, hex) {
        (PointType::F32, Some(h)) => {
            return Raw::Float(f64::from(f32::from_bits(
                u32::from_str_radix(h, 16).unwrap(),
            )))
        }
        (PointType::F64, Some(h)) => {
            return Raw::Float(f64::from_bits(u64::from_str_radix(h, 16).unwrap()))
        }
        _ => {}
    }
    match (kind, &case["value"]) {
        (_, serde_json::Value::String(s)) if s == "inf" => Raw::Float(f64::INFINITY),
        (_, serde_json::Value::String(s)) if s == "-inf" => Raw::Float(f64::NEG_INFINITY),
        (PointType::F32 | PointType::F64, v) => Raw::Float(v.as_f64().expect("float value")),
        (PointType::U32 | PointType::U16, v) => Raw::Unsigned(v.as_u64().expect("unsigned")),
        (_, v) => Raw::Signed(v.as_i64().expect("signed")),
    }
}

#[test]
fn every_vector_in_every_order_decodes() {
    let doc: serde_json::Value = serde_json::from_str(FLOAT_VECTORS).unwrap();
    let mut checked = 0;
    for case in doc["vectors"].as_array().unwrap() {
        let kind = kind_for(case["type"].as_str().unwrap());
        let want = expected_raw(kind, case);
        for (label, regs) in case["registers"].as_object().unwrap() {
            let regs: Vec<u16> = regs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    u16::from_str_radix(r.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                })
                .collect();
            let order = order_for(label);
            let got = decode_registers(kind, order, &regs).unwrap();
            assert_eq!(got, want, "{} {} in {label}", case["type"], case["value"]);
            checked += 1;
        }
    }
    // 8 float32 + 4 int32 + 1 uint32 in 4 orders, 3 int16 in 2, 1 float64 in 3.
    assert_eq!(checked, 13 * 4 + 3 * 2 + 3);
}

#[test]
fn float_vectors_become_finite_values_or_are_refused() {
    let regs = [0x42F6, 0xE979];
    let v = decode_point(PointType::F32, WordOrder::Abcd, Scaling::NONE, &regs).unwrap();
    assert_eq!(v, Value::F64(123.45600128173828));
    let inf = decode_point(PointType::F32, WordOrder::Abcd, Scaling::NONE, &[0x7F80, 0]);
    assert_eq!(inf, Err(DecodeError::NotFinite));
    let nan = decode_point(
        PointType::F32,
        WordOrder::Abcd,
        Scaling::NONE,
        &[0xFFFF, 0xFFFF],
    );
    assert_eq!(nan, Err(DecodeError::NotFinite));
}

#[test]
fn sixty_four_bit_integers_in_all_orders() {
    let v: i64 = -0x0102_0304_0506_0708;
    let be = v.to_be_bytes();
    let words: Vec<u16> = be
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let mut cdab = words.clone();
    cdab.reverse();
    let badc: Vec<u16> = words.iter().map(|w| w.swap_bytes()).collect();
    let mut dcba = badc.clone();
    dcba.reverse();
    for (order, regs) in [
        (WordOrder::Abcd, &words),
        (WordOrder::Cdab, &cdab),
        (WordOrder::Badc, &badc),
        (WordOrder::Dcba, &dcba),
    ] {
        assert_eq!(
            decode_registers(PointType::I64, order, regs),
            Ok(Raw::Signed(v))
        );
        assert_eq!(
            decode_registers(PointType::U64, order, regs),
            Ok(Raw::Unsigned(v as u64))
        );
    }
    // u64 beyond i64 stays a number, as a float.
    let big = to_value(Raw::Unsigned(u64::MAX), Scaling::NONE).unwrap();
    assert_eq!(big, Value::F64(u64::MAX as f64));
}

#[test]
fn scale_and_offset() {
    let s = Scaling {
        scale: Some(0.1),
        offset: Some(-40.0),
    };
    // 0x0190 = 400 -> 400 * 0.1 - 40 = 0
    let v = decode_point(PointType::U16, WordOrder::Abcd, s, &[0x0190]).unwrap();
    assert_eq!(v, Value::F64(0.0));
    let v = decode_point(PointType::I16, WordOrder::Abcd, Scaling::NONE, &[0xFC18]).unwrap();
    assert_eq!(v, Value::I64(-1000));
    let scale_only = Scaling {
        scale: Some(2.0),
        offset: None,
    };
    let v = decode_point(
        PointType::I32,
        WordOrder::Cdab,
        scale_only,
        &[0xFFFE, 0xFFFF],
    )
    .unwrap();
    assert_eq!(v, Value::F64(-4.0));
}

#[test]
fn strings_and_bits() {
    // "SDM630" + NUL padding, 4 registers
    let regs = [0x5344, 0x4D36, 0x3330, 0x0000];
    let v = decode_point(PointType::String(4), WordOrder::Abcd, Scaling::NONE, &regs).unwrap();
    assert_eq!(v, Value::Str("SDM630".into()));
    let swapped: Vec<u16> = regs.iter().map(|r| r.swap_bytes()).collect();
    let v = decode_point(
        PointType::String(4),
        WordOrder::Badc,
        Scaling::NONE,
        &swapped,
    )
    .unwrap();
    assert_eq!(v, Value::Str("SDM630".into()));
    // Invalid UTF-8 does not panic.
    let v = decode_point(
        PointType::String(1),
        WordOrder::Abcd,
        Scaling::NONE,
        &[0xFFFE],
    )
    .unwrap();
    assert!(matches!(v, Value::Str(_)));

    assert_eq!(
        decode_registers(PointType::Bit(0), WordOrder::Abcd, &[0x0001]),
        Ok(Raw::Bool(true))
    );
    assert_eq!(
        decode_registers(PointType::Bit(15), WordOrder::Abcd, &[0x8000]),
        Ok(Raw::Bool(true))
    );
    assert_eq!(
        decode_registers(PointType::Bit(14), WordOrder::Abcd, &[0x8000]),
        Ok(Raw::Bool(false))
    );
    assert_eq!(
        decode_registers(PointType::Bit(16), WordOrder::Abcd, &[0xFFFF]),
        Err(DecodeError::BitIndex(16))
    );
    assert_eq!(
        decode_registers(PointType::Bool, WordOrder::Abcd, &[0x0100]),
        Ok(Raw::Bool(true))
    );
}

#[test]
fn wrong_lengths_are_errors_not_panics() {
    for kind in [
        PointType::Bool,
        PointType::U16,
        PointType::I32,
        PointType::F32,
        PointType::F64,
        PointType::U64,
        PointType::String(3),
        PointType::Bit(3),
    ] {
        for len in 0..6 {
            let regs = vec![0xABCDu16; len];
            let r = decode_registers(kind, WordOrder::Dcba, &regs);
            if len == usize::from(kind.registers()) {
                assert!(r.is_ok(), "{kind} with {len}");
            } else {
                assert_eq!(
                    r,
                    Err(DecodeError::Length {
                        expected: usize::from(kind.registers()),
                        got: len
                    })
                );
            }
        }
    }
}
