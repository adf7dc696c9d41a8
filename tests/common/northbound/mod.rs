//! Shared pieces of the northbound integration tests: the ACME peer, an in-memory buffer, record
//! generators, a running syncer, and checks made at the CSE with a plain HTTP client.
#![allow(dead_code)]
pub mod acme;
pub mod acme_coap;
pub mod lossy_udp;
pub mod mem_store;
pub mod scenarios;

use anyhow::{bail, ensure};
use citygate::northbound::{Binding, HttpBinding, NorthboundConfig, SyncState, Syncer};
use citygate::record::{format_onem2m_ts, format_ts, Record, StoredRecord};
use citygate::telemetry::SyncMetrics;
use mem_store::MemStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const ORIGINATOR: &str = "Ccitygate-test";
pub const AE_NAME: &str = "citygate-test";
/// 2026-11-23T10:00:00Z
pub const T0_MS: i64 = 1_795_428_000_000;

/// A config for the tests: fixed originator, short backoff.
pub fn config(url: &str) -> NorthboundConfig {
    let mut cfg = NorthboundConfig::new(url);
    cfg.originator = ORIGINATOR.into();
    cfg.ae_name = AE_NAME.into();
    cfg.request_timeout = Duration::from_secs(5);
    cfg.max_in_flight = 4;
    cfg.backoff.initial = Duration::from_millis(100);
    cfg.backoff.max = Duration::from_secs(1);
    cfg.backoff.auth_retry = Duration::from_secs(2);
    cfg
}

/// The i-th test record of a device: deterministic values and source time.
pub fn record(device: &str, i: u64) -> Record {
    let mut r = Record::now("test-adapter", device)
        .with("t", 20.0 + i as f64 / 8.0)
        .with("count", i as i64)
        .with("on", i % 2 == 0);
    r.ts_ms = T0_MS + i as i64 * 1000;
    r.meta.insert("rssi".into(), (-60 - (i % 30) as i64).into());
    r
}

/// Appends `per_device` records for each device, interleaved (round robin), returns them.
pub fn fill(store: &MemStore, devices: &[&str], per_device: u64) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    for i in 0..per_device {
        for d in devices {
            let record = record(d, i);
            let seq = store.append(record.clone());
            out.push(StoredRecord { seq, record });
        }
    }
    out
}

/// Appends records `range` of `device` (live records, e.g. during an outage) to the store and
/// to `all`.
pub fn append_records(
    store: &MemStore,
    all: &mut Vec<StoredRecord>,
    device: &str,
    range: std::ops::Range<u64>,
) {
    for i in range {
        let record = record(device, i);
        let seq = store.append(record.clone());
        all.push(StoredRecord { seq, record });
    }
}

/// The seqs marked delivered so far (what the CSE acknowledged before it was killed), checking
/// that they are not all of the `total` records.
pub fn delivered_before_kill(store: &MemStore, total: usize) -> std::collections::HashSet<u64> {
    let before: std::collections::HashSet<u64> = store.delivered().into_iter().collect();
    assert!(
        before.len() < total,
        "not everything may be done before the kill"
    );
    before
}

pub struct Running {
    pub cancel: CancellationToken,
    pub handle: tokio::task::JoinHandle<()>,
    pub state: Arc<SyncState>,
}

impl Running {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle).await??;
        Ok(())
    }
}

pub fn spawn_syncer(cfg: NorthboundConfig, store: Arc<MemStore>) -> Running {
    let binding = HttpBinding::new(&cfg).expect("http binding");
    spawn_syncer_with(cfg, Arc::new(binding), store)
}

pub fn spawn_syncer_with(
    cfg: NorthboundConfig,
    binding: Arc<dyn Binding>,
    store: Arc<MemStore>,
) -> Running {
    spawn_syncer_counted(cfg, binding, store, SyncMetrics::detached())
}

