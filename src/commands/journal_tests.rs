use super::*;
use crate::buffer::{Buffer, BufferConfig};
use crate::commands::command::Origin;
use crate::commands::recording::RecordingTarget;
use crate::commands::rule::{ValueKind, WriteRule};

fn rule(idempotent: bool) -> WriteRule {
    WriteRule {
        writable: true,
        idempotent,
        ..Default::default()
    }
}

fn registry() -> std::sync::Arc<CommandRegistry> {
    let registry = CommandRegistry::new();
    let target = RecordingTarget::new(
        "plc",
        [
            ("dim_level".to_string(), ValueKind::Number, rule(true)),
            ("pulse".to_string(), ValueKind::Number, rule(false)),
        ],
    );
    registry.register("lamp-1", target);
    registry
}

fn command(point: &str) -> Command {
    Command::parse(
        &serde_json::json!({"id": "c", "set": {point: 1}}),
        Origin {
            key: "cin1".into(),
            device: "lamp-1".into(),
            created_ms: 0,
            creator: "Cplatform".into(),
        },
    )
    .unwrap()
}

#[test]
fn executing_and_idempotent_is_executed_again() {
    assert_eq!(recovery(&command("dim_level"), &registry()), Ok(()));
}

#[test]
fn executing_and_not_idempotent_is_unknown_and_not_repeated() {
    let outcome = recovery(&command("pulse"), &registry()).unwrap_err();
    assert_eq!(outcome.name(), "unknown");
    let Outcome::Unknown { reason } = outcome else {
        unreachable!()
    };
    assert!(reason.contains("not declared idempotent"), "{reason}");
    assert!(reason.contains("check the device"), "{reason}");
}

#[test]
fn executing_for_a_device_no_longer_configured_is_unknown() {
    let mut c = command("dim_level");
    c.device = "gone".into();
    let outcome = recovery(&c, &registry()).unwrap_err();
    assert_eq!(outcome.name(), "unknown");
}

#[tokio::test]
async fn states_move_forward_and_finish_commits_the_result_with_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) =
        Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).unwrap();
    let journal = Journal::new(buffer.clone());
    let instance = Instance {
        key: "cin1".into(),
        device: "lamp-1".into(),
        created_ms: 5,
        creator: Some("Cplatform".into()),
        con: serde_json::json!({"id": "c", "set": {"dim_level": 1}}),
    };
    assert!(journal.receive(&instance).await.unwrap());
    assert!(
        !journal.receive(&instance).await.unwrap(),
        "a key is taken once"
    );
    let open = journal.open().await.unwrap();
    assert_eq!(open, vec![(Stage::Received, instance.clone())]);
    journal.executing("cin1").await.unwrap();
    assert_eq!(journal.open().await.unwrap()[0].0, Stage::Executing);
    assert_eq!(
        journal.outcome_of("cin1").await.unwrap().as_deref(),
        Some("")
    );
    let outcome = Outcome::Done {
        read_back: Default::default(),
    };
    journal
        .finish("plc", &command("dim_level"), &outcome)
        .await
        .unwrap();
    assert!(journal.open().await.unwrap().is_empty());
    assert_eq!(
        journal.outcome_of("cin1").await.unwrap().as_deref(),
        Some("done")
    );
    let pending = buffer.fetch_pending(Default::default(), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].record.kind,
        crate::record::RecordKind::CommandResult
    );
    // Pruning keeps recent rows and removes old finished ones.
    assert_eq!(journal.prune(1_000).await.unwrap(), 0);
    assert_eq!(
        journal
            .prune(10 + RETENTION.as_millis() as i64)
            .await
            .unwrap(),
        1
    );
    assert_eq!(journal.outcome_of("cin1").await.unwrap(), None);
    drop((journal, buffer));
    thread.close();
}

#[test]
fn the_journal_survives_a_reopen_of_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let instance = Instance {
        key: "cin9".into(),
        device: "lamp-1".into(),
        created_ms: 1,
        creator: Some("Cplatform".into()),
        con: serde_json::json!("{\"id\":\"c\",\"set\":{\"pulse\":1}}"),
    };
    rt.block_on(async {
        let (buffer, thread) = Buffer::open(&path, &BufferConfig::default()).unwrap();
        let journal = Journal::new(buffer.clone());
        journal.receive(&instance).await.unwrap();
        journal.executing("cin9").await.unwrap();
        drop((journal, buffer));
        thread.close();
    });
    rt.block_on(async {
        let (buffer, thread) = Buffer::open(&path, &BufferConfig::default()).unwrap();
        let journal = Journal::new(buffer.clone());
        assert_eq!(
            journal.open().await.unwrap(),
            vec![(Stage::Executing, instance.clone())]
        );
        drop((journal, buffer));
        thread.close();
    });
}
