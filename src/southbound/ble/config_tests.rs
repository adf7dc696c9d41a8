//! Config parsing and validation tests (TOML as a technician writes it).

use super::*;
use crate::config::secret::SecretError;

fn parse(s: &str) -> BleConfig {
    toml::from_str(s).unwrap_or_else(|e| panic!("{e}"))
}

fn paths(c: &BleConfig) -> Vec<String> {
    c.validate().into_iter().map(|i| i.path).collect()
}

const GOOD: &str = r#"
adapter = "hci1"
scan = "active"
min_interval = "10s"
max_silence = "5m"
filters = { names = ["ATC_*"], service_uuids = ["fcd2"] }

[[devices]]
mac = "a4:c1:38:8d:18:b2"
id = "kiosk-th1"
format = "bthome"
bindkey = "231d39c1d7cc1ab1aee224cd096db932"
min_interval = "2s"
deadband = { temperature = 0.2, humidity = 1.0 }

[[devices]]
mac = "CB:B8:33:4C:88:4F"
id = "ruuvi.bench"
format = "ruuvi"
store_raw = true
"#;

#[test]
fn a_full_table_parses_and_validates_clean() {
    let c = parse(GOOD);
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.adapter, "hci1");
    assert_eq!(c.scan, ScanMode::Active);
    assert_eq!(c.resources(), vec![Resource::BleAdapter("hci1".into())]);
    let d = &c.devices[0];
    assert_eq!(d.mac(), Some("A4:C1:38:8D:18:B2".parse().unwrap()));
    assert_eq!(d.format.format(), Some(Format::Bthome));
    assert_eq!(d.load_bindkey().unwrap().unwrap()[0], 0x23);
    let p = c.policy(Some(d));
    assert_eq!(p.min_interval, Duration::from_secs(2));
    assert_eq!(p.max_silence, Duration::from_secs(300));
    assert_eq!(p.deadband.get("humidity"), Some(&1.0));
    assert!(c.devices[1].store_raw);
    assert_eq!(c.devices_by_mac().len(), 2);
}

#[test]
fn defaults() {
    let c = parse("accept_unlisted = true");
    assert_eq!(c.adapter, "hci0");
    assert_eq!(c.scan, ScanMode::Passive);
    assert_eq!(c.min_interval, Duration::from_secs(30));
    assert_eq!(c.max_silence, Duration::from_secs(900));
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.policy(None).min_interval, Duration::from_secs(30));
}

#[test]
fn unknown_fields_and_bad_durations_fail_to_parse() {
    assert!(toml::from_str::<BleConfig>("adaptr = \"hci0\"").is_err());
    assert!(toml::from_str::<BleConfig>("[[devices]]\nmac=\"x\"\nid=\"a\"\nbindkye=\"\"").is_err());
    let e = toml::from_str::<BleConfig>("min_interval = \"ten\"").unwrap_err();
    assert!(e.to_string().contains("ten"), "{e}");
    assert!(toml::from_str::<BleConfig>("scan = \"loud\"").is_err());
    assert!(
        toml::from_str::<BleConfig>("[[devices]]\nmac=\"x\"\nid=\"a\"\nformat=\"xiaomi\"").is_err()
    );
}

#[test]
fn validate_reports_every_problem_with_its_path() {
    let c = parse(
        r#"
adapter = "hci 0"
min_interval = "10m"
max_silence = "1m"
filters = { macs = ["nope"], names = [""], service_uuids = ["zz"] }

[[devices]]
mac = "A4:C1:38:8D:18:B2"
id = "a"
bindkey = "abcd"
bindkey_env = "KEY"

[[devices]]
mac = "a4-c1-38-8d-18-b2"
id = "a"
format = "ruuvi"
bindkey_file = "/k"
deadband = { temperature = -1.0 }

[[devices]]
mac = "A4:C1:38:8D:18"
id = "bad/id"
max_silence = "0s"
"#,
    );
    let got = paths(&c);
    let want = [
        "adapter",
        "min_interval",
        "filters.macs.0",
        "filters.names.0",
        "filters.service_uuids.0",
        "devices.0.bindkey",
        "devices.0.min_interval",
        "devices.1.mac",
        "devices.1.id",
        "devices.1.format",
        "devices.1.deadband.temperature",
        "devices.1.min_interval",
        "devices.2.mac",
        "devices.2.id",
        "devices.2.max_silence",
    ];
    assert_eq!(got, want, "{:#?}", c.validate());
    assert!(c.validate().iter().all(|i| i.message.ends_with('.')));
}

#[test]
fn no_devices_without_accept_unlisted_is_an_issue() {
    assert_eq!(paths(&parse("")), vec!["devices"]);
}

#[test]
fn bindkey_sources() {
    let dir = std::env::temp_dir().join(format!("citygate-ble-key-{}", std::process::id()));
    std::fs::write(&dir, "231d39c1d7cc1ab1aee224cd096db932\n").unwrap();
    let mut d = parse(GOOD).devices[0].clone();
    d.bindkey = None;
    d.bindkey_file = Some(dir.clone());
    assert!(d.load_bindkey().unwrap().is_some());
    std::fs::write(&dir, "short").unwrap();
    assert!(matches!(
        d.load_bindkey(),
        Err(BleConfigError::KeyFormat { .. })
    ));
    std::fs::remove_file(&dir).unwrap();
    assert!(matches!(
        d.load_bindkey(),
        Err(BleConfigError::KeySource {
            source: SecretError::File { .. },
            ..
        })
    ));
    d.bindkey_file = None;
    d.bindkey_env = Some("CITYGATE_BLE_TEST_KEY_THAT_IS_NOT_SET".into());
    assert!(matches!(
        d.load_bindkey(),
        Err(BleConfigError::KeySource {
            source: SecretError::Env(_),
            ..
        })
    ));
    d.bindkey_env = None;
    assert!(d.load_bindkey().unwrap().is_none());
    assert_eq!(
        parse_bindkey(" 231D39C1D7CC1AB1AEE224CD096DB932 ").unwrap()[15],
        0x32
    );
    assert!(parse_bindkey("231d39c1d7cc1ab1aee224cd096db93").is_none());
}

#[test]
fn filters_match_unlisted_devices() {
    let c = parse(GOOD);
    let mut adv = Advertisement {
        address: Some("11:22:33:44:55:66".parse().unwrap()),
        name: Some("ATC_8D18B2".into()),
        service_data: vec![(BleUuid::from_u16(0xfcd2), vec![0x40])],
        ..Default::default()
    };
    assert!(c.filters.matches(&adv));
    adv.name = Some("Phone".into());
    assert!(!c.filters.matches(&adv));
    adv.name = Some("ATC_1".into());
    adv.service_data.clear();
    assert!(!c.filters.matches(&adv));
    adv.service_uuids.push(BleUuid::from_u16(0xfcd2));
    assert!(c.filters.matches(&adv));
    let by_mac = Filters {
        macs: vec!["11:22:33:44:55:66".into()],
        ..Default::default()
    };
    assert!(by_mac.matches(&adv));
    adv.address = None;
    assert!(!by_mac.matches(&adv));
    assert!(Filters::default().matches(&adv));
}
