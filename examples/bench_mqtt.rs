//! Syncer throughput over the MQTT binding vs the HTTP binding, against the same ACME CSE in
//! one run.
//!
//! `cargo run --release --example bench_mqtt [-- RECORDS]` (default 2000). Starts Debian's
//! mosquitto on a free port and ACME (venv from tests/peers/acme.sh) with both its HTTP and
//! MQTT bindings, then delivers RECORDS records over 4 devices (max_in_flight 4) from an
//! in-memory store three times, each into a fresh AE: HTTP, MQTT, HTTP again. ACME slows down
//! as its DB grows, so the HTTP rate is the mean of the runs before and after the MQTT run.
//! Prints records/s of each run, request latency percentiles and the ratio MQTT / HTTP.
#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[path = "../tests/common/northbound/mem_store.rs"]
mod mem_store;
#[allow(dead_code)] // `require` is for the tests
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::{Binding, HttpBinding, MqttBinding, NorthboundConfig, Syncer};
use citygate::record::Record;
use citygate::telemetry::SyncMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 4;

fn record(device: &str, i: u64) -> Record {
    let mut r = Record::now("bench", device)
        .with("active_power_w", 1234.5 + i as f64)
        .with("energy_wh", 1_000_000 + i as i64)
        .with("relay", i % 2 == 0);
    r.ts_ms = 1_795_428_000_000 + i as i64 * 1000;
    r
}

struct RunResult {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Delivers `n` records with `binding` into the AE `tag`; returns records/s and latencies.
async fn run(
    cfg: NorthboundConfig,
    binding: Arc<dyn Binding>,
    tag: &str,
    n: u64,
) -> anyhow::Result<RunResult> {
    let store = mem_store::MemStore::new(&format!("bench{tag}"));
    for i in 0..n / DEVICES as u64 {
        for d in 0..DEVICES {
            store.append(record(&format!("dev-{d}"), i));
        }
    }
    let total = store.pending_count();
    let syncer = Syncer::new(cfg, binding, store.clone(), SyncMetrics::detached());
    let state = syncer.state();
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let handle = tokio::spawn(syncer.run(cancel.clone()));
    let deadline = start + Duration::from_secs(600);
    while store.pending_count() > 0 {
        anyhow::ensure!(Instant::now() < deadline, "{tag}: syncer did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(15), handle).await??;
    let snap = state.snapshot();
    anyhow::ensure!(
        snap.delivered as usize == total,
        "{tag}: delivered {} of {total}",
        snap.delivered
    );
    let mut ms: Vec<f64> = state
        .take_latencies()
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let r = RunResult {
        rate: total as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    };
    println!(
        "{tag:>6}: {total} records in {elapsed:.2}s = {:.1} records/s (latency p50 {:.1} ms, p99 {:.1} ms)",
        r.rate, r.p50_ms, r.p99_ms
    );
    Ok(r)
}

fn config(url: &str, tag: &str) -> NorthboundConfig {
    let mut cfg = NorthboundConfig::new(url);
    cfg.originator = format!("Cbench-{tag}");
    cfg.ae_name = format!("bench-{tag}");
    cfg.max_in_flight = DEVICES;
    cfg
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    citygate::northbound::install_crypto_provider();
    let broker = mosquitto::Mosquitto::start()
        .ok_or_else(|| anyhow::anyhow!("cannot start mosquitto (apt-get install mosquitto)"))?;
    let cse = acme::Acme::start_mqtt(broker.port).await?;
    println!(
        "ACME on {} and mqtt://127.0.0.1:{} ({n} records per run, {DEVICES} devices)",
        cse.url, broker.port
    );

    let cfg = config(&cse.url, "http1");
    let http1 = run(cfg.clone(), Arc::new(HttpBinding::new(&cfg)?), "http1", n).await?;

    let mut cfg = config("", "mqtt");
    cfg.binding = BindingKind::Mqtt;
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port)));
    let mqtt = run(cfg.clone(), Arc::new(MqttBinding::new(&cfg)?), "mqtt", n).await?;

    let cfg = config(&cse.url, "http2");
    let http2 = run(cfg.clone(), Arc::new(HttpBinding::new(&cfg)?), "http2", n).await?;

    let http = (http1.rate + http2.rate) / 2.0;
    println!("HTTP (mean of before/after): {http:.1} records/s");
    println!("MQTT: {:.1} records/s", mqtt.rate);
    println!("ratio MQTT / HTTP: {:.2}", mqtt.rate / http);
    println!(
        "latency p50 ms: http {:.1}/{:.1}, mqtt {:.1}",
        http1.p50_ms, http2.p50_ms, mqtt.p50_ms
    );
    Ok(())
}
