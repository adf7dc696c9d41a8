//! Counting HTTP proxy between a fleet of gateways and one oneM2M CSE, with an outage switch,
//! and a plain saturating client to measure the CSE's ceiling through the same proxy.
//! Used by `benches/fleet/run.sh` (see benches/fleet/README.md).
//!
//! ```text
//! fleet_proxy proxy --listen 127.0.0.1:P --upstream http://127.0.0.1:U --control 127.0.0.1:C --log requests.csv [--outage refuse|blackhole] [--plain-listen 127.0.0.1:Q]
//! fleet_proxy saturate --url http://127.0.0.1:P --seconds 20 --concurrency 8 --tag a
//! fleet_proxy peers-mqtt        (mosquitto + ACME with MQTT; prints `HTTP_URL BROKER_PORT`)
//! fleet_proxy proxy --protocol mqtt --listen 127.0.0.1:P --upstream 127.0.0.1:BROKER --control … --log …
//! fleet_proxy saturate-mqtt --broker 127.0.0.1:P --seconds 20 --concurrency 4 --tag a
//! ```
//!
//! The MQTT variants are in benches/fleet/mqtt.rs.
//!
//! The proxy writes one CSV line per request: `t_ms` (Unix ms at the answer), `origin`
//! (`X-M2M-Origin`), `op` (`ae`, `cnt`, `cin` for creates by `ty`, else the method), HTTP
//! `status`, `rsc` (`X-M2M-RSC`, 0 when none) and `latency_ms`; a request the client gave up on
//! (its timeout) before the answer is a line with status 0 and rsc `abandoned`. Its control port takes
//! `POST /down` and `POST /up`. Down in `refuse` mode closes the listener and every open
//! connection (a CSE process or load balancer gone: connection refused); down in `blackhole`
//! mode accepts and never answers (a network partition: requests time out). Requests refused
//! during an outage never reach the proxy's handler and are not logged. `--plain-listen` opens a
//! second door to the same upstream that the outage never closes (for the plain client that
//! measures the CSE's ceiling during the outage); its requests are logged too.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[allow(dead_code)] // `require` is for the tests
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[path = "../benches/fleet/mqtt.rs"]
mod mqtt;
#[path = "common/plain_http.rs"]
mod plain_http;
#[path = "common/plain_mqtt.rs"]
mod plain_mqtt;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[derive(Clone)]
struct Proxy {
    client: reqwest::Client,
    upstream: String,
    /// The platform's switch (`POST /down`, `POST /up`).
    up: watch::Receiver<bool>,
    blackhole: bool,
    log: mpsc::UnboundedSender<String>,
}

/// What a request is, for the CSV: creates by resource type, other requests by method.
fn op_of(method: &str, headers: &HeaderMap) -> String {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ct.split("ty=").nth(1).map(|t| t.trim()) {
        Some("2") => "ae".into(),
        Some("3") => "cnt".into(),
        Some("4") => "cin".into(),
        Some(t) => format!("ty{t}"),
        None => method.to_ascii_lowercase(),
    }
}

