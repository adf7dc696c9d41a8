//! The 25 HTTP exchanges recorded against a real ACME CSE (tests/vectors/onem2m_acme_http.json):
//! - every recorded response parses to its `X-M2M-RSC` and `m2m:dbg`, and classifies into the
//!   outcome class the gateway must take (stated here per case, independently of retry.rs);
//! - every request the gateway can express as a `Request` goes out on the wire as recorded
//!   (method, path, X-M2M-* headers, exact Content-Type, body) to a local replay server that
//!   answers with the recorded response.
use citygate::northbound::http::parse_response;
use citygate::northbound::onem2m::primitive::{Operation, Request, ResourceType, Rsc};
use citygate::northbound::retry::{classify, Outcome};
use citygate::northbound::{Binding, HttpBinding, NorthboundConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/onem2m_acme_http.json"
);

fn exchanges() -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS).expect("vector file");
    let v: Value = serde_json::from_str(&text).expect("vector JSON");
    v["exchanges"].as_array().expect("exchanges").clone()
}

/// The class the gateway must take for each recorded answer.
fn expected_class(name: &str) -> &'static str {
    match name {
        "retrieve_ae_before_registration"
        | "retrieve_missing"
        | "create_cin_in_missing_container" => "tree_missing",
        "create_device_container_duplicate" | "create_cin_duplicate_rn_retry" => "already_there",
        "register_ae_again_same_originator" | "missing_rvi" | "other_originator_no_privilege" => {
            "refused"
        }
        "create_with_unsupported_media_type"
        | "create_missing_ty"
        | "create_wrong_ty_for_body"
        | "create_unknown_attribute" => "permanent",
        _ => "delivered",
    }
}

fn class_of(o: &Outcome) -> &'static str {
    match o {
        Outcome::Delivered => "delivered",
        Outcome::AlreadyThere => "already_there",
        Outcome::Retry { .. } => "retry",
        Outcome::TreeMissing { .. } => "tree_missing",
        Outcome::Permanent { .. } => "permanent",
        Outcome::Refused { .. } => "refused",
    }
}

fn response_body_bytes(body: &Value) -> Vec<u8> {
    match body {
        Value::Null => Vec::new(),
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap(),
    }
}

#[test]
fn every_recorded_response_parses_and_classifies() {
    let cases = exchanges();
    assert_eq!(cases.len(), 25);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let resp = &case["response"];
        let rsc: u16 = resp["X-M2M-RSC"].as_str().unwrap().parse().unwrap();
        let mut headers = HeaderMap::new();
        // waitress spells it X-M2m-Rsc; HeaderMap lookups ignore case either way.
        headers.insert(
            HeaderName::from_bytes(b"X-M2m-Rsc").unwrap(),
            HeaderValue::from_str(&rsc.to_string()).unwrap(),
        );
        let rqi = resp["X-M2M-RI"].as_str().unwrap();
        headers.insert("x-m2m-ri", HeaderValue::from_str(rqi).unwrap());
        let status = resp["http_status"].as_u64().unwrap() as u16;
        let parsed = parse_response(status, &headers, &response_body_bytes(&resp["body"]), rqi)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.rsc, Rsc(rsc), "{name}");
        assert_eq!(parsed.rqi, rqi, "{name}");
        assert_eq!(
            parsed.dbg.as_deref(),
            resp["body"]["m2m:dbg"].as_str(),
            "{name}"
        );
        let outcome = classify(&Ok(parsed));
        assert_eq!(
            class_of(&outcome),
            expected_class(name),
            "{name}: {outcome:?}"
        );
    }
}

/// The vector's request as a `Request`, when the gateway can express it.
fn as_request(req: &Value) -> Option<Request> {
    let h = &req["headers"];
    let rvi = h["X-M2M-RVI"].as_str()?.to_string();
    let path = req["path"].as_str()?;
    if path.contains('?') {
        return None; // discovery: the syncer never sends it
    }
    let op = match req["method"].as_str()? {
        "GET" => Operation::Retrieve,
        "POST" => Operation::Create,
        "PUT" => Operation::Update,
        "DELETE" => Operation::Delete,
        _ => return None,
    };
    let ty = match h["Content-Type"].as_str() {
        None | Some("application/json") => None,
        Some(ct) => {
            let n: u16 = ct.strip_prefix("application/json;ty=")?.parse().ok()?;
            Some(ResourceType::try_from(n).ok()?)
        }
    };
    if op == Operation::Create && ty.is_none() {
        return None; // a create without ty is malformed on purpose
    }
    let pc = match &req["body"] {
        Value::Null => None,
        Value::Object(_) => Some(req["body"].clone()),
        _ => return None,
    };
    Some(Request {
        op,
        to: path.trim_start_matches('/').to_string(),
        fr: h["X-M2M-Origin"].as_str()?.to_string(),
        rqi: h["X-M2M-RI"].as_str()?.to_string(),
        rvi,
        ty,
        rcn: None,
        pc,
        rqet: None,
    })
}

struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Accepts one connection, reads one request, answers with the recorded response.
async fn replay_once(listener: TcpListener, resp: Value) -> Seen {
    let (sock, _) = listener.accept().await.unwrap();
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let len = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.unwrap();
    let out_body = response_body_bytes(&resp["body"]);
    let reply = format!(
        "HTTP/1.1 {} X\r\nX-M2m-Rsc: {}\r\nX-M2m-Ri: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        resp["http_status"],
        resp["X-M2M-RSC"].as_str().unwrap(),
        resp["X-M2M-RI"].as_str().unwrap(),
        out_body.len()
    );
    w.write_all(reply.as_bytes()).await.unwrap();
    w.write_all(&out_body).await.unwrap();
    Seen { head, body }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn expressible_requests_go_out_as_recorded() {
    let mut replayed = 0;
    for case in exchanges() {
        let name = case["name"].as_str().unwrap().to_string();
        let Some(req) = as_request(&case["request"]) else {
            continue;
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(replay_once(listener, case["response"].clone()));
        let binding = HttpBinding::new(&NorthboundConfig::new(&url)).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), binding.send(req.clone()))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let seen = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let rec = &case["request"];
        let want_line = format!(
            "{} {} HTTP/1.1",
            rec["method"].as_str().unwrap(),
            rec["path"].as_str().unwrap()
        );
        assert!(seen.head.starts_with(&want_line), "{name}: {}", seen.head);
        for h in [
            "X-M2M-Origin",
            "X-M2M-RI",
            "X-M2M-RVI",
            "Content-Type",
            "Accept",
        ] {
            assert_eq!(
                header(&seen.head, h),
                rec["headers"][h].as_str(),
                "{name}: {h}"
            );
        }
        if rec["body"].is_object() {
            let body: Value = serde_json::from_slice(&seen.body).unwrap();
            assert_eq!(body, rec["body"], "{name}");
        } else {
            assert!(seen.body.is_empty(), "{name}");
        }
        assert_eq!(
            resp.rsc.0.to_string(),
            case["response"]["X-M2M-RSC"].as_str().unwrap(),
            "{name}"
        );
        replayed += 1;
    }
    // 25 minus discovery, the three malformed requests on purpose and the flexContainer.
    assert_eq!(replayed, 20);
}
