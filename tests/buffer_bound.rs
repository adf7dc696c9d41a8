//! Size bound: with a small `max_bytes`, a long run never lets database + WAL exceed the bound
//! by more than the documented margin, and the drop counters account for every missing record.

mod common;

use citygate::buffer::{Buffer, BufferConfig, WhenFull};
use common::record;
use std::collections::HashMap;
use std::path::Path;

/// Documented in docs/buffer.md: database + WAL stay within `max_bytes` plus this margin
/// (one group commit's pages that land before eviction runs).
const MARGIN: f64 = 0.10;

fn on_disk(path: &Path) -> u64 {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    len(path) + len(Path::new(&wal))
}

async fn run_bound(policy: WhenFull) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let max_bytes: u64 = 2 << 20;
    let cfg = BufferConfig {
        max_bytes,
        when_full: policy,
        ..BufferConfig::default()
    };
    let (buf, thread) = Buffer::open(&path, &cfg).unwrap();
    let mut appended = 0u64;
    let mut worst = 0u64;
    for chunk in 0..300 {
        let batch: Vec<_> = (0..200)
            .map(|n| record(&format!("dev{}", n % 7), chunk * 200 + n))
            .collect();
        appended += batch.len() as u64;
        buf.append(batch).await.unwrap();
        worst = worst.max(on_disk(&path));
    }
    let stats = buf.stats().await.unwrap();
    let pending = buf
        .fetch_pending(HashMap::new(), 1 << 30)
        .await
        .unwrap()
        .len() as u64;
    drop(buf);
    thread.close();
    let limit = (max_bytes as f64 * (1.0 + MARGIN)) as u64;
    eprintln!(
        "{policy:?}: appended {appended}, pending {pending}, dropped {:?}, worst on disk {worst} B (bound {max_bytes}, limit {limit})",
        stats.dropped
    );
    assert!(
        worst <= limit,
        "{policy:?}: database + WAL reached {worst} B, over {limit} B"
    );
    assert!(
        stats.dropped_total() > 0,
        "{policy:?}: test did not fill the buffer"
    );
    assert_eq!(pending, stats.pending_records);
    assert_eq!(
        pending + stats.dropped_total(),
        appended,
        "{policy:?}: drops must account for every missing record"
    );
}

#[tokio::test]
async fn drop_oldest_stays_within_bound_and_counts_drops() {
    run_bound(WhenFull::DropOldest).await;
}

#[tokio::test]
async fn drop_newest_stays_within_bound_and_counts_drops() {
    run_bound(WhenFull::DropNewest).await;
}
