//! `/metrics`, `/healthz`, `/readyz`, `/status`, `/devices` and `/tail` on 127.0.0.1:9810 by
//! default. Part of the
//! runtime because it joins the buffer, the health flags and the metrics registry (telemetry
//! itself knows no buffer type).

use crate::buffer::{Buffer, BufferHealth};
use crate::telemetry::health::{Health, NorthboundState};
use crate::telemetry::Metrics;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A buffer that does not answer within this is not ready (and the watchdog stops pinging).
pub const BUFFER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct TelemetryState {
    pub metrics: Metrics,
    pub buffer: Buffer,
    pub health: Health,
    pub started: Instant,
    pub gateway: String,
    pub adapters: Vec<(String, String)>,
}

/// Binds the listener now (so a port conflict fails `run` at start) and serves until shutdown.
pub async fn serve(
    addr: SocketAddr,
    state: TelemetryState,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr()?, "metrics and health endpoints up");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/devices", get(devices))
        .route("/tail", get(tail))
        .with_state(state);
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "telemetry server stopped");
        }
    }))
}

async fn refresh(state: &TelemetryState) -> Option<crate::buffer::BufferStats> {
    match tokio::time::timeout(BUFFER_PROBE_TIMEOUT, state.buffer.stats()).await {
        Ok(Ok(s)) => Some(s),
        _ => None,
    }
}

/// Renders the registry; nothing is read at scrape time (the buffer's writer keeps its own
/// metrics current).
async fn metrics(State(state): State<TelemetryState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    buffer: &'static str,
    northbound: &'static str,
}

/// Ready only while the buffer commits (judged by the last write or write probe, not by a read
/// answering) and no damage was found, and the CSE has not refused us.
async fn readyz(State(state): State<TelemetryState>) -> Response {
    let buffer_ok = refresh(&state).await.is_some();
    let health = state.buffer.health();
    let nb = state.health.northbound();
    let ready = buffer_ok && health == BufferHealth::Writable && nb != NorthboundState::AuthRefused;
    let body = Ready {
        ready,
        buffer: if buffer_ok {
            health.as_str()
        } else {
            "not answering"
        },
        northbound: nb.as_str(),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

#[derive(Serialize)]
pub struct Status {
    pub version: &'static str,
    pub gateway: String,
    pub uptime_seconds: u64,
    pub northbound: &'static str,
    /// `writable`, `read_only`, `disk_full`, `io_error` or `damaged` (see docs/buffer.md).
    pub buffer_state: &'static str,
    pub adapters: Vec<AdapterStatus>,
    pub buffer: Option<crate::buffer::BufferStats>,
}

#[derive(Serialize)]
pub struct AdapterStatus {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub up: bool,
    pub records: u64,
}

async fn status(State(state): State<TelemetryState>) -> Json<Status> {
    let buffer = refresh(&state).await;
    let adapters = state
        .adapters
        .iter()
        .map(|(id, kind)| AdapterStatus {
            id: id.clone(),
            kind: kind.clone(),
            up: state
                .metrics
                .adapter_up
                .with_label_values(&[id.as_str()])
                .get()
                == 1,
            records: state
                .metrics
                .adapter_records
                .with_label_values(&[id.as_str()])
                .get(),
        })
        .collect();
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        gateway: state.gateway.clone(),
        uptime_seconds: state.started.elapsed().as_secs(),
        northbound: state.health.northbound().as_str(),
        buffer_state: state.buffer.health().as_str(),
        adapters,
        buffer,
    })
}

/// The last record of every device (see [`crate::telemetry::live`]).
async fn devices(
    State(state): State<TelemetryState>,
) -> Json<Vec<crate::telemetry::live::DeviceView>> {
    Json(state.metrics.live.devices())
}

#[derive(serde::Deserialize)]
struct TailQuery {
    device: Option<String>,
    adapter: Option<String>,
}

/// Records as they are committed, one JSON object per line, until the client goes away or the
/// daemon stops. A reader too slow for the feed gets `{"missed": N}` lines instead.
async fn tail(
    State(state): State<TelemetryState>,
    axum::extract::Query(q): axum::extract::Query<TailQuery>,
) -> Response {
    use tokio::sync::broadcast::error::RecvError;
    let rx = state.metrics.live.subscribe();
    let lines = futures::stream::unfold(rx, move |mut rx| {
        let q = (q.device.clone(), q.adapter.clone());
        async move {
            loop {
                let line = match rx.recv().await {
                    Ok(r) => {
                        let wanted = q.0.as_ref().map_or(true, |d| *d == r.device)
                            && q.1.as_ref().map_or(true, |a| *a == r.adapter);
                        if !wanted {
                            continue;
                        }
                        serde_json::to_string(&*r).unwrap_or_default()
                    }
                    Err(RecvError::Lagged(n)) => format!("{{\"missed\":{n}}}"),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok::<_, std::convert::Infallible>(line + "\n"), rx));
            }
        }
    });
    (
        [("content-type", "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}
