//! The writer thread: owns the [`Store`], runs every command in order, and commits appends in
//! groups (up to `commit_max_records`, or `commit_max_delay` after the first one).
//!
//! One thread and one connection: SQLite serialises writers anyway, a dedicated thread keeps
//! blocking I/O off the async runtime, and the channel in front of it is the single
//! backpressure point for every adapter.

use super::config::{BufferConfig, WhenFull};
use super::error::BufferError;
use super::health::{BufferHealth, WriteGate};
use super::reason;
use super::stats::{BufferStats, DeadLetter};
use super::store::journal::JournalRow;
use super::store::Store;
use super::AppendReceipt;
use crate::record::{Record, StoredRecord};
use crate::telemetry::BufferMetrics;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

type Reply<T> = oneshot::Sender<Result<T, BufferError>>;

pub(super) enum Command {
    Append {
        records: Vec<Record>,
        /// A state entry (key, value) written in the transaction that inserts `records`.
        state: Option<(String, String)>,
        /// A command journal row (key, outcome) marked finished in that same transaction.
        finish: Option<(String, String)>,
        reply: Reply<AppendReceipt>,
    },
    Fetch {
        cursors: HashMap<String, u64>,
        limit: usize,
        reply: Reply<Vec<StoredRecord>>,
    },
    MarkDelivered {
        seqs: Vec<u64>,
        reply: Reply<()>,
    },
    DeadLetter {
        seq: u64,
        rsc: Option<u32>,
        reason: String,
        reply: Reply<()>,
    },
    DeadLetters {
        limit: usize,
        reply: Reply<Vec<DeadLetter>>,
    },
    GetState {
        key: String,
        reply: Reply<Option<String>>,
    },
    PutState {
        key: String,
        value: String,
        reply: Reply<()>,
    },
    Stats {
        reply: Reply<BufferStats>,
    },
    /// Command journal operations (see `crate::commands::journal`).
    Journal(JournalOp),
    /// From now on, keep these metrics up to date (replies once they are set).
    Publish {
        metrics: BufferMetrics,
        reply: Reply<()>,
    },
    Shutdown,
}

struct Append {
    records: Vec<Record>,
    state: Option<(String, String)>,
    finish: Option<(String, String)>,
    reply: Reply<AppendReceipt>,
}

/// A command journal operation; `finished` goes with an append instead (one transaction).
pub(super) enum JournalOp {
    Receive {
        row: JournalRow,
        reply: Reply<bool>,
    },
    Executing {
        key: String,
        reply: Reply<()>,
    },
    Open {
        reply: Reply<Vec<JournalRow>>,
    },
    Known {
        keys: Vec<String>,
        reply: Reply<BTreeSet<String>>,
    },
    Get {
        key: String,
        reply: Reply<Option<JournalRow>>,
    },
    Prune {
        before_ms: i64,
        reply: Reply<u64>,
    },
}

/// How often expiry and vacuum run when the writer is otherwise idle.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(1);
/// The buffer's metrics are set at most this often while records flow (and at every idle
/// tick): fresh enough for any scrape, cheap under a high commit rate.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

