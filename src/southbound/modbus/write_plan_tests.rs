use super::*;
use crate::commands::Command;
use crate::record::{Value, Values};
use crate::southbound::modbus::config::ModbusConfig;
use crate::southbound::modbus::profile::resolve_device;

fn device() -> DeviceWrites {
    let c: ModbusConfig = toml::from_str(
        r#"type = "modbus_tcp"
host = "127.0.0.1:502"
commands = true
[[devices]]
id = "cab"
unit = 3
word_order = "CDAB"
points = [
  { name = "relay_1", table = "coil", address = 0, type = "bool", writable = true, idempotent = true },
  { name = "relay_2", table = "coil", address = 1, type = "bool", writable = true, idempotent = true },
  { name = "dim", table = "holding", address = 10, type = "u16", scale = 0.1, writable = true, min = 0, max = 100, idempotent = true },
  { name = "mode", table = "holding", address = 11, type = "u16", writable = true, allowed = [0, 1, 2] },
  { name = "setpoint", table = "holding", address = 12, type = "f32", writable = true, idempotent = true },
  { name = "count", table = "holding", address = 20, type = "i16", writable = true },
  { name = "status", table = "holding", address = 30, type = "u16" },
  { name = "temp", table = "input", address = 0, type = "i16" },
]"#,
    )
    .unwrap();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let d = &c.devices()[0];
    DeviceWrites::new(d, resolve_device(d).unwrap())
}

fn command(set: &[(&str, Value)]) -> Command {
    let values: Values = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Command {
        key: "cin-1".into(),
        id: "c1".into(),
        device: "cab".into(),
        action: crate::commands::Action::Set(values),
        created_ms: 0,
        not_after_ms: None,
        creator: "Cplatform".into(),
    }
}

#[test]
fn every_rejection_class_has_a_reason() {
    let d = device();
    let cases = [
        (("nope", Value::I64(1)), "has no point \"nope\""),
        (("status", Value::I64(1)), "not writable"),
        (("temp", Value::I64(1)), "input register"),
        (("dim", Value::I64(101)), "above the maximum 100"),
        (("mode", Value::I64(3)), "not one of the values allowed"),
        (("relay_1", Value::Str("on".into())), "true or false"),
        (("dim", Value::Bool(true)), "takes a number"),
        (("dim", Value::F64(23.45)), "not a whole number"),
        (
            ("count", Value::I64(40_000)),
            "outside the i16 register's range",
        ),
    ];
    for ((point, value), want) in cases {
        let e = d.check(&command(&[(point, value.clone())])).unwrap_err();
        assert!(e.contains(want), "{point} = {value:?}: {e}");
    }
    // One bad point rejects the whole command.
    let e = d
        .check(&command(&[
            ("relay_1", Value::Bool(true)),
            ("nope", Value::I64(1)),
        ]))
        .unwrap_err();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn writes_follow_the_command_order_and_merge_adjacent_neighbours() {
    let d = device();
    let plan = d
        .check(&command(&[
            ("relay_1", Value::Bool(true)),
            ("relay_2", Value::Bool(false)),
            ("dim", Value::F64(23.4)),
            ("mode", Value::I64(2)),
            ("setpoint", Value::F64(21.5)),
        ]))
        .unwrap();
    assert_eq!(plan.safety, Safety::Once); // mode is not idempotent
    let fcs: Vec<_> = plan
        .writes
        .iter()
        .map(|w| (w.request.function_code(), w.request.address, w.points.len()))
        .collect();
    assert_eq!(fcs, [(0x0F, 0, 2), (0x10, 10, 3)]);
    let sp = 21.5f32.to_bits();
    assert_eq!(
        plan.writes[1].request.data,
        WriteData::Registers(vec![234, 2, sp as u16, (sp >> 16) as u16])
    );
    assert!(plan.writes[0].idempotent && !plan.writes[1].idempotent);

    let plan = d
        .check(&command(&[
            ("dim", Value::I64(50)),
            ("relay_1", Value::Bool(true)),
        ]))
        .unwrap();
    assert_eq!(plan.safety, Safety::Idempotent);
    let fcs: Vec<_> = plan
        .writes
        .iter()
        .map(|w| w.request.function_code())
        .collect();
    assert_eq!(fcs, [0x06, 0x05]);
    // Out of address order: not merged.
    let plan = d
        .check(&command(&[
            ("relay_2", Value::Bool(true)),
            ("relay_1", Value::Bool(true)),
        ]))
        .unwrap();
    assert_eq!(plan.writes.len(), 2);
}

#[test]
fn a_downlink_is_not_a_modbus_command() {
    let mut c = command(&[]);
    c.action = crate::commands::Action::Downlink(crate::commands::Downlink {
        fport: 1,
        payload: vec![1],
        confirmed: false,
    });
    assert!(device()
        .check(&c)
        .unwrap_err()
        .contains("not LoRaWAN downlinks"));
}
