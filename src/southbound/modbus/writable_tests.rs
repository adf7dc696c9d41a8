use crate::config::issue::ConfigIssue;
use crate::southbound::modbus::config::ModbusConfig;

fn parse(text: &str) -> ModbusConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn issues(device: &str, commands: bool) -> (Vec<ConfigIssue>, Vec<ConfigIssue>) {
    let c = parse(&format!(
        "type = \"modbus_tcp\"\nhost = \"127.0.0.1:502\"\ncommands = {commands}\n[[devices]]\n{device}"
    ));
    (c.validate(), c.warnings())
}

fn paths(issues: &[ConfigIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

#[test]
fn writable_inline_and_profile_points_are_accepted() {
    let (errors, warnings) = issues(
        r#"id = "cab"
unit = 1
profile = "eastron_sdm630"
word_order = "ABCD"
writable_points = [{ point = "voltage_l1", min = 0, max = 300 }]
points = [
  { name = "relay", table = "coil", address = 0, type = "bool", writable = true, idempotent = true },
  { name = "dim", table = "holding", address = 10, type = "u16", scale = 0.1, writable = true, min = 0, max = 100 },
  { name = "setpoint", table = "holding", address = 12, type = "f32", writable = true, allowed = [18.5, 21] },
  { name = "enabled", table = "holding", address = 14, type = "bool", writable = true },
]"#,
        true,
    );
    // voltage_l1 is an input register in the profile: refused, with the override's path.
    assert_eq!(
        paths(&errors),
        ["devices.0.writable_points.0.point"],
        "{errors:?}"
    );
    assert!(errors[0].message.contains("input register"), "{errors:?}");
    assert!(
        warnings.iter().all(|w| w.path != "commands"),
        "{warnings:?}"
    );
}

#[test]
fn every_write_mistake_is_reported_with_its_key_path() {
    let (errors, _) = issues(
        r#"id = "plc"
unit = 1
word_order = "ABCD"
writable_points = [{ point = "dim" }, { point = "nope" }]
points = [
  { name = "temp", table = "input", address = 0, type = "i16", writable = true },
  { name = "door", table = "discrete", address = 0, type = "bool", writable = true },
  { name = "alarm", table = "holding", address = 0, type = "bit", bit = 3, writable = true },
  { name = "label", table = "holding", address = 20, type = "string", length = 4, writable = true },
  { name = "dim", table = "holding", address = 10, type = "u16", writable = true, min = 5, max = 1 },
  { name = "mode", table = "holding", address = 11, type = "u16", max = 3 },
]"#,
        true,
    );
    assert_eq!(
        paths(&errors),
        [
            "devices.0.points.0.writable",
            "devices.0.points.1.writable",
            "devices.0.points.2.writable",
            "devices.0.points.3.writable",
            "devices.0.points.4.min",
            "devices.0.points.5.writable",
            "devices.0.writable_points.0.point",
            "devices.0.writable_points.1.point",
        ],
        "{errors:#?}"
    );
    assert!(errors[2].message.contains("bit inside a register"));
    assert!(errors[3].message.contains("not text"));
    assert!(errors[6].message.contains("inline point"));
    assert!(errors[7]
        .message
        .contains("no profile point named \"nope\""));
}

#[test]
fn commands_without_writable_points_and_the_reverse_are_warnings() {
    let device = "id = \"m\"\nunit = 1\npoints = [{ name = \"r\", table = \"coil\", address = 0, type = \"bool\", writable = true }]";
    let (errors, warnings) = issues(device, false);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.path == "commands" && w.message.contains("commands are off")),
        "{warnings:?}"
    );
    let device = "id = \"m\"\nunit = 1\npoints = [{ name = \"r\", table = \"coil\", address = 0, type = \"bool\" }]";
    let (errors, warnings) = issues(device, true);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.path == "commands"
                && w.message.contains("no point of any device is writable")),
        "{warnings:?}"
    );
}

#[test]
fn unknown_write_keys_are_refused_by_the_parser() {
    let text = "type = \"modbus_tcp\"\nhost = \"h:1\"\n[[devices]]\nid = \"m\"\nunit = 1\nwritable_points = [{ point = \"x\", writeable = true }]";
    assert!(toml::from_str::<ModbusConfig>(text).is_err());
    let text = "type = \"modbus_tcp\"\nhost = \"h:1\"\n[[devices]]\nid = \"m\"\nunit = 1\npoints = [{ name = \"x\", table = \"coil\", address = 0, type = \"bool\", writeable = true }]";
    assert!(toml::from_str::<ModbusConfig>(text).is_err());
}
