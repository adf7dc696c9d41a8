//! Config parsing and validation tests.
use super::*;
use crate::southbound::modbus::profile::load_profiles;

fn parse(text: &str) -> ModbusConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn paths(issues: &[ConfigIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

const RTU_OK: &str = r#"
type = "modbus_rtu"
port = "/dev/ttyUSB0"
baud = 9600
parity = "none"

[[devices]]
id = "meter-1"
unit = 1
profile = "eastron_sdm630"
poll_interval = "5s"
timeout = "300ms"

[[devices]]
id = "plc"
unit = 2
word_order = "CDAB"
max_registers = 60
groups = { slow = "1m" }
points = [
  { name = "status", table = "holding", address = 0, type = "u16" },
  { name = "alarm", table = "holding", address = 0, type = "bit", bit = 3 },
  { name = "temp", table = "holding", address = 10, type = "f32", scale = 0.1, unit = "C" },
  { name = "counter", table = "input", address = 0x20, type = "u64", group = "slow" },
  { name = "label", table = "holding", address = 40, type = "string", length = 8 },
  { name = "door", table = "discrete", address = 5, type = "bool" },
]
"#;

#[test]
fn a_good_rtu_config_has_no_issues_and_claims_its_port() {
    let c = parse(RTU_OK);
    assert_eq!(c.validate(), vec![]);
    assert_eq!(
        c.resources(),
        vec![Resource::SerialPort("/dev/ttyUSB0".into())]
    );
    // The SDM630 profile documents Eastron's 80-register limit; max_bits is not documented.
    assert_eq!(c.devices()[0].max_registers, 80);
    assert_eq!(c.devices()[0].max_bits, 2000);
    assert_eq!(c.devices()[1].max_registers, 60);
    assert_eq!(c.devices()[1].groups["slow"], Duration::from_secs(60));
    let points = resolve_device(&c.devices()[1]).unwrap();
    assert_eq!(points[3].interval, Duration::from_secs(60));
    assert_eq!(points[2].interval, Duration::from_secs(10));
}

#[test]
fn tcp_defaults_and_no_resources() {
    let c = parse(
        r#"type = "modbus_tcp"
host = "127.0.0.1:502"
[[devices]]
id = "m"
unit = 1
profile = "eastron_sdm630""#,
    );
    let Link::Tcp {
        max_connections,
        rtt,
        ..
    } = c.link()
    else {
        panic!()
    };
    assert_eq!(max_connections, 1);
    assert_eq!(rtt, Duration::from_millis(10));
    assert!(c.resources().is_empty());
    assert_eq!(c.validate(), vec![]);
}

#[test]
fn unknown_fields_and_bad_values_fail_to_parse() {
    for bad in [
        "type = \"modbus_tcp\"\nhost = \"h:1\"\nhots = 1\ndevices = []",
        "type = \"modbus_tcp\"\nhost = \"h:1\"\ndevices = [{ id = \"a\", unit = 1, poll_interval = \"often\" }]",
        "type = \"modbus_tcp\"\nhost = \"h:1\"\ndevices = [{ id = \"a\", unit = 1, word_order = \"ABDC\" }]",
        "type = \"modbus_rtu\"\nport = \"/dev/x\"\nbaud = 9600\nparity = \"mark\"\ndevices = []",
        "type = \"modbus_tcp\"\nhost = \"h:1\"\ndevices = [{ id = \"a\", unit = 1, points = [{ name = \"x\", table = \"holding\", address = 70000, type = \"u16\" }] }]",
    ] {
        assert!(toml::from_str::<ModbusConfig>(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_listed_mistake_is_reported_at_once() {
    let c = parse(
        r#"type = "modbus_rtu"
port = "/dev/ttyUSB0"
baud = 9600
data_bits = 7

[[devices]]
id = "a"
unit = 0
max_registers = 126
groups = { fast = "1s" }
points = [
  { name = "v", table = "holding", address = 0, type = "f32" },
  { name = "w", table = "holding", address = 1, type = "u16", order = "ABCD" },
  { name = "b", table = "holding", address = 2, type = "bit", bit = 16 },
  { name = "end", table = "holding", address = 65535, type = "u32", order = "ABCD" },
  { name = "c", table = "coil", address = 0, type = "u16" },
  { name = "s", table = "input", address = 0, type = "string" },
  { name = "w", table = "input", address = 9, type = "u16" },
]

[[devices]]
id = "a"
unit = 5
profile = "no_such_meter"
"#,
    );
    let issues = c.validate();
    let p = paths(&issues);
    for want in [
        "data_bits",
        "devices.0.unit",
        "devices.0.max_registers",
        "devices.0.groups.fast",
        "devices.0.points.0.order",
        "devices.0.points.2.bit",
        "devices.0.points.3.address",
        "devices.0.points.4.type",
        "devices.0.points.5.length",
        "devices.1.id",
        "devices.1.profile",
    ] {
        assert!(p.contains(&want), "missing {want} in {issues:#?}");
    }
    let unknown = issues
        .iter()
        .find(|i| i.path == "devices.1.profile")
        .unwrap();
    assert!(unknown.hint.as_deref().unwrap().contains("eastron_sdm630"));
    // Overlap and duplicate names need resolvable points: check on their own.
    let c = parse(
        r#"type = "modbus_tcp"
host = "10.0.0.1:502"
[[devices]]
id = "a"
unit = 1
word_order = "ABCD"
points = [
  { name = "v", table = "holding", address = 0, type = "f32" },
  { name = "w", table = "holding", address = 1, type = "u16" },
  { name = "v", table = "input", address = 1, type = "u16" },
  { name = "bit", table = "holding", address = 1, type = "bit", bit = 2 },
  { name = "long", table = "holding", address = 100, type = "string", length = 130 },
]
"#,
    );
    let issues = c.validate();
    let msgs: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(issues.len(), 3, "{issues:#?}");
    assert!(msgs.iter().any(|m| m.contains("overlaps")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("used twice")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("more than one read")),
        "{msgs:?}"
    );
}

#[test]
fn a_poll_interval_shorter_than_the_bus_time_is_a_warning() {
    // 53 floats at 1200 baud: 5 reads of ~270 bytes → ~2.5 s of bus time.
    let text = RTU_OK
        .replace("baud = 9600", "baud = 1200")
        .replace("poll_interval = \"5s\"", "poll_interval = \"1s\"");
    let issues = parse(&text).warnings();
    let hit = issues
        .iter()
        .find(|i| i.path == "devices.0.poll_interval")
        .expect("bus time issue");
    assert!(hit.message.contains("bus time"), "{hit:?}");
    assert!(issues
        .iter()
        .any(|i| i.path == "devices" && i.message.contains("% of the bus")));
    // The same config at 9600 baud and 5 s is fine.
    assert!(parse(RTU_OK).warnings().is_empty());
}

#[test]
fn profiles_load_from_a_directory_before_the_builtins() {
    let dir = std::env::temp_dir().join(format!("citygate-modbus-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tiny.toml"),
        "word_order = \"CDAB\"\n[[points]]\nname = \"e\"\ntable = \"input\"\naddress = 4\ntype = \"u32\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("broken.toml"), "points = 3").unwrap();
    let mut c = parse(
        r#"type = "modbus_tcp"
host = "10.0.0.1:502"
devices = [
  { id = "a", unit = 1, profile = "tiny" },
  { id = "b", unit = 2, profile = "broken" },
  { id = "c", unit = 3, profile = "eastron_sdm630" },
  { id = "d", unit = 4, profile = "../etc/passwd" },
]"#,
    );
    load_profiles(&mut c, Some(&dir));
    let issues = c.validate();
    assert_eq!(
        paths(&issues),
        vec!["devices.1.profile", "devices.3.profile"],
        "{issues:#?}"
    );
    let tiny = resolve_device(&c.devices()[0]).unwrap();
    assert_eq!(
        tiny[0].order,
        crate::southbound::modbus::decode::WordOrder::Cdab
    );
    assert_eq!(resolve_device(&c.devices()[2]).unwrap().len(), 53);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shipped_profile_file_parses_and_is_float_abcd() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/profiles/eastron_sdm630.toml"
    ))
    .unwrap();
    let p = crate::southbound::modbus::config::parse_profile(&text).unwrap();
    assert_eq!(
        p.word_order,
        Some(crate::southbound::modbus::decode::WordOrder::Abcd)
    );
    let freq = p.points.iter().find(|p| p.name == "frequency").unwrap();
    assert_eq!(freq.address, 0x46);
    let import = p.points.iter().find(|p| p.name == "energy_import").unwrap();
    assert_eq!(
        (import.address, import.unit.as_deref()),
        (0x48, Some("kWh"))
    );
}
