//! Syncer throughput vs ACME's own ceiling, measured in the same run.
//!
//! `cargo run --release --example bench_sync [-- RECORDS]` (default 2000). Starts ACME (venv
//! from tests/peers/acme.sh), then:
//! 1. ceiling, first half: a plain keep-alive reqwest client, 4 concurrent tasks, each creating
//!    contentInstances into its own container (same bodies the syncer sends);
//! 2. the Syncer delivering RECORDS records over 4 devices (max_in_flight 4) from an in-memory
//!    store, timing start → all delivered, and this process's CPU time meanwhile;
//! 3. ceiling, second half (ACME slows down as its DB grows, so the ceiling is the mean of
//!    the runs before and after).
//!
//! Prints records/s, the ratio syncer/ceiling (goal ≥ 0.9) and the syncer's CPU seconds per
//! 1000 records (utime+stime from /proc/self/stat, 100 ticks/s).
#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[path = "../tests/common/northbound/mem_store.rs"]
mod mem_store;
#[path = "common/plain_http.rs"]
mod plain_http;
#[allow(dead_code)] // not every benchmark uses every piece
#[path = "common/syncer_bench.rs"]
mod syncer_bench;

use citygate::northbound::onem2m::resource::record_cin;
use citygate::northbound::{HttpBinding, NorthboundConfig};
use citygate::record::StoredRecord;
use citygate::telemetry::SyncMetrics;
use plain_http::post;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncer_bench::{count_arg, deliver_all, filled_store, record, DEVICES};

/// This process's CPU time (user + system) from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// ACME's ceiling: `n` cin creates by DEVICES concurrent keep-alive tasks. Returns creates/s.
async fn plain_ceiling(base: &str, tag: &str, n: u64) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(DEVICES)
        .timeout(Duration::from_secs(30))
        .build()?;
    let fr = format!("Cplain-{tag}");
    let ae = serde_json::json!({"m2m:ae": {"rn": format!("plain-{tag}"), "api": "Nbench", "rr": false, "srv": ["3"]}});
    anyhow::ensure!(post(&client, &format!("{base}/cse-in"), &fr, 2, ae).await? == 2001);
    for d in 0..DEVICES {
        let cnt = serde_json::json!({"m2m:cnt": {"rn": format!("dev-{d}")}});
        let url = format!("{base}/cse-in/plain-{tag}");
        anyhow::ensure!(post(&client, &url, &fr, 3, cnt).await? == 2001);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..DEVICES {
        let (client, fr) = (client.clone(), fr.clone());
        let url = format!("{base}/cse-in/plain-{tag}/dev-{d}?rcn=0");
        let per_task = n / DEVICES as u64;
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let rec = StoredRecord {
                    seq: i + 1,
                    record: record(&format!("dev-{d}"), i),
                };
                let cin = serde_json::json!({ "m2m:cin": record_cin("plain0001", &rec) });
                let rsc = post(&client, &url, &fr, 4, cin).await?;
                anyhow::ensure!(rsc == 2001, "plain create answered {rsc}");
            }
            Ok(per_task)
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await??;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = count_arg(2000);
    citygate::northbound::install_crypto_provider();
    let cse = acme::Acme::start().await?;
    println!("ACME on {} ({n} records per phase)", cse.url);

    let before = plain_ceiling(&cse.url, "a", n / 2).await?;
    println!("ceiling (plain client, before): {before:.1} creates/s");

    let store = filled_store("bench0001", n);
    let mut cfg = NorthboundConfig::new(&cse.url);
    cfg.originator = "Cbench-sync".into();
    cfg.ae_name = "bench-sync".into();
    cfg.max_in_flight = DEVICES;
    let binding = Arc::new(HttpBinding::new(&cfg)?);
    let cpu0 = cpu_seconds();
    let d = deliver_all(cfg, binding, store, SyncMetrics::detached(), "syncer").await?;
    let cpu = cpu_seconds() - cpu0;
    let (total, rate) = (d.total, d.rate());
    println!(
        "syncer: {total} records in {:.2}s = {rate:.1} records/s (latency p50 {:.1} ms, p99 {:.1} ms)",
        d.elapsed_s,
        d.percentile_ms(0.5),
        d.percentile_ms(0.99)
    );

    let after = plain_ceiling(&cse.url, "b", n / 2).await?;
    println!("ceiling (plain client, after): {after:.1} creates/s");
    let ceiling = (before + after) / 2.0;
    println!(
        "ratio syncer / ceiling: {:.2} (goal >= 0.90)",
        rate / ceiling
    );
    println!(
        "syncer CPU: {cpu:.2}s for {total} records = {:.3} CPU-s per 1000 records",
        cpu / total as f64 * 1000.0
    );
    Ok(())
}
