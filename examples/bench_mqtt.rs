//! MQTT binding throughput against ACME's own MQTT ceiling, measured in one run.
//!
//! `cargo run --release --example bench_mqtt [-- RECORDS]` (default 2000). Starts Debian's
//! mosquitto (`set_tcp_nodelay true`) on a free port and ACME (venv from tests/peers/acme.sh)
//! with its HTTP and MQTT bindings. Then, each run into a fresh AE:
//! - `plain`: a plain rumqttc client creating RECORDS contentInstances with one request in
//!   flight, QoS 0 (what a paho loop does): ACME's MQTT ceiling;
//! - `before`: the syncer over MQTT as it was (4 in flight, QoS 1, fixed in-flight limit);
//! - `after`: the syncer over MQTT with the defaults (QoS 0, adaptive in-flight limit);
//! - `one`: the same with `max_in_flight = 1` (the syncer's own cost per request);
//! - `plain` again (ACME slows as its DB grows: the ceiling is the mean of both plain runs);
//! - `http` / `httpfx`: the syncer over HTTP, adaptive limit and fixed at 4, for reference.
//!
//! Prints records/s of each run, latency percentiles and the ratios to the ceiling.
//!
//! `-- RECORDS --rounds K`: plain and `after` alternating instead (plain, after, plain, …,
//! plain: K syncer runs), each `after` against the mean of the plain runs on either side of
//! it. ACME's MQTT rate drifts by 10–20 % within a run of this bench, and a ceiling measured
//! next to the run it judges takes most of that drift out.
#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[path = "../tests/common/northbound/mem_store.rs"]
mod mem_store;
#[allow(dead_code)] // `require` is for the tests
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[path = "common/plain_mqtt.rs"]
mod plain_mqtt;
#[allow(dead_code)] // not every benchmark uses every piece
#[path = "common/syncer_bench.rs"]
mod syncer_bench;

use citygate::northbound::config::{AdaptiveConfig, BindingKind, MqttConfig};
use citygate::northbound::{Binding, HttpBinding, MqttBinding, NorthboundConfig};
use citygate::telemetry::SyncMetrics;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncer_bench::{count_arg, deliver_all, filled_store, DEVICES};

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
    let store = filled_store(&format!("bench{tag}"), n);
    let metrics = SyncMetrics::detached();
    let d = deliver_all(cfg, binding, store, metrics.clone(), tag).await?;
    let r = RunResult {
        rate: d.rate(),
        p50_ms: d.percentile_ms(0.5),
        p99_ms: d.percentile_ms(0.99),
    };
    println!(
        "{tag:>6}: {} records in {:.2}s = {:.1} records/s (latency p50 {:.1} ms, p99 {:.1} ms; in-flight limit at the end {})",
        d.total, d.elapsed_s, r.rate, r.p50_ms, r.p99_ms, metrics.in_flight_limit.get()
    );
    Ok(r)
}

