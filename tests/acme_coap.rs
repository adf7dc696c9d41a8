//! The syncer over the CoAP binding (TS-0008) against a real ACME CSE with its CoAP binding
//! enabled. The same end-to-end checks as `acme_sync.rs` and `acme_mqtt.rs`, always made at the
//! CSE through its HTTP interface (which stays enabled), never with the syncer's own counters
//! alone. Run: `cargo test --test acme_coap -- --ignored --test-threads=1`.
mod common;

use citygate::northbound::config::BindingKind;
use citygate::northbound::onem2m::primitive::Request;
use citygate::northbound::serialization::Serialization;
use citygate::northbound::{Binding, BindingError, CoapBinding, NorthboundConfig};
use citygate::telemetry::CoapMetrics;
use common::northbound::acme::{self, Acme};
use common::northbound::lossy_udp::{Faults, LossyProxy};
use common::northbound::mem_store::MemStore;
use common::northbound::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const EPOCH: &str = "e7c0a9b8";

/// The test config with the CoAP binding towards `url` (`coap://127.0.0.1:PORT`).
fn coap_config(url: &str) -> NorthboundConfig {
    let mut cfg = config(url);
    cfg.binding = BindingKind::Coap;
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

fn spawn_coap(cfg: NorthboundConfig, store: Arc<MemStore>) -> Running {
    let binding = CoapBinding::new(&cfg, CoapMetrics::detached()).expect("coap binding");
    spawn_syncer_with(cfg, Arc::new(binding), store)
}

/// (a) The shared backlog scenario over CoAP (300 records over 6 devices plus live records);
/// the AE-ID is CSE-assigned, and a restarted gateway reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let cfg = coap_config(&acme.coap_url());
    scenarios::backlog_exactly_once(&acme.url, EPOCH, cfg, &spawn_coap, 50).await?;
    Ok(())
}

/// The backlog scenario with `serialization = "cbor"` (Content-Format 60 both ways), and the
/// values read back identical to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cbor_backlog_and_values_arrive_exactly() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let mut cfg = coap_config(&acme.coap_url());
    cfg.serialization = Serialization::Cbor;
    scenarios::values_round_trip(&acme.url, EPOCH, cfg.clone(), &spawn_coap).await?;
    let acme = Acme::start_coap().await?;
    cfg.cse_url = acme.coap_url();
    scenarios::backlog_exactly_once(&acme.url, EPOCH, cfg, &spawn_coap, 20).await?;
    Ok(())
}

/// (b) Records the CSE refuses for good are dead-lettered over CoAP too (the 20 kB ones go
/// block-wise before the CSE refuses them with 5207).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn permanent_rejections_are_dead_lettered() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let cfg = coap_config(&acme.coap_url());
    scenarios::permanent_rejections_are_dead_lettered(&acme.url, EPOCH, cfg, &spawn_coap).await
}

/// (c) The CSE is killed mid-sync (its UDP port closes) and restarts empty on the same ports:
/// the gateway re-registers, rebuilds its containers and delivers the rest, each exactly once.
///
/// A restarting ACME answers before its resources and attribute policies are loaded (4004 for
/// its own base, 4000 "validation for attribute … not defined", sometimes with request id
/// `None`): none of that may dead-letter a record or stop syncing for `auth_retry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cse_restart_mid_sync_rebuilds_tree() -> anyhow::Result<()> {
    let mut acme = Acme::start_coap().await?;
    let (port, udp) = (acme.port, acme.coap_port.unwrap_or(0));
    let store = MemStore::new(EPOCH);
    let mut all = fill(&store, &["dev-a", "dev-b", "dev-c"], 60);
    let mut cfg = coap_config(&acme.coap_url());
    // A refusal would now stall syncing far beyond the test's patience.
    cfg.backoff.auth_retry = Duration::from_secs(600);
    let run = spawn_coap(cfg, store.clone());
    wait_for("some delivered", Duration::from_secs(60), || {
        store.delivered().len() >= 40
    })
    .await?;
    acme.kill();
    append_records(&store, &mut all, "dev-a", 60..70);
    // UDP has no connection to break: the requests in flight learn of the closed port when
    // their first retransmission (2–3 s) draws an ICMP port unreachable.
    let state = run.state.clone();
    wait_for("the syncer notices", Duration::from_secs(15), move || {
        !state.snapshot().connected
    })
    .await?;
    // What the old CSE acknowledged is what the syncer has marked delivered once it noticed
    // the CSE was gone (an answer that came just before the kill is flushed to the store in
    // the syncer's next batch, which can follow the kill by a retransmission timeout).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = delivered_before_kill(&store, 180);
    let acme = Acme::start_coap_on(port, udp).await?;
    assert_rest_delivered(run, &store, &acme.url, EPOCH, all, &before, "transport").await
}

