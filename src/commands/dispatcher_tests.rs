use super::*;
use crate::buffer::BufferConfig;
use crate::commands::recording::RecordingTarget;
use crate::commands::rule::{ValueKind, WriteRule};
use crate::record::{RecordKind, Value};
use serde_json::json;

struct Fixture {
    dispatcher: Dispatcher,
    target: Arc<RecordingTarget>,
    registry: Arc<CommandRegistry>,
    buffer: Buffer,
    thread: Option<crate::buffer::BufferThread>,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

fn rules() -> Vec<(String, ValueKind, WriteRule)> {
    vec![
        (
            "dim_level".into(),
            ValueKind::Number,
            WriteRule {
                writable: true,
                min: Some(0.0),
                max: Some(100.0),
                idempotent: true,
                ..Default::default()
            },
        ),
        (
            "pulse".into(),
            ValueKind::Number,
            WriteRule {
                writable: true,
                ..Default::default()
            },
        ),
        ("status".into(), ValueKind::Number, WriteRule::default()),
    ]
}

fn fixture_at(dir: tempfile::TempDir) -> Fixture {
    let (buffer, thread) =
        Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).unwrap();
    let registry = CommandRegistry::new();
    let target = RecordingTarget::new("plc", rules());
    registry.register("lamp-1", target.clone());
    let cancel = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        buffer.clone(),
        registry.clone(),
        DispatchConfig {
            originators: vec!["Cplatform".into()],
            default_expiry: Duration::from_secs(300),
        },
        CommandMetrics::detached(),
        cancel.clone(),
    );
    Fixture {
        dispatcher,
        target,
        registry,
        buffer,
        thread: Some(thread),
        cancel,
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    fixture_at(tempfile::tempdir().unwrap())
}

impl Fixture {
    /// The result records committed so far: (instance, outcome, reason, values).
    async fn results(&self) -> Vec<(String, String, String, crate::record::Values)> {
        let records = self
            .buffer
            .fetch_pending(Default::default(), 1000)
            .await
            .unwrap();
        records
            .into_iter()
            .map(|r| {
                assert_eq!(r.record.kind, RecordKind::CommandResult);
                let meta = |k: &str| match r.record.meta.get(k) {
                    Some(Value::Str(s)) => s.clone(),
                    _ => String::new(),
                };
                (
                    meta("command.instance"),
                    meta("command.outcome"),
                    meta("command.reason"),
                    r.record.values.clone(),
                )
            })
            .collect()
    }