/// Percentiles of latencies in ms.
fn pct(ms: &mut [f64], p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get(((ms.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Publishes one request primitive and waits for its response; returns (rsc, latency).
async fn call(
    client: &AsyncClient,
    el: &mut EventLoop,
    topic: &str,
    req: serde_json::Value,
) -> anyhow::Result<(u64, Duration)> {
    let rqi = req["rqi"].clone();
    let start = Instant::now();
    client
        .publish(topic, QoS::AtMostOnce, false, serde_json::to_vec(&req)?)
        .await?;
    loop {
        if let Event::Incoming(Packet::Publish(p)) = el.poll().await? {
            let v: serde_json::Value = serde_json::from_slice(&p.payload)?;
            if v["rqi"] == rqi {
                return Ok((v["rsc"].as_u64().unwrap_or(0), start.elapsed()));
            }
        }
    }
}

/// ACME's MQTT ceiling: a plain client, one request in flight, QoS 0, `n` contentInstances
/// with a body like the syncer's into one fresh container.
async fn plain(port: u16, tag: &str, n: u64) -> anyhow::Result<RunResult> {
    let orig = format!("Cplain-{tag}");
    let (client, mut el, topic) =
        plain_mqtt::connect("127.0.0.1", port, format!("plain-{tag}"), &orig).await?;
    let base = |rqi: String| json!({"op": 1, "fr": orig, "rqi": rqi, "rvi": "3"});
    let mut ae = base("ae".into());
    ae["to"] = json!("cse-in");
    ae["ty"] = json!(2);
    ae["pc"] = json!({"m2m:ae": {"rn": format!("plain-{tag}"), "api": "Nplain", "rr": false, "srv": ["3"]}});
    let mut cnt = base("cnt".into());
    cnt["to"] = json!(format!("cse-in/plain-{tag}"));
    cnt["ty"] = json!(3);
    cnt["pc"] = json!({"m2m:cnt": {"rn": "dev-0"}});
    for req in [ae, cnt] {
        let (rsc, _) = call(&client, &mut el, &topic, req).await?;
        anyhow::ensure!(rsc == 2001, "{tag}: setup answered {rsc}");
    }
    let mut ms = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let mut cin = base(format!("cin-{i}"));
        cin["to"] = json!(format!("cse-in/plain-{tag}/dev-0"));
        cin["ty"] = json!(4);
        let con = json!({"active_power_w": 1234.5 + i as f64, "energy_wh": 1_000_000 + i, "relay": i % 2 == 0, "ts": "2026-11-24T00:00:00Z"});
        cin["pc"] = json!({"m2m:cin": {"rn": format!("r-{i:08}"), "cnf": "application/json:0", "con": con.to_string()}});
        let (rsc, took) = call(&client, &mut el, &topic, cin).await?;
        anyhow::ensure!(rsc == 2001, "{tag}: create {i} answered {rsc}");
        ms.push(took.as_secs_f64() * 1000.0);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = client.disconnect().await;
    let r = RunResult {
        rate: n as f64 / elapsed,
        p50_ms: pct(&mut ms, 0.5),
        p99_ms: pct(&mut ms, 0.99),
    };
    println!(
        "{tag:>6}: {n} records in {elapsed:.2}s = {:.1} records/s (latency p50 {:.1} ms, p99 {:.1} ms; plain client, 1 in flight, QoS 0)",
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

fn mqtt_config(port: u16, tag: &str) -> NorthboundConfig {
    let mut cfg = config("", tag);
    cfg.binding = BindingKind::Mqtt;
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{port}")));
    cfg
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = count_arg(2000);
    citygate::northbound::install_crypto_provider();
    let broker = mosquitto::Mosquitto::start()
        .ok_or_else(|| anyhow::anyhow!("cannot start mosquitto (apt-get install mosquitto)"))?;
    let cse = acme::Acme::start_mqtt(broker.port).await?;
    println!(
        "ACME on {} and mqtt://127.0.0.1:{} ({n} records per run, {DEVICES} devices)",
        cse.url, broker.port
    );

    if let Some(rounds) = rounds_arg() {
        return alternate(broker.port, n, rounds).await;
    }

    let plain1 = plain(broker.port, "plain1", n).await?;

    // As the binding was: QoS 1, a fixed limit of 4 in flight.
    let mut cfg = mqtt_config(broker.port, "before");
    if let Some(m) = cfg.mqtt.as_mut() {
        m.qos = 1;
    }
    cfg.adaptive = AdaptiveConfig {
        enabled: false,
        ..AdaptiveConfig::default()
    };
    let before = run(cfg.clone(), Arc::new(MqttBinding::new(&cfg)?), "before", n).await?;

    let cfg = mqtt_config(broker.port, "after");
    let after = run(cfg.clone(), Arc::new(MqttBinding::new(&cfg)?), "after", n).await?;

    // The syncer held at one request in flight: its own cost per request against the plain
    // client's.
    let mut cfg = mqtt_config(broker.port, "one");
    cfg.max_in_flight = 1;
    let one = run(cfg.clone(), Arc::new(MqttBinding::new(&cfg)?), "one", n).await?;

    let plain2 = plain(broker.port, "plain2", n).await?;

    let cfg = config(&cse.url, "http");
    let http = run(cfg.clone(), Arc::new(HttpBinding::new(&cfg)?), "http", n).await?;
    let mut cfg = config(&cse.url, "httpfx");
    cfg.adaptive.enabled = false;
    let http_fixed = run(cfg.clone(), Arc::new(HttpBinding::new(&cfg)?), "httpfx", n).await?;

    let ceiling = (plain1.rate + plain2.rate) / 2.0;
    println!("ACME MQTT ceiling (plain client, mean of before/after): {ceiling:.1} records/s");
    println!(
        "syncer over MQTT before: {:.1} records/s = {:.2} of the ceiling",
        before.rate,
        before.rate / ceiling
    );
    println!(
        "syncer over MQTT after:  {:.1} records/s = {:.2} of the ceiling",
        after.rate,
        after.rate / ceiling
    );
    println!(
        "syncer over MQTT, max_in_flight 1: {:.1} records/s = {:.2} of the ceiling",
        one.rate,
        one.rate / ceiling
    );
    println!(
        "syncer over HTTP: {:.1} records/s adaptive, {:.1} fixed at 4 in flight (MQTT after / HTTP = {:.2})",
        http.rate,
        http_fixed.rate,
        after.rate / http.rate
    );
    Ok(())
}

/// `--rounds K` from the command line.
fn rounds_arg() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--rounds")?;
    args.get(at + 1)?.parse().ok()
}

/// Plain and `after` alternating: each syncer run against the plain runs beside it.
async fn alternate(port: u16, n: u64, rounds: usize) -> anyhow::Result<()> {
    let mut before = plain(port, "plain0", n).await?;
    let mut ratios = Vec::new();
    for k in 1..=rounds {
        let cfg = mqtt_config(port, &format!("after{k}"));
        let after = run(
            cfg.clone(),
            Arc::new(MqttBinding::new(&cfg)?),
            &format!("after{k}"),
            n,
        )
        .await?;
        let next = plain(port, &format!("plain{k}"), n).await?;
        let ceiling = (before.rate + next.rate) / 2.0;
        let ratio = after.rate / ceiling;
        println!(
            "round {k}: syncer {:.1} records/s, ceiling {:.1} (plain {:.1} / {:.1}) = {ratio:.2}",
            after.rate, ceiling, before.rate, next.rate
        );
        ratios.push(ratio);
        before = next;
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "syncer over MQTT (defaults) / plain client beside it, {rounds} rounds: median {:.2} (min {:.2}, max {:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}
