//! The syncer over the MQTT binding (TS-0010) against a real ACME CSE with its MQTT binding
//! enabled, through Debian's mosquitto. The same end-to-end checks as `acme_sync.rs`, always
//! made at the CSE through its HTTP interface (which stays enabled), never with the syncer's
//! own counters alone. Run:
//! `cargo test --test acme_mqtt -- --ignored --test-threads=1`
//! (without mosquitto the tests skip, or fail under `CITYGATE_REQUIRE_PEERS`).
mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::{MqttBinding, NorthboundConfig};
use common::mosquitto::{self, Mosquitto};
use common::northbound::acme::{self, Acme};
use common::northbound::mem_store::MemStore;
use common::northbound::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const EPOCH: &str = "e6d7c8b9";

/// The test config with the MQTT binding towards the broker (no `cse_url`).
fn mqtt_config(broker: &Mosquitto) -> NorthboundConfig {
    let mut cfg = config("");
    cfg.binding = BindingKind::Mqtt;
    cfg.request_timeout = Duration::from_secs(3);
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port)));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

fn spawn_mqtt(cfg: NorthboundConfig, store: Arc<MemStore>) -> Running {
    let binding = MqttBinding::new(&cfg).expect("mqtt binding");
    spawn_syncer_with(cfg, Arc::new(binding), store)
}

/// (a) A backlog of 600 records over 6 devices plus live records land exactly once each, in
/// per-device order. The AE-ID is CSE-assigned over `reg_req` and persisted; a restarted
/// gateway reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let store = MemStore::new(EPOCH);
    let devices = ["dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6"];
    let mut expected = fill(&store, &devices, 100);
    let mut cfg = mqtt_config(&broker);
    cfg.originator = "C".into();
    let run = spawn_mqtt(cfg.clone(), store.clone());
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let record = record("live-1", i);
        let seq = store.append(record.clone());
        expected.push(citygate::record::StoredRecord { seq, record });
    }
    wait_for("all delivered", Duration::from_secs(120), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;

    let ae_id = store
        .state_value("ae_id")
        .expect("CSE-assigned AE-ID persisted");
    assert!(ae_id.starts_with('C') && ae_id.len() > 1, "ae_id {ae_id}");
    assert_ne!(ae_id, "Ccitygate-test", "assigned by the CSE");
    assert_eq!(
        verify_at_cse(&acme.url, &ae_id, EPOCH, &expected).await?,
        610
    );
    let delivered = store.delivered();
    assert_eq!(delivered.len(), 610);
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), 610);
    assert!(store.dead_letters().is_empty());
    assert_eq!(snap.delivered, 610);
    assert!(snap.healthy() && snap.connected, "{snap:?}");
    assert_eq!(snap.ae_id.as_deref(), Some(ae_id.as_str()));

    // A gateway restart reuses the persisted AE-ID (no second AE).
    let more = fill(&store, &["dev-1"], 1);
    let run = spawn_mqtt(cfg, store.clone());
    wait_for("restart delivery", Duration::from_secs(30), || {
        store.pending_count() == 0
    })
    .await?;
    assert_eq!(run.state.snapshot().ae_id.as_deref(), Some(ae_id.as_str()));
    run.stop().await?;
    let cins = acme::cins_of(&acme.url, &format!("cse-in/{AE_NAME}/dev-1"), &ae_id).await?;
    assert_eq!(cins.len(), 101);
    assert_eq!(
        cins.last().map(|c| c["rn"].clone()),
        Some(serde_json::json!(format!("{EPOCH}-{}", more[0].seq)))
    );
    let (rsc, uril) = acme::retrieve(&acme.url, "cse-in?fu=1&ty=2", acme::ADMIN).await?;
    assert_eq!(rsc, 2000);
    let ours = uril["m2m:uril"].as_array().map(|a| {
        a.iter()
            .filter(|u| *u == &format!("cse-in/{AE_NAME}"))
            .count()
    });
    assert_eq!(ours, Some(1), "one AE of ours: {uril}");
    Ok(())
}

/// (b) The CSE is killed mid-sync (the broker stays up: requests time out) and restarts
/// empty: the gateway re-registers, rebuilds its containers and delivers the rest once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn cse_restart_mid_sync_rebuilds_tree() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let mut acme = Acme::start_mqtt(broker.port).await?;
    let port = acme.port;
    let store = MemStore::new(EPOCH);
    let mut all = fill(&store, &["dev-a", "dev-b", "dev-c", "dev-d"], 100);
    let run = spawn_mqtt(mqtt_config(&broker), store.clone());
    wait_for("some delivered", Duration::from_secs(60), || {
        store.delivered().len() >= 100
    })
    .await?;
    acme.kill();
    // In-flight requests time out (3 s); the delivered batch flushes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before: HashSet<u64> = store.delivered().into_iter().collect();
    assert!(
        before.len() < 400,
        "not everything may be done before the kill"
    );
    for i in 100..110 {
        let record = record("dev-a", i);
        let seq = store.append(record.clone());
        all.push(citygate::record::StoredRecord { seq, record });
    }
    assert!(!run.state.snapshot().connected);
    let acme = Acme::start_mqtt_on(port, broker.port).await?;
    assert_rest_delivered(run, &store, &acme.url, EPOCH, all, &before, "timeout").await
}

