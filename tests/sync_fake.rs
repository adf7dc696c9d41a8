//! Syncer scheduling against an in-process fake CSE (no ACME needed): per-device order with
//! one request in flight per device, the in-flight bound, live records vs a backlog, refusal,
//! a wiped CSE, and shutdown flushing what the CSE acknowledged.
mod common;

use citygate::northbound::onem2m::primitive::{Operation, Request, ResourceType, Response, Rsc};
use citygate::northbound::{Binding, BindingError, NorthboundConfig};
use citygate::telemetry::{Metrics, SyncMetrics};
use common::northbound::mem_store::MemStore;
use common::northbound::{fill, record, spawn_syncer_counted, spawn_syncer_with, wait_for};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Cse {
    aes: HashSet<String>,
    /// container path → cin rns in creation order
    containers: HashMap<String, Vec<String>>,
    in_flight: usize,
    max_in_flight: usize,
    per_container: HashMap<String, usize>,
    max_per_container: usize,
    cin_creates: usize,
}

#[derive(Default)]
struct FakeCse {
    cse: Mutex<Cse>,
    refuse_cins: AtomicBool,
}

impl FakeCse {
    fn wipe(&self) {
        let mut c = self.cse.lock().unwrap();
        c.aes.clear();
        c.containers.clear();
    }
    fn rns(&self, device: &str) -> Vec<String> {
        let c = self.cse.lock().unwrap();
        c.containers
            .get(&format!("cse-in/citygate-test/{device}"))
            .cloned()
            .unwrap_or_default()
    }
    fn all_rns(&self) -> HashSet<String> {
        let c = self.cse.lock().unwrap();
        c.containers.values().flatten().cloned().collect()
    }

    fn answer(&self, req: &Request) -> Response {
        let mut c = self.cse.lock().unwrap();
        let rn = req.pc.as_ref().and_then(|pc| {
            pc.as_object()?
                .values()
                .next()?
                .get("rn")?
                .as_str()
                .map(String::from)
        });
        let code = match (req.op, req.ty) {
            (Operation::Retrieve, _) if c.aes.contains(&req.to) => 2000,
            (Operation::Retrieve, _) => 4004,
            (Operation::Create, Some(ResourceType::Ae)) => {
                let path = format!("{}/{}", req.to, rn.unwrap_or_default());
                if c.aes.insert(path) {
                    2001
                } else {
                    4105
                }
            }
            (Operation::Create, Some(ResourceType::Container)) => {
                let path = format!("{}/{}", req.to, rn.unwrap_or_default());
                if !c.aes.contains(&req.to) {
                    4004
                } else {
                    match c.containers.entry(path) {
                        std::collections::hash_map::Entry::Occupied(_) => 4105,
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(Vec::new());
                            2001
                        }
                    }
                }
            }
            (Operation::Create, Some(ResourceType::ContentInstance)) => {
                c.cin_creates += 1;
                let rn = rn.unwrap_or_default();
                if self.refuse_cins.load(Ordering::SeqCst) {
                    4103
                } else {
                    match c.containers.get_mut(&req.to) {
                        None => 4004,
                        Some(rns) if rns.contains(&rn) => 4105,
                        Some(rns) => {
                            rns.push(rn);
                            2001
                        }
                    }
                }
            }
            _ => 4000,
        };
        let body = (req.ty == Some(ResourceType::Ae) || req.op == Operation::Retrieve)
            .then(|| serde_json::json!({"m2m:ae": {"api": "N", "rr": false, "aei": req.fr}}));
        Response::from_parts(Rsc(code), req.rqi.clone(), body)
    }
}

#[async_trait::async_trait]
impl Binding for FakeCse {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        {
            let mut c = self.cse.lock().unwrap();
            c.in_flight += 1;
            c.max_in_flight = c.max_in_flight.max(c.in_flight);
            // Per device = per container: count contentInstance creates only.
            let key = cin_key(&req);
            let n = c.per_container.entry(key).or_insert(0);
            *n += 1;
            let n = *n;
            c.max_per_container = c.max_per_container.max(n);
        }
        tokio::time::sleep(Duration::from_micros(rand::random_range(300..1500))).await;
        let resp = self.answer(&req);
        let mut c = self.cse.lock().unwrap();
        c.in_flight -= 1;
        *c.per_container.get_mut(&cin_key(&req)).unwrap() -= 1;
        Ok(resp)
    }
}

fn cin_key(req: &Request) -> String {
    if req.ty == Some(ResourceType::ContentInstance) {
        req.to.clone()
    } else {
        format!("other-{}", req.rqi)
    }
}

