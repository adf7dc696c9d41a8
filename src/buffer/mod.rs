//! The local buffer: every record is committed to SQLite before anything is promised.
//!
//! # Design
//! - **One writer thread** ([`writer`]) owns the only connection. Adapters and the syncer talk
//!   to it through a bounded channel ([`BufferConfig::queue_capacity`]); a full channel makes
//!   adapters wait (backpressure).
//! - **Group commit**: appends arriving within `commit_max_delay` (up to
//!   `commit_max_records`) share one transaction. An append is acknowledged
//!   ([`AppendReceipt`]) only after `COMMIT` returned, with `synchronous = FULL` by default so
//!   the acknowledgement survives a power cut.
//! - **Sequence numbers** come from `AUTOINCREMENT`: strictly increasing and never reused, so
//!   `<epoch>-<seq>` names a record uniquely forever (the epoch is random per database).
//! - **Delivery** deletes the row; a permanently refused record moves to `dead_letters`.
//! - **Bounds** (`max_bytes` on database + WAL, `max_records`, `max_age`) are enforced by the
//!   writer with the `when_full` policy; every dropped record is counted by reason in the
//!   `drops` table in the same transaction that drops it. The WAL is capped by
//!   `journal_size_limit`; incremental vacuum returns free pages after a backlog drains.
//! - **Never wipe**: a foreign, damaged or newer-schema file is an error naming the file.

pub mod config;
mod error;
pub mod health;
pub mod reason;
pub mod salvage;
mod schema;
mod state;
mod stats;
mod store;
mod sync_store;
mod writer;

pub use config::{BufferConfig, Synchronous, WhenFull};
pub use error::BufferError;
pub use schema::{wal_budget, APPLICATION_ID, SCHEMA_VERSION};
pub use state::BufferHealth;
pub use stats::{BufferStats, DeadLetter};
pub use store::MAX_DEAD_LETTERS;

use crate::record::{Record, StoredRecord};
use crate::telemetry::handles::RecordMetrics;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
pub use store::journal::{state as journal_state, JournalRow};
use tokio::sync::{oneshot, watch};
use writer::{Command, JournalOp};

/// What the buffer says after a batch was committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Sequence numbers assigned to the committed records, in input order.
    pub seqs: Vec<u64>,
    /// Records refused because the buffer was full under `drop_newest` (counted by the buffer).
    pub dropped: usize,
}

/// Cloneable handle to the buffer. Every method is a message to the writer thread.
#[derive(Clone)]
pub struct Buffer {
    /// Bounded: the backpressure point for all adapters.
    tx: flume::Sender<Command>,
    /// Last committed seq; the syncer waits on it instead of polling.
    commits: watch::Receiver<u64>,
    /// Whether the buffer can commit, as the writer last found out.
    health: watch::Receiver<BufferHealth>,
    epoch: Arc<str>,
}

/// Joins the writer thread; dropping it without [`BufferThread::close`] leaves the thread to
/// finish once every [`Buffer`] handle is gone.
pub struct BufferThread {
    tx: flume::Sender<Command>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl BufferThread {
    /// Commits what is queued, checkpoints the WAL and waits for the thread to end.
    pub fn close(mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::error!("buffer writer thread panicked");
            }
        }
    }
}

