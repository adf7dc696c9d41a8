//! What the syncer needs from a store of records. The buffer implements it
//! (`src/buffer/sync_store.rs`); tests implement it in memory. Keeping it a trait lets the
//! northbound depend on no buffer internals.
use crate::record::StoredRecord;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("buffer is shut down")]
    Closed,
    #[error("buffer database error: {0}")]
    Db(String),
}

#[async_trait::async_trait]
pub trait SyncStore: Send + Sync + 'static {
    /// Random id created with the buffer database (8+ lowercase hex/alnum chars); with the
    /// record's seq it forms the contentInstance rn `<epoch>-<seq>`, unique across database
    /// re-creations.
    fn epoch(&self) -> String;

    /// Pending (undelivered, not dead-lettered) records in seq order, at most
    /// `per_device_limit` for each device, only those with `seq > cursors[device]`
    /// (a device absent from `cursors` starts from the beginning). Fetching per device keeps a
    /// backlog of one device from starving the live records of others.
    async fn fetch_pending(
        &self,
        cursors: &HashMap<String, u64>,
        per_device_limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// The CSE holds these records now (created or 4105 already there): remove them.
    async fn mark_delivered(&self, seqs: Vec<u64>) -> Result<(), StoreError>;

    /// The CSE refused this record permanently: move it to the dead-letter table.
    async fn dead_letter(
        &self,
        seq: u64,
        rsc: Option<u32>,
        reason: String,
    ) -> Result<(), StoreError>;

    /// Small persistent key/value state kept in the buffer DB (e.g. the CSE-assigned AE-ID).
    async fn get_state(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put_state(&self, key: &str, value: String) -> Result<(), StoreError>;

    /// A receiver that changes whenever new records were committed (value = last seq), so the
    /// syncer can sleep instead of polling.
    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64>;
}
