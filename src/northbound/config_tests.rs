use super::*;

fn parse(s: &str) -> Result<NorthboundConfig, toml::de::Error> {
    toml::from_str(s)
}

fn paths(c: &NorthboundConfig) -> Vec<String> {
    c.validate().into_iter().map(|i| i.path).collect()
}

#[test]
fn minimal_table_gets_working_defaults() {
    let c = parse(r#"cse_url = "http://127.0.0.1:8080""#).unwrap();
    assert_eq!(c.binding, BindingKind::Http);
    assert_eq!(c.cse_id, "/id-in");
    assert_eq!(c.cse_name, "cse-in");
    assert_eq!(c.originator, "C");
    assert!(c.cse_assigns_ae_id());
    assert_eq!(c.app_id, "Ncitygate");
    assert_eq!(c.release, "3");
    assert_eq!(c.request_timeout, Duration::from_secs(10));
    assert_eq!(c.max_in_flight, 4);
    assert_eq!(c.container, ContainerLimits::default());
    assert_eq!(c, NorthboundConfig::new("http://127.0.0.1:8080"));
    assert!(c.validate().is_empty(), "{:?}", c.validate());
}

#[test]
fn full_table_parses() {
    let c = parse(
        r#"
binding = "http"
cse_url = "https://cse.city.example:8443"
cse_id = "id-in"
cse_name = "cse-in"
originator = "Ccitygate-cab17"
app_id = "Ncitygate"
ae_name = "cab17"
release = "4"
request_timeout = "5s"
max_in_flight = 8
container = { mni = 1000, mbs = 1000000, mia = 86400 }
labels = { "meter-1" = ["site/cab-17", "type/meter"] }
tls = { ca_file = "/etc/citygate/ca.pem", client_cert_file = "/etc/c.pem", client_key_file = "/etc/k.pem" }
auth = { basic = { user = "gw", password_file = "/etc/citygate/cse.password" } }
backoff = { initial = "200ms", max = "30s", auth_retry = "2m" }
"#,
    )
    .unwrap();
    assert_eq!(c.request_timeout, Duration::from_secs(5));
    assert_eq!(c.container.mni, Some(1000));
    assert_eq!(c.labels["meter-1"], vec!["site/cab-17", "type/meter"]);
    assert_eq!(c.backoff.auth_retry, Duration::from_secs(120));
    assert!(c.validate().is_empty(), "{:?}", c.validate());
}

#[test]
fn unknown_keys_and_bad_durations_are_rejected() {
    let e = parse("cse_url = \"http://x\"\ncse_uri = \"y\"").unwrap_err();
    assert!(e.to_string().contains("cse_uri"), "{e}");
    let e = parse("cse_url = \"http://x\"\nrequest_timeout = \"ten\"").unwrap_err();
    assert!(e.to_string().contains("invalid duration"), "{e}");
    let e =
        parse("cse_url = \"http://x\"\nauth = { basic = { user = \"a\", pasword_env = \"X\" } }")
            .unwrap_err();
    assert!(e.to_string().contains("pasword_env"), "{e}");
    let e = parse("cse_url = \"http://x\"\nbinding = \"amqp\"").unwrap_err();
    assert!(e.to_string().contains("amqp"), "{e}");
}

#[test]
fn mqtt_binding_needs_a_broker_not_a_cse_url() {
    let c = parse("binding = \"mqtt\"").unwrap();
    assert_eq!(c.binding, BindingKind::Mqtt);
    assert_eq!(paths(&c), vec!["mqtt"]);
    let c = parse(
        "binding = \"mqtt\"\noriginator = \"Cgw7\"\nmqtt = { broker = \"mqtt://10.0.0.5:1883\" }",
    )
    .unwrap();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let m = c.mqtt.as_ref().unwrap();
    assert_eq!(m.keep_alive, Duration::from_secs(30));
    assert_eq!(m, &MqttConfig::new("mqtt://10.0.0.5:1883"));
    // The HTTP binding still needs its URL, and rejects stray MQTT settings.
    let c = parse("mqtt = { broker = \"mqtt://b\" }").unwrap();
    assert_eq!(paths(&c), vec!["mqtt", "cse_url"]);
}

#[test]
fn full_mqtt_table_parses() {
    let c = parse(
        r#"
binding = "mqtt"
[mqtt]
broker = "mqtts://broker.city.example:8883"
client_id = "A::Cgw7"
username = "gw7"
password_env = "CG_MQTT_PW"
keep_alive = "45s"
ca_file = "/etc/citygate/ca.pem"
client_cert_file = "/etc/citygate/gw.pem"
client_key_file = "/etc/citygate/gw.key"
credential_id = "Ccred-gw7"
"#,
    )
    .unwrap();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let m = c.mqtt.unwrap();
    assert_eq!(m.keep_alive, Duration::from_secs(45));
    assert_eq!(m.username.as_deref(), Some("gw7"));
    assert_eq!(m.credential_id.as_deref(), Some("Ccred-gw7"));
    assert!(parse("binding = \"mqtt\"\nmqtt = { broker = \"mqtt://b\", brokr = \"x\" }").is_err());
}

#[test]
fn bad_mqtt_settings_are_reported_at_once() {
    let mut m = MqttConfig::new("http://broker:1883");
    m.client_id = Some("a/b".into());
    m.credential_id = Some("C x".into());
    m.password_env = Some("PW".into());
    m.keep_alive = Duration::from_secs(1);
    m.client_key_file = Some("/k.pem".into());
    let mut c = NorthboundConfig::new("");
    c.binding = BindingKind::Mqtt;
    c.mqtt = Some(m);
    c.tls.ca_file = Some("/ca.pem".into());
    assert_eq!(
        paths(&c),
        vec![
            "mqtt.broker",
            "mqtt",
            "mqtt.client_id",
            "mqtt.credential_id",
            "mqtt.username",
            "mqtt.keep_alive",
            "tls",
        ]
    );
    assert!(c.validate().iter().all(|i| i.message.ends_with('.')));
    for bad in [
        "mqtt://",
        "mqtt://host:0",
        "mqtt://host:99999",
        "mqtt://u@host",
        "tcp://h",
    ] {
        c.mqtt = Some(MqttConfig::new(bad));
        c.tls = TlsConfig::default();
        assert_eq!(paths(&c), vec!["mqtt.broker"], "{bad}");
    }
    let mut m = MqttConfig::new("mqtt://broker");
    m.ca_file = Some("/ca.pem".into());
    m.username = Some("u".into());
    c.mqtt = Some(m);
    assert_eq!(paths(&c), vec!["mqtt", "mqtt.password"]);
}

#[test]
fn mqtt_password_resolves() {
    let mut m = MqttConfig::new("mqtt://b");
    m.password_env = Some("CG_TEST_MQTT_PW_UNSET_123".into());
    assert_eq!(m.password(), Ok(None), "no user, no password");
    m.username = Some("gw".into());
    assert!(m
        .password()
        .unwrap_err()
        .contains("CG_TEST_MQTT_PW_UNSET_123"));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    m.password_env = None;
    m.password_file = Some(f);
    assert_eq!(m.password(), Ok(Some("s3cret".into())));
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let mut c = NorthboundConfig::new("ftp://cse");
    c.cse_id = "id in".into();
    c.cse_name = "cse/in".into();
    c.ae_name = String::new();
    c.originator = "gw07".into();
    c.app_id = "citygate".into();
    c.release = "1".into();
    c.labels
        .insert("dev".into(), vec!["ok".into(), "has space".into()]);
    c.request_timeout = Duration::from_millis(1);
    c.max_in_flight = 0;
    c.tls.client_cert_file = Some("/c.pem".into());
    c.auth.basic = Some(BasicAuth {
        user: "gw".into(),
        password_file: None,
        password_env: None,
    });
    c.auth.bearer = Some(BearerAuth {
        token_file: Some("/t".into()),
        token_env: Some("T".into()),
    });
    c.backoff.initial = Duration::from_secs(120);
    assert_eq!(
        paths(&c),
        vec![
            "cse_url",
            "cse_id",
            "cse_name",
            "ae_name",
            "originator",
            "app_id",
            "release",
            "labels.dev.1",
            "request_timeout",
            "max_in_flight",
            "tls",
            "auth",
            "auth.basic.password",
            "auth.bearer.token",
            "backoff.initial",
        ]
    );
    assert!(c.validate().iter().all(|i| i.message.ends_with('.')));
}

#[test]
fn tls_with_plain_http_is_flagged() {
    let mut c = NorthboundConfig::new("http://cse:8080");
    c.tls.ca_file = Some("/ca.pem".into());
    assert_eq!(paths(&c), vec!["tls"]);
    c.cse_url = "https://cse:8443".into();
    assert!(paths(&c).is_empty());
}

#[test]
fn originators_and_cse_ids_accepted() {
    for o in ["C", "S", "Cgw01", "Sabc-1"] {
        let mut c = NorthboundConfig::new("http://x");
        c.originator = o.into();
        assert!(paths(&c).is_empty(), "{o}");
    }
    for id in ["/id-in", "id-in"] {
        let mut c = NorthboundConfig::new("http://x");
        c.cse_id = id.into();
        assert!(paths(&c).is_empty(), "{id}");
    }
}

#[test]
fn dot_segments_are_not_resource_names() {
    for name in [".", ".."] {
        let mut c = NorthboundConfig::new("http://x");
        c.cse_name = name.into();
        c.ae_name = name.into();
        assert_eq!(paths(&c), vec!["cse_name", "ae_name"], "{name}");
    }
}

#[test]
fn secrets_resolve_from_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    let auth = AuthConfig {
        basic: Some(BasicAuth {
            user: "gw".into(),
            password_file: Some(f),
            password_env: None,
        }),
        bearer: None,
    };
    assert_eq!(
        auth.resolve().unwrap(),
        Some(Credentials::Basic {
            user: "gw".into(),
            password: "s3cret".into()
        })
    );
    let auth = AuthConfig {
        basic: None,
        bearer: Some(BearerAuth {
            token_file: None,
            token_env: Some("CITYGATE_TEST_SURELY_UNSET_VAR".into()),
        }),
    };
    assert!(auth.resolve().unwrap_err().contains("not set"));
    assert_eq!(AuthConfig::default().resolve().unwrap(), None);
    let dbg = format!(
        "{:?}",
        Credentials::Bearer {
            token: "tok".into()
        }
    );
    assert!(!dbg.contains("tok"), "{dbg}");
}

