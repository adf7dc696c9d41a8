//! Syncer throughput over the CoAP binding against ACME's CoAP ceiling, and bytes on the wire
//! per record over CoAP, HTTP and MQTT, against the same ACME in one run.
//!
//! `cargo run --release --example bench_coap [-- RECORDS]` (default 2000). Starts mosquitto and
//! ACME (venv from tests/peers/acme.sh) with its HTTP, MQTT and CoAP bindings, then:
//! 1. ceiling: a plain CoAP client (coap-lite on a UDP socket, one confirmable request at a
//!    time per worker, 4 workers = max_in_flight) creates RECORDS contentInstances with the
//!    same bodies the syncer sends; citygate's syncer over CoAP delivers RECORDS records from
//!    an in-memory store. Three rounds, alternating; each syncer run against the mean of the
//!    plain runs around it (ACME slows down as its DB grows); the median ratio is reported.
//! 2. bytes: the syncer delivers RECORDS/4 records over each binding through a counting
//!    proxy (UDP for CoAP, TCP towards ACME's HTTP port and towards the broker): application
//!    bytes both ways (CoAP messages; HTTP and MQTT streams) per record, registration and
//!    containers included.
#[path = "../tests/common/northbound/acme.rs"]
mod acme;
#[path = "../tests/common/northbound/acme_coap.rs"]
mod acme_coap;
#[path = "../tests/common/northbound/lossy_udp.rs"]
mod lossy_udp;
#[path = "../tests/common/northbound/mem_store.rs"]
mod mem_store;
#[allow(dead_code)] // `require` is for the tests
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[allow(dead_code)] // not every benchmark uses every piece
#[path = "common/syncer_bench.rs"]
mod syncer_bench;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::onem2m::resource::{record_cin, Resource};
use citygate::northbound::{Binding, CoapBinding, HttpBinding, MqttBinding, NorthboundConfig};
use citygate::record::StoredRecord;
use citygate::telemetry::{CoapMetrics, SyncMetrics};
use coap_lite::RequestType;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncer_bench::{count_arg, counting_proxy, deliver_all, filled_store, record, Counts, DEVICES};

const ROUNDS: usize = 3;

/// Delivers `n` records with `binding` (AE named after `cfg`); returns records/s.
async fn run(cfg: NorthboundConfig, binding: Arc<dyn Binding>, n: u64) -> anyhow::Result<f64> {
    let tag = cfg.ae_name.clone();
    let store = filled_store(&format!("e{n}"), n);
    let d = deliver_all(cfg, binding, store, SyncMetrics::detached(), &tag).await?;
    let rate = d.rate();
    println!(
        "{tag:>14}: {} records in {:.2}s = {rate:.1} records/s",
        d.total, d.elapsed_s
    );
    Ok(rate)
}