pub(super) fn run(
    mut store: Store,
    rx: flume::Receiver<Command>,
    cfg: BufferConfig,
    commits: watch::Sender<u64>,
    health: watch::Sender<BufferHealth>,
) {
    // Appends waiting for room under `when_full = "block"`, oldest first.
    let mut held: VecDeque<Append> = VecDeque::new();
    let mut gate = WriteGate::default();
    let mut last_maintenance = Instant::now();
    let mut metrics: Option<BufferMetrics> = None;
    let mut last_publish: Option<Instant> = None;
    // A round ran since the metrics were last set (they may be behind).
    let mut unpublished = false;
    let mut shutdown = false;
    while !shutdown {
        let mut group: Vec<Append> = Vec::new();
        let mut others: Vec<Command> = Vec::new();
        let mut group_len = 0usize;
        let mut wait = MAINTENANCE_EVERY.saturating_sub(last_maintenance.elapsed());
        if let (true, Some(_), Some(t)) = (unpublished, &metrics, last_publish) {
            wait = wait.min(PUBLISH_EVERY.saturating_sub(t.elapsed()));
        }
        match rx.recv_timeout(wait) {
            Ok(cmd) => sort(cmd, &mut group, &mut group_len, &mut others, &mut shutdown),
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => shutdown = true,
        }
        if !group.is_empty() {
            let deadline = Instant::now() + cfg.commit_max_delay;
            while group_len < cfg.commit_max_records && !shutdown {
                match rx.recv_deadline(deadline) {
                    Ok(cmd) => sort(cmd, &mut group, &mut group_len, &mut others, &mut shutdown),
                    Err(flume::RecvTimeoutError::Timeout) => break,
                    Err(flume::RecvTimeoutError::Disconnected) => {
                        shutdown = true;
                        break;
                    }
                }
            }
        }
        if cfg.when_full == WhenFull::Block {
            held.extend(group.drain(..));
            group = admit(&store, &mut held);
        }
        commit(&mut store, group, &commits, &mut gate);
        for cmd in others {
            match cmd {
                Command::Publish { metrics: m, reply } => {
                    publish(&store, gate.current(store.is_damaged()), &m);
                    last_publish = Some(Instant::now());
                    metrics = Some(m);
                    let _ = reply.send(Ok(()));
                }
                other => handle(&mut store, other, &mut gate),
            }
        }
        if cfg.when_full == WhenFull::Block && !held.is_empty() {
            // Deliveries may have made room.
            let admitted = admit(&store, &mut held);
            commit(&mut store, admitted, &commits, &mut gate);
        }
        if gate.probe_due() {
            let result = store.probe_write();
            note_write(&mut store, &mut gate, result.as_ref().err());
        }
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY && gate.healthy() {
            last_maintenance = Instant::now();
            if let Err(e) = store.expire().and_then(|_| store.vacuum_if_sparse()) {
                tracing::warn!(error = %e, "buffer maintenance failed");
            }
        }
        let now = gate.current(store.is_damaged());
        let changed = health.send_if_modified(|h| std::mem::replace(h, now) != now);
        unpublished = true;
        if let Some(m) = &metrics {
            if changed || last_publish.map_or(true, |t| t.elapsed() >= PUBLISH_EVERY) {
                publish(&store, now, m);
                last_publish = Some(Instant::now());
                unpublished = false;
            }
        }
    }
    for a in held {
        store.count_offered(a.records.len() as u64);
        store.count_unstored(reason::SHUTDOWN, a.records.len() as u64);
        let _ = a.reply.send(Err(BufferError::Closed));
    }
    // Answer what is still queued, then fold the WAL into the database.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Append {
                records,
                state,
                finish,
                reply,
            } => commit(
                &mut store,
                vec![Append {
                    records,
                    state,
                    finish,
                    reply,
                }],
                &commits,
                &mut gate,
            ),
            Command::Shutdown => {}
            other => handle(&mut store, other, &mut gate),
        }
    }
    if let Err(e) = store.flush_unsaved_drops() {
        tracing::error!(error = %e, "cannot save the drop counters at shutdown");
    }
    store.checkpoint();
    tracing::debug!("buffer writer stopped");
}

fn sort(
    cmd: Command,
    group: &mut Vec<Append>,
    group_len: &mut usize,
    others: &mut Vec<Command>,
    shutdown: &mut bool,
) {
    match cmd {
        Command::Append {
            records,
            state,
            finish,
            reply,
        } => {
            *group_len += records.len();
            group.push(Append {
                records,
                state,
                finish,
                reply,
            });
        }
        Command::Shutdown => *shutdown = true,
        other => others.push(other),
    }
}

/// Takes held appends, oldest first, while they fit.
fn admit(store: &Store, held: &mut VecDeque<Append>) -> Vec<Append> {
    let mut admitted: Vec<Append> = Vec::new();
    let mut batch: Vec<Record> = Vec::new();
    while let Some(next) = held.front() {
        batch.extend(next.records.iter().cloned());
        match store.has_room(&batch) {
            Ok(true) => admitted.extend(held.pop_front()),
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure buffer; holding appends");
                break;
            }
        }
    }
    admitted
}

fn commit(
    store: &mut Store,
    group: Vec<Append>,
    commits: &watch::Sender<u64>,
    gate: &mut WriteGate,
) {
    if group.is_empty() {
        return;
    }
    let states: Vec<(String, String)> = group.iter().filter_map(|a| a.state.clone()).collect();
    let finished: Vec<(String, String)> = group.iter().filter_map(|a| a.finish.clone()).collect();
    let (batches, replies): (Vec<Vec<Record>>, Vec<_>) =
        group.into_iter().map(|a| (a.records, a.reply)).unzip();
    let n: u64 = batches.iter().map(|b| b.len() as u64).sum();
    store.count_offered(n);
    if let Some(state) = gate.refusing() {
        // Backing off: do not touch the failing disk, refuse at once (counted).
        store.count_unstored(state.drop_reason(), n);
        for reply in replies {
            let _ = reply.send(Err(BufferError::NotWritable {
                state,
                detail: "retrying the disk with backoff".into(),
            }));
        }
        return;
    }
    match store.commit_group(&batches, &states, &finished) {
        Ok(receipts) => {
            for (reply, r) in replies.into_iter().zip(receipts) {
                let _ = reply.send(Ok(r));
            }
            commits.send_replace(store.last_seq());
            note_write(store, gate, None);
        }
        Err(e) => {
            let state = store.classify(&e);
            store.count_unstored(state.drop_reason(), n);
            gate.failed(state);
            tracing::error!(error = %e, records = n, state = state.as_str(), "group commit failed; records not stored (counted as dropped)");
            for reply in replies {
                let _ = reply.send(Err(BufferError::NotWritable {
                    state,
                    detail: e.to_string(),
                }));
            }
        }
    }
}

