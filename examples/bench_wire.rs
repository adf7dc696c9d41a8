//! Bytes on the wire per delivered reading: HTTP+JSON, HTTP+CBOR, MQTT+JSON, MQTT+CBOR.
//!
//! `cargo run --release --example bench_wire [-- READINGS]` (default 360: one hour of a meter
//! polled every 10 s). Starts Debian's mosquitto and ACME (venv from tests/peers/acme.sh) with
//! its HTTP and MQTT bindings, and puts a counting TCP proxy between the gateway and the CSE
//! (HTTP) or the broker (MQTT): every byte the gateway's connections carry, both directions,
//! TCP payload (no IP/TCP headers, no TLS). Each run delivers READINGS readings of one
//! three-phase meter (the values of an SDM630 poll) from an in-memory store into a fresh AE,
//! registration and container creation included, and prints bytes per reading up and down,
//! the total per hour at one reading per 10 s, and what `citygate_northbound_bytes_total`
//! counted for the same run.
#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[path = "../tests/common/northbound/mem_store.rs"]
mod mem_store;
#[allow(dead_code)] // `require` is for the tests
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::serialization::Serialization;
use citygate::northbound::{Binding, HttpBinding, MqttBinding, NorthboundConfig, Syncer};
use citygate::record::Record;
use citygate::telemetry::{SyncMetrics, WireMetrics};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One poll of a three-phase meter, as the SDM630 profile reads it.
fn reading(i: u64) -> Record {
    let wobble = (i % 7) as f64 * 0.1;
    let mut r = Record::now("mb1", "sdm630-1")
        .with("voltage_l1", 230.1 + wobble)
        .with("voltage_l2", 229.8 - wobble)
        .with("voltage_l3", 231.0 + wobble / 2.0)
        .with("current_l1", 12.34 + wobble)
        .with("current_l2", 11.9)
        .with("current_l3", 12.05 - wobble)
        .with("active_power", 8412.5 + i as f64)
        .with("power_factor", 0.97)
        .with("frequency", 50.01)
        .with("import_energy", 1_234_567.8 + i as f64 * 23.4);
    r.ts_ms = 1_795_428_000_000 + i as i64 * 10_000;
    r
}

/// Bytes through the proxy, gateway → server (`up`) and back (`down`).
#[derive(Default)]
struct Counts {
    up: AtomicU64,
    down: AtomicU64,
}

/// A TCP proxy on a free port towards `upstream`, counting what it carries.
async fn counting_proxy(upstream: u16, counts: Arc<Counts>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pump(cr, sw, counts.clone(), true);
                let down = pump(sr, cw, counts, false);
                let _ = tokio::join!(up, down);
            });
        }
    });
    Ok(port)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counts: Arc<Counts>,
    up: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let c = if up { &counts.up } else { &counts.down };
        c.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

/// Delivers `n` readings into the AE `tag` and prints the bytes per reading.
async fn run(
    cfg: NorthboundConfig,
    binding: Arc<dyn Binding>,
    wire: WireMetrics,
    counts: Arc<Counts>,
    tag: &str,
    n: u64,
) -> anyhow::Result<()> {
    let store = mem_store::MemStore::new(&format!("wire{tag}"));
    for i in 0..n {
        store.append(reading(i));
    }
    let syncer = Syncer::new(cfg, binding, store.clone(), SyncMetrics::detached());
    let state = syncer.state();
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(syncer.run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(300);
    while store.pending_count() > 0 {
        anyhow::ensure!(Instant::now() < deadline, "{tag}: syncer did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(15), handle).await??;
    // Let the last acknowledgements pass the proxy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = state.snapshot();
    anyhow::ensure!(
        snap.delivered == n,
        "{tag}: delivered {} of {n}",
        snap.delivered
    );
    let (up, down) = (
        counts.up.load(Ordering::Relaxed),
        counts.down.load(Ordering::Relaxed),
    );
    let per = |b: u64| b as f64 / n as f64;
    println!(
        "| {tag} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} / {:.0} |",
        per(up),
        per(down),
        per(up + down),
        (up + down) as f64 / n as f64 * 360.0 / 1024.0,
        per(wire.sent.get()),
        per(wire.received.get()),
    );
    Ok(())
}

fn config(tag: &str, ser: Serialization) -> NorthboundConfig {
    let mut cfg = NorthboundConfig::new("");
    cfg.originator = format!("Cwire-{tag}");
    cfg.ae_name = format!("wire-{tag}");
    cfg.max_in_flight = 1;
    cfg.serialization = ser;
    cfg
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(360);
    citygate::northbound::install_crypto_provider();
    let broker = mosquitto::Mosquitto::start()
        .ok_or_else(|| anyhow::anyhow!("cannot start mosquitto (apt-get install mosquitto)"))?;
    let cse = acme::Acme::start_mqtt(broker.port).await?;
    println!("{n} readings per run; bytes are TCP payload through the proxy, both directions");
    println!("| run | up B/reading | down B/reading | total B/reading | kB/hour at 10 s | metric sent / received B/reading |");
    println!("|---|---|---|---|---|---|");
    for ser in [Serialization::Json, Serialization::Cbor] {
        let counts = Arc::new(Counts::default());
        let port = counting_proxy(cse.port, counts.clone()).await?;
        let tag = format!("http-{ser}");
        let mut cfg = config(&tag, ser);
        cfg.cse_url = format!("http://127.0.0.1:{port}");
        let wire = WireMetrics::detached();
        let binding = HttpBinding::new(&cfg)?.with_wire_metrics(wire.clone());
        run(cfg, Arc::new(binding), wire, counts, &tag, n).await?;
    }
    for ser in [Serialization::Json, Serialization::Cbor] {
        let counts = Arc::new(Counts::default());
        let port = counting_proxy(broker.port, counts.clone()).await?;
        let tag = format!("mqtt-{ser}");
        let mut cfg = config(&tag, ser);
        cfg.binding = BindingKind::Mqtt;
        cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{port}")));
        let wire = WireMetrics::detached();
        let binding = MqttBinding::new(&cfg)?.with_wire_metrics(wire.clone());
        run(cfg, Arc::new(binding), wire, counts, &tag, n).await?;
    }
    Ok(())
}
