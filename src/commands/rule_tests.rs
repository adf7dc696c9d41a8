use super::*;

fn rule(toml_text: &str) -> WriteRule {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn a_point_is_read_only_unless_marked_writable() {
    let e = WriteRule::default()
        .check("relay", ValueKind::Bool, &Value::Bool(true))
        .unwrap_err();
    assert!(e.contains("not writable"), "{e}");
}

#[test]
fn limits_and_allowed_sets_are_enforced() {
    let r = rule("writable = true\nmin = 0\nmax = 100");
    assert!(r.check("dim", ValueKind::Number, &Value::I64(40)).is_ok());
    assert!(r
        .check("dim", ValueKind::Number, &Value::F64(100.0))
        .is_ok());
    let e = r
        .check("dim", ValueKind::Number, &Value::I64(101))
        .unwrap_err();
    assert!(e.contains("above the maximum 100"), "{e}");
    let e = r
        .check("dim", ValueKind::Number, &Value::F64(-0.5))
        .unwrap_err();
    assert!(e.contains("below the minimum 0"), "{e}");

    let r = rule("writable = true\nallowed = [0, 1, 2]");
    assert!(r.check("mode", ValueKind::Number, &Value::I64(2)).is_ok());
    let e = r
        .check("mode", ValueKind::Number, &Value::I64(3))
        .unwrap_err();
    assert!(e.contains("not one of the values allowed"), "{e}");
}

#[test]
fn wrong_types_are_refused() {
    let r = rule("writable = true");
    let e = r
        .check("relay", ValueKind::Bool, &Value::Str("on".into()))
        .unwrap_err();
    assert!(e.contains("takes true or false, not \"on\""), "{e}");
    assert!(r.check("relay", ValueKind::Bool, &Value::I64(1)).is_ok());
    let e = r
        .check("relay", ValueKind::Bool, &Value::I64(2))
        .unwrap_err();
    assert!(e.contains("true or false"), "{e}");
    let e = r
        .check("dim", ValueKind::Number, &Value::Bool(true))
        .unwrap_err();
    assert!(e.contains("takes a number"), "{e}");
}

#[test]
fn rule_mistakes_are_config_issues() {
    assert!(rule("writable = true\nmin = 0\nmax = 10")
        .issues()
        .is_empty());
    let keys: Vec<_> = rule("min = 1").issues().into_iter().map(|i| i.0).collect();
    assert_eq!(keys, ["writable"]);
    let keys: Vec<_> = rule("writable = true\nmin = 5\nmax = 1")
        .issues()
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(keys, ["min"]);
    let keys: Vec<_> = rule("writable = true\nallowed = []")
        .issues()
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(keys, ["allowed"]);
    let keys: Vec<_> = rule("writable = true\nallowed = [\"x\"]")
        .issues()
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(keys, ["allowed"]);
}
