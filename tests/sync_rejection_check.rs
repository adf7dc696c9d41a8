//! A record is dead-lettered only when the CSE rejects it twice, against a scripted in-process
//! CSE (no ACME needed). The scripts replay what ACME did:
//! - a freshly started ACME refused the first records of two devices sent together with 4000
//!   "format error in absRelTimestamp" on a valid `dgt` (a race in its date parser), and
//!   accepted them when sent again;
//! - a timeSeries instance whose answer was lost: the retry meets 4105 (same `dgt`) while the
//!   read-back by name still answers 4004 (the CSE is still committing it).
//!
//! And a record the CSE answers with a server error every time while it takes the others (a
//! poison record) is given up after `dead_letter_after` errors, but never while nothing else
//! gets through.
mod common;

use citygate::northbound::config::RecordResource;
use citygate::northbound::onem2m::primitive::{Operation, Request, ResourceType, Response, Rsc};
use citygate::northbound::{Binding, BindingError, NorthboundConfig, SyncSnapshot};
use common::northbound::mem_store::MemStore;
use common::northbound::{fill, spawn_syncer_with, wait_for};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the CSE does with the next request naming an instance (by `rn`).
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Refuses a create with this code and stores nothing.
    Reject(u16),
    /// Stores the instance, and the answer is lost on the way back.
    LoseAnswer,
    /// A read-back by name answers 4004 (the instance is not findable by name yet).
    NotFoundYet,
}

