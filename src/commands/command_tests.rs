use super::*;
use serde_json::json;

fn origin() -> Origin {
    Origin {
        key: "cin123".into(),
        device: "lamp-3".into(),
        created_ms: 1_000,
        creator: "Cplatform".into(),
    }
}

#[test]
fn a_set_command_parses_with_its_points_in_order() {
    let c = Command::parse(
        &json!({"id": "c1", "set": {"dim_level": 40, "relay": true, "mode": "eco", "f": 1.5}}),
        origin(),
    )
    .unwrap();
    assert_eq!(c.id, "c1");
    assert_eq!(c.device, "lamp-3");
    let Action::Set(values) = &c.action else {
        panic!("{c:?}")
    };
    let keys: Vec<_> = values.keys().cloned().collect();
    assert_eq!(keys, ["dim_level", "relay", "mode", "f"]);
    assert_eq!(values["dim_level"], Value::I64(40));
    assert_eq!(values["f"], Value::F64(1.5));
    assert_eq!(c.not_after_ms, None);
    assert_eq!(c.deadline_ms(std::time::Duration::from_secs(300)), 301_000);
}

#[test]
fn a_con_given_as_a_json_string_parses_too() {
    let c = Command::parse(&json!(r#"{"id":"c2","set":{"x":1}}"#), origin()).unwrap();
    assert_eq!(c.id, "c2");
}

#[test]
fn a_downlink_command_parses_hex_and_base64() {
    let c = Command::parse(
        &json!({"id": "v", "downlink": {"fport": 10, "hex": "01ff", "confirmed": true}}),
        origin(),
    )
    .unwrap();
    assert_eq!(
        c.action,
        Action::Downlink(Downlink {
            fport: 10,
            payload: vec![1, 0xff],
            confirmed: true
        })
    );
    let c = Command::parse(
        &json!({"id": "v", "downlink": {"fport": 2, "base64": "AQI="}}),
        origin(),
    )
    .unwrap();
    assert!(
        matches!(c.action, Action::Downlink(Downlink { fport: 2, ref payload, confirmed: false }) if payload == &[1, 2])
    );
}

#[test]
fn not_after_is_rfc3339() {
    let c = Command::parse(
        &json!({"id": "c", "set": {"x": 1}, "not_after": "1970-01-01T00:00:02Z"}),
        origin(),
    )
    .unwrap();
    assert_eq!(c.not_after_ms, Some(2_000));
    assert_eq!(c.deadline_ms(std::time::Duration::from_secs(300)), 2_000);
    let e = Command::parse(
        &json!({"id": "c", "set": {"x": 1}, "not_after": "tomorrow"}),
        origin(),
    )
    .unwrap_err();
    assert_eq!(e, CommandParseError::BadNotAfter("tomorrow".into()));
}

#[test]
fn malformed_commands_say_what_is_wrong() {
    let cases = [
        (json!(42), "not JSON of the documented form"),
        (json!("{not json"), "not JSON of the documented form"),
        (json!({"set": {"x": 1}}), "no \"id\""),
        (json!({"id": "", "set": {"x": 1}}), "no \"id\""),
        (json!({"id": "x".repeat(129), "set": {"x": 1}}), "no \"id\""),
        (
            json!({"id": "c"}),
            "exactly one of \"set\" and \"downlink\"",
        ),
        (
            json!({"id": "c", "set": {"x": 1}, "downlink": {"fport": 1, "hex": "00"}}),
            "exactly one of",
        ),
        (json!({"id": "c", "set": {}}), "\"set\" is empty"),
        (json!({"id": "c", "set": {"x": [1]}}), "point \"x\""),
        (json!({"id": "c", "set": {"x": null}}), "point \"x\""),
        (
            json!({"id": "c", "set": {"x": 1}, "extra": 1}),
            "unknown field",
        ),
        (
            json!({"id": "c", "downlink": {"fport": 0, "hex": "00"}}),
            "fport 0",
        ),
        (
            json!({"id": "c", "downlink": {"fport": 224, "hex": "00"}}),
            "fport 224",
        ),
        (
            json!({"id": "c", "downlink": {"fport": 1, "hex": "zz"}}),
            "not hex",
        ),
        (
            json!({"id": "c", "downlink": {"fport": 1}}),
            "exactly one of \"hex\"",
        ),
        (
            json!({"id": "c", "downlink": {"fport": 1, "hex": "00".repeat(243)}}),
            "exceeds 242",
        ),
    ];
    for (con, want) in cases {
        let e = Command::parse(&con, origin()).unwrap_err().to_string();
        assert!(e.contains(want), "{con} → {e}, wanted {want:?}");
    }
}

#[test]
fn too_many_points_are_refused() {
    let set: serde_json::Map<_, _> = (0..=MAX_POINTS)
        .map(|i| (format!("p{i}"), json!(i)))
        .collect();
    let e = Command::parse(&json!({"id": "c", "set": set}), origin()).unwrap_err();
    assert_eq!(e, CommandParseError::BadSet);
}