/// Waits until the store holds nothing pending: every record delivered (or dead-lettered).
async fn until_empty(store: &MemStore, timeout: Duration) -> anyhow::Result<()> {
    wait_for("all", timeout, || store.pending_count() == 0).await
}

fn cfg(max_in_flight: usize) -> NorthboundConfig {
    let mut cfg = common::northbound::config("http://127.0.0.1:9");
    cfg.max_in_flight = max_in_flight;
    cfg.backoff.initial = Duration::from_millis(20);
    cfg.backoff.max = Duration::from_millis(200);
    cfg.backoff.auth_retry = Duration::from_millis(500);
    cfg
}

fn rns_of(recs: &[citygate::record::StoredRecord], device: &str) -> Vec<String> {
    recs.iter()
        .filter(|r| r.record.device == device)
        .map(|r| format!("e-{}", r.seq))
        .collect()
}

#[tokio::test]
async fn per_device_order_with_bounded_concurrency() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    let devices = ["d1", "d2", "d3", "d4", "d5", "d6"];
    let recs = fill(&store, &devices, 50);
    let run = spawn_syncer_with(cfg(3), cse.clone(), store.clone());
    until_empty(&store, Duration::from_secs(20)).await?;
    run.stop().await?;
    for d in devices {
        assert_eq!(cse.rns(d), rns_of(&recs, d), "{d}");
    }
    let c = cse.cse.lock().unwrap();
    assert_eq!(c.max_per_container, 1, "one request per device at a time");
    assert!(
        (2..=3).contains(&c.max_in_flight),
        "max in flight {}",
        c.max_in_flight
    );
    assert_eq!(c.cin_creates, 300);
    Ok(())
}

#[tokio::test]
async fn live_record_is_not_starved_by_a_backlog() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    fill(&store, &["backlog"], 600);
    let run = spawn_syncer_with(cfg(1), cse.clone(), store.clone());
    wait_for("backlog started", Duration::from_secs(10), || {
        store.delivered().len() >= 50
    })
    .await?;
    let live = store.append(record("live", 0));
    wait_for("live delivered", Duration::from_secs(10), || {
        store.delivered().contains(&live)
    })
    .await?;
    let backlog_left = store.pending_count();
    until_empty(&store, Duration::from_secs(30)).await?;
    run.stop().await?;
    assert!(
        backlog_left > 400,
        "live record waited for the backlog: {backlog_left} left"
    );
    assert_eq!(cse.rns("live"), vec![format!("e-{live}")]);
    Ok(())
}

#[tokio::test]
async fn refusal_stops_syncing_without_dropping_records() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    cse.refuse_cins.store(true, Ordering::SeqCst);
    let store = MemStore::new("e");
    let recs = fill(&store, &["d1", "d2"], 10);
    let run = spawn_syncer_with(cfg(2), cse.clone(), store.clone());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let snap = run.state.snapshot();
    assert!(snap.refused && !snap.healthy(), "{snap:?}");
    assert!(
        snap.last_error.as_deref().unwrap_or("").contains("4103"),
        "{snap:?}"
    );
    assert_eq!(store.pending_count(), 20);
    assert!(store.dead_letters().is_empty());
    // Slow retries: ~one round (2 devices) per 500 ms, not a hot loop.
    let attempts = cse.cse.lock().unwrap().cin_creates;
    assert!(
        (2..=12).contains(&attempts),
        "{attempts} attempts while refused"
    );
    cse.refuse_cins.store(false, Ordering::SeqCst);
    until_empty(&store, Duration::from_secs(10)).await?;
    assert!(run.state.snapshot().healthy());
    run.stop().await?;
    assert_eq!(cse.rns("d1"), rns_of(&recs, "d1"));
    Ok(())
}

#[tokio::test]
async fn wiped_cse_gets_the_tree_rebuilt() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    fill(&store, &["d1", "d2"], 5);
    let run = spawn_syncer_with(cfg(2), cse.clone(), store.clone());
    wait_for("first", Duration::from_secs(10), || {
        store.pending_count() == 0
    })
    .await?;
    cse.wipe();
    let second = fill(&store, &["d1", "d2"], 5);
    wait_for("second", Duration::from_secs(10), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    assert_eq!(cse.rns("d1"), rns_of(&second, "d1"));
    assert_eq!(cse.rns("d2"), rns_of(&second, "d2"));
    assert_eq!(snap.delivered, 20);
    assert!(snap.retries.is_empty(), "rebuilt inline: {snap:?}");
    Ok(())
}