impl Buffer {
    /// Opens (or creates) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, cfg: &BufferConfig) -> Result<(Buffer, BufferThread), BufferError> {
        let store = store::Store::open(path, cfg)?;
        let epoch: Arc<str> = store.epoch().into();
        let (commit_tx, commits) = watch::channel(store.last_seq());
        let initial = if store.is_damaged() {
            BufferHealth::Damaged
        } else {
            BufferHealth::Writable
        };
        let (health_tx, health) = watch::channel(initial);
        let (tx, rx) = flume::bounded(cfg.queue_capacity.max(1));
        let cfg2 = cfg.clone();
        let join = std::thread::Builder::new()
            .name("buffer-writer".into())
            .spawn(move || writer::run(store, rx, cfg2, commit_tx, health_tx))
            .map_err(|e| BufferError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        tracing::info!(path = %path.display(), epoch = %epoch, "buffer open");
        Ok((
            Buffer {
                tx: tx.clone(),
                commits,
                health,
                epoch,
            },
            BufferThread {
                tx,
                join: Some(join),
            },
        ))
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, BufferError>>) -> Command,
    ) -> Result<T, BufferError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(make(reply))
            .await
            .map_err(|_| BufferError::Closed)?;
        rx.await.map_err(|_| BufferError::Closed)?
    }

    /// Appends records; returns once they are committed.
    pub async fn append(&self, records: Vec<Record>) -> Result<AppendReceipt, BufferError> {
        self.call(|reply| Command::Append {
            records,
            state: None,
            finish: None,
            reply,
        })
        .await
    }

    /// Appends records and sets the state `key` to `value` in the same transaction: after a
    /// crash either both are there or neither (a reader's position never runs ahead of, or
    /// behind, the records it stands for). Under `when_full = "drop_newest"` the state is
    /// written even when some records were refused (and counted as drops).
    pub async fn append_with_state(
        &self,
        records: Vec<Record>,
        key: &str,
        value: String,
    ) -> Result<AppendReceipt, BufferError> {
        let state = Some((key.to_owned(), value));
        self.call(|reply| Command::Append {
            records,
            state,
            finish: None,
            reply,
        })
        .await
    }

    /// Queues records and returns a future for their commit receipt. Lets a producer keep
    /// several appends in flight (pipelining) while still learning when each is durable.
    pub async fn submit(
        &self,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<Result<AppendReceipt, BufferError>>, BufferError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Command::Append {
                records,
                state: None,
                finish: None,
                reply,
            })
            .await
            .map_err(|_| BufferError::Closed)?;
        Ok(rx)
    }

    /// Pending records after each device's cursor, at most `limit` per device, seq order.
    pub async fn fetch_pending(
        &self,
        cursors: HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, BufferError> {
        self.call(|reply| Command::Fetch {
            cursors,
            limit,
            reply,
        })
        .await
    }

    pub async fn mark_delivered(&self, seqs: Vec<u64>) -> Result<(), BufferError> {
        self.call(|reply| Command::MarkDelivered { seqs, reply })
            .await
    }

    pub async fn dead_letter(
        &self,
        seq: u64,
        rsc: Option<u32>,
        reason: String,
    ) -> Result<(), BufferError> {
        self.call(|reply| Command::DeadLetter {
            seq,
            rsc,
            reason,
            reply,
        })
        .await
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BufferError> {
        self.call(|reply| Command::DeadLetters { limit, reply })
            .await
    }

    pub async fn get_state(&self, key: &str) -> Result<Option<String>, BufferError> {
        let key = key.to_owned();
        self.call(|reply| Command::GetState { key, reply }).await
    }

    pub async fn put_state(&self, key: &str, value: String) -> Result<(), BufferError> {
        let key = key.to_owned();
        self.call(|reply| Command::PutState { key, value, reply })
            .await
    }

    /// Commits a command's result record and marks its journal row `key` finished with
    /// `outcome`, in one transaction (see `crate::commands::journal`).
    pub async fn finish_command(
        &self,
        result: Record,
        key: &str,
        outcome: &str,
    ) -> Result<AppendReceipt, BufferError> {
        let finish = Some((key.to_owned(), outcome.to_owned()));
        self.call(|reply| Command::Append {
            records: vec![result],
            state: None,
            finish,
            reply,
        })
        .await
    }

    /// Records a received command instance; `false` if its key is already journaled.
    pub async fn journal_receive(&self, row: JournalRow) -> Result<bool, BufferError> {
        self.call(|reply| Command::Journal(JournalOp::Receive { row, reply }))
            .await
    }

    /// Marks a received command `executing`.
    pub async fn journal_executing(&self, key: &str) -> Result<(), BufferError> {
        let key = key.to_owned();
        self.call(|reply| Command::Journal(JournalOp::Executing { key, reply }))
            .await
    }

    /// Every command not finished, oldest first.
    pub async fn journal_open(&self) -> Result<Vec<JournalRow>, BufferError> {
        self.call(|reply| Command::Journal(JournalOp::Open { reply }))
            .await
    }

    /// Which of `keys` are journaled already.
    pub async fn journal_known(
        &self,
        keys: Vec<String>,
    ) -> Result<std::collections::BTreeSet<String>, BufferError> {
        self.call(|reply| Command::Journal(JournalOp::Known { keys, reply }))
            .await
    }

    /// The journal row of `key`.
    pub async fn journal_get(&self, key: &str) -> Result<Option<JournalRow>, BufferError> {
        let key = key.to_owned();
        self.call(|reply| Command::Journal(JournalOp::Get { key, reply }))
            .await
    }

    /// Deletes finished rows of instances created before `before_ms`.
    pub async fn journal_prune(&self, before_ms: i64) -> Result<u64, BufferError> {
        self.call(|reply| Command::Journal(JournalOp::Prune { before_ms, reply }))
            .await
    }

    pub async fn stats(&self) -> Result<BufferStats, BufferError> {
        self.call(|reply| Command::Stats { reply }).await
    }

    /// Has the writer keep the `citygate_buffer_*` metrics up to date (after its commits and
    /// maintenance, at most every 100 ms, and once a second when idle). Returns once they are
    /// set.
    pub async fn publish_metrics(
        &self,
        metrics: crate::telemetry::BufferMetrics,
    ) -> Result<(), BufferError> {
        self.call(|reply| Command::Publish { metrics, reply }).await
    }

    /// The database's random epoch (part of every contentInstance name).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Whether the buffer can commit right now (judged by the last write or write probe).
    pub fn health(&self) -> BufferHealth {
        *self.health.borrow()
    }

    /// Changes whenever the buffer's health changes.
    pub fn subscribe_health(&self) -> watch::Receiver<BufferHealth> {
        self.health.clone()
    }

    /// Changes whenever records were committed (value = last seq).
    pub fn subscribe_commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    /// The handle adapters get (without metrics: tests and tools).
    pub fn sender(&self) -> RecordSender {
        RecordSender {
            buffer: self.clone(),
            counted: None,
        }
    }

    /// The handle an adapter gets in `run`: counts its records and devices' last-seen time.
    pub fn sender_for(&self, adapter: &str, metrics: &crate::telemetry::Metrics) -> RecordSender {
        RecordSender {
            buffer: self.clone(),
            counted: Some(Arc::new(RecordMetrics::new(metrics, adapter))),
        }
    }
}

/// What adapters hold: append records (waiting for the commit) and keep small state.
#[derive(Clone)]
pub struct RecordSender {
    buffer: Buffer,
    counted: Option<Arc<RecordMetrics>>,
}

impl RecordSender {
    /// Commits records; returns once they are durable, so an adapter may then acknowledge
    /// upstream (e.g. an MQTT PUBACK).
    pub async fn send(&self, records: Vec<Record>) -> Result<AppendReceipt, BufferError> {
        let Some(counted) = &self.counted else {
            return self.buffer.append(records).await;
        };
        let copies = records.clone();
        let receipt = self.buffer.append(records).await?;
        counted.committed(receipt.seqs.len() as u64, &copies);
        Ok(receipt)
    }

    /// Like [`RecordSender::send`], and sets the state `key` to `value` in the same transaction
    /// (see [`Buffer::append_with_state`]): for a reader's position in its input.
    pub async fn send_with_state(
        &self,
        records: Vec<Record>,
        key: &str,
        value: String,
    ) -> Result<AppendReceipt, BufferError> {
        let copies = match &self.counted {
            Some(_) => records.clone(),
            None => Vec::new(),
        };
        let receipt = self.buffer.append_with_state(records, key, value).await?;
        if let Some(counted) = &self.counted {
            counted.committed(receipt.seqs.len() as u64, &copies);
        }
        Ok(receipt)
    }

    /// Whether the buffer commits right now.
    pub fn buffer_commits(&self) -> bool {
        self.buffer.health().commits()
    }

    /// Waits until the buffer commits again (after a read-only, full or failing disk).
    pub async fn wait_until_buffer_commits(&self) {
        let mut rx = self.buffer.subscribe_health();
        let _ = rx.wait_for(|h| h.commits()).await;
    }

    /// Small persistent key/value state kept in the buffer database (sessions, nonces).
    pub async fn get_state(&self, key: &str) -> Result<Option<String>, BufferError> {
        self.buffer.get_state(key).await
    }

    pub async fn put_state(&self, key: &str, value: String) -> Result<(), BufferError> {
        self.buffer.put_state(key, value).await
    }
}
