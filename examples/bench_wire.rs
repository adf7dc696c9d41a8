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
#[allow(dead_code)] // not every benchmark uses every piece
#[path = "common/syncer_bench.rs"]
mod syncer_bench;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::serialization::Serialization;
use citygate::northbound::{Binding, HttpBinding, MqttBinding, NorthboundConfig};
use citygate::record::Record;
use citygate::telemetry::{SyncMetrics, WireMetrics};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use syncer_bench::{count_arg, counting_proxy, deliver_all, Counts};

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
    deliver_all(cfg, binding, store, SyncMetrics::detached(), tag).await?;
    // Let the last acknowledgements pass the proxy.
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    let n = count_arg(360);
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
