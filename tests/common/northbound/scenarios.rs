//! End-to-end scenarios every binding must pass against a real CSE, written once. A binding's
//! test file supplies how to start a syncer over it (`Spawn`) and its base config; each
//! scenario fills an in-memory store, runs the syncer and checks what arrived at the CSE
//! through ACME's HTTP interface.

use super::mem_store::MemStore;
use super::*;
use citygate::record::StoredRecord;
use std::collections::HashSet;

/// Starts a syncer over the binding under test.
pub type Spawn<'a> = &'a dyn Fn(NorthboundConfig, Arc<MemStore>) -> Running;

/// What [`backlog_exactly_once`] leaves for binding-specific checks.
pub struct Backlog {
    pub ae_id: String,
    pub store: Arc<MemStore>,
    /// Records still queued when the live device had all its records delivered.
    pub backlog_left_when_live_done: usize,
}

/// A backlog of `per_device` records on each of six devices, plus ten live records of a new
/// device arriving while it drains, land exactly once each, in per-device order, with values
/// and source times. The AE-ID is CSE-assigned (originator "C") and persisted, and a restarted
/// gateway reuses it (no second AE).
pub async fn backlog_exactly_once(
    cse_url: &str,
    epoch: &str,
    base: NorthboundConfig,
    spawn: Spawn<'_>,
    per_device: u64,
) -> anyhow::Result<Backlog> {
    let store = MemStore::new(epoch);
    let devices = ["dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6"];
    let mut expected = fill(&store, &devices, per_device);
    let backlog = expected.len();
    let mut cfg = base.clone();
    cfg.originator = "C".into();
    let run = spawn(cfg.clone(), store.clone());
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let record = record("live-1", i);
        let seq = store.append(record.clone());
        expected.push(StoredRecord { seq, record });
    }
    let total = expected.len();
    {
        let store = store.clone();
        let backlog = backlog as u64;
        wait_for("live records", Duration::from_secs(60), move || {
            store.delivered().iter().filter(|s| **s > backlog).count() == 10
        })
        .await?;
    }
    let backlog_left_when_live_done = store.pending_count();
    wait_for("all delivered", Duration::from_secs(120), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;

    let ae_id = store
        .state_value("ae_id")
        .expect("CSE-assigned AE-ID persisted");
    ensure!(ae_id.starts_with('C') && ae_id.len() > 1, "ae_id {ae_id}");
    ensure!(
        ae_id != format!("C{AE_NAME}"),
        "the AE-ID is assigned by the CSE"
    );
    assert_eq!(
        verify_at_cse(cse_url, &ae_id, epoch, &expected).await?,
        total
    );
    let delivered = store.delivered();
    assert_eq!(delivered.len(), total);
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), total);
    assert!(store.dead_letters().is_empty());
    assert_eq!(snap.delivered as usize, total);
    assert!(snap.healthy() && snap.connected, "{snap:?}");
    assert_eq!(snap.ae_id.as_deref(), Some(ae_id.as_str()));

    // A restart of the gateway reuses the persisted AE-ID (no second AE).
    let more = fill(&store, &["dev-1"], 1);
    let run = spawn(cfg, store.clone());
    wait_for("restart delivery", Duration::from_secs(30), || {
        store.pending_count() == 0
    })
    .await?;
    assert_eq!(run.state.snapshot().ae_id.as_deref(), Some(ae_id.as_str()));
    run.stop().await?;
    let cins = acme::cins_of(cse_url, &format!("cse-in/{AE_NAME}/dev-1"), &ae_id).await?;
    assert_eq!(cins.len() as u64, per_device + 1);
    assert_eq!(
        cins.last().map(|c| c["rn"].clone()),
        Some(serde_json::json!(format!("{epoch}-{}", more[0].seq)))
    );
    let (rsc, uril) = acme::retrieve(cse_url, "cse-in?fu=1&ty=2", acme::ADMIN).await?;
    assert_eq!(rsc, 2000);
    let ours = uril["m2m:uril"].as_array().map(|a| {
        a.iter()
            .filter(|u| *u == &format!("cse-in/{AE_NAME}"))
            .count()
    });
    assert_eq!(ours, Some(1), "one AE of ours: {uril}");
    Ok(Backlog {
        ae_id,
        store,
        backlog_left_when_live_done,
    })
}

/// Records the CSE refuses for good go to the dead letters (4000: a container label that is
/// not a valid token; 5207: larger than the container's `mbs`); the rest keep flowing.
pub async fn permanent_rejections_are_dead_lettered(
    cse_url: &str,
    epoch: &str,
    base: NorthboundConfig,
    spawn: Spawn<'_>,
) -> anyhow::Result<()> {
    let store = MemStore::new(epoch);
    let mut good = Vec::new();
    let mut bad_seqs = Vec::new();
    for i in 0..30 {
        for d in ["dev-ok-1", "dev-ok-2"] {
            let record = record(d, i);
            let seq = store.append(record.clone());
            good.push(StoredRecord { seq, record });
        }
        if i % 10 == 5 {
            bad_seqs.push((store.append(record("dev-refused", i)), 4000));
            let huge = record("dev-ok-1", i).with("blob", "x".repeat(20_000));
            bad_seqs.push((store.append(huge), 5207));
        }
    }
    let mut cfg = base;
    cfg.container.mbs = Some(10_000);
    cfg.labels.insert("dev-refused".into(), vec![String::new()]);
    let run = spawn(cfg, store.clone());
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
    assert!(dead
        .iter()
        .filter(|d| d.rsc == Some(4000))
        .all(|d| d.reason.contains("container dev-refused")));
    assert_eq!(snap.dead_lettered, 6);
    assert!(snap.healthy());
    assert_eq!(verify_at_cse(cse_url, ORIGINATOR, epoch, &good).await?, 60);
    Ok(())
}

/// Records with values that are hard to carry exactly (see [`tricky_record`]) read back from
/// the CSE (through its JSON interface) identical to the source, in order, exactly once.
pub async fn values_round_trip(
    cse_url: &str,
    epoch: &str,
    base: NorthboundConfig,
    spawn: Spawn<'_>,
) -> anyhow::Result<()> {
    let store = MemStore::new(epoch);
    let mut expected = Vec::new();
    for i in 0..20 {
        let record = tricky_record("dev-values", i);
        let seq = store.append(record.clone());
        expected.push(StoredRecord { seq, record });
    }
    let run = spawn(base, store.clone());
    wait_for("all delivered", Duration::from_secs(30), || {
        store.pending_count() == 0
    })
    .await?;
    run.stop().await?;
    assert!(store.dead_letters().is_empty());
    assert_eq!(
        verify_at_cse(cse_url, ORIGINATOR, epoch, &expected).await?,
        20
    );
    // Bit for bit, not only "equal as JSON numbers".
    let cins = acme::cins_of(cse_url, &format!("cse-in/{AE_NAME}/dev-values"), ORIGINATOR).await?;
    for (cin, rec) in cins.iter().zip(&expected) {
        let doc = record_doc(cin)?;
        for (k, v) in &rec.record.values {
            if let citygate::record::Value::F64(f) = v {
                let got = doc["values"][k].as_f64().unwrap_or(f64::NAN);
                ensure!(got.to_bits() == f.to_bits(), "{k}: {got:e} != {f:e}");
                ensure!(doc["values"][k].is_f64(), "{k} stays a float");
            }
        }
    }
    Ok(())
}
