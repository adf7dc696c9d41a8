use crate::config::load_str_with_env;
use crate::config::report::ConfigReport;
use std::path::Path;
use std::time::Duration;

const TEMPLATE: &str = r#"[gateway]
name = "${SITE}"

[southbound.meter]
type = "modbus_tcp"
host = "${METER_HOST:-192.0.2.10}:502"

[[southbound.meter.devices]]
id = "${SITE}-meter"
unit = "${METER_UNIT}"
profile = "eastron_sdm630"
poll_interval = "${POLL:-10s}"
"#;

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn err(text: &str, vars: &'static [(&'static str, &'static str)]) -> ConfigReport {
    load_str_with_env(text, Path::new("site.toml"), &env(vars)).unwrap_err()
}

#[test]
fn fills_strings_defaults_and_numbers() {
    let vars = &[("SITE", "cab-17"), ("METER_UNIT", "7")];
    let c = load_str_with_env(TEMPLATE, Path::new("t.toml"), &env(vars)).unwrap();
    assert_eq!(c.gateway.name, "cab-17");
    let crate::southbound::AdapterConfig::Modbus(crate::southbound::modbus::ModbusConfig::Tcp(m)) =
        &c.southbound["meter"]
    else {
        panic!("not modbus_tcp: {:?}", c.southbound["meter"]);
    };
    assert_eq!(m.host, "192.0.2.10:502", "default used when unset");
    let d = &m.devices[0];
    assert_eq!(d.id, "cab-17-meter");
    assert_eq!(
        d.unit, 7,
        "a whole-value reference becomes the number the key wants"
    );
    assert_eq!(d.poll_interval, Duration::from_secs(10));
}

#[test]
fn empty_variable_takes_the_default_like_the_shell() {
    let vars = &[("SITE", "a"), ("METER_UNIT", "1"), ("METER_HOST", "")];
    let c = load_str_with_env(TEMPLATE, Path::new("t.toml"), &env(vars)).unwrap();
    let crate::southbound::AdapterConfig::Modbus(crate::southbound::modbus::ModbusConfig::Tcp(m)) =
        &c.southbound["meter"]
    else {
        panic!("not modbus_tcp");
    };
    assert_eq!(m.host, "192.0.2.10:502");
}

#[test]
fn unset_variable_is_reported_at_its_reference() {
    let r = err(TEMPLATE, &[("SITE", "cab-17")]);
    assert_eq!(r.issues.len(), 1, "{r}");
    let i = &r.issues[0];
    // `unit = "${METER_UNIT}"`: line 10, the `$` after the quote.
    assert_eq!((i.line, i.col), (10, 9), "{r}");
    assert!(i.message.contains("`METER_UNIT` is not set"), "{r}");
    assert!(
        i.hint.as_deref().unwrap().contains("EnvironmentFile="),
        "{r}"
    );
}

#[test]
fn a_second_reference_in_one_string_is_placed_exactly() {
    let text = "[gateway]\nname = \"${A}-${B}\"\n";
    let r = err(text, &[("A", "x")]);
    assert_eq!((r.issues[0].line, r.issues[0].col), (2, 14), "{r}");
    assert!(r.issues[0].message.contains("`B`"), "{r}");
}

#[test]
fn type_errors_after_substitution_name_the_variable() {
    let r = err(TEMPLATE, &[("SITE", "cab-17"), ("METER_UNIT", "seven")]);
    assert_eq!(r.issues.len(), 1, "{r}");
    let unit = &r.issues[0];
    assert_eq!((unit.line, unit.col), (10, 8), "{r}");
    assert!(unit.message.contains("expected u8"), "{r}");
    assert!(
        unit.message.contains("\"seven\" came from ${METER_UNIT}"),
        "{r}"
    );

    let r = err(
        TEMPLATE,
        &[("SITE", "cab-17"), ("METER_UNIT", "1"), ("POLL", "ten")],
    );
    assert_eq!(r.issues.len(), 1, "{r}");
    let poll = &r.issues[0];
    assert_eq!((poll.line, poll.col), (12, 17), "{r}");
    assert!(poll.message.contains("invalid duration"), "{r}");
    assert!(poll.message.contains("\"ten\" came from ${POLL}"), "{r}");
}

#[test]
fn validator_errors_name_the_variable_and_defaults_are_said_to_be_defaults() {
    let text = "[gateway]\nname = \"${SITE:-bad name}\"\n";
    let r = err(text, &[]);
    assert_eq!((r.issues[0].line, r.issues[0].col), (2, 8), "{r}");
    assert!(
        r.issues[0]
            .message
            .contains("default of ${SITE}, which is not set"),
        "{r}"
    );
}

#[test]
fn escape_and_lone_dollars_stay_literal() {
    let text = "[gateway]\nname = \"a\"\nstate_dir = \"/var/$x/$${HOME}\"\n";
    let c = load_str_with_env(text, Path::new("t.toml"), &env(&[])).unwrap();
    assert_eq!(
        c.gateway.state_dir.unwrap(),
        std::path::PathBuf::from("/var/$x/${HOME}")
    );
}

#[test]
fn malformed_references_are_errors() {
    let r = err("[gateway]\nname = \"${SITE\"\n", &[]);
    assert!(r.issues[0].message.contains("not closed"), "{r}");
    let r = err("[gateway]\nname = \"${1SITE}\"\n", &[]);
    assert!(
        r.issues[0].message.contains("not a variable reference"),
        "{r}"
    );
    assert_eq!(
        r.issues.len(),
        1,
        "the gateway name error follows from it: {r}"
    );
}

#[test]
fn secrets_cannot_be_filled_in_by_substitution() {
    let text = r#"[southbound.ble]
type = "ble"

[[southbound.ble.devices]]
mac = "A4:C1:38:00:00:01"
id = "th1"
format = "bthome"
bindkey = "${BINDKEY}"
"#;
    let r = err(text, &[("BINDKEY", "00112233445566778899aabbccddeeff")]);
    assert_eq!(r.issues.len(), 1, "{r}");
    assert_eq!((r.issues[0].line, r.issues[0].col), (8, 12), "{r}");
    assert!(r.issues[0].message.contains("secret `bindkey`"), "{r}");
    assert!(
        r.issues[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("bindkey_env = \"BINDKEY\""),
        "{r}"
    );
}
