//! Registration and container paths against a scripted CSE (answers chosen per request), for
//! the branches a healthy ACME never takes (4117 races, rejections).
use super::*;
use crate::northbound::binding::BindingError;
use crate::northbound::onem2m::primitive::{Operation, ResourceType};
use crate::northbound::store::StoreError;
use crate::record::StoredRecord;
use std::collections::HashMap;

type Script = Box<dyn Fn(&Request, usize) -> Response + Send + Sync>;

/// Answers each request with `script(request, index)` and logs what was asked.
struct Scripted {
    script: Script,
    log: Mutex<Vec<Request>>,
}

#[async_trait::async_trait]
impl Binding for Scripted {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(req.clone());
            log.len() - 1
        };
        Ok((self.script)(&req, n))
    }
}

#[derive(Default)]
struct StateOnly(Mutex<HashMap<String, String>>);

#[async_trait::async_trait]
impl SyncStore for StateOnly {
    fn epoch(&self) -> String {
        "e".into()
    }
    async fn fetch_pending(
        &self,
        _: &HashMap<String, u64>,
        _: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn mark_delivered(&self, _: Vec<u64>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn dead_letter(&self, _: u64, _: Option<u32>, _: String) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn put_state(&self, key: &str, value: String) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(key.into(), value);
        Ok(())
    }
    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        tokio::sync::watch::channel(0).1
    }
}

fn resp(rsc: u16, body: Option<serde_json::Value>) -> Response {
    Response::from_parts(Rsc(rsc), "r", body)
}

fn ae_body(aei: &str) -> Option<serde_json::Value> {
    Some(
        serde_json::json!({"m2m:ae": {"rn": "citygate", "api": "Ncitygate", "rr": false,
        "srv": ["3"], "ri": aei, "aei": aei}}),
    )
}

fn tree(originator: &str, script: Script) -> (Tree, Arc<Scripted>, Arc<StateOnly>) {
    let mut cfg = NorthboundConfig::new("http://127.0.0.1:1");
    cfg.originator = originator.into();
    let binding = Arc::new(Scripted {
        script,
        log: Mutex::new(Vec::new()),
    });
    let store = Arc::new(StateOnly::default());
    let t = Tree::new(Arc::new(cfg), binding.clone(), store.clone());
    (t, binding, store)
}

fn ops(b: &Scripted) -> Vec<(Operation, String, String)> {
    b.log
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.op, r.to.clone(), r.fr.clone()))
        .collect()
}

#[tokio::test]
async fn already_registered_is_retrieved_and_reused() {
    let (t, b, _) = tree(
        "Cgw",
        Box::new(|_, n| match n {
            0 => resp(4004, None),
            1 => resp(4117, None),
            _ => resp(2000, ae_body("Cgw")),
        }),
    );
    assert_eq!(t.register().await.unwrap(), "Cgw");
    let seen = ops(&b);
    assert_eq!(
        seen[0],
        (Operation::Retrieve, "cse-in/citygate".into(), "Cgw".into())
    );
    assert_eq!(seen[1], (Operation::Create, "cse-in".into(), "Cgw".into()));
    assert_eq!(
        seen[2],
        (Operation::Retrieve, "cse-in/citygate".into(), "Cgw".into())
    );
    let create = b.log.lock().unwrap()[1].clone();
    assert_eq!(
        create.pc.unwrap(),
        serde_json::json!({"m2m:ae": {"rn": "citygate", "api": "Ncitygate", "rr": false, "srv": ["3"]}})
    );
}

#[tokio::test]
async fn registered_elsewhere_is_refused() {
    let (t, _, _) = tree(
        "Cgw",
        Box::new(|_, n| match n {
            1 => resp(4117, None),
            _ => resp(4004, None),
        }),
    );
    assert!(matches!(
        t.register().await,
        Err(Outcome::Refused {
            rsc: Some(4117),
            ..
        })
    ));
}

#[tokio::test]
async fn cse_assigned_id_is_persisted_and_reused() {
    let (t, b, store) = tree(
        "C",
        Box::new(|req, _| match req.op {
            Operation::Create => resp(2001, ae_body("CXONo3ACQFl")),
            _ => resp(2000, ae_body("CXONo3ACQFl")),
        }),
    );
    assert_eq!(t.register().await.unwrap(), "CXONo3ACQFl");
    assert_eq!(
        store
            .0
            .lock()
            .unwrap()
            .get(AE_ID_STATE_KEY)
            .map(String::as_str),
        Some("CXONo3ACQFl")
    );
    assert_eq!(t.register().await.unwrap(), "CXONo3ACQFl");
    assert_eq!(
        ops(&b),
        vec![
            (Operation::Create, "cse-in".into(), "C".into()),
            (
                Operation::Retrieve,
                "cse-in/citygate".into(),
                "CXONo3ACQFl".into()
            ),
        ]
    );
}