impl Step {
    /// Reject and LoseAnswer script creates; NotFoundYet a read-back.
    fn applies_to(self, op: Operation) -> bool {
        match self {
            Step::Reject(_) | Step::LoseAnswer => op == Operation::Create,
            Step::NotFoundYet => op == Operation::Retrieve,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Instance rns stored, in creation order.
    stored: Vec<String>,
    script: HashMap<String, VecDeque<Step>>,
    /// Every instance request: (rn, operation, what was answered).
    log: Vec<(String, Operation, String)>,
}

/// A CSE holding the AE, the device resources and the instances; requests naming an instance
/// follow the script for its `rn` first, then behave as a CSE does (create: 2001, or 4105 if
/// it exists; retrieve: 2000 if stored, else 4004).
#[derive(Default)]
struct ScriptedCse {
    inner: Mutex<Inner>,
}

impl ScriptedCse {
    fn script(&self, rn: &str, steps: &[Step]) {
        let mut i = self.inner.lock().unwrap();
        i.script
            .insert(rn.to_string(), steps.iter().copied().collect());
    }

    fn stored(&self) -> Vec<String> {
        self.inner.lock().unwrap().stored.clone()
    }

    /// The answers to requests naming `rn`, in order.
    fn answers(&self, rn: &str) -> Vec<String> {
        let i = self.inner.lock().unwrap();
        i.log
            .iter()
            .filter(|(r, ..)| r == rn)
            .map(|(_, op, answer)| format!("{op:?} {answer}"))
            .collect()
    }
}

fn is_instance(ty: Option<ResourceType>) -> bool {
    matches!(
        ty,
        Some(ResourceType::ContentInstance | ResourceType::TimeSeriesInstance)
    )
}

#[async_trait::async_trait]
impl Binding for ScriptedCse {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let answer = |code: u16| Ok(Response::from_parts(Rsc(code), req.rqi.clone(), None));
        let ae_path = "cse-in/citygate-test";
        if req.op == Operation::Retrieve && req.to == ae_path {
            let ae = serde_json::json!({"m2m:ae": {"api": "N", "rr": false, "aei": req.fr}});
            return Ok(Response::from_parts(Rsc(2000), req.rqi.clone(), Some(ae)));
        }
        if req.op == Operation::Create && !is_instance(req.ty) {
            return answer(2001); // the device's container or timeSeries
        }
        let rn = match req.op {
            Operation::Create => req
                .pc
                .as_ref()
                .and_then(|pc| pc.as_object()?.values().next()?.get("rn")?.as_str())
                .unwrap_or_default()
                .to_string(),
            _ => req.to.rsplit('/').next().unwrap_or_default().to_string(),
        };
        let mut i = self.inner.lock().unwrap();
        let steps = i.script.entry(rn.clone()).or_default();
        let step = steps
            .front()
            .copied()
            .filter(|step| step.applies_to(req.op));
        if step.is_some() {
            steps.pop_front();
        }
        let exists = i.stored.contains(&rn);
        let (code, lost) = match (req.op, step) {
            (_, Some(Step::Reject(code))) => (code, false),
            (_, Some(Step::NotFoundYet)) => (4004, false),
            (Operation::Create, _) if exists => (4105, false),
            (Operation::Create, step) => {
                i.stored.push(rn.clone());
                (2001, step.is_some())
            }
            (_, _) => (if exists { 2000 } else { 4004 }, false),
        };
        let logged = if lost {
            format!("{code} lost")
        } else {
            code.to_string()
        };
        i.log.push((rn, req.op, logged));
        if lost {
            return Err(BindingError::Timeout(Duration::from_secs(5)));
        }
        answer(code)
    }
}

fn cfg() -> NorthboundConfig {
    let mut cfg = common::northbound::config("http://127.0.0.1:9");
    cfg.backoff.initial = Duration::from_millis(20);
    cfg.backoff.max = Duration::from_millis(200);
    cfg
}

/// Runs a syncer against `cse` until every record of `store` is settled; its counters then.
async fn sync_until_settled(
    cfg: NorthboundConfig,
    cse: &Arc<ScriptedCse>,
    store: &Arc<MemStore>,
) -> anyhow::Result<SyncSnapshot> {
    let run = spawn_syncer_with(cfg, cse.clone(), store.clone());
    wait_for("all settled", Duration::from_secs(10), || {
        store.pending_count() == 0
    })
    .await?;
    let snap = run.state.snapshot();
    run.stop().await?;
    Ok(snap)
}

/// The instances of device `d1` (records 1, 3 and 5 of `fill(["d1", "d2"], 3)`) at the CSE, in
/// the order they were created.
fn stored_of_d1(cse: &ScriptedCse) -> Vec<String> {
    cse.stored()
        .into_iter()
        .filter(|rn| ["e-1", "e-3", "e-5"].contains(&rn.as_str()))
        .collect()
}

/// What ACME answered to two devices' first records sent together right after its start.
const DGT_RACE: Step = Step::Reject(4000);

#[tokio::test]
async fn a_rejection_the_cse_does_not_repeat_delivers_the_record() -> anyhow::Result<()> {
    let cse = Arc::new(ScriptedCse::default());
    let store = MemStore::new("e");
    let recs = fill(&store, &["d1", "d2"], 3);
    let firsts = ["e-1", "e-2"];
    for rn in firsts {
        cse.script(rn, &[DGT_RACE]);
    }
    let snap = sync_until_settled(cfg(), &cse, &store).await?;
    assert!(
        store.dead_letters().is_empty(),
        "{:?}",
        store.dead_letters()
    );
    assert_eq!(snap.delivered, 6, "{snap:?}");
    assert_eq!(snap.retries.get("recheck"), Some(&2), "{snap:?}");
    for rn in firsts {
        assert_eq!(cse.answers(rn), ["Create 4000", "Create 2001"]);
    }
    let all: HashSet<String> = recs.iter().map(|r| format!("e-{}", r.seq)).collect();
    assert_eq!(cse.stored().into_iter().collect::<HashSet<_>>(), all);
    Ok(())
}

#[tokio::test]
async fn a_rejection_the_cse_repeats_dead_letters_the_record() -> anyhow::Result<()> {
    let cse = Arc::new(ScriptedCse::default());
    let store = MemStore::new("e");
    fill(&store, &["d1", "d2"], 3);
    cse.script("e-3", &[Step::Reject(4000), Step::Reject(4000)]);
    let snap = sync_until_settled(cfg(), &cse, &store).await?;
    let dead = store.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].seq, dead[0].rsc), (3, Some(4000)));
    assert_eq!(cse.answers("e-3"), ["Create 4000", "Create 4000"]);
    assert_eq!((snap.delivered, snap.dead_lettered), (5, 1), "{snap:?}");
    assert_eq!(snap.retries.get("recheck"), Some(&1), "{snap:?}");
    // The device's order holds: its next record went only after the dead letter.
    assert_eq!(stored_of_d1(&cse), ["e-1", "e-5"]);
    assert_eq!(cse.stored().len(), 5);
    Ok(())
}