/// The syncer counts into its metric handle where each request settles: the exported values
/// are right the moment the records are delivered, with no observer polling the syncer.
#[tokio::test]
async fn metrics_are_counted_where_requests_settle() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    fill(&store, &["d1", "d2"], 10);
    let metrics = Metrics::new();
    let run = spawn_syncer_counted(
        cfg(2),
        cse.clone(),
        store.clone(),
        SyncMetrics::new(&metrics),
    );
    until_empty(&store, Duration::from_secs(10)).await?;
    let outcome = |o: &str| metrics.sync_requests.with_label_values(&[o]).get();
    assert_eq!(outcome("created"), 20);
    assert_eq!(outcome("already_there") + outcome("dead_letter"), 0);
    assert_eq!(metrics.sync_records_delivered.get(), 20);
    assert_eq!(metrics.cse_registered.get(), 1);
    assert_eq!(metrics.cse_connected.get(), 1);
    let answered = metrics
        .sync_request_duration
        .with_label_values(&["create"])
        .get_sample_count();
    assert!(answered >= 20, "{answered} requests timed");
    run.stop().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_flushes_everything_the_cse_acknowledged() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    fill(&store, &["d1", "d2", "d3"], 200);
    let run = spawn_syncer_with(cfg(3), cse.clone(), store.clone());
    wait_for("some", Duration::from_secs(10), || {
        store.delivered().len() > 40
    })
    .await?;
    run.stop().await?;
    let at_cse = cse.all_rns();
    let marked: HashSet<String> = store.delivered().iter().map(|s| format!("e-{s}")).collect();
    assert_eq!(marked, at_cse);
    assert!(store.pending_count() > 0, "stopped mid-way");
    Ok(())
}

/// Wraps the fake CSE and notes the task each request is sent from.
struct TaskNoting {
    cse: Arc<FakeCse>,
    tasks: Mutex<HashSet<Option<tokio::task::Id>>>,
}

#[async_trait::async_trait]
impl Binding for TaskNoting {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        self.tasks.lock().unwrap().insert(tokio::task::try_id());
        self.cse.send(req).await
    }
}

/// The hand-offs per record are part of the design (an answer wakes the syncer's task, not a
/// delivery task that then wakes the syncer): every request, the registration and the records
/// of several devices in flight alike, is sent from the syncer's own task.
#[tokio::test]
async fn requests_are_sent_from_the_syncers_own_task() -> anyhow::Result<()> {
    let binding = Arc::new(TaskNoting {
        cse: Arc::new(FakeCse::default()),
        tasks: Mutex::default(),
    });
    let store = MemStore::new("e");
    let recs = fill(&store, &["d1", "d2", "d3"], 20);
    let run = spawn_syncer_with(cfg(3), binding.clone(), store.clone());
    let syncer_task = run.handle.id();
    until_empty(&store, Duration::from_secs(20)).await?;
    run.stop().await?;
    for d in ["d1", "d2", "d3"] {
        assert_eq!(binding.cse.rns(d), rns_of(&recs, d), "{d}");
    }
    let c = binding.cse.cse.lock().unwrap();
    assert!(c.max_in_flight >= 2, "max in flight {}", c.max_in_flight);
    assert_eq!(
        *binding.tasks.lock().unwrap(),
        HashSet::from([Some(syncer_task)])
    );
    Ok(())
}

/// Over MQTT the in-flight limit starts at one (ACME serves MQTT requests one at a time and
/// slows down with more): a backlog shorter than the first probe never has two in flight.
#[tokio::test]
async fn over_mqtt_a_backlog_starts_with_one_request_in_flight() -> anyhow::Result<()> {
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    let devices = ["d1", "d2", "d3", "d4"];
    let recs = fill(&store, &devices, 30);
    let mut mqtt = cfg(4);
    mqtt.binding = citygate::northbound::config::BindingKind::Mqtt;
    let run = spawn_syncer_with(mqtt, cse.clone(), store.clone());
    until_empty(&store, Duration::from_secs(20)).await?;
    run.stop().await?;
    for d in devices {
        assert_eq!(cse.rns(d), rns_of(&recs, d), "{d}");
    }
    {
        let c = cse.cse.lock().unwrap();
        assert_eq!(c.max_in_flight, 1);
        assert_eq!(c.cin_creates, 120);
    }
    // Over HTTP the same backlog goes out with several in flight.
    let cse = Arc::new(FakeCse::default());
    let store = MemStore::new("e");
    fill(&store, &devices, 30);
    let run = spawn_syncer_with(cfg(4), cse.clone(), store.clone());
    until_empty(&store, Duration::from_secs(20)).await?;
    run.stop().await?;
    assert!(cse.cse.lock().unwrap().max_in_flight >= 2);
    Ok(())
}
