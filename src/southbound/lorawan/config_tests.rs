use super::*;
use crate::southbound::lorawan::LnsMqttConfig;

const GOOD: &str = r#"
bind = "127.0.0.1:1700"
region = "EU868"
net_id = "000013"
dedup_window = "300ms"

[[devices]]
dev_eui = "0004a30b001c0530"
codec = { type = "cayenne_lpp" }
otaa = { join_eui = "70b3d57ed0000000", app_key_file = "/etc/citygate/keys/pole17.key" }

[[devices]]
dev_eui = "0004a30b001c0531"
mac_version = "1.0.3"
abp = { dev_addr = "260b1234", nwk_s_key_env = "POLE18_NWK", app_s_key = "be69ef63d9a704ac1f2c26f01274bccb" }
codec = { type = "raw", encoding = "base64" }
"#;

#[test]
fn reference_config_parses_and_validates() {
    let c: LorawanUdpConfig = toml::from_str(GOOD).unwrap();
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.dedup_window, Duration::from_millis(300));
    assert_eq!(
        c.resources(),
        vec![Resource::UdpPort("127.0.0.1:1700".parse().unwrap())]
    );
    assert_eq!(c.devices[1].mac_version.max_fcnt_gap(), Some(16_384));
    assert_eq!(c.devices[0].mac_version.max_fcnt_gap(), None);
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].path, "devices.1.abp.app_s_key");
    assert_eq!(
        c.devices[1].abp.as_ref().unwrap().nwk_s_key().env,
        Some("POLE18_NWK")
    );
}

#[test]
fn defaults() {
    let c: LorawanUdpConfig = toml::from_str("").unwrap();
    assert_eq!(c.bind, "127.0.0.1:1700".parse().unwrap());
    assert_eq!(c.region, Region::Eu868);
    assert_eq!(c.rx_delay, 1);
    assert!(c.validate().is_empty());
}

#[test]
fn unknown_fields_are_refused() {
    assert!(toml::from_str::<LorawanUdpConfig>("bnd = \"x\"").is_err());
    let bad = "[[devices]]\ndev_eui = \"0004a30b001c0530\"\nkey = \"x\"\n";
    assert!(toml::from_str::<LorawanUdpConfig>(bad).is_err());
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let toml = r#"
net_id = "13"
rx1_dr_offset = 7
[[devices]]
dev_eui = "0004a30b001c05"
abp = { dev_addr = "260b1234", nwk_s_key = "00", nwk_s_key_file = "/k", app_s_key = "zz" }
[[devices]]
dev_eui = "0004a30b001c0530"
abp = { dev_addr = "260B1234", nwk_s_key_file = "", app_s_key_env = "A" }
[[devices]]
dev_eui = "0004a30b001c0530"
otaa = { join_eui = "1", app_key_file = "/k" }
[[devices]]
dev_eui = "0004a30b001c0532"
[[devices]]
dev_eui = "0004a30b001c0533"
otaa = { join_eui = "0000000000000000", app_key_env = "K" }
codec = { type = "declarative", ports = [ { fport = 2, fields = [
  { name = "a", byte_offset = 0, type = "u16" },
  { name = "b", byte_offset = 1, type = "u8" },
] } ] }
"#;
    let c: LorawanUdpConfig = toml::from_str(toml).unwrap();
    let issues = c.validate();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    let want = [
        "net_id",
        "rx1_dr_offset",
        "devices.0.dev_eui",
        "devices.0.abp.nwk_s_key",
        "devices.0.abp.app_s_key",
        "devices.1.abp.dev_addr",
        "devices.1.abp.nwk_s_key_file",
        "devices.2.dev_eui",
        "devices.2.otaa.join_eui",
        "devices.3",
        "devices.4.codec.ports.0.fields.1.byte_offset",
    ];
    assert_eq!(paths, want, "{issues:#?}");
    assert!(issues.iter().all(|i| i.message.ends_with('.')));
}

