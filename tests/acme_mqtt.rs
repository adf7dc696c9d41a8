//! The syncer over the MQTT binding (TS-0010) against a real ACME CSE with its MQTT binding
//! enabled, through Debian's mosquitto. The same end-to-end checks as `acme_sync.rs`, always
//! made at the CSE through its HTTP interface (which stays enabled), never with the syncer's
//! own counters alone. Run:
//! `cargo test --test acme_mqtt -- --ignored --test-threads=1`
//! (without mosquitto the tests skip, or fail under `CITYGATE_REQUIRE_PEERS`).
mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::serialization::Serialization;
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

/// (a) The shared backlog scenario over MQTT (600 records over 6 devices plus live records);
/// the AE-ID is CSE-assigned over `reg_req`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    scenarios::backlog_exactly_once(&acme.url, EPOCH, mqtt_config(&broker), &spawn_mqtt, 100)
        .await?;
    Ok(())
}

/// (a') The backlog scenario with `serialization = "cbor"`: CBOR primitives on the `/cbor`
/// topics, exactly once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn cbor_backlog_arrives_exactly_once_in_order() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let mut cfg = mqtt_config(&broker);
    cfg.serialization = Serialization::Cbor;
    scenarios::backlog_exactly_once(&acme.url, EPOCH, cfg, &spawn_mqtt, 20).await?;
    Ok(())
}

/// (a'') Over MQTT with CBOR, values read back from the CSE are identical to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn cbor_values_read_back_identical() -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let mut cfg = mqtt_config(&broker);
    cfg.serialization = Serialization::Cbor;
    scenarios::values_round_trip(&acme.url, EPOCH, cfg, &spawn_mqtt).await
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
    let before = delivered_before_kill(&store, 400);
    append_records(&store, &mut all, "dev-a", 100..110);
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
    append_records(&store, &mut all, "dev-b", 150..160);
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
    scenarios::permanent_rejections_are_dead_lettered(
        &acme.url,
        EPOCH,
        mqtt_config(&broker),
        &spawn_mqtt,
    )
    .await
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
