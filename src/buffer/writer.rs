//! The writer thread: owns the [`Store`], runs every command in order, and commits appends in
//! groups (up to `commit_max_records`, or `commit_max_delay` after the first one).
//!
//! One thread and one connection: SQLite serialises writers anyway, a dedicated thread keeps
//! blocking I/O off the async runtime, and the channel in front of it is the single
//! backpressure point for every adapter.

use super::config::{BufferConfig, WhenFull};
use super::error::BufferError;
use super::stats::{BufferStats, DeadLetter};
use super::store::{reason, Store};
use super::AppendReceipt;
use crate::record::{Record, StoredRecord};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

type Reply<T> = oneshot::Sender<Result<T, BufferError>>;

pub(super) enum Command {
    Append {
        records: Vec<Record>,
        /// A state entry (key, value) written in the transaction that inserts `records`.
        state: Option<(String, String)>,
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
    Shutdown,
}

struct Append {
    records: Vec<Record>,
    state: Option<(String, String)>,
    reply: Reply<AppendReceipt>,
}

/// How often expiry and vacuum run when the writer is otherwise idle.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(1);

pub(super) fn run(
    mut store: Store,
    rx: flume::Receiver<Command>,
    cfg: BufferConfig,
    commits: watch::Sender<u64>,
) {
    // Appends waiting for room under `when_full = "block"`, oldest first.
    let mut held: VecDeque<Append> = VecDeque::new();
    let mut last_maintenance = Instant::now();
    let mut shutdown = false;
    while !shutdown {
        let mut group: Vec<Append> = Vec::new();
        let mut others: Vec<Command> = Vec::new();
        let mut group_len = 0usize;
        let wait = MAINTENANCE_EVERY.saturating_sub(last_maintenance.elapsed());
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
        commit(&mut store, group, &commits);
        for cmd in others {
            handle(&mut store, cmd);
        }
        if cfg.when_full == WhenFull::Block && !held.is_empty() {
            // Deliveries may have made room.
            let admitted = admit(&store, &mut held);
            commit(&mut store, admitted, &commits);
        }
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            last_maintenance = Instant::now();
            if let Err(e) = store.expire().and_then(|_| store.vacuum_if_sparse()) {
                tracing::warn!(error = %e, "buffer maintenance failed");
            }
        }
    }
    for a in held {
        let _ = a.reply.send(Err(BufferError::Closed));
    }
    // Answer what is still queued, then fold the WAL into the database.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Append {
                records,
                state,
                reply,
            } => commit(
                &mut store,
                vec![Append {
                    records,
                    state,
                    reply,
                }],
                &commits,
            ),
            Command::Shutdown => {}
            other => handle(&mut store, other),
        }
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
            reply,
        } => {
            *group_len += records.len();
            group.push(Append {
                records,
                state,
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

fn commit(store: &mut Store, group: Vec<Append>, commits: &watch::Sender<u64>) {
    if group.is_empty() {
        return;
    }
    let states: Vec<(String, String)> = group.iter().filter_map(|a| a.state.clone()).collect();
    let (batches, replies): (Vec<Vec<Record>>, Vec<_>) =
        group.into_iter().map(|a| (a.records, a.reply)).unzip();
    match store.commit_group(&batches, &states) {
        Ok(receipts) => {
            for (reply, r) in replies.into_iter().zip(receipts) {
                let _ = reply.send(Ok(r));
            }
            commits.send_replace(store.last_seq());
        }
        Err(e) => {
            let n: u64 = batches.iter().map(|b| b.len() as u64).sum();
            if matches!(e, BufferError::DiskFull) {
                store.count_unstored(reason::DISK_FULL, n);
            }
            tracing::error!(error = %e, records = n, "group commit failed; records not stored");
            for reply in replies {
                let _ = reply.send(Err(e.replicate()));
            }
        }
    }
}

fn handle(store: &mut Store, cmd: Command) {
    match cmd {
        Command::Fetch {
            cursors,
            limit,
            reply,
        } => {
            let _ = reply.send(store.fetch_pending(&cursors, limit));
        }
        Command::MarkDelivered { seqs, reply } => {
            let _ = reply.send(store.mark_delivered(&seqs));
        }
        Command::DeadLetter {
            seq,
            rsc,
            reason,
            reply,
        } => {
            let _ = reply.send(store.dead_letter(seq, rsc, &reason));
        }
        Command::DeadLetters { limit, reply } => {
            let _ = reply.send(store.dead_letters(limit));
        }
        Command::GetState { key, reply } => {
            let _ = reply.send(store.get_state(&key));
        }
        Command::PutState { key, value, reply } => {
            let _ = reply.send(store.put_state(&key, &value));
        }
        Command::Stats { reply } => {
            let _ = reply.send(store.stats());
        }
        Command::Append { .. } | Command::Shutdown => {}
    }
}