#[test]
fn keys_load_through_the_secret_rule() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k");
    std::fs::write(&f, "f6acc31a06b72b4d6b0d5e6226aac462\n").unwrap();
    let k = load_key(SecretFields::with_inline("app_key", None, Some(&f), None)).unwrap();
    assert_eq!(k.bytes()[0], 0xf6);
    let missing = dir.path().join("missing");
    assert!(matches!(
        load_key(SecretFields::with_inline(
            "app_key",
            None,
            Some(&missing),
            None
        )),
        Err(KeyError::Source(SecretError::File { .. }))
    ));
    let e = load_key(SecretFields::with_inline(
        "app_key",
        Some("0102"),
        None,
        None,
    ))
    .unwrap_err()
    .to_string();
    assert!(!e.contains("0102"), "secret leaked into error: {e}");
}

#[test]
fn lns_config_parses_validates_and_defaults_topics() {
    let c: LnsMqttConfig = toml::from_str(
        r#"
broker = "mqtt://127.0.0.1:1883"
flavour = "chirpstack"
username = "citygate"
password_env = "CS_PASS"
[[devices]]
dev_eui = "0004a30b001c0530"
codec = { type = "cayenne_lpp" }
"#,
    )
    .unwrap();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    assert_eq!(
        c.topics(),
        vec!["application/+/device/+/event/up".to_string()]
    );
    assert_eq!(c.keep_alive, Duration::from_secs(30));
    let bad: LnsMqttConfig = toml::from_str(
        r#"
broker = "127.0.0.1"
flavour = "ttn"
password = "x"
password_file = "/p"
topics = ["a/#/b"]
[[devices]]
dev_eui = "00"
"#,
    )
    .unwrap();
    let paths: Vec<String> = bad.validate().into_iter().map(|i| i.path).collect();
    assert_eq!(
        paths,
        [
            "broker",
            "password",
            "username",
            "topics.0",
            "devices.0.dev_eui"
        ]
    );
    assert!(
        toml::from_str::<LnsMqttConfig>("broker = \"mqtt://x\"\nflavour = \"loriot\"").is_err()
    );
}

#[test]
fn gateway_table_bounds_default_parse_and_validate() {
    let c: LorawanUdpConfig = toml::from_str("").unwrap();
    assert_eq!(c.max_gateways, DEFAULT_MAX_GATEWAYS);
    assert_eq!(c.gateway_idle_timeout, Duration::from_secs(120));
    assert!(c.gateways.is_empty());
    let c: LorawanUdpConfig = toml::from_str(
        "max_gateways = 4\ngateway_idle_timeout = \"45s\"\ngateways = [\"aa555a0000000000\"]",
    )
    .unwrap();
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.gateway_idle_timeout, Duration::from_secs(45));
    let c: LorawanUdpConfig =
        toml::from_str("max_gateways = 0\ngateway_idle_timeout = \"0s\"\ngateways = [\"aa55\"]")
            .unwrap();
    let paths: Vec<String> = c.validate().into_iter().map(|i| i.path).collect();
    assert_eq!(
        paths,
        ["max_gateways", "gateway_idle_timeout", "gateways.0"]
    );
}

#[test]
fn region_and_sub_band() {
    let c: LorawanUdpConfig = toml::from_str("region = \"US915\"\nsub_band = 2\n").unwrap();
    assert_eq!((c.region, c.sub_band), (Region::Us915, Some(2)));
    assert_eq!(c.validate(), vec![]);
    for (name, region) in [
        ("AU915", Region::Au915),
        ("AS923", Region::As923_1),
        ("AS923-1", Region::As923_1),
        ("AS923-2", Region::As923_2),
        ("AS923-3", Region::As923_3),
        ("AS923-4", Region::As923_4),
        ("IN865", Region::In865),
        ("KR920", Region::Kr920),
    ] {
        let c: LorawanUdpConfig = toml::from_str(&format!("region = \"{name}\"")).unwrap();
        assert_eq!(c.region, region, "{name}");
    }
    let c: LorawanUdpConfig = toml::from_str("region = \"AU915\"\nsub_band = 0\n").unwrap();
    let issues = c.validate();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "sub_band");
    let c: LorawanUdpConfig = toml::from_str("sub_band = 2\n").unwrap();
    assert!(c.validate()[0].message.contains("US915 and AU915 only"));
    // US915 allows RX1DROffset 0..=3 only (RP002-1.0.4 §2.5.7).
    let c: LorawanUdpConfig = toml::from_str("region = \"US915\"\nrx1_dr_offset = 4\n").unwrap();
    assert_eq!(c.validate()[0].path, "rx1_dr_offset");
    assert!(toml::from_str::<LorawanUdpConfig>("region = \"US902\"").is_err());
}
