//! Overload behaviour over the real HTTP binding against a small in-process CSE: while it
//! answers `503 Service Unavailable` with `Retry-After`, the syncer waits as asked instead of
//! retrying on its own (short) backoff, so the requests reaching the server per second drop;
//! once it recovers, every record is created exactly once.
mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use citygate::northbound::HttpBinding;
use citygate::telemetry::{Metrics, SyncMetrics};
use common::northbound::mem_store::MemStore;
use common::northbound::{fill, spawn_syncer_counted, wait_for};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the CSE stays overloaded after the first contentInstance create.
const OVERLOAD: Duration = Duration::from_millis(2500);
/// Its `Retry-After` (seconds).
const RETRY_AFTER_S: u64 = 1;

#[derive(Default)]
struct Cse {
    aes: HashSet<String>,
    containers: HashMap<String, Vec<String>>,
    /// When the first contentInstance create arrived (the overload starts).
    first_cin: Option<Instant>,
    /// Arrival times of contentInstance creates answered 503.
    refused_at: Vec<Instant>,
    /// rn of every create answered 4105 (a duplicate).
    duplicates: usize,
}

type Shared = Arc<Mutex<Cse>>;

fn reply(rsc: u16, status: StatusCode, rqi: &str, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert("X-M2M-RSC", rsc.into());
    h.insert("X-M2M-RI", rqi.parse().expect("rqi header"));
    h.insert("Content-Type", "application/json".parse().expect("ct"));
    r
}

async fn cse(
    State(cse): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (origin, rqi) = (get("X-M2M-Origin"), get("X-M2M-RI"));
    let ty = get("Content-Type")
        .rsplit_once("ty=")
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    let path = uri.path().trim_start_matches('/').to_string();
    let pc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let rn = pc
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|r| r.get("rn"))
        .and_then(|r| r.as_str())
        .unwrap_or_default()
        .to_string();
    let ae = serde_json::json!({"m2m:ae": {"api": "N", "rr": false, "aei": origin}});
    let mut c = cse.lock().unwrap();
    match (method, ty.as_str()) {
        (Method::GET, _) if c.aes.contains(&path) => reply(2000, StatusCode::OK, &rqi, ae),
        (Method::GET, _) => reply(4004, StatusCode::NOT_FOUND, &rqi, serde_json::json!({})),
        (Method::POST, "2") => {
            c.aes.insert(format!("{path}/{rn}"));
            reply(2001, StatusCode::CREATED, &rqi, ae)
        }
        (Method::POST, "3") => {
            let created = c
                .containers
                .insert(format!("{path}/{rn}"), Vec::new())
                .is_none();
            let rsc = if created { 2001 } else { 4105 };
            reply(rsc, StatusCode::CREATED, &rqi, serde_json::json!({}))
        }
        (Method::POST, "4") => {
            let now = Instant::now();
            let first = *c.first_cin.get_or_insert(now);
            if now < first + OVERLOAD {
                c.refused_at.push(now);
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
                r.headers_mut().insert(
                    "Retry-After",
                    RETRY_AFTER_S.to_string().parse().expect("ra"),
                );
                return r;
            }
            let Some(rns) = c.containers.get_mut(&path) else {
                return reply(4004, StatusCode::NOT_FOUND, &rqi, serde_json::json!({}));
            };
            if rns.contains(&rn) {
                c.duplicates += 1;
                return reply(4105, StatusCode::CONFLICT, &rqi, serde_json::json!({}));
            }
            rns.push(rn);
            reply(2001, StatusCode::CREATED, &rqi, serde_json::json!({}))
        }
        _ => reply(4000, StatusCode::BAD_REQUEST, &rqi, serde_json::json!({})),
    }
}

#[tokio::test]
async fn retry_after_pauses_the_syncer_then_everything_is_delivered_once() -> anyhow::Result<()> {
    citygate::northbound::install_crypto_provider();
    let state: Shared = Default::default();
    let app = axum::Router::new().fallback(cse).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = common::northbound::config(&url);
    // Our own backoff alone would retry within 20 ms…
    cfg.backoff.initial = Duration::from_millis(20);
    cfg.backoff.max = Duration::from_millis(50);
    let store = MemStore::new("o");
    let devices = ["d1", "d2", "d3", "d4", "d5", "d6"];
    let recs = fill(&store, &devices, 40);
    let metrics = Metrics::new();
    let binding = Arc::new(HttpBinding::new(&cfg)?);
    let run = spawn_syncer_counted(cfg, binding, store.clone(), SyncMetrics::new(&metrics));
    wait_for("all delivered", Duration::from_secs(20), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;

    let c = state.lock().unwrap();
    // …but the server asked for 1 s: at most max_in_flight (4) requests per second reach it
    // while it is overloaded (one round per Retry-After), instead of hundreds.
    let first = c.first_cin.expect("creates arrived");
    let refused = c.refused_at.len();
    let seconds = OVERLOAD.as_secs_f64().ceil() as usize;
    assert!(
        (1..=4 * (seconds + 1)).contains(&refused),
        "{refused} requests during {OVERLOAD:?} of overload"
    );
    // Rounds are at least Retry-After apart.
    let mut rounds: Vec<Duration> = c.refused_at.iter().map(|t| *t - first).collect();
    // One round's requests leave together; 500 ms groups them even on a slow (emulated) CPU,
    // and rounds are at least 1 s apart.
    rounds.dedup_by(|a, b| a.saturating_sub(*b) < Duration::from_millis(500));
    for pair in rounds.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_secs(RETRY_AFTER_S),
            "rounds {rounds:?}"
        );
    }
    // Everything created exactly once, in order per device.
    assert_eq!(c.duplicates, 0);
    for d in devices {
        let want: Vec<String> = recs
            .iter()
            .filter(|r| r.record.device == d)
            .map(|r| format!("o-{}", r.seq))
            .collect();
        let got = c
            .containers
            .iter()
            .find(|(k, _)| k.ends_with(&format!("/{d}")))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(got, want, "{d}");
    }
    let text = metrics.render();
    let overload_line = text
        .lines()
        .find(|l| l.starts_with("citygate_sync_requests_total{outcome=\"overload\"}"))
        .expect("overload counted");
    let counted: usize = overload_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert_eq!(counted, refused, "{overload_line}");
    Ok(())
}
