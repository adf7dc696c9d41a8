//! Buffer behaviour through its public handle: order, delivery, dead letters, state, restart,
//! policies and refusing foreign or damaged files.

mod common;

use citygate::buffer::{Buffer, BufferConfig, BufferError, WhenFull};
use common::{open, quick_config, record, within};
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn appends_get_increasing_seqs_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let (buf, thread) = open(&path, &quick_config());
    let epoch = buf.epoch().to_owned();
    let r1 = within(5, buf.append(vec![record("a", 1), record("b", 2)]))
        .await
        .unwrap();
    let r2 = within(5, buf.append(vec![record("a", 3)])).await.unwrap();
    assert_eq!(r1.seqs, vec![1, 2]);
    assert_eq!(r2.seqs, vec![3]);
    drop(buf);
    thread.close();

    let (buf, thread) = open(&path, &quick_config());
    assert_eq!(buf.epoch(), epoch, "epoch is stored with the database");
    let pending = within(5, buf.fetch_pending(HashMap::new(), 100))
        .await
        .unwrap();
    let seqs: Vec<u64> = pending.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(
        pending.iter().find(|r| r.seq == 3).unwrap().record,
        record("a", 3)
    );
    // Seqs are never reused, even after the newest record is delivered.
    within(5, buf.mark_delivered(vec![3])).await.unwrap();
    let r3 = within(5, buf.append(vec![record("a", 4)])).await.unwrap();
    assert_eq!(r3.seqs, vec![4]);
    drop(buf);
    thread.close();
}

#[tokio::test]
async fn fetch_is_per_device_in_seq_order_after_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, thread) = open(&dir.path().join("b.sqlite"), &quick_config());
    // A backlog of one device must not hide the other device's records.
    let backlog: Vec<_> = (0..50).map(|n| record("busy", n)).collect();
    buf.append(backlog).await.unwrap();
    buf.append(vec![record("live", 1000)]).await.unwrap();
    let got = buf.fetch_pending(HashMap::new(), 10).await.unwrap();
    let busy: Vec<u64> = got
        .iter()
        .filter(|r| r.record.device == "busy")
        .map(|r| r.seq)
        .collect();
    assert_eq!(busy, (1..=10).collect::<Vec<_>>());
    assert!(got.iter().any(|r| r.record.device == "live"));
    let cursors = HashMap::from([("busy".to_string(), 10u64), ("live".to_string(), 51u64)]);
    let next = buf.fetch_pending(cursors, 5).await.unwrap();
    assert_eq!(
        next.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    drop(buf);
    thread.close();
}

#[tokio::test]
async fn dead_letters_leave_the_pending_set() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, thread) = open(&dir.path().join("b.sqlite"), &quick_config());
    buf.append(vec![record("a", 1), record("a", 2)])
        .await
        .unwrap();
    buf.dead_letter(1, Some(4000), "BAD_REQUEST: unknown attribute".into())
        .await
        .unwrap();
    let pending = buf.fetch_pending(HashMap::new(), 10).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2]);
    let dl = buf.dead_letters(10).await.unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].seq, 1);
    assert_eq!(dl[0].rsc, Some(4000));
    let stats = buf.stats().await.unwrap();
    assert_eq!(stats.dead_letters, 1);
    assert_eq!(stats.pending_records, 1);
    drop(buf);
    thread.close();
}

#[tokio::test]
async fn state_is_persistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let (buf, thread) = open(&path, &quick_config());
    buf.put_state("ae_id", "Cabc".into()).await.unwrap();
    buf.put_state("ae_id", "Cdef".into()).await.unwrap();
    drop(buf);
    thread.close();
    let (buf, thread) = open(&path, &quick_config());
    assert_eq!(
        buf.get_state("ae_id").await.unwrap().as_deref(),
        Some("Cdef")
    );
    assert_eq!(buf.get_state("nope").await.unwrap(), None);
    drop(buf);
    thread.close();
}

#[tokio::test]
async fn max_records_drop_oldest_and_drop_newest_count_every_drop() {
    for policy in [WhenFull::DropOldest, WhenFull::DropNewest] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = BufferConfig {
            max_records: Some(10),
            when_full: policy,
            ..quick_config()
        };
        let (buf, thread) = open(&dir.path().join("b.sqlite"), &cfg);
        for n in 0..25 {
            buf.append(vec![record("a", n)]).await.unwrap();
        }
        let stats = buf.stats().await.unwrap();
        assert_eq!(stats.pending_records, 10, "{policy:?}");
        assert_eq!(stats.dropped.get("max_records"), Some(&15), "{policy:?}");
        let kept: Vec<i64> = buf
            .fetch_pending(HashMap::new(), 100)
            .await
            .unwrap()
            .iter()
            .map(|r| r.record.ts_ms - 1_795_000_000_000)
            .collect();
        match policy {
            WhenFull::DropOldest => assert_eq!(kept, (15..25).collect::<Vec<_>>()),
            _ => assert_eq!(kept, (0..10).collect::<Vec<_>>()),
        }
        drop(buf);
        thread.close();
    }
}

#[tokio::test]
async fn block_policy_holds_appends_until_room_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BufferConfig {
        max_records: Some(5),
        when_full: WhenFull::Block,
        ..quick_config()
    };
    let (buf, thread) = open(&dir.path().join("b.sqlite"), &cfg);
    for n in 0..5 {
        buf.append(vec![record("a", n)]).await.unwrap();
    }
    let waiting = tokio::spawn({
        let buf = buf.clone();
        async move { buf.append(vec![record("a", 5)]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "append must wait while the buffer is full"
    );
    buf.mark_delivered(vec![1, 2]).await.unwrap();
    let receipt = within(5, waiting).await.unwrap().unwrap();
    assert_eq!(receipt.seqs, vec![6]);
    assert!(buf.stats().await.unwrap().dropped.is_empty());
    drop(buf);
    thread.close();
}

#[test]
fn a_foreign_sqlite_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER); INSERT INTO invoices VALUES (42);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Buffer::open(&path, &BufferConfig::default())
        .err()
        .expect("must refuse");
    assert!(matches!(err, BufferError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "file must not change"
    );
}

#[test]
fn a_damaged_file_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.sqlite");
    std::fs::write(&path, b"this is not a database, just garbage bytes ........................................................................................").unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Buffer::open(&path, &BufferConfig::default())
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(matches!(err, BufferError::Unreadable { .. }), "{msg}");
    assert!(msg.contains("never wipes") && msg.contains("mv "), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn drained_backlog_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let (buf, thread) = open(&path, &BufferConfig::default());
    for chunk in 0..20 {
        let batch: Vec<_> = (0..500).map(|n| record("a", chunk * 500 + n)).collect();
        buf.append(batch).await.unwrap();
    }
    let full = buf.stats().await.unwrap();
    let seqs: Vec<u64> = (1..=10_000).collect();
    buf.mark_delivered(seqs).await.unwrap();
    // Maintenance runs about once a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(buf);
    thread.close();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(full.used_bytes > 1_000_000, "{full:?}");
    assert!(
        after < full.used_bytes / 4,
        "file did not shrink: {} -> {after}",
        full.used_bytes
    );
}