/// Logs a request the client gave up on (its timeout) as status 0, RSC `abandoned`: the
/// handler's future is dropped before it answers.
struct Abandoned {
    log: mpsc::UnboundedSender<String>,
    line: Option<(String, String, Instant)>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some((origin, op, started)) = self.line.take() {
            let _ = self.log.send(format!(
                "{},{},{},0,abandoned,{}\n",
                now_ms(),
                origin,
                op,
                started.elapsed().as_millis()
            ));
        }
    }
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let origin = parts
        .headers
        .get("x-m2m-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .replace(',', "_");
    let op = op_of(parts.method.as_str(), &parts.headers);
    let mut guard = Abandoned {
        log: p.log.clone(),
        line: Some((origin.clone(), op.clone(), started)),
    };
    if p.blackhole && !*p.up.borrow() {
        // A partition: the request goes nowhere; the client's timeout ends it.
        std::future::pending::<()>().await;
    }
    let body = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut rb = p
        .client
        .request(parts.method.clone(), format!("{}{}", p.upstream, path))
        .body(body);
    for (name, value) in parts.headers.iter() {
        if name != "host" && name != "connection" && name != "content-length" {
            rb = rb.header(name, value);
        }
    }
    let (status, rsc, resp) = match rb.send().await {
        Ok(r) => {
            let status = r.status();
            let mut headers = HeaderMap::new();
            for (name, value) in r.headers() {
                if name != "connection" && name != "transfer-encoding" && name != "content-length" {
                    headers.insert(name.clone(), value.clone());
                }
            }
            let rsc = headers
                .get("x-m2m-rsc")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0")
                .to_string();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            *resp.headers_mut() = headers;
            (status.as_u16(), rsc, resp)
        }
        Err(_) => {
            let mut resp = Response::new(Body::from("upstream unreachable"));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp.headers_mut().insert(
                HeaderName::from_static("x-m2m-rsc"),
                HeaderValue::from_static("5103"),
            );
            (502, "5103".into(), resp)
        }
    };
    guard.line = None;
    let _ = p.log.send(format!(
        "{},{},{},{},{},{}\n",
        now_ms(),
        origin,
        op,
        status,
        rsc,
        started.elapsed().as_millis()
    ));
    resp
}

async fn run_proxy(args: &[String]) -> anyhow::Result<()> {
    let listen = arg(args, "--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream = arg(args, "--upstream").ok_or_else(|| anyhow::anyhow!("--upstream"))?;
    let control = arg(args, "--control").ok_or_else(|| anyhow::anyhow!("--control"))?;
    let log_path = arg(args, "--log").ok_or_else(|| anyhow::anyhow!("--log"))?;
    let blackhole = arg(args, "--outage").as_deref() == Some("blackhole");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log_path)?);
    writeln!(file, "t_ms,origin,op,status,rsc,latency_ms")?;
    // Flushed every second: the harness waits a few seconds after the last request before it
    // ends the proxy with SIGTERM.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(l) => { let _ = file.write_all(l.as_bytes()); }
                    None => break,
                },
                _ = tick.tick() => { let _ = file.flush(); }
            }
        }
        let _ = file.flush();
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    // `up` is the platform's switch. In refuse mode false ends the server (listener and
    // connections), true starts a new one on the same address; in blackhole mode the HTTP
    // handler and the MQTT relay hold every request and byte while it is false.
    let (up_tx, up_rx) = watch::channel(true);
    let proxy = Proxy {
        client,
        upstream: upstream.trim_end_matches('/').to_string(),
        up: up_rx.clone(),
        blackhole,
        log: tx,
    };
    let switch = |to: bool, answer: &'static str| {
        let up_tx = up_tx.clone();
        post(move || async move {
            let _ = up_tx.send(to);
            answer
        })
    };
    let ctl = Router::new()
        .route("/down", switch(false, "down\n"))
        .route("/up", switch(true, "up\n"));
    let ctl_listener = tokio::net::TcpListener::bind(&control).await?;
    tokio::spawn(async move { axum::serve(ctl_listener, ctl).await });
    let mqtt = arg(args, "--protocol").as_deref() == Some("mqtt");
    // The plain client's door: the same relay, never taken down, so that the CSE's ceiling can
    // be measured through the proxy during the outage too (its overhead included, as for the
    // fleet). Its switch stays up while this function runs.
    let (_plain_up_tx, plain_up) = watch::channel(true);
    if let Some(plain) = arg(args, "--plain-listen") {
        let addr: std::net::SocketAddr = plain.parse()?;
        if mqtt {
            let relay = mqtt::relay(addr, upstream.clone(), plain_up, false, proxy.log.clone());
            tokio::spawn(relay);
        } else {
            let state = Proxy {
                up: plain_up,
                blackhole: false,
                ..proxy.clone()
            };
            let app = Router::new().fallback(forward).with_state(state);
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    if mqtt {
        // Bytes relayed to the broker.
        let addr: std::net::SocketAddr = listen.parse()?;
        eprintln!("fleet_proxy (mqtt) on {addr} -> {upstream}, control {control}, log {log_path}");
        return mqtt::relay(addr, upstream, up_rx, blackhole, proxy.log.clone()).await;
    }
    let app = Router::new().fallback(forward).with_state(proxy);
    let addr: std::net::SocketAddr = listen.parse()?;
    eprintln!("fleet_proxy on {addr} -> {upstream}, control {control}, log {log_path}");
    let mut up_rx = up_rx;
    if blackhole {
        // The HTTP handler holds requests while the platform is down; the listener stays.
        let listener = tokio::net::TcpListener::bind(addr).await?;
        return Ok(axum::serve(listener, app).await?);
    }
    loop {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut stop = up_rx.clone();
        let serve = axum::serve(listener, app.clone()).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|up| !*up).await;
        });
        let server = tokio::spawn(async move { serve.await });
        up_rx.wait_for(|up| !*up).await?;
        // The listener is gone now (connections are refused); graceful shutdown closes idle
        // keep-alive connections and each busy one after its current answer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.abort();
        let _ = server.await;
        up_rx.wait_for(|up| *up).await?;
    }
}