#[test]
fn max_reply_bytes_has_a_default_takes_sizes_and_is_bounded() {
    let c = parse(r#"cse_url = "http://127.0.0.1:8080""#).unwrap();
    assert_eq!(c.max_reply_bytes, 1 << 20);
    let c = parse("cse_url = \"http://x\"\nmax_reply_bytes = \"4MiB\"").unwrap();
    assert_eq!(c.max_reply_bytes, 4 << 20);
    assert!(paths(&c).is_empty(), "{:?}", paths(&c));
    let c = parse("cse_url = \"http://x\"\nmax_reply_bytes = 10").unwrap();
    assert_eq!(paths(&c), ["max_reply_bytes"]);
}

#[test]
fn coap_binding_takes_coap_urls_and_refuses_coaps() {
    let c = parse("binding = \"coap\"\ncse_url = \"coap://10.0.0.5\"").unwrap();
    assert_eq!(c.binding, BindingKind::Coap);
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let c = parse("binding = \"coap\"\ncse_url = \"coap://[::1]:5690\"").unwrap();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    for bad in [
        "coaps://10.0.0.5",
        "http://10.0.0.5",
        "coap://",
        "coap://h/cse-in",
        "coap://h:0",
    ] {
        let c = parse(&format!("binding = \"coap\"\ncse_url = \"{bad}\"")).unwrap();
        assert_eq!(paths(&c), vec!["cse_url"], "{bad}");
    }
    let issues = parse("binding = \"coap\"\ncse_url = \"coaps://h\"")
        .unwrap()
        .validate();
    assert!(issues[0].message.contains("DTLS"), "{issues:?}");
    // HTTP-only settings are flagged, not silently ignored.
    let c = parse(
        "binding = \"coap\"\ncse_url = \"coap://h\"\nauth = { bearer = { token_env = \"T\" } }",
    )
    .unwrap();
    assert_eq!(paths(&c), vec!["auth"]);
}

#[test]
fn serialization_and_resource_mapping() {
    let c = parse(r#"cse_url = "http://127.0.0.1:8080""#).unwrap();
    assert_eq!(c.serialization, Serialization::Json);
    assert_eq!(c.resource, RecordResource::ContentInstance);
    let c = parse(
        r#"cse_url = "http://127.0.0.1:8080"
serialization = "cbor"
resource = "timeSeries""#,
    )
    .unwrap();
    assert_eq!(c.serialization, Serialization::Cbor);
    assert_eq!(c.resource, RecordResource::TimeSeries);
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    assert!(parse("serialization = \"xml\"").is_err());
    assert!(parse("resource = \"flexContainer\"").is_err());
    let mut with_commands = c;
    with_commands.commands.enabled = true;
    assert!(paths(&with_commands).contains(&"resource".to_string()));
}