/// (d) Through a UDP proxy that loses 10 % of the datagrams in each direction, duplicates 5 %
/// and holds back 10 % (so later ones overtake them): every record arrives exactly once, in
/// order, and the binding had to retransmit to get there (its duplicate detection is checked
/// deterministically in `src/northbound/coap_tests.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn loss_duplicates_and_reordering_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let faults = Faults {
        loss: 0.10,
        duplicate: 0.05,
        reorder: 0.10,
    };
    let proxy = LossyProxy::start(acme.coap_port.unwrap_or(0), faults, 20261130).await?;
    let mut cfg = coap_config(&format!("coap://127.0.0.1:{}", proxy.port));
    // Room for two retransmissions (2–3 s, then 4–6 s) before the syncer's own retry.
    cfg.request_timeout = Duration::from_secs(10);
    cfg.max_in_flight = 8;
    let store = MemStore::new(EPOCH);
    // Eight devices, eight in flight: a lost datagram holds up only its device for 2–3 s.
    let devices = ["d-1", "d-2", "d-3", "d-4", "d-5", "d-6", "d-7", "d-8"];
    let expected = fill(&store, &devices, 6);
    let metrics = CoapMetrics::detached();
    let binding = CoapBinding::new(&cfg, metrics.clone())?;
    let run = spawn_syncer_with(cfg, Arc::new(binding), store.clone());
    wait_for("all delivered", Duration::from_secs(90), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;
    let (forwarded, dropped, duplicated, reordered) = proxy.snapshot();
    assert!(
        dropped > 0 && duplicated > 0 && reordered > 0,
        "{:?}",
        proxy.snapshot()
    );
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &expected).await?,
        expected.len()
    );
    let delivered = store.delivered();
    assert_eq!(delivered.len(), expected.len());
    assert_eq!(
        delivered.iter().collect::<HashSet<_>>().len(),
        expected.len()
    );
    assert!(store.dead_letters().is_empty());
    assert!(
        metrics.retransmitted.get() > 0,
        "lost datagrams were retransmitted"
    );
    eprintln!(
        "proxy: {forwarded} forwarded, {dropped} dropped, {duplicated} duplicated, \
         {reordered} reordered; binding: {} retransmissions, {} duplicates dropped",
        metrics.retransmitted.get(),
        metrics.duplicate.get()
    );
    Ok(())
}

/// (e) A record of ~6 kB goes up block-wise (Block1, six blocks) and arrives intact; reading
/// its container back (~7 kB) comes block-wise (Block2) and equals what HTTP reads; the same
/// read with `max_reply_bytes` below its size is refused, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn large_bodies_go_block_wise() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let store = MemStore::new(EPOCH);
    let big = "0123456789abcdef".repeat(384); // 6144 bytes
    let record = record("dev-big", 1).with("blob", big.as_str());
    let seq = store.append(record.clone());
    let small = fill(&store, &["dev-big"], 1);
    let cfg = coap_config(&acme.coap_url());
    let run = spawn_coap(cfg.clone(), store.clone());
    wait_for("delivered", Duration::from_secs(30), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;
    let mut expected = vec![citygate::record::StoredRecord { seq, record }];
    expected.extend(small);
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &expected).await?,
        2
    );

    let container = format!("cse-in/{AE_NAME}/dev-big");
    let read = Request::retrieve(container.as_str(), ORIGINATOR, "3").with_rcn(4);
    let binding = CoapBinding::new(&cfg, CoapMetrics::detached())?;
    let resp = binding.send(read.clone()).await?;
    assert_eq!(resp.rsc.0, 2000);
    let (rsc, over_http) =
        acme::retrieve(&acme.url, &format!("{container}?rcn=4"), ORIGINATOR).await?;
    assert_eq!(rsc, 2000);
    let cins = |v: &serde_json::Value| v["m2m:cnt"]["m2m:cin"].clone();
    assert_eq!(
        cins(resp.pc.as_ref().unwrap_or(&serde_json::Value::Null)),
        cins(&over_http)
    );
    assert!(serde_json::to_vec(&over_http)?.len() > 6 * 1024);

    let mut tight = cfg.clone();
    tight.max_reply_bytes = 4096;
    let binding = CoapBinding::new(&tight, CoapMetrics::detached())?;
    let err = binding
        .send(read)
        .await
        .expect_err("larger than max_reply_bytes");
    assert!(
        matches!(err, BindingError::ReplyTooLarge { limit: 4096, .. }),
        "{err}"
    );
    Ok(())
}
