//! The syncer against a real ACME CSE (installed by tests/peers/acme.sh into a cached venv).
//! Every check of what arrived is made at the CSE (RETRIEVE with rcn=4, discovery), not with
//! the syncer's own counters. Run: `cargo test --test acme_sync -- --ignored --test-threads=1`.
mod common;

use citygate::northbound::onem2m::primitive::{Operation, Request, ResourceType, Response};
use citygate::northbound::serialization::Serialization;
use citygate::northbound::{Binding, BindingError, HttpBinding};
use common::northbound::acme::{self, Acme};
use common::northbound::mem_store::MemStore;
use common::northbound::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EPOCH: &str = "e5a1b2c3";

/// (a) The shared backlog scenario over HTTP (1200 records over 6 devices plus live records),
/// and what is HTTP-specific: the live device is not starved by the backlog, container labels
/// come from the config, and deliveries are deleted from the store in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let mut cfg = config(&acme.url);
    cfg.labels.insert(
        "dev-1".into(),
        vec!["site/cab-17".into(), "type/meter".into()],
    );
    let done = scenarios::backlog_exactly_once(&acme.url, EPOCH, cfg, &spawn_syncer, 200).await?;
    assert!(
        done.backlog_left_when_live_done > 0,
        "the live device should finish before the backlog"
    );
    let (rsc, cnt) =
        acme::retrieve(&acme.url, &format!("cse-in/{AE_NAME}/dev-1"), &done.ae_id).await?;
    assert_eq!(rsc, 2000);
    assert_eq!(
        cnt["m2m:cnt"]["lbl"],
        serde_json::json!(["site/cab-17", "type/meter"])
    );
    assert!(
        done.store.mark_calls() < 1210 / 4,
        "mark_delivered is batched"
    );
    Ok(())
}

/// (a') The same backlog scenario with `serialization = "cbor"`: CBOR requests and answers
/// over HTTP, exactly once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cbor_backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let mut cfg = config(&acme.url);
    cfg.serialization = Serialization::Cbor;
    scenarios::backlog_exactly_once(&acme.url, EPOCH, cfg, &spawn_syncer, 20).await?;
    Ok(())
}

/// (a'') Over HTTP with CBOR, values read back from the CSE are identical to the source
/// (floats to the last bit, integers, booleans, strings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cbor_values_read_back_identical() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let mut cfg = config(&acme.url);
    cfg.serialization = Serialization::Cbor;
    scenarios::values_round_trip(&acme.url, EPOCH, cfg, &spawn_syncer).await
}

/// (b) The CSE is down when the gateway starts: records wait; when it comes up, sync starts
/// and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cse_down_at_start_then_appears() -> anyhow::Result<()> {
    let port = common::daemon::free_port();
    let store = MemStore::new(EPOCH);
    let expected = fill(&store, &["dev-a", "dev-b", "dev-c"], 40);
    let run = spawn_syncer(config(&format!("http://127.0.0.1:{port}")), store.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snap = run.state.snapshot();
    assert_eq!(store.pending_count(), 120);
    assert!(!snap.connected && !snap.registered && !snap.healthy());
    assert!(
        snap.last_error.as_deref().unwrap_or("").contains("connect"),
        "{:?}",
        snap.last_error
    );
    let acme = Acme::start_on(port).await?;
    wait_for("all delivered", Duration::from_secs(60), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &expected).await?,
        120
    );
    Ok(())
}

/// (c) The CSE is killed mid-sync and restarts empty (memory DB): the gateway re-registers,
/// rebuilds its containers and delivers the rest, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn cse_restart_mid_sync_rebuilds_tree() -> anyhow::Result<()> {
    let mut acme = Acme::start().await?;
    let port = acme.port;
    let store = MemStore::new(EPOCH);
    let devices = ["dev-a", "dev-b", "dev-c", "dev-d"];
    let mut all = fill(&store, &devices, 150);
    let run = spawn_syncer(config(&acme.url), store.clone());
    wait_for("some delivered", Duration::from_secs(60), || {
        store.delivered().len() >= 150
    })
    .await?;
    acme.kill();
    // Let in-flight requests fail and the delivered batch flush.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = delivered_before_kill(&store, 600);
    // Live records during the outage.
    append_records(&store, &mut all, "dev-a", 150..160);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!run.state.snapshot().connected);
    let acme = Acme::start_on(port).await?;
    assert_rest_delivered(run, &store, &acme.url, EPOCH, all, &before, "transport").await
}

/// Wraps the real binding and loses the response of every `nth` contentInstance create after
/// the CSE committed it: what a timeout after a slow commit or a dropped connection does.
struct LosesResponses {
    inner: HttpBinding,
    nth: u64,
    creates: AtomicU64,
    lost: AtomicU64,
}

#[async_trait::async_trait]
impl Binding for LosesResponses {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let is_cin = req.op == Operation::Create && req.ty == Some(ResourceType::ContentInstance);
        let resp = self.inner.send(req).await?;
        if is_cin && self.creates.fetch_add(1, Ordering::SeqCst) % self.nth == self.nth - 1 {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(BindingError::Timeout(Duration::from_secs(5)));
        }
        Ok(resp)
    }
}

/// (d) A response lost after the CSE committed the create: the retry meets 4105, the record
/// counts as delivered (already there), no duplicate exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn lost_response_is_already_there_not_duplicate() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let store = MemStore::new(EPOCH);
    let expected = fill(&store, &["dev-x", "dev-y"], 60);
    let cfg = config(&acme.url);
    let binding = Arc::new(LosesResponses {
        inner: HttpBinding::new(&cfg)?,
        nth: 7,
        creates: AtomicU64::new(0),
        lost: AtomicU64::new(0),
    });
    let run = spawn_syncer_with(cfg, binding.clone(), store.clone());
    wait_for("all delivered", Duration::from_secs(60), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    let lost = binding.lost.load(Ordering::SeqCst);
    assert!(lost >= 10, "lost {lost}");
    // Every lost response is retried; the retry answers 4105 ("already there") unless its own
    // response is lost too (then it is retried again), so: 1 <= already_there <= lost.
    assert!(
        snap.already_there >= 1 && snap.already_there <= lost,
        "{snap:?}"
    );
    assert!(
        store.dead_letters().is_empty(),
        "dead letters {:?}; {snap:?}",
        store.dead_letters()
    );
    assert_eq!(snap.delivered + snap.already_there, 120, "{snap:?}");
    assert_eq!(snap.retries.get("timeout").copied(), Some(lost));
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &expected).await?,
        120
    );
    Ok(())
}

/// (e) Records the CSE rejects for good go to the dead letters and the rest keep flowing:
/// a container the CSE refuses (4000: an empty label, which `citygate check` would have
/// refused), and a record too large for the container's `mbs` (5207).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn permanent_rejections_are_dead_lettered() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    scenarios::permanent_rejections_are_dead_lettered(
        &acme.url,
        EPOCH,
        config(&acme.url),
        &spawn_syncer,
    )
    .await
}