#[tokio::test]
async fn a_lost_time_series_answer_read_back_too_early_is_already_there() -> anyhow::Result<()> {
    let cse = Arc::new(ScriptedCse::default());
    let store = MemStore::new("e");
    fill(&store, &["meter"], 3);
    cse.script("e-2", &[Step::LoseAnswer, Step::NotFoundYet]);
    let mut cfg = cfg();
    cfg.resource = RecordResource::TimeSeries;
    let snap = sync_until_settled(cfg, &cse, &store).await?;
    assert!(
        store.dead_letters().is_empty(),
        "{:?}",
        store.dead_letters()
    );
    assert_eq!(
        cse.answers("e-2"),
        [
            "Create 2001 lost",
            "Create 4105",
            "Retrieve 4004",
            "Create 4105",
            "Retrieve 2000"
        ]
    );
    assert_eq!((snap.delivered, snap.already_there), (2, 1), "{snap:?}");
    assert_eq!(snap.retries.get("timeout"), Some(&1), "{snap:?}");
    assert_eq!(snap.retries.get("recheck"), Some(&1), "{snap:?}");
    assert_eq!(cse.stored(), ["e-1", "e-2", "e-3"]);
    Ok(())
}

#[tokio::test]
async fn a_record_failing_while_others_get_through_is_dead_lettered() -> anyhow::Result<()> {
    let cse = Arc::new(ScriptedCse::default());
    let store = MemStore::new("e");
    fill(&store, &["d1", "d2"], 3);
    cse.script("e-3", &[Step::Reject(5000); 50]);
    let mut cfg = cfg();
    cfg.dead_letter_after = 4;
    let snap = sync_until_settled(cfg, &cse, &store).await?;
    let dead = store.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].seq, dead[0].rsc), (3, None));
    assert!(
        dead[0].reason.contains("given up after 4 server errors"),
        "{dead:?}"
    );
    assert_eq!(cse.answers("e-3"), ["Create 5000"; 4]);
    assert_eq!((snap.delivered, snap.dead_lettered), (5, 1), "{snap:?}");
    assert_eq!(snap.retries.get("server"), Some(&3), "{snap:?}");
    // The device's order holds: its next record went only after the dead letter.
    assert_eq!(stored_of_d1(&cse), ["e-1", "e-5"]);
    Ok(())
}

#[tokio::test]
async fn server_errors_with_nothing_else_getting_through_give_up_no_record() -> anyhow::Result<()> {
    let cse = Arc::new(ScriptedCse::default());
    let store = MemStore::new("e");
    fill(&store, &["meter"], 3);
    cse.script("e-1", &[Step::Reject(5000); 8]);
    let mut cfg = cfg();
    cfg.dead_letter_after = 3;
    let snap = sync_until_settled(cfg, &cse, &store).await?;
    assert!(
        store.dead_letters().is_empty(),
        "{:?}",
        store.dead_letters()
    );
    assert_eq!(cse.answers("e-1").len(), 9, "{:?}", cse.answers("e-1"));
    assert_eq!(snap.delivered, 3, "{snap:?}");
    assert_eq!(snap.retries.get("server"), Some(&8), "{snap:?}");
    assert_eq!(cse.stored(), ["e-1", "e-2", "e-3"]);
    Ok(())
}
