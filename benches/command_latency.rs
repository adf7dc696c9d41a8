//! Command latency: from the creation of a command instance at a real ACME CSE to its
//! execution by the device's command target, p50/p99 over 200 commands, over the HTTP
//! polling channel and over MQTT (mosquitto with `set_tcp_nodelay true`); then the gateway's
//! own CPU while idle for 60 s (only the long poll / the MQTT keep-alive running).
//!
//!     cargo bench --bench command_latency            (release build)
//!     cargo test --bench command_latency -- --bench  (quicker to build: debug)
//!
//! Needs the ACME venv (`CITYGATE_ACME_VENV`, see tests/peers/acme.sh) and mosquitto. The
//! target records instead of writing, so the numbers are citygate's and the CSE's, not a
//! bus's. Creation time is the instance's `ct` at the CSE; execution time is the target's
//! wall clock (same machine). `cargo test --all-targets` runs this file without `--bench`:
//! then it does nothing.
#[allow(unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::NorthboundConfig;
use common::commands::*;
use common::northbound::acme::Acme;
use common::northbound::config;
use serde_json::json;
use std::time::{Duration, Instant};

const COMMANDS: usize = 200;
const IDLE: Duration = Duration::from_secs(60);

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let acme = Acme::start().await?;
        run(
            "HTTP pollingChannel",
            &acme.url,
            quiet(enable(config(&acme.url))),
        )
        .await?;
        drop(acme);
        let broker = common::mosquitto::Mosquitto::start().expect("mosquitto");
        let acme = Acme::start_mqtt(broker.port).await?;
        let mut cfg = config("");
        cfg.binding = BindingKind::Mqtt;
        cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port)));
        run("MQTT", &acme.url, quiet(enable(cfg))).await
    })
}

/// The default catch-up interval and poll timeout (the tests shorten them).
fn quiet(mut cfg: NorthboundConfig) -> NorthboundConfig {
    cfg.commands.catch_up_interval = Duration::from_secs(60);
    cfg.commands.poll_timeout = Duration::from_secs(30);
    cfg
}

async fn run(name: &str, url: &str, cfg: NorthboundConfig) -> anyhow::Result<()> {
    register_platform(url).await?;
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start(&cfg, dir.path(), target());
    wait_commands_ready(url, Duration::from_secs(30)).await?;
    let mut latencies_ms = Vec::with_capacity(COMMANDS);
    for n in 0..COMMANDS + 5 {
        let con = json!({"id": format!("b{n}"), "set": {"dim_level": n % 100}});
        let (rsc, ri, ct) = create_command(url, PLATFORM, con, true).await?;
        anyhow::ensure!(rsc == 2001, "create: {rsc}");
        anyhow::ensure!(
            gw.target.wait_for(n + 1, Duration::from_secs(30)).await,
            "command {n} not executed"
        );
        let executed = gw.target.executed()[n].clone();
        anyhow::ensure!(Some(&executed.command.key) == ri.as_ref());
        // The first 5 warm up (connections, caches).
        if let (Some(ct), true) = (ct, n >= 5) {
            latencies_ms.push((executed.at_ms - ct) as f64);
        }
    }
    anyhow::ensure!(!latencies_ms.is_empty(), "the CSE gave no creation times");
    latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name}: {} commands, latency creation→execution p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies_ms.len(),
        pct(0.5),
        pct(0.99),
        latencies_ms.last().copied().unwrap_or_default()
    );
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(IDLE).await;
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{name}: idle {:.0} s, gateway CPU {:.3} s = {:.2} % of one core",
        t0.elapsed().as_secs_f64(),
        cpu,
        100.0 * cpu / t0.elapsed().as_secs_f64()
    );
    gw.stop().await;
    Ok(())
}

/// CPU time (user + system) of this process: the gateway's tasks (ACME and the broker are
/// other processes).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