/// (c) The broker restarts mid-sync: waiting requests fail at once as transport errors, new
/// ones fail fast while it is down, the binding reconnects and resubscribes, and every record
/// is at the CSE exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn broker_restart_mid_sync() -> anyhow::Result<()> {
    let Some(mut broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let store = MemStore::new(EPOCH);
    let mut all = fill(&store, &["dev-a", "dev-b", "dev-c"], 150);
    let run = spawn_mqtt(mqtt_config(&broker), store.clone());
    wait_for("some delivered", Duration::from_secs(60), || {
        store.delivered().len() >= 100
    })
    .await?;
    broker.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = run.state.snapshot();
    assert!(!snap.connected, "{snap:?}");
    assert!(store.pending_count() > 0, "not everything may be done");
    for i in 150..160 {
        let record = record("dev-b", i);
        let seq = store.append(record.clone());
        all.push(citygate::record::StoredRecord { seq, record });
    }
    broker.restart();
    // ACME reconnects on its own; wait until it serves MQTT again.
    acme::wait_mqtt_ready(broker.port, Duration::from_secs(60)).await?;
    wait_for("rest delivered", Duration::from_secs(90), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &all).await?,
        460
    );
    assert!(store.dead_letters().is_empty());
    assert!(
        snap.retries.get("transport").copied().unwrap_or(0) > 0,
        "{snap:?}"
    );
    assert!(snap.healthy() && snap.connected, "{snap:?}");
    assert_eq!(store.delivered().iter().collect::<HashSet<_>>().len(), 460);
    Ok(())
}

/// (d) Records the CSE rejects for good go to the dead letters (4000: a container with an
/// empty label, which `citygate check` would have refused; 5207: larger than the container's
/// `mbs`); the rest keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn permanent_rejections_are_dead_lettered() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let store = MemStore::new(EPOCH);
    let mut good = Vec::new();
    let mut bad_seqs = Vec::new();
    for i in 0..30 {
        for d in ["dev-ok-1", "dev-ok-2"] {
            let record = record(d, i);
            let seq = store.append(record.clone());
            good.push(citygate::record::StoredRecord { seq, record });
        }
        if i % 10 == 5 {
            bad_seqs.push((store.append(record("dev-refused", i)), 4000));
            let huge = record("dev-ok-1", i).with("blob", "x".repeat(20_000));
            bad_seqs.push((store.append(huge), 5207));
        }
    }
    let mut cfg = mqtt_config(&broker);
    cfg.container.mbs = Some(10_000);
    cfg.labels.insert("dev-refused".into(), vec![String::new()]);
    let run = spawn_mqtt(cfg, store.clone());
    wait_for("all settled", Duration::from_secs(60), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    let dead = store.dead_letters();
    let mut got: Vec<(u64, u32)> = dead.iter().map(|d| (d.seq, d.rsc.unwrap_or(0))).collect();
    got.sort();
    bad_seqs.sort();
    assert_eq!(got, bad_seqs, "{dead:#?}");
    assert_eq!(snap.dead_lettered, 6);
    assert!(snap.healthy());
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &good).await?,
        60
    );
    Ok(())
}

/// (e) The broker is down when the gateway starts: requests fail fast (no hang, no pile of
/// timeouts), records wait, and sync starts once the broker is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn broker_down_at_start_then_appears() -> anyhow::Result<()> {
    let Some(mut broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    broker.stop();
    let store = MemStore::new(EPOCH);
    let expected = fill(&store, &["dev-a", "dev-b"], 30);
    let run = spawn_mqtt(mqtt_config(&broker), store.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let snap = run.state.snapshot();
    assert_eq!(store.pending_count(), 60);
    assert!(!snap.connected && !snap.registered, "{snap:?}");
    assert!(
        snap.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not connected"),
        "{:?}",
        snap.last_error
    );
    assert_eq!(
        snap.retries.get("timeout").copied().unwrap_or(0),
        0,
        "{snap:?}"
    );
    broker.restart();
    acme::wait_mqtt_ready(broker.port, Duration::from_secs(60)).await?;
    wait_for("all delivered", Duration::from_secs(60), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;
    assert_eq!(
        verify_at_cse(&acme.url, ORIGINATOR, EPOCH, &expected).await?,
        60
    );
    Ok(())
}