/// The ceiling: `DEVICES` plain CoAP clients in parallel, each creating its device's
/// contentInstances one confirmable request at a time.
async fn plain_ceiling(port: u16, tag: &str, n: u64) -> anyhow::Result<f64> {
    let ae = format!("plain-{tag}");
    let fr = format!("C{ae}");
    let mut c = acme_coap::PlainCoap::connect(port).await?;
    let t = Duration::from_secs(10);
    let body = format!(r#"{{"m2m:ae":{{"rn":"{ae}","api":"Nplain","rr":false,"srv":["3"]}}}}"#);
    let r = c
        .request(
            RequestType::Post,
            "cse-in",
            &fr,
            Some(2),
            Some(body.as_bytes()),
            t,
        )
        .await?;
    anyhow::ensure!(r.rsc == Some(2001), "AE create: {:?}", r.rsc);
    for d in 0..DEVICES {
        let body = format!(r#"{{"m2m:cnt":{{"rn":"dev-{d}"}}}}"#);
        let path = format!("cse-in/{ae}");
        let r = c
            .request(
                RequestType::Post,
                &path,
                &fr,
                Some(3),
                Some(body.as_bytes()),
                t,
            )
            .await?;
        anyhow::ensure!(r.rsc == Some(2001), "container create: {:?}", r.rsc);
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for d in 0..DEVICES {
        let (fr, ae, done) = (fr.clone(), ae.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut c = acme_coap::PlainCoap::connect(port).await?;
            let path = format!("cse-in/{ae}/dev-{d}?rcn=0");
            for i in 0..n / DEVICES as u64 {
                let rec = StoredRecord {
                    seq: i * DEVICES as u64 + d as u64 + 1,
                    record: record(&format!("dev-{d}"), i),
                };
                let body =
                    serde_json::to_vec(&Resource::ContentInstance(record_cin("p", &rec)).to_pc())?;
                let r = c
                    .request(RequestType::Post, &path, &fr, Some(4), Some(&body), t)
                    .await?;
                anyhow::ensure!(r.rsc == Some(2001), "cin create: {:?}", r.rsc);
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed;
    println!(
        "{:>14}: {total} records in {elapsed:.2}s = {rate:.1} records/s",
        format!("plain-{tag}")
    );
    Ok(rate)
}

fn config(url: &str, tag: &str) -> NorthboundConfig {
    let mut cfg = NorthboundConfig::new(url);
    cfg.originator = format!("Cbench-{tag}");
    cfg.ae_name = format!("bench-{tag}");
    cfg.max_in_flight = DEVICES;
    cfg
}

fn coap(url: &str, tag: &str) -> anyhow::Result<(NorthboundConfig, Arc<dyn Binding>)> {
    let mut cfg = config(url, tag);
    cfg.binding = BindingKind::Coap;
    let b = CoapBinding::new(&cfg, CoapMetrics::detached())?;
    Ok((cfg, Arc::new(b)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = count_arg(2000);
    citygate::northbound::install_crypto_provider();
    let broker = mosquitto::Mosquitto::start()
        .ok_or_else(|| anyhow::anyhow!("cannot start mosquitto (apt-get install mosquitto)"))?;
    let udp = acme_coap::free_udp_port();
    let sec = acme::Security::default();
    let cse = acme::Acme::launch(acme::free_port(), &sec, Some(broker.port), Some(udp)).await?;
    acme::wait_mqtt_ready(broker.port, Duration::from_secs(60)).await?;
    acme_coap::wait_coap_ready(udp, Duration::from_secs(60)).await?;
    println!(
        "ACME: {} / coap://127.0.0.1:{udp} / mqtt://127.0.0.1:{}",
        cse.url, broker.port
    );

    println!("-- drain rate ({n} records per run, {DEVICES} devices, max_in_flight {DEVICES})");
    // Alternate plain / syncer runs: each syncer run is compared with the mean of the plain
    // runs just before and after it (ACME slows down as its DB grows; other load comes and
    // goes), and the median of the ratios is reported.
    let mut plain = vec![plain_ceiling(udp, "0", n).await?];
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (cfg, b) = coap(&cse.coap_url(), &format!("coap{round}"))?;
        let ours = run(cfg, b, n).await?;
        plain.push(plain_ceiling(udp, &round.to_string(), n).await?);
        let ceiling = (plain[round - 1] + plain[round]) / 2.0;
        println!(
            "  round {round}: {ours:.1} vs ceiling {ceiling:.1} records/s = {:.2}",
            ours / ceiling
        );
        ratios.push(ours / ceiling);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "CoAP syncer / plain CoAP client: median {:.2} (all {ratios:.2?})",
        ratios[ratios.len() / 2]
    );

    let m = n / 4;
    println!("-- bytes on the wire ({m} records per binding, both directions, app layer)");
    let proxy = lossy_udp::LossyProxy::counting(udp).await?;
    let (cfg, b) = coap(&format!("coap://127.0.0.1:{}", proxy.port), "coap-bytes")?;
    run(cfg, b, m).await?;
    let coap_bytes = proxy.stats.bytes.load(Ordering::Relaxed);
    let datagrams = proxy.stats.forwarded.load(Ordering::Relaxed);

    let http_bytes = Arc::new(Counts::default());
    let hp = counting_proxy(cse.port, http_bytes.clone()).await?;
    let cfg = config(&format!("http://127.0.0.1:{hp}"), "http-bytes");
    run(cfg.clone(), Arc::new(HttpBinding::new(&cfg)?), m).await?;

    let mqtt_bytes = Arc::new(Counts::default());
    let mp = counting_proxy(broker.port, mqtt_bytes.clone()).await?;
    let mut cfg = config("", "mqtt-bytes");
    cfg.binding = BindingKind::Mqtt;
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{mp}")));
    let mqtt = MqttBinding::new(&cfg)?;
    run(cfg, Arc::new(mqtt), m).await?;

    let per = |b: u64| b as f64 / m as f64;
    println!(
        "CoAP {:.0} B/record ({:.2} datagrams/record; +28 B IPv4/UDP header each)",
        per(coap_bytes),
        datagrams as f64 / m as f64
    );
    println!(
        "HTTP {:.0} B/record (TCP stream, keep-alive)",
        per(http_bytes.total())
    );
    println!(
        "MQTT {:.0} B/record (TCP stream to the broker)",
        per(mqtt_bytes.total())
    );
    Ok(())
}