#[tokio::test]
async fn rejected_registration_refuses_instead_of_dropping_records() {
    let (t, _, _) = tree(
        "Cgw",
        Box::new(|req, _| match req.op {
            Operation::Create => resp(4000, Some(serde_json::json!({"m2m:dbg": "bad api"}))),
            _ => resp(4004, None),
        }),
    );
    match t.register().await {
        Err(Outcome::Refused {
            rsc: Some(4000),
            detail,
        }) => assert!(detail.contains("bad api")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn vanished_ae_is_reregistered_once_for_a_container() {
    let (t, b, _) = tree(
        "Cgw",
        Box::new(|req, n| match (req.op, req.ty, n) {
            (Operation::Retrieve, _, 0) => resp(2000, ae_body("Cgw")),
            (Operation::Create, Some(_), 1) => resp(4004, None), // container: AE gone
            (Operation::Retrieve, _, 2) => resp(4004, None),
            _ => resp(2001, ae_body("Cgw")),
        }),
    );
    t.register().await.unwrap();
    let generation = t.generation();
    t.ensure_container("meter-1").await.unwrap();
    assert_eq!(t.generation(), generation + 1);
    t.ensure_container("meter-1").await.unwrap(); // cached: no request
    let seen = ops(&b);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen[4],
        (Operation::Create, "cse-in/citygate".into(), "Cgw".into())
    );
    assert_eq!(t.container_path("meter-1"), "cse-in/citygate/meter-1");
    t.forget_container("meter-1");
    t.ensure_container("meter-1").await.unwrap();
    assert_eq!(ops(&b).len(), 6);
}

/// An id that is not a resource name gets its mapped container, labelled with the id (after
/// the configured labels); a valid id keeps its name and gets no extra label.
#[tokio::test]
async fn odd_device_ids_get_a_mapped_labelled_container() {
    let mut cfg = NorthboundConfig::new("http://127.0.0.1:1");
    cfg.originator = "Cgw".into();
    cfg.labels.insert("a/b".into(), vec!["site/cab-17".into()]);
    let binding = Arc::new(Scripted {
        script: Box::new(|req, _| match req.op {
            Operation::Retrieve => resp(2000, ae_body("Cgw")),
            _ => resp(2001, None),
        }),
        log: Mutex::new(Vec::new()),
    });
    let t = Tree::new(
        Arc::new(cfg),
        binding.clone(),
        Arc::new(StateOnly::default()),
    );
    t.register().await.unwrap();
    for device in ["a/b", "..", "meter-1"] {
        t.ensure_container(device).await.unwrap();
    }
    let log = binding.log.lock().unwrap().clone();
    let bodies: Vec<serde_json::Value> = log[1..]
        .iter()
        .map(|r| {
            assert_eq!(
                r.to, "cse-in/citygate",
                "containers are created under the AE"
            );
            r.pc.clone().unwrap()["m2m:cnt"].clone()
        })
        .collect();
    assert_eq!(bodies[0]["rn"], "a_b~c14cddc033f6");
    assert_eq!(
        bodies[0]["lbl"],
        serde_json::json!(["site/cab-17", "device/a/b"])
    );
    let dots = bodies[1]["rn"].as_str().unwrap();
    assert!(dots.starts_with("..~") && dots.len() == 15, "{dots}");
    assert_eq!(bodies[1]["lbl"], serde_json::json!(["device/.."]));
    assert_eq!(bodies[2]["rn"], "meter-1");
    assert!(bodies[2].get("lbl").is_none());
    assert_eq!(t.container_path("a/b"), "cse-in/citygate/a_b~c14cddc033f6");
    assert_eq!(t.container_path(".."), format!("cse-in/citygate/{dots}"));
}

/// A CSE that knew the gateway and answers 4004 for its own base is restarting (ACME answers
/// before its resources exist): that is retried with the normal backoff. On a first
/// registration the same answer means a wrong `cse` path, and syncing stops loudly.
#[tokio::test]
async fn missing_cse_base_after_a_registration_is_retried_not_refused() {
    let (t, _, _) = tree(
        "Cgw",
        Box::new(|_, n| match n {
            0 => resp(2000, ae_body("Cgw")),
            _ => resp(4004, None),
        }),
    );
    assert_eq!(t.register().await.unwrap(), "Cgw");
    assert!(matches!(
        t.register().await,
        Err(Outcome::Retry {
            reason: RetryReason::Server,
            ..
        })
    ));
    let (first, _, _) = tree("Cgw", Box::new(|_, _| resp(4004, None)));
    assert!(matches!(
        first.register().await,
        Err(Outcome::Refused {
            rsc: Some(4004),
            ..
        })
    ));
}

#[tokio::test]
async fn time_series_mapping_declares_the_period_of_periodic_devices() {
    let mut cfg = NorthboundConfig::new("http://127.0.0.1:1");
    cfg.originator = "Cgw".into();
    cfg.resource = RecordResource::TimeSeries;
    let binding = Arc::new(Scripted {
        script: Box::new(|req, _| match req.op {
            Operation::Retrieve => resp(2000, ae_body("Cgw")),
            _ => resp(2001, None),
        }),
        log: Mutex::new(Vec::new()),
    });
    let t = Tree::new(
        Arc::new(cfg),
        binding.clone(),
        Arc::new(StateOnly::default()),
    );
    t.set_device_periods(Arc::new(|d: &str| {
        (d == "meter-1").then_some(std::time::Duration::from_secs(10))
    }));
    t.register().await.unwrap();
    t.ensure_container("meter-1").await.unwrap();
    t.ensure_container("tag-7").await.unwrap();
    let log = binding.log.lock().unwrap();
    let creates: Vec<&Request> = log.iter().filter(|r| r.op == Operation::Create).collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[0].ty, Some(ResourceType::TimeSeries));
    assert_eq!(
        creates[0].pc,
        Some(
            serde_json::json!({"m2m:ts": {"rn": "meter-1", "pei": 10000, "peid": 2500,
            "mdd": true, "mdt": 7500, "mdn": 1000}})
        )
    );
    assert_eq!(
        creates[1].pc,
        Some(serde_json::json!({"m2m:ts": {"rn": "tag-7"}}))
    );
}
