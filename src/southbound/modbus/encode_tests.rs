use super::*;
use crate::southbound::modbus::decode::decode_point;

const NONE: Scaling = Scaling::NONE;

fn scaled(scale: f64, offset: f64) -> Scaling {
    Scaling {
        scale: Some(scale),
        offset: Some(offset),
    }
}

fn regs(kind: PointType, order: WordOrder, scaling: Scaling, v: Value) -> Vec<u16> {
    match encode_value(Table::Holding, kind, order, scaling, &v) {
        Ok(WriteData::Registers(r)) => r,
        other => panic!("{kind} {v:?}: {other:?}"),
    }
}

#[test]
fn encoding_then_decoding_gives_the_value_back_in_every_order() {
    let cases = [
        (PointType::U16, Value::I64(40_000)),
        (PointType::I16, Value::I64(-1000)),
        (PointType::U32, Value::I64(4_000_000_000)),
        (PointType::I32, Value::I64(-100_000)),
        (PointType::U64, Value::I64(i64::MAX)),
        (PointType::I64, Value::I64(i64::MIN)),
        (PointType::F32, Value::F64(123.456f32 as f64)),
        (PointType::F64, Value::F64(-0.1)),
    ];
    for order in WordOrder::ALL {
        for (kind, v) in &cases {
            let r = regs(*kind, order, NONE, v.clone());
            assert_eq!(r.len(), usize::from(kind.registers()));
            let back = decode_point(*kind, order, NONE, &r).unwrap();
            assert_eq!(&back, v, "{kind} {order}");
        }
    }
}

#[test]
fn the_wire_layout_matches_the_documented_orders() {
    let f = Value::F64(123.456f32 as f64);
    assert_eq!(
        regs(PointType::F32, WordOrder::Abcd, NONE, f.clone()),
        [0x42F6, 0xE979]
    );
    assert_eq!(
        regs(PointType::F32, WordOrder::Cdab, NONE, f.clone()),
        [0xE979, 0x42F6]
    );
    assert_eq!(
        regs(PointType::F32, WordOrder::Badc, NONE, f.clone()),
        [0xF642, 0x79E9]
    );
    assert_eq!(
        regs(PointType::F32, WordOrder::Dcba, NONE, f),
        [0x79E9, 0xF642]
    );
    assert_eq!(
        regs(PointType::I16, WordOrder::Abcd, NONE, Value::I64(-1000)),
        [0xFC18]
    );
}

#[test]
fn scale_and_offset_are_inverted() {
    // value = raw * 0.1: 23.4 is raw 234 (233.99999999999997 in floating point).
    assert_eq!(
        regs(
            PointType::U16,
            WordOrder::Abcd,
            scaled(0.1, 0.0),
            Value::F64(23.4)
        ),
        [234]
    );
    // value = raw * 0.5 - 40: 20 is raw 120.
    assert_eq!(
        regs(
            PointType::I16,
            WordOrder::Abcd,
            scaled(0.5, -40.0),
            Value::I64(20)
        ),
        [120]
    );
    // A float register takes the raw float.
    let r = regs(
        PointType::F32,
        WordOrder::Cdab,
        scaled(10.0, 0.0),
        Value::F64(5.0),
    );
    assert_eq!(
        decode_point(PointType::F32, WordOrder::Cdab, NONE, &r).unwrap(),
        Value::F64(0.5)
    );
}

#[test]
fn values_that_do_not_fit_are_refused_with_the_reason() {
    let e = encode_value(
        Table::Holding,
        PointType::U16,
        WordOrder::Abcd,
        scaled(0.1, 0.0),
        &Value::F64(23.45),
    )
    .unwrap_err();
    assert!(matches!(e, EncodeError::NotIntegral { .. }), "{e}");
    assert!(e.to_string().contains("not a whole number"), "{e}");
    let e = encode_value(
        Table::Holding,
        PointType::U16,
        WordOrder::Abcd,
        scaled(0.1, 0.0),
        &Value::I64(7000),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("raw value 70000") && e.to_string().contains("0..=65535"),
        "{e}"
    );
    for (kind, v) in [
        (PointType::U16, -1),
        (PointType::I16, 40_000),
        (PointType::U32, -5),
        (PointType::I32, 1 << 40),
        (PointType::U64, -1),
    ] {
        let e =
            encode_value(Table::Holding, kind, WordOrder::Abcd, NONE, &Value::I64(v)).unwrap_err();
        assert!(
            matches!(e, EncodeError::OutOfRange { .. }),
            "{kind} {v}: {e}"
        );
    }
    let e = encode_value(
        Table::Holding,
        PointType::F32,
        WordOrder::Abcd,
        NONE,
        &Value::F64(1e300),
    )
    .unwrap_err();
    assert!(matches!(e, EncodeError::OutOfRange { .. }), "{e}");
    let e = encode_value(
        Table::Holding,
        PointType::U16,
        WordOrder::Abcd,
        NONE,
        &Value::Bool(true),
    )
    .unwrap_err();
    assert_eq!(e, EncodeError::NotNumber("true".into()));
    let e = encode_value(
        Table::Coil,
        PointType::Bool,
        WordOrder::Abcd,
        NONE,
        &Value::I64(2),
    )
    .unwrap_err();
    assert_eq!(e, EncodeError::NotBool("2".into()));
    assert!(encode_value(
        Table::Holding,
        PointType::Bit(3),
        WordOrder::Abcd,
        NONE,
        &Value::Bool(true)
    )
    .is_err());
}

#[test]
fn bools_become_a_coil_or_a_zero_one_register_and_function_codes_follow_the_size() {
    let coil = encode_value(
        Table::Coil,
        PointType::Bool,
        WordOrder::Abcd,
        NONE,
        &Value::Bool(true),
    )
    .unwrap();
    assert_eq!(coil, WriteData::Coils(vec![true]));
    let reg = encode_value(
        Table::Holding,
        PointType::Bool,
        WordOrder::Abcd,
        NONE,
        &Value::I64(0),
    )
    .unwrap();
    assert_eq!(reg, WriteData::Registers(vec![0]));
    let fc = |data| {
        WriteRequest {
            table: Table::Holding,
            address: 0,
            data,
        }
        .function_code()
    };
    assert_eq!(fc(WriteData::Coils(vec![true])), 0x05);
    assert_eq!(fc(WriteData::Coils(vec![true, false])), 0x0F);
    assert_eq!(fc(WriteData::Registers(vec![1])), 0x06);
    assert_eq!(fc(WriteData::Registers(vec![1, 2])), 0x10);
}