    async fn wait_results(&self, n: usize) -> Vec<(String, String, String, crate::record::Values)> {
        for _ in 0..200 {
            let r = self.results().await;
            if r.len() >= n {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} results: {:?}", self.results().await)
    }

    fn close(mut self) {
        self.cancel.cancel();
        drop(self.dispatcher);
        drop(self.buffer);
        if let Some(t) = self.thread.take() {
            t.close();
        }
    }
}

fn instance(key: &str, creator: Option<&str>, con: serde_json::Value) -> Instance {
    Instance {
        key: key.into(),
        device: "lamp-1".into(),
        created_ms: now_ms(),
        creator: creator.map(String::from),
        con,
    }
}

#[tokio::test]
async fn an_allowed_command_is_executed_once_and_reported_done() {
    let f = fixture();
    let i = instance(
        "cin1",
        Some("Cplatform"),
        json!({"id": "c1", "set": {"dim_level": 40}}),
    );
    assert_eq!(f.dispatcher.offer(i.clone()).await.unwrap(), Offered::New);
    assert_eq!(f.dispatcher.offer(i).await.unwrap(), Offered::Known);
    let results = f.wait_results(1).await;
    assert_eq!(results[0].0, "cin1");
    assert_eq!(results[0].1, "done");
    assert_eq!(results[0].3["dim_level"], Value::I64(40));
    let executed = f.target.executed();
    assert_eq!(executed.len(), 1);
    assert!(
        executed[0].command.not_after_ms.is_some(),
        "deadline set before submit"
    );
    f.close();
}

#[tokio::test]
async fn every_rejection_class_is_reported_with_a_reason_and_nothing_is_written() {
    let f = fixture();
    let cases = [
        (
            instance(
                "r1",
                Some("Cintruder"),
                json!({"id": "a", "set": {"dim_level": 1}}),
            ),
            "may not send commands",
        ),
        (
            instance("r2", None, json!({"id": "a", "set": {"dim_level": 1}})),
            "names no creator (cr)",
        ),
        (
            instance("r3", Some("Cplatform"), json!("{not json")),
            "not JSON of the documented form",
        ),
        (
            instance("r4", Some("Cplatform"), json!({"id": "a"})),
            "exactly one of \"set\" and \"downlink\"",
        ),
        (
            instance(
                "r5",
                Some("Cplatform"),
                json!({"id": "a", "set": {"nope": 1}}),
            ),
            "has no point \"nope\"",
        ),
        (
            instance(
                "r6",
                Some("Cplatform"),
                json!({"id": "a", "set": {"status": 1}}),
            ),
            "is not writable",
        ),
        (
            instance(
                "r7",
                Some("Cplatform"),
                json!({"id": "a", "set": {"dim_level": 101}}),
            ),
            "above the maximum 100",
        ),
        (
            instance(
                "r8",
                Some("Cplatform"),
                json!({"id": "a", "set": {"dim_level": true}}),
            ),
            "takes a number",
        ),
        (
            instance(
                "r9",
                Some("Cplatform"),
                json!({"id": "a", "downlink": {"fport": 1, "hex": "00"}}),
            ),
            "takes no downlinks",
        ),
    ];
    let mut unknown_device = instance(
        "r10",
        Some("Cplatform"),
        json!({"id": "a", "set": {"x": 1}}),
    );
    unknown_device.device = "lamp-9".into();
    let n = cases.len() + 1;
    for (i, _) in &cases {
        f.dispatcher.offer(i.clone()).await.unwrap();
    }
    f.dispatcher.offer(unknown_device).await.unwrap();
    let results = f.wait_results(n).await;
    assert_eq!(results.len(), n);
    for ((i, want), got) in cases.iter().zip(&results) {
        assert_eq!(got.0, i.key);
        assert_eq!(got.1, "rejected", "{got:?}");
        assert!(
            got.2.contains(want),
            "{}: {:?} lacks {want:?}",
            i.key,
            got.2
        );
    }
    assert!(
        results[n - 1]
            .2
            .contains("no adapter accepts commands for device \"lamp-9\""),
        "{:?}",
        results[n - 1]
    );
    assert!(f.target.executed().is_empty(), "nothing may be written");
    f.close();
}

#[tokio::test]
async fn a_command_past_its_deadline_expires_without_being_written() {
    let f = fixture();
    let mut late = instance(
        "e1",
        Some("Cplatform"),
        json!({"id": "a", "set": {"dim_level": 1}}),
    );
    late.created_ms -= 301_000;
    let past = instance(
        "e2",
        Some("Cplatform"),
        json!({"id": "b", "set": {"dim_level": 1}, "not_after": "2020-01-01T00:00:00Z"}),
    );
    f.dispatcher.offer(late).await.unwrap();
    f.dispatcher.offer(past).await.unwrap();
    let results = f.wait_results(2).await;
    assert!(results.iter().all(|r| r.1 == "expired"), "{results:?}");
    assert!(
        results[1].2.contains("2020-01-01T00:00:00.000Z"),
        "{:?}",
        results[1]
    );
    assert!(f.target.executed().is_empty());
    f.close();
}

#[tokio::test]
async fn commands_of_one_device_run_in_order() {
    let f = fixture();
    let mut batch = Vec::new();
    for n in 0..20 {
        let mut i = instance(
            &format!("o{n:02}"),
            Some("Cplatform"),
            json!({"id": format!("c{n}"), "set": {"dim_level": n}}),
        );
        i.created_ms += n;
        batch.push(i);
    }
    batch.reverse();
    assert_eq!(f.dispatcher.offer_all(batch.clone()).await.unwrap(), 20);
    assert_eq!(
        f.dispatcher.offer_all(batch).await.unwrap(),
        0,
        "known instances are skipped"
    );
    assert!(f.target.wait_for(20, Duration::from_secs(5)).await);
    let ids: Vec<String> = f
        .target
        .executed()
        .iter()
        .map(|e| e.command.id.clone())
        .collect();
    let want: Vec<String> = (0..20).map(|n| format!("c{n}")).collect();
    assert_eq!(ids, want);
    f.close();
}

/// The crash rule end to end through the buffer: journal rows left `executing` by a killed
/// run are repeated only when idempotent, and reported `unknown` otherwise.
#[tokio::test]
async fn after_a_crash_only_idempotent_commands_are_executed_again() {
    let f = fixture();
    // What a killed run leaves: journaled, two of them marked executing, no answer.
    let journal = f.dispatcher.journal().clone();
    let set = instance(
        "k1",
        Some("Cplatform"),
        json!({"id": "set", "set": {"dim_level": 7}}),
    );
    let pulse = instance(
        "k2",
        Some("Cplatform"),
        json!({"id": "pulse", "set": {"pulse": 1}}),
    );
    let fresh = instance(
        "k3",
        Some("Cplatform"),
        json!({"id": "fresh", "set": {"pulse": 1}}),
    );
    for i in [&set, &pulse, &fresh] {
        assert!(journal.receive(i).await.unwrap());
    }
    journal.executing("k1").await.unwrap();
    journal.executing("k2").await.unwrap();
    assert_eq!(f.dispatcher.recover().await.unwrap(), 3);
    let results = f.wait_results(3).await;
    let by_key: HashMap<_, _> = results.iter().map(|r| (r.0.as_str(), r)).collect();
    assert_eq!(by_key["k1"].1, "done");
    assert_eq!(by_key["k2"].1, "unknown");
    assert!(
        by_key["k2"].2.contains("not declared idempotent"),
        "{:?}",
        by_key["k2"]
    );
    assert_eq!(
        by_key["k3"].1, "done",
        "a received command was never started: executed"
    );
    let ids: Vec<String> = f
        .target
        .executed()
        .iter()
        .map(|e| e.command.id.clone())
        .collect();
    assert_eq!(
        ids,
        ["set", "fresh"],
        "the non-idempotent one is never repeated"
    );
    assert!(
        f.dispatcher.recover().await.unwrap() == 0,
        "everything finished"
    );
    f.close();
}

/// An adapter that drops the answer channel stopped mid-job: the same rule.
#[tokio::test]
async fn a_dropped_answer_counts_as_a_crash_mid_write() {
    struct Dropping(Arc<RecordingTarget>, std::sync::atomic::AtomicUsize);
    impl crate::commands::CommandTarget for Dropping {
        fn adapter(&self) -> &str {
            "plc"
        }
        fn check(&self, c: &Command) -> Result<Safety, String> {
            self.0.check(c)
        }
        fn submit(&self, job: CommandJob) -> Result<(), Box<CommandJob>> {
            // The first attempt of every command is lost mid-job.
            if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 0 {
                drop(job);
                return Ok(());
            }
            self.0.submit(job)
        }
    }
    let f = fixture();
    f.registry.register(
        "lamp-1",
        Arc::new(Dropping(f.target.clone(), Default::default())),
    );
    f.dispatcher
        .offer(instance(
            "d1",
            Some("Cplatform"),
            json!({"id": "set", "set": {"dim_level": 3}}),
        ))
        .await
        .unwrap();
    let results = f.wait_results(1).await;
    assert_eq!(results[0].1, "done", "idempotent: submitted again");
    f.dispatcher
        .offer(instance(
            "d2",
            Some("Cplatform"),
            json!({"id": "pulse", "set": {"pulse": 1}}),
        ))
        .await
        .unwrap();
    let results = f.wait_results(2).await;
    assert_eq!(results[1].1, "unknown", "{results:?}");
    assert_eq!(f.target.executed().len(), 1);
    f.close();
}

/// A command found `executing` whose point the config no longer allows may still have been
/// written: `unknown`, never `rejected` (which would claim nothing was written).
#[tokio::test]
async fn an_interrupted_command_the_config_no_longer_allows_is_unknown() {
    let f = fixture();
    let journal = f.dispatcher.journal().clone();
    let i = instance(
        "x1",
        Some("Cplatform"),
        json!({"id": "was-writable", "set": {"status": 1}}),
    );
    journal.receive(&i).await.unwrap();
    journal.executing("x1").await.unwrap();
    f.dispatcher.recover().await.unwrap();
    let results = f.wait_results(1).await;
    assert_eq!(results[0].1, "unknown", "{results:?}");
    assert!(f.target.executed().is_empty());
    f.close();
}