/// Feeds the outcome of a write (`None`: it worked) into the gate; a success after failures
/// also saves the drops counted meanwhile.
fn note_write(store: &mut Store, gate: &mut WriteGate, error: Option<&BufferError>) {
    match error {
        None => {
            let was_failing = gate.failure().is_some();
            gate.succeeded();
            if was_failing {
                if let Err(e) = store.flush_unsaved_drops() {
                    tracing::warn!(error = %e, "cannot save drop counters yet");
                }
            }
        }
        Some(BufferError::Sqlite { source, .. }) if super::health::is_corruption(source) => {
            // A damaged page, not a failing disk: the alarm is raised by the store.
            tracing::error!(error = %source, "buffer write hit a damaged page");
        }
        Some(e) => {
            let state = store.classify(e);
            if gate.failure().is_none() {
                tracing::error!(error = %e, state = state.as_str(), "buffer write failed");
            }
            gate.failed(state);
        }
    }
}

fn handle(store: &mut Store, cmd: Command, gate: &mut WriteGate) {
    match cmd {
        Command::Fetch {
            cursors,
            limit,
            reply,
        } => {
            let _ = reply.send(store.fetch_pending(&cursors, limit));
        }
        Command::MarkDelivered { seqs, reply } => {
            let r = store.mark_delivered(&seqs);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
        Command::DeadLetter {
            seq,
            rsc,
            reason,
            reply,
        } => {
            let r = store.dead_letter(seq, rsc, &reason);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
        Command::DeadLetters { limit, reply } => {
            let _ = reply.send(store.dead_letters(limit));
        }
        Command::GetState { key, reply } => {
            let _ = reply.send(store.get_state(&key));
        }
        Command::PutState { key, value, reply } => {
            let r = store.put_state(&key, &value);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
        Command::Stats { reply } => {
            let health = gate.current(store.is_damaged());
            let _ = reply.send(store.stats().map(|s| BufferStats { health, ..s }));
        }
        Command::Journal(op) => journal(store, op, gate),
        Command::Append { .. } | Command::Publish { .. } | Command::Shutdown => {}
    }
}

fn journal(store: &mut Store, op: JournalOp, gate: &mut WriteGate) {
    match op {
        JournalOp::Receive { row, reply } => {
            let r = store.journal_receive(&row);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
        JournalOp::Executing { key, reply } => {
            let r = store.journal_executing(&key);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
        JournalOp::Open { reply } => {
            let _ = reply.send(store.journal_open());
        }
        JournalOp::Known { keys, reply } => {
            let _ = reply.send(store.journal_known(&keys));
        }
        JournalOp::Get { key, reply } => {
            let _ = reply.send(store.journal_get(&key));
        }
        JournalOp::Prune { before_ms, reply } => {
            let r = store.journal_prune(before_ms);
            note_write(store, gate, r.as_ref().err());
            let _ = reply.send(r);
        }
    }
}

/// Sets the `citygate_buffer_*` metrics from the store (the writer's own numbers, no query
/// from the scrape).
fn publish(store: &Store, health: BufferHealth, m: &BufferMetrics) {
    match store.stats() {
        Ok(s) => BufferStats { health, ..s }.publish(m),
        Err(e) => {
            health.publish(m);
            tracing::debug!(error = %e, "cannot read buffer statistics for the metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::buffer::{Buffer, BufferConfig};
    use crate::record::Record;
    use crate::telemetry::{BufferMetrics, Metrics};
    use std::time::Duration;

    /// The writer sets the buffer's metrics itself after it commits: a scrape reads nothing
    /// from the buffer.
    #[tokio::test]
    async fn the_writer_keeps_the_buffer_metrics_current() {
        let dir = tempfile::tempdir().unwrap();
        let (buffer, thread) =
            Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).unwrap();
        let metrics = Metrics::new();
        buffer
            .publish_metrics(BufferMetrics::new(&metrics))
            .await
            .unwrap();
        assert_eq!(metrics.buffer_records.get(), 0);
        let state = metrics.buffer_state.with_label_values(&["writable"]);
        assert_eq!(state.get(), 1);
        let record = Record::now("a", "d1").with("t", 1.0);
        buffer.append(vec![record.clone(), record]).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        // One publication sets several metrics one after the other: wait for the last one.
        while metrics.buffer_records.get() != 2 || metrics.buffer_offered.get() != 2 {
            assert!(tokio::time::Instant::now() < deadline, "never published");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(metrics.buffer_bytes.get() > 0);
        drop(buffer);
        thread.close();
    }
}
