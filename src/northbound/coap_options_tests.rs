use super::*;
use crate::northbound::onem2m::primitive::ResourceType;
use crate::northbound::onem2m::primitive::Rsc;
use crate::northbound::retry::{classify, Outcome, RetryReason};
use coap_lite::{MessageType, ResponseType};
use serde_json::json;

fn option_str(p: &Packet, n: u16) -> Option<String> {
    p.get_first_option(CoapOption::Unknown(n))
        .map(|v| String::from_utf8(v.clone()).unwrap())
}

fn all(p: &Packet, o: CoapOption) -> Vec<String> {
    p.get_option(o)
        .map(|l| {
            l.iter()
                .map(|v| String::from_utf8(v.clone()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn create_cin() -> Request {
    Request {
        op: Operation::Create,
        to: "cse-in/citygate/dev-1".into(),
        fr: "Ccitygate".into(),
        rqi: "rq-7".into(),
        rvi: "3".into(),
        ty: Some(ResourceType::ContentInstance),
        rcn: Some(0),
        rqet: None,
        pc: Some(json!({"m2m:cin": {"con": "x"}})),
    }
}

#[test]
fn create_maps_to_post_with_onem2m_options() {
    let (p, body) = request_message(&create_cin()).unwrap();
    assert_eq!(p.header.code, MessageClass::Request(RequestType::Post));
    assert_eq!(
        all(&p, CoapOption::UriPath),
        ["cse-in", "citygate", "dev-1"]
    );
    assert_eq!(all(&p, CoapOption::UriQuery), ["rcn=0"]);
    assert_eq!(option_str(&p, 279).as_deref(), Some("Ccitygate"));
    assert_eq!(option_str(&p, 283).as_deref(), Some("rq-7"));
    assert_eq!(option_str(&p, 271).as_deref(), Some("3"));
    assert_eq!(
        p.get_first_option(CoapOption::Unknown(267)),
        Some(&vec![4u8])
    );
    assert_eq!(
        p.get_first_option(CoapOption::ContentFormat),
        Some(&vec![50u8])
    );
    assert_eq!(p.get_first_option(CoapOption::Accept), Some(&vec![50u8]));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, json!({"m2m:cin": {"con": "x"}}));
    // The codec round trip keeps every option (coap-lite writes what we set).
    let mut p = p;
    p.header.set_type(MessageType::Confirmable);
    let back = Packet::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert_eq!(option_str(&back, 283).as_deref(), Some("rq-7"));
}

#[test]
fn operations_map_to_methods_and_notify_has_no_ty() {
    let mut r = create_cin();
    for (op, method) in [
        (Operation::Retrieve, RequestType::Get),
        (Operation::Update, RequestType::Put),
        (Operation::Delete, RequestType::Delete),
        (Operation::Notify, RequestType::Post),
    ] {
        r.op = op;
        let (p, _) = request_message(&r).unwrap();
        assert_eq!(p.header.code, MessageClass::Request(method));
        // Only CREATE carries ty: it is how the CSE tells CREATE from NOTIFY.
        assert!(p.get_first_option(CoapOption::Unknown(267)).is_none());
    }
    let mut get = Request::retrieve("cse-in/citygate", "Cx", "3");
    get.fr = String::new();
    let (p, body) = request_message(&get).unwrap();
    assert!(body.is_empty());
    assert!(p.get_first_option(CoapOption::ContentFormat).is_none());
    assert!(p.get_first_option(CoapOption::Unknown(279)).is_none());
}

#[test]
fn addresses_map_to_uri_path_like_http() {
    assert_eq!(uri_path("cse-in/a/b"), ["cse-in", "a", "b"]);
    assert_eq!(uri_path("/id-in/cnt-1"), ["~", "id-in", "cnt-1"]);
    assert_eq!(
        uri_path("//sp.example/id-in/x"),
        ["_", "sp.example", "id-in", "x"]
    );
    // Segments are decoded: the option holds the raw name.
    assert_eq!(uri_path("cse-in/a%2Fb/c%20d"), ["cse-in", "a/b", "c d"]);
}

#[test]
fn authority_of_coap_urls() {
    assert_eq!(parse_authority("10.0.0.5"), Ok(("10.0.0.5".into(), 5683)));
    assert_eq!(
        parse_authority("cse.example:5690/"),
        Ok(("cse.example".into(), 5690))
    );
    assert_eq!(parse_authority("[::1]:61616"), Ok(("::1".into(), 61616)));
    assert_eq!(parse_authority("[fe80::1]"), Ok(("fe80::1".into(), 5683)));
    for bad in [
        "", ":5683", "h:0", "h:99999", "h:x", "h/cse-in", "h?a=1", "u@h", "[::1",
    ] {
        assert!(parse_authority(bad).is_err(), "{bad}");
    }
}

#[test]
fn uint_options_are_minimal_big_endian() {
    assert_eq!(encode_uint(0), Vec::<u8>::new());
    assert_eq!(encode_uint(4), [4]);
    assert_eq!(encode_uint(2001), [0x07, 0xd1]);
    assert_eq!(encode_uint(70_000), [0x01, 0x11, 0x70]);
    for v in [0, 1, 255, 256, 2001, 4105, 70_000, u32::MAX] {
        assert_eq!(decode_uint(&encode_uint(v)), Some(v));
    }
    assert_eq!(decode_uint(&[1, 2, 3, 4, 5]), None);
}

fn response(code: ResponseType, rsc: Option<u32>, body: &str) -> (Packet, Vec<u8>) {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Acknowledgement);
    p.header.code = MessageClass::Response(code);
    if let Some(rsc) = rsc {
        p.add_option(CoapOption::Unknown(307), encode_uint(rsc));
    }
    p.add_option(CoapOption::Unknown(283), b"rq-7".to_vec());
    p.add_option(CoapOption::ContentFormat, encode_uint(50));
    (p, body.as_bytes().to_vec())
}

fn outcome(code: ResponseType, rsc: Option<u32>, body: &str) -> Outcome {
    let (p, b) = response(code, rsc, body);
    classify(&parse_response(&p, &b, "rq-7"))
}

/// The RSC option decides, exactly like X-M2M-RSC over HTTP; the CoAP code only matters when
/// the option is missing.
#[test]
fn outcome_classes_follow_rsc_like_http() {
    use ResponseType::*;
    assert_eq!(outcome(Created, Some(2001), ""), Outcome::Delivered);
    assert_eq!(
        outcome(Conflict, Some(4105), r#"{"m2m:dbg":"exists"}"#),
        Outcome::AlreadyThere
    );
    // 4.04 is 4004 (tree missing) or 5103-like; only the RSC tells.
    assert!(matches!(
        outcome(NotFound, Some(4004), ""),
        Outcome::TreeMissing { .. }
    ));
    assert!(matches!(
        outcome(BadRequest, Some(4000), r#"{"m2m:dbg":"bad label"}"#),
        Outcome::Permanent {
            rsc: Some(4000),
            ..
        }
    ));
    assert!(matches!(
        outcome(NotAcceptable, Some(5207), ""),
        Outcome::Permanent {
            rsc: Some(5207),
            ..
        }
    ));
    assert!(matches!(
        outcome(Forbidden, Some(4103), ""),
        Outcome::Refused {
            rsc: Some(4103),
            ..
        }
    ));
    assert!(matches!(
        outcome(InternalServerError, Some(5000), ""),
        Outcome::Retry {
            reason: RetryReason::Server,
            ..
        }
    ));
    // Without RSC: 4.01/4.03 refuse the gateway, anything else is unusable (retried).
    assert!(matches!(
        outcome(Unauthorized, None, ""),
        Outcome::Refused { rsc: None, .. }
    ));
    assert!(matches!(
        outcome(Forbidden, None, ""),
        Outcome::Refused { rsc: None, .. }
    ));
    assert!(matches!(
        outcome(BadGateway, None, "proxy"),
        Outcome::Retry {
            reason: RetryReason::BadResponse,
            ..
        }
    ));
    assert!(matches!(
        outcome(Content, Some(2000), "{not json"),
        Outcome::Retry {
            reason: RetryReason::BadResponse,
            ..
        }
    ));
}

#[test]
fn response_body_and_dbg_are_lifted() {
    let (p, b) = response(
        ResponseType::Content,
        Some(2000),
        r#"{"m2m:ae":{"aei":"Cx"}}"#,
    );
    let r = parse_response(&p, &b, "rq-7").unwrap();
    assert_eq!(r.rsc, Rsc(2000));
    assert_eq!(r.rqi, "rq-7");
    assert_eq!(r.pc, Some(json!({"m2m:ae":{"aei":"Cx"}})));
    let (p, b) = response(ResponseType::BadRequest, Some(4000), r#"{"m2m:dbg":"no"}"#);
    assert_eq!(
        parse_response(&p, &b, "rq-7").unwrap().dbg.as_deref(),
        Some("no")
    );
    assert_eq!(code_number(p.header.code), 400);
    assert_eq!(
        code_text(MessageClass::Response(ResponseType::Continue)),
        "2.31"
    );
}

/// A CSE that is still starting answers `4000` with request id `None` (ACME reads the request
/// only once its attribute policies are loaded): that is no verdict on the record, so it is
/// retried instead of dead-lettered. Recorded from ACME restarting under a backlog.
#[test]
fn an_answer_naming_another_request_is_retried_not_dead_lettered() {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Acknowledgement);
    p.header.code = MessageClass::Response(ResponseType::BadRequest);
    p.add_option(CoapOption::Unknown(307), encode_uint(4000));
    p.add_option(CoapOption::Unknown(283), b"None".to_vec());
    p.add_option(CoapOption::ContentFormat, encode_uint(50));
    let body = br#"{"m2m:dbg":"invalid arguments/attributes: attribute: fr, value: Ccitygate-test : validation for attribute fr not defined"}"#;
    let result = parse_response(&p, body, "cg2e5c0c-65");
    assert!(
        matches!(&result, Err(BindingError::ForeignResponse { rsc: 4000, got, .. }) if got == "None"),
        "{result:?}"
    );
    assert!(matches!(
        classify(&result),
        Outcome::Retry {
            reason: RetryReason::BadResponse,
            ..
        }
    ));
    // Without a request id the answer is taken as ours (the token matched it).
    p.clear_option(CoapOption::Unknown(283));
    assert!(matches!(
        classify(&parse_response(&p, body, "cg2e5c0c-65")),
        Outcome::Permanent {
            rsc: Some(4000),
            ..
        }
    ));
}
