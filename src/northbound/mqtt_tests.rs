use super::*;
use crate::northbound::config::BindingKind;
use crate::northbound::onem2m::primitive::Rsc;
use crate::northbound::onem2m::resource::{Ae, Resource};

fn cfg(broker: &str, originator: &str) -> NorthboundConfig {
    let mut c = NorthboundConfig::new("");
    c.binding = BindingKind::Mqtt;
    c.originator = originator.into();
    c.ae_name = "citygate-mq1".into();
    c.request_timeout = Duration::from_secs(2);
    c.mqtt = Some(MqttConfig::new(broker));
    c
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The exchanges of `onem2m_acme_mqtt.json` (shared/vectors), recorded against ACME through
/// mosquitto: request and response primitives only.
const RECORDED: &str = r#"{"exchanges":[{"request_payload":{"op":1,"to":"cse-in","fr":"Ccitygate-mq1","rqi":"m1","rvi":"4","ty":2,"pc":{"m2m:ae":{"rn":"citygate-mq1","api":"Ncitygate","rr":true,"srv":["3","4"],"poa":["mqtt://127.0.0.1:11883"]}}},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":2001,"rqi":"m1","rvi":"4","drt":1,"pc":{"m2m:ae":{"rn":"citygate-mq1","api":"Ncitygate","rr":true,"srv":["3","4"],"poa":["mqtt://127.0.0.1:11883"],"pi":"id-in","ri":"Ccitygate-mq1","ty":2,"aei":"Ccitygate-mq1","ct":"<volatile>","lt":"<volatile>","et":"<volatile>"}}}},{"request_payload":{"op":1,"to":"cse-in/citygate-mq1","fr":"Ccitygate-mq1","rqi":"m2","rvi":"4","ty":3,"pc":{"m2m:cnt":{"rn":"modbus-meter-7","mni":100}}},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":2001,"rqi":"m2","rvi":"4","drt":1,"pc":{"m2m:cnt":{"rn":"modbus-meter-7","mni":100,"cni":0,"cbs":0,"st":0,"pi":"Ccitygate-mq1","ri":"<volatile>","ty":3,"ct":"<volatile>","lt":"<volatile>","et":"<volatile>"}}}},{"request_payload":{"op":1,"to":"cse-in/citygate-mq1/modbus-meter-7","fr":"Ccitygate-mq1","rqi":"m3","rvi":"4","ty":4,"ot":"20261124T000000","pc":{"m2m:cin":{"rn":"r000000000001","cnf":"application/json:0","con":"{\"voltage_v\":230.1}"}}},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":2001,"rqi":"m3","rvi":"4","drt":1,"pc":{"m2m:cin":{"rn":"r000000000001","cnf":"application/json:0","con":"{\"voltage_v\":230.1}","cs":19,"pi":"<volatile>","ri":"<volatile>","ty":4,"ct":"<volatile>","lt":"<volatile>","et":"<volatile>","st":1}}}},{"request_payload":{"op":1,"to":"cse-in/citygate-mq1/modbus-meter-7","fr":"Ccitygate-mq1","rqi":"m4","rvi":"4","ty":4,"pc":{"m2m:cin":{"rn":"r000000000001","cnf":"application/json:0","con":"{\"voltage_v\":230.1}"}}},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":4105,"rqi":"m4","rvi":"4","drt":1,"pc":{"m2m:dbg":"Resource with structured id: cse-in/citygate-mq1/modbus-meter-7/r000000000001 already exists"}}},{"request_payload":{"op":2,"to":"cse-in/citygate-mq1/modbus-meter-7/la","fr":"Ccitygate-mq1","rqi":"m5","rvi":"4"},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":2000,"rqi":"m5","rvi":"4","drt":1,"pc":{"m2m:cin":{"rn":"r000000000001","cnf":"application/json:0","con":"{\"voltage_v\":230.1}","cs":19,"pi":"<volatile>","ri":"<volatile>","ty":4,"ct":"<volatile>","lt":"<volatile>","et":"<volatile>","st":1}}}},{"request_payload":{"op":2,"to":"cse-in/citygate-mq1/nope","fr":"Ccitygate-mq1","rqi":"m6","rvi":"4"},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":4004,"rqi":"m6","rvi":"4","drt":1,"pc":{"m2m:dbg":"No resource with this ID: cse-in/citygate-mq1/nope"}}},{"request_payload":{"op":4,"to":"cse-in/citygate-mq1","fr":"Ccitygate-mq1","rqi":"m7","rvi":"4"},"response_payload":{"fr":"/id-in","to":"Ccitygate-mq1","ot":"<volatile>","rsc":2002,"rqi":"m7","rvi":"4","drt":1}}]}"#;

fn vectors() -> serde_json::Value {
    serde_json::from_str(RECORDED).unwrap()
}

#[test]
fn ids_map_to_topic_levels() {
    assert_eq!(topic_id("/id-in"), "id-in");
    assert_eq!(topic_id("id-in"), "id-in");
    assert_eq!(topic_id("/id-in/Cabc"), "id-in:Cabc");
    assert_eq!(topic_id("Ccitygate-mq1"), "Ccitygate-mq1");
}

#[test]
fn broker_urls_parse() {
    assert_eq!(
        parse_broker("mqtt://127.0.0.1:11883").unwrap(),
        ("127.0.0.1".into(), 11883, false)
    );
    assert_eq!(
        parse_broker("mqtts://broker.city.example/").unwrap(),
        ("broker.city.example".into(), 8883, true)
    );
    assert_eq!(parse_broker("mqtt://b").unwrap(), ("b".into(), 1883, false));
    for bad in [
        "http://b",
        "mqtt://",
        "mqtt://b:x",
        "mqtt://b:0",
        "mqtt://u@b",
    ] {
        assert!(
            matches!(parse_broker(bad), Err(BindingError::Config(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn topics_follow_ts_0010() {
    let b = MqttBinding::new(&cfg(&format!("mqtt://127.0.0.1:{}", closed_port()), "C")).unwrap();
    let ae = Resource::Ae(Ae {
        rn: Some("citygate-mq1".into()),
        api: "Ncitygate".into(),
        rr: false,
        srv: vec!["3".into()],
        lbl: None,
        aei: None,
        common: Default::default(),
    });
    // CSE-assigned AE-ID: registration on reg_req under the credential ID.
    let reg = Request::create("cse-in", "C", "3", &ae);
    assert_eq!(
        b.topics_for(&reg).unwrap(),
        (
            "/oneM2M/reg_req/Ccitygate-mq1/id-in/json".to_string(),
            "/oneM2M/reg_resp/Ccitygate-mq1/+/#".to_string()
        )
    );
    // With an AE-ID: the plain request topic, also for the AE create.
    let reg = Request::create("cse-in", "CirRwiOuHTj", "3", &ae);
    assert_eq!(
        b.topics_for(&reg).unwrap().0,
        "/oneM2M/req/CirRwiOuHTj/id-in/json"
    );
    let get = Request::retrieve("cse-in/citygate-mq1", "/id-in/Cabc", "3");
    assert_eq!(
        b.topics_for(&get).unwrap(),
        (
            "/oneM2M/req/id-in:Cabc/id-in/json".to_string(),
            "/oneM2M/resp/id-in:Cabc/+/#".to_string()
        )
    );
    let anon = Request::retrieve("cse-in/citygate-mq1", "C", "3");
    assert!(matches!(b.topics_for(&anon), Err(BindingError::Config(_))));
    let wild = Request::retrieve("cse-in/x", "C+#", "3");
    assert!(matches!(b.topics_for(&wild), Err(BindingError::Config(_))));
}

#[tokio::test]
async fn broker_down_fails_fast_as_connect_error() {
    let b = MqttBinding::new(&cfg(&format!("mqtt://127.0.0.1:{}", closed_port()), "Cgw")).unwrap();
    let start = std::time::Instant::now();
    let r = b.send(Request::retrieve("cse-in/gw", "Cgw", "3")).await;
    assert!(
        matches!(&r, Err(BindingError::Connect(m)) if m.contains("not connected")),
        "{r:?}"
    );
    // A second request does not wait for the first connect attempt again.
    let start2 = std::time::Instant::now();
    let r = b.send(Request::retrieve("cse-in/gw", "Cgw", "3")).await;
    assert!(matches!(r, Err(BindingError::Connect(_))));
    assert!(start2.elapsed() < Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(!b.is_connected());
}

#[tokio::test]
async fn missing_settings_and_bad_ca_are_config_errors() {
    let mut c = cfg("mqtt://127.0.0.1:1", "Cgw");
    c.mqtt = None;
    assert!(matches!(MqttBinding::new(&c), Err(BindingError::Config(_))));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let mut c = cfg("mqtts://127.0.0.1:1", "Cgw");
    if let Some(m) = c.mqtt.as_mut() {
        m.ca_file = Some(ca);
    }
    let e = MqttBinding::new(&c).unwrap_err();
    assert!(e.to_string().contains("no usable certificate"), "{e}");
}

#[test]
fn binding_needs_a_runtime() {
    let e = MqttBinding::new(&cfg("mqtt://127.0.0.1:1", "Cgw")).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[test]
fn recorded_acme_responses_parse() {
    let v = vectors();
    let exchanges = v["exchanges"].as_array().cloned().unwrap_or_default();
    assert!(exchanges.len() >= 6, "vectors missing");
    for ex in exchanges {
        let payload = serde_json::to_vec(&ex["response_payload"]).unwrap();
        let resp = parse_response(&payload).unwrap();
        assert_eq!(resp.rqi, ex["request_payload"]["rqi"].as_str().unwrap());
        assert_eq!(
            u64::from(resp.rsc.0),
            ex["response_payload"]["rsc"].as_u64().unwrap()
        );
        if resp.rsc == Rsc::CONFLICT {
            assert!(resp.dbg.as_deref().unwrap().contains("already exists"));
        }
        // Our request primitive has the recorded shape.
        let req: Request = serde_json::from_value(ex["request_payload"].clone()).unwrap();
        let mine = serde_json::to_value(&req).unwrap();
        for key in ["op", "to", "fr", "rqi", "rvi", "ty", "pc"] {
            assert_eq!(mine.get(key), ex["request_payload"].get(key), "{key}");
        }
    }
}

#[test]
fn unusable_responses_are_errors() {
    let (rqi, e) = parse_response(b"{not json").unwrap_err();
    assert_eq!(rqi, None);
    assert!(matches!(e, BindingError::BadBody { .. }));
    let (rqi, _) = parse_response(br#"{"rqi":"m1","rsc":"abc"}"#).unwrap_err();
    assert_eq!(rqi.as_deref(), Some("m1"));
    let (rqi, e) = parse_response(br#"{"rsc":4000,"to":"/id-in"}"#).unwrap_err();
    assert_eq!(rqi, None);
    assert!(matches!(e, BindingError::BadBody { rsc: 4000, .. }));
    let r = parse_response(br#"{"rqi":"m2","rsc":"2001"}"#).unwrap();
    assert_eq!((r.rsc, r.rqi.as_str()), (Rsc::CREATED, "m2"));
}

#[test]
fn cbor_responses_parse_and_garbage_is_an_error() {
    let v = serde_json::json!({"rsc": 2001, "rqi": "c1", "pc": {"m2m:cin": {"rn": "x"}}});
    let bytes = Serialization::Cbor.encode(&v).unwrap();
    let r = parse_response_as(Serialization::Cbor, &bytes).unwrap();
    assert_eq!((r.rsc, r.rqi.as_str()), (Rsc::CREATED, "c1"));
    assert_eq!(r.pc.unwrap()["m2m:cin"]["rn"], "x");
    let (rqi, e) = parse_response_as(Serialization::Cbor, &[0xa1, 0x63]).unwrap_err();
    assert!(
        rqi.is_none() && matches!(e, BindingError::BadBody { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn cbor_requests_go_on_cbor_topics() {
    let mut c = cfg("mqtt://127.0.0.1:1", "Cgw");
    c.serialization = Serialization::Cbor;
    let b = MqttBinding::new(&c).unwrap();
    let req = Request::retrieve("cse-in/gw", "Cgw", "3");
    let (topic, filter) = b.topics_for(&req).unwrap();
    assert_eq!(topic, "/oneM2M/req/Cgw/id-in/cbor");
    assert_eq!(filter, "/oneM2M/resp/Cgw/+/#");
}
