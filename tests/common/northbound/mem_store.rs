//! An in-memory `SyncStore` with the buffer's contract (seq order, per-device fetch after a
//! cursor, delete on delivery, dead letters, key/value state, commit notifications), plus
//! inspection helpers for assertions.
#![allow(dead_code)]
use citygate::northbound::store::{StoreError, SyncStore};
use citygate::record::{Record, StoredRecord};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub seq: u64,
    pub device: String,
    pub rsc: Option<u32>,
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    pending: BTreeMap<u64, StoredRecord>,
    /// Every seq ever marked delivered, in the order the syncer reported them.
    delivered: Vec<u64>,
    dead: Vec<DeadLetter>,
    state: HashMap<String, String>,
    mark_calls: usize,
}

pub struct MemStore {
    epoch: String,
    inner: Mutex<Inner>,
    commits: watch::Sender<u64>,
}

impl MemStore {
    pub fn new(epoch: &str) -> Arc<MemStore> {
        Arc::new(MemStore {
            epoch: epoch.to_string(),
            inner: Mutex::new(Inner {
                next_seq: 1,
                ..Default::default()
            }),
            commits: watch::channel(0).0,
        })
    }

    /// Commits a record (as the buffer writer would) and notifies the syncer.
    pub fn append(&self, record: Record) -> u64 {
        let seq = {
            let mut i = self.inner.lock().unwrap();
            let seq = i.next_seq;
            i.next_seq += 1;
            i.pending.insert(seq, StoredRecord { seq, record });
            seq
        };
        self.commits.send_replace(seq);
        seq
    }

    pub fn pending_count(&self) -> usize {
        self.inner.lock().unwrap().pending.len()
    }

    pub fn delivered(&self) -> Vec<u64> {
        self.inner.lock().unwrap().delivered.clone()
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner.lock().unwrap().dead.clone()
    }

    pub fn mark_calls(&self) -> usize {
        self.inner.lock().unwrap().mark_calls
    }

    pub fn state_value(&self, key: &str) -> Option<String> {
        self.inner.lock().unwrap().state.get(key).cloned()
    }
}

#[async_trait::async_trait]
impl SyncStore for MemStore {
    fn epoch(&self) -> String {
        self.epoch.clone()
    }

    async fn fetch_pending(
        &self,
        cursors: &HashMap<String, u64>,
        per_device_limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let i = self.inner.lock().unwrap();
        let mut per_device: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (seq, rec) in &i.pending {
            let device = rec.record.device.as_str();
            if cursors.get(device).is_some_and(|c| seq <= c) {
                continue;
            }
            let n = per_device.entry(device).or_insert(0);
            if *n < per_device_limit {
                *n += 1;
                out.push(rec.clone());
            }
        }
        Ok(out)
    }

    async fn mark_delivered(&self, seqs: Vec<u64>) -> Result<(), StoreError> {
        let mut i = self.inner.lock().unwrap();
        i.mark_calls += 1;
        for seq in seqs {
            i.pending.remove(&seq);
            i.delivered.push(seq);
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        seq: u64,
        rsc: Option<u32>,
        reason: String,
    ) -> Result<(), StoreError> {
        let mut i = self.inner.lock().unwrap();
        let rec = i
            .pending
            .remove(&seq)
            .ok_or_else(|| StoreError::Db(format!("no pending record {seq}")))?;
        i.dead.push(DeadLetter {
            seq,
            device: rec.record.device,
            rsc,
            reason,
        });
        Ok(())
    }

    async fn get_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.inner.lock().unwrap().state.get(key).cloned())
    }

    async fn put_state(&self, key: &str, value: String) -> Result<(), StoreError> {
        self.inner
            .lock()
            .unwrap()
            .state
            .insert(key.to_string(), value);
        Ok(())
    }

    fn subscribe_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