/// [`spawn_syncer_with`], counting into `metrics` (tests of the exported metrics).
pub fn spawn_syncer_counted(
    cfg: NorthboundConfig,
    binding: Arc<dyn Binding>,
    store: Arc<MemStore>,
    metrics: SyncMetrics,
) -> Running {
    let syncer = Syncer::new(cfg, binding, store, metrics);
    let state = syncer.state();
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(syncer.run(cancel.clone()));
    Running {
        cancel,
        handle,
        state,
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub async fn wait_for(
    what: &str,
    timeout: Duration,
    cond: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Checks at the CSE that each device's container holds exactly `expected` (its records, in
/// seq order) as contentInstances, in creation order, with rn `<epoch>-<seq>`, the record
/// JSON in `con` and the source time in `dgt`. Returns the number of cins checked.
pub async fn verify_at_cse(
    url: &str,
    originator: &str,
    epoch: &str,
    expected: &[StoredRecord],
) -> anyhow::Result<usize> {
    let mut by_device: BTreeMap<&str, Vec<&StoredRecord>> = BTreeMap::new();
    for r in expected {
        by_device
            .entry(r.record.device.as_str())
            .or_default()
            .push(r);
    }
    let mut checked = 0;
    for (device, mut recs) in by_device {
        recs.sort_by_key(|r| r.seq);
        let container = format!("cse-in/{AE_NAME}/{device}");
        let cins = acme::cins_of(url, &container, originator).await?;
        let rns: Vec<&str> = cins
            .iter()
            .map(|c| c["rn"].as_str().unwrap_or(""))
            .collect();
        let want: Vec<String> = recs.iter().map(|r| format!("{epoch}-{}", r.seq)).collect();
        ensure!(
            rns == want,
            "{device}: cins at the CSE (creation order) {rns:?}\n  expected {want:?}"
        );
        let discovered = acme::discover_cins(url, &container, originator).await?;
        ensure!(
            discovered.len() == recs.len(),
            "{device}: discovery found {} cins, expected {}",
            discovered.len(),
            recs.len()
        );
        for (cin, rec) in cins.iter().zip(&recs) {
            let dgt = format_onem2m_ts(rec.record.ts_ms).unwrap_or_default();
            ensure!(cin["dgt"] == dgt.as_str(), "dgt {} != {dgt}", cin["dgt"]);
            let con = record_doc(cin)?;
            ensure!(con["device"] == device, "device in {con}");
            ensure!(con["seq"] == rec.seq, "seq in {con}");
            ensure!(con["adapter"] == "test-adapter", "adapter in {con}");
            ensure!(
                con["ts"] == format_ts(rec.record.ts_ms).as_str(),
                "ts in {con}"
            );
            ensure!(
                con["values"] == serde_json::to_value(&rec.record.values)?,
                "values in {con}"
            );
            let meta = if rec.record.meta.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::to_value(&rec.record.meta)?
            };
            ensure!(con["meta"] == meta, "meta in {con}");
            checked += 1;
        }
    }
    Ok(checked)
}

/// The record document of a contentInstance or timeSeriesInstance: with JSON serialization
/// `con` is the document as a JSON string (a contentInstance's `cnf` `application/json:0`);
/// with CBOR it is the
/// document itself (no `cnf`).
pub fn record_doc(instance: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    Ok(match &instance["con"] {
        serde_json::Value::String(text) => {
            // A timeSeriesInstance (ty 30) has no contentInfo attribute.
            ensure!(
                instance["cnf"] == "application/json:0" || instance["ty"] == 30,
                "cnf of {}",
                instance["rn"]
            );
            serde_json::from_str(text)?
        }
        doc @ serde_json::Value::Object(_) => {
            ensure!(instance["cnf"].is_null(), "cnf of {}", instance["rn"]);
            doc.clone()
        }
        other => bail!("con of {} is {other}", instance["rn"]),
    })
}

/// A record whose values are hard to carry exactly: floats that need all 17 digits, extremes
/// of f64 and i64, a float with no fraction, booleans, and strings with escapes and non-ASCII.
pub fn tricky_record(device: &str, i: u64) -> Record {
    let mut r = Record::now("test-adapter", device)
        .with("third", 1.0_f64 / 3.0 + i as f64)
        .with("tenth", 0.1)
        .with("max", f64::MAX)
        .with("min_positive", f64::MIN_POSITIVE)
        .with("subnormal", 5e-324)
        .with("neg", -273.15)
        .with("whole", 230.0)
        .with("i_min", i64::MIN)
        .with("i_max", i64::MAX)
        .with("count", i as i64)
        .with("on", true)
        .with("off", false)
        .with("text", "Zähler \"Nord\"\\ 17\n\u{1F600}")
        .with("empty", "");
    r.ts_ms = T0_MS + i as i64 * 1000;
    r
}

/// After a CSE restart: waits until the store has delivered everything, then proves that the
/// records not delivered before the restart (`all` minus `before`) are each at the new CSE,
/// that the syncer retried with `retry_reason` meanwhile, and that none of the records
/// (`all`) was delivered twice.
pub async fn assert_rest_delivered(
    run: Running,
    store: &MemStore,
    url: &str,
    epoch: &str,
    all: Vec<StoredRecord>,
    before: &std::collections::HashSet<u64>,
    retry_reason: &str,
) -> anyhow::Result<()> {
    let total = all.len();
    wait_for("rest delivered", Duration::from_secs(90), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    let rest: Vec<_> = all
        .into_iter()
        .filter(|r| !before.contains(&r.seq))
        .collect();
    assert_eq!(
        verify_at_cse(url, ORIGINATOR, epoch, &rest).await?,
        rest.len()
    );
    assert!(store.dead_letters().is_empty());
    assert!(
        snap.retries.get(retry_reason).copied().unwrap_or(0) > 0,
        "{snap:?}"
    );
    assert!(snap.healthy());
    let delivered = store.delivered();
    assert_eq!(delivered.len(), total);
    assert_eq!(
        delivered
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        total
    );
    Ok(())
}