/// The CSE's ceiling: `concurrency` keep-alive tasks creating contentInstances (bodies like a
/// gateway's) into their own containers for `seconds`. Prints `creates/s`.
async fn run_saturate(args: &[String]) -> anyhow::Result<()> {
    let base = arg(args, "--url").ok_or_else(|| anyhow::anyhow!("--url"))?;
    let seconds: f64 = arg(args, "--seconds").map_or(Ok(20.0), |s| s.parse())?;
    let conc: usize = arg(args, "--concurrency").map_or(Ok(8), |s| s.parse())?;
    let tag = arg(args, "--tag").unwrap_or_else(|| "a".into());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .timeout(Duration::from_secs(30))
        .build()?;
    let fr = format!("Csaturate-{tag}");
    let ae = serde_json::json!({"m2m:ae": {"rn": format!("saturate-{tag}"), "api": "Nbench", "rr": false, "srv": ["3"]}});
    let rsc = plain_http::post(&client, &format!("{base}/cse-in"), &fr, 2, ae).await?;
    anyhow::ensure!(rsc == 2001, "AE create answered {rsc}");
    for d in 0..conc {
        let cnt = serde_json::json!({"m2m:cnt": {"rn": format!("dev-{d}")}});
        let url = format!("{base}/cse-in/saturate-{tag}");
        let rsc = plain_http::post(&client, &url, &fr, 3, cnt).await?;
        anyhow::ensure!(rsc == 2001, "container create answered {rsc}");
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for d in 0..conc {
        let (client, fr) = (client.clone(), fr.clone());
        let url = format!("{base}/cse-in/saturate-{tag}/dev-{d}?rcn=0");
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let con = serde_json::json!({"device": format!("dev-{d}"), "seq": n, "values": {"v": n}}).to_string();
                let cin = serde_json::json!({"m2m:cin": {"rn": format!("s-{n}"), "cnf": "application/json:0", "con": con}});
                let rsc = plain_http::post(&client, &url, &fr, 4, cin).await?;
                anyhow::ensure!(rsc == 2001, "create answered {rsc}");
                n += 1;
            }
            Ok(n)
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await??;
    }
    println!("{:.1}", done as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    citygate::northbound::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("proxy") => run_proxy(&args[1..]).await,
        Some("saturate") => run_saturate(&args[1..]).await,
        Some("peers-mqtt") => mqtt::run_peers().await,
        Some("saturate-mqtt") => mqtt::run_saturate(&args[1..]).await,
        _ => anyhow::bail!("usage: fleet_proxy proxy|saturate [options] (see the file's doc)"),
    }
}
