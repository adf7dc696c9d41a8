//! The binding against a raw TCP "CSE" that records what arrives byte for byte and answers
//! with canned bytes (header case, missing RSC, garbage), which a real CSE cannot be made to do.
use super::*;
use crate::northbound::config::{AuthConfig, BasicAuth};
use crate::northbound::onem2m::primitive::Rsc;
use crate::northbound::onem2m::resource::{ContentInstance, Resource};
use crate::northbound::serialization::Serialization;
use crate::telemetry::WireMetrics;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

/// One received request: the head (request line + headers, raw) and the body.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

struct RawServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<usize>>,
}

/// Serves `reply` (a full HTTP response without Content-Length; it is added) to every request,
/// keeping connections open. `reply == None` never answers.
async fn raw_server(reply: Option<&'static str>, body: &'static str) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let (s, c) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            *c.lock().unwrap() += 1;
            let s = s.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let mut buf = vec![0; len];
                    if r.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    s.lock().unwrap().push(Seen {
                        head,
                        body: String::from_utf8_lossy(&buf).into_owned(),
                    });
                    let Some(reply) = reply else {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    };
                    let out = format!("{reply}Content-Length: {}\r\n\r\n{body}", body.len());
                    if w.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    RawServer {
        url,
        seen,
        connections,
    }
}

fn binding(url: &str) -> HttpBinding {
    let mut cfg = NorthboundConfig::new(url);
    cfg.request_timeout = Duration::from_millis(800);
    HttpBinding::new(&cfg).unwrap()
}

