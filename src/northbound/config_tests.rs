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
    let e = parse("cse_url = \"http://x\"\nbinding = \"coap\"").unwrap_err();
    assert!(e.to_string().contains("coap"), "{e}");
}

#[test]
fn mqtt_is_reserved_but_not_available() {
    let c = parse("cse_url = \"http://x\"\nbinding = \"mqtt\"").unwrap();
    assert_eq!(c.binding, BindingKind::Mqtt);
    assert_eq!(paths(&c), vec!["binding"]);
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
            "auth.basic",
            "auth.bearer",
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