fn cin_request() -> Request {
    let cin = Resource::ContentInstance(ContentInstance {
        rn: Some("e1-7".into()),
        cnf: Some("application/json:0".into()),
        con: Some("{}".into()),
        dgt: None,
        lbl: None,
        cs: None,
        common: Default::default(),
    });
    Request::create("cse-in/gw/dev-1", "Cgw", "3", &cin)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// What the binding makes of a server answering `reply` + `body` to a contentInstance create.
async fn cin_answer(reply: &'static str, body: &'static str) -> Result<Response, BindingError> {
    let srv = raw_server(Some(reply), body).await;
    timeout(T, binding(&srv.url).send(cin_request()))
        .await
        .expect("an answer or an error within the test's timeout")
}

#[tokio::test]
async fn create_sends_exact_headers_and_reads_mixed_case_rsc() {
    let srv = raw_server(
        Some("HTTP/1.1 201 Created\r\nX-M2m-Rsc: 2001\r\nContent-Type: application/json\r\n"),
        r#"{"m2m:cin":{"rn":"e1-7","ri":"cin1"}}"#,
    )
    .await;
    let b = binding(&srv.url);
    let req = cin_request();
    let resp = timeout(T, b.send(req.clone())).await.unwrap().unwrap();
    assert_eq!(resp.rsc, Rsc::CREATED);
    assert_eq!(resp.pc.unwrap()["m2m:cin"]["ri"], "cin1");
    let seen = srv.seen.lock().unwrap()[0].clone();
    assert!(
        seen.head.starts_with("POST /cse-in/gw/dev-1 HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(
        header(&seen.head, "content-type"),
        Some("application/json;ty=4")
    );
    assert_eq!(header(&seen.head, "x-m2m-origin"), Some("Cgw"));
    assert_eq!(header(&seen.head, "x-m2m-ri"), Some(req.rqi.as_str()));
    assert_eq!(header(&seen.head, "x-m2m-rvi"), Some("3"));
    assert_eq!(header(&seen.head, "accept"), Some("application/json"));
    assert_eq!(header(&seen.head, "authorization"), None);
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, req.pc.unwrap());
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let srv = raw_server(Some("HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\n"), "").await;
    let b = binding(&srv.url);
    for _ in 0..5 {
        let r = timeout(T, b.send(Request::retrieve("cse-in", "CAdmin", "3")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.rsc, Rsc::OK);
        assert_eq!(r.pc, None);
    }
    assert_eq!(srv.seen.lock().unwrap().len(), 5);
    assert_eq!(*srv.connections.lock().unwrap(), 1);
    let head = srv.seen.lock().unwrap()[0].head.clone();
    assert!(head.starts_with("GET /cse-in HTTP/1.1"), "{head}");
    assert_eq!(header(&head, "content-type"), None);
}

#[tokio::test]
async fn unauthorized_without_rsc_is_auth_refused() {
    for status in ["401 Unauthorized", "403 Forbidden"] {
        let reply: &'static str = Box::leak(format!("HTTP/1.1 {status}\r\n").into_boxed_str());
        let err = cin_answer(reply, "").await.unwrap_err();
        assert!(matches!(err, BindingError::AuthRefused { .. }), "{err}");
    }
}

#[tokio::test]
async fn forbidden_with_rsc_is_a_response() {
    let r = cin_answer(
        "HTTP/1.1 403 Forbidden\r\nX-M2M-RSC: 4117\r\n",
        r#"{"m2m:dbg": "Originator has already registered: Cgw"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.rsc, Rsc::ORIGINATOR_HAS_ALREADY_REGISTERED);
    assert_eq!(
        r.dbg.as_deref(),
        Some("Originator has already registered: Cgw")
    );
}

#[tokio::test]
async fn garbage_and_missing_rsc_are_clear_errors() {
    let err = cin_answer("HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\n", "<html>oops")
        .await
        .unwrap_err();
    assert!(
        matches!(err, BindingError::BadBody { rsc: 2001, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("<html>oops"), "{err}");

    let err = cin_answer("HTTP/1.1 502 Bad Gateway\r\n", "proxy down")
        .await
        .unwrap_err();
    assert!(
        matches!(err, BindingError::MissingRsc { status: 502, .. }),
        "{err}"
    );

    let err = cin_answer("HTTP/1.1 200 OK\r\nX-M2M-RSC: two\r\n", "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, BindingError::MissingRsc { status: 200, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn silent_server_times_out_and_closed_port_refuses() {
    let srv = raw_server(None, "").await;
    let err = timeout(T, binding(&srv.url).send(cin_request()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, BindingError::Timeout(_)), "{err}");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = timeout(
        T,
        binding(&format!("http://127.0.0.1:{port}")).send(cin_request()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, BindingError::Connect(_)), "{err}");
}

#[tokio::test]
async fn basic_auth_and_address_forms() {
    let srv = raw_server(Some("HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\n"), "{}").await;
    let mut cfg = NorthboundConfig::new(format!("{}/", srv.url));
    std::env::set_var("CITYGATE_HTTP_TEST_PW", "gwpass");
    cfg.auth = AuthConfig {
        basic: Some(BasicAuth {
            user: "gw".into(),
            password_file: None,
            password_env: Some("CITYGATE_HTTP_TEST_PW".into()),
        }),
        bearer: None,
    };
    let b = HttpBinding::new(&cfg).unwrap();
    for (to, path) in [
        ("cse-in/gw", "/cse-in/gw"),
        ("/id-in/cse-in/gw", "/~/id-in/cse-in/gw"),
        (
            "//acme.example.com/id-in/cse-in",
            "/_/acme.example.com/id-in/cse-in",
        ),
    ] {
        let req = Request::retrieve(to, "Cgw", "3");
        assert_eq!(b.url_for(&req), format!("{}{path}", srv.url));
        timeout(T, b.send(req)).await.unwrap().unwrap();
    }
    assert_eq!(
        b.url_for(&Request::retrieve("cse-in", "C", "3").with_rcn(0)),
        format!("{}/cse-in?rcn=0", srv.url)
    );
    let head = srv.seen.lock().unwrap()[0].head.clone();
    // base64("gw:gwpass")
    assert_eq!(header(&head, "authorization"), Some("Basic Z3c6Z3dwYXNz"));
}

#[test]
fn bad_config_is_a_config_error() {
    let mut cfg = NorthboundConfig::new("http://127.0.0.1:1");
    cfg.tls.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(
        HttpBinding::new(&cfg),
        Err(BindingError::Config(_))
    ));
    assert!(matches!(
        HttpBinding::new(&NorthboundConfig::new("ftp://x")),
        Err(BindingError::Config(_))
    ));
}

/// An answer that names another request id is no verdict on this request (a CSE still starting
/// answers `4000` with request id `None`): an error the syncer retries, never a rejection.
#[tokio::test]
async fn an_answer_naming_another_request_is_no_verdict() {
    let result = cin_answer(
        "HTTP/1.1 400 Bad Request\r\nX-M2M-RSC: 4000\r\nX-M2M-RI: None\r\n",
        r#"{"m2m:dbg":"validation for attribute fr not defined"}"#,
    )
    .await;
    assert!(
        matches!(&result, Err(BindingError::ForeignResponse { rsc: 4000, got, .. }) if got == "None"),
        "{result:?}"
    );
}

#[tokio::test]
async fn overload_answers_carry_retry_after() {
    // 503 / 429 without RSC: an overload error with the server's wait.
    let err = cin_answer(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n",
        "busy",
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        BindingError::Overloaded {
            status: 503,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let err = cin_answer("HTTP/1.1 429 Too Many Requests\r\n", "")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BindingError::Overloaded {
            status: 429,
            retry_after: None
        }
    );
    // A oneM2M 5xxx answer keeps its RSC and the wait (an HTTP date in the future).
    let date: &'static str = Box::leak(
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nX-M2M-RSC: 5000\r\nRetry-After: {}\r\n",
            (chrono::Utc::now() + chrono::Duration::seconds(30))
                .format("%a, %d %b %Y %H:%M:%S GMT")
        )
        .into_boxed_str(),
    );
    let r = cin_answer(date, "").await.unwrap();
    assert_eq!(r.rsc, Rsc(5000));
    let wait = r.retry_after.expect("Retry-After kept");
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&wait),
        "{wait:?}"
    );
}

#[tokio::test]
async fn cbor_request_and_answer_and_wire_bytes() {
    // "bok" is the CBOR text string "ok" (0x62 'o' 'k').
    let srv = raw_server(
        Some("HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\nContent-Type: application/cbor\r\n"),
        "bok",
    )
    .await;
    let mut cfg = NorthboundConfig::new(&srv.url);
    cfg.serialization = Serialization::Cbor;
    let wire = WireMetrics::detached();
    let b = HttpBinding::new(&cfg)
        .unwrap()
        .with_wire_metrics(wire.clone());
    let req = cin_request();
    let resp = timeout(T, b.send(req.clone())).await.unwrap().unwrap();
    assert_eq!(resp.rsc, Rsc::CREATED);
    assert_eq!(resp.pc, Some(serde_json::json!("ok")));
    let seen = srv.seen.lock().unwrap()[0].clone();
    assert_eq!(
        header(&seen.head, "content-type"),
        Some("application/cbor;ty=4")
    );
    assert_eq!(header(&seen.head, "accept"), Some("application/cbor"));
    let body_len: usize = header(&seen.head, "content-length")
        .unwrap()
        .parse()
        .unwrap();
    let sent = Serialization::Cbor
        .encode(req.pc.as_ref().unwrap())
        .unwrap();
    assert_eq!(body_len, sent.len());
    // Everything the server read: head, blank line, body.
    assert_eq!(wire.sent.get(), (seen.head.len() + 2 + body_len) as u64);
    assert_eq!(wire.requests.get(), 1);
    assert!(wire.received.get() > 60, "{}", wire.received.get());
}

#[tokio::test]
async fn garbage_cbor_answer_is_a_bad_body() {
    let err = cin_answer(
        "HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\nContent-Type: application/cbor\r\n",
        "\u{1f}\u{7f}",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, BindingError::BadBody { rsc: 2000, detail } if detail.contains("CBOR")),
        "{err:?}"
    );
}
