//! The buffer as the syncer's store: every call is a message to the writer thread.

use super::{Buffer, BufferError};
use crate::northbound::store::{StoreError, SyncStore};
use crate::record::StoredRecord;
use std::collections::HashMap;

impl From<BufferError> for StoreError {
    fn from(e: BufferError) -> Self {
        match e {
            BufferError::Closed => StoreError::Closed,
            other => StoreError::Db(other.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl SyncStore for Buffer {
    fn epoch(&self) -> String {
        Buffer::epoch(self).to_owned()
    }

    async fn fetch_pending(
        &self,
        cursors: &HashMap<String, u64>,
        per_device_limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Buffer::fetch_pending(self, cursors.clone(), per_device_limit).await?)
    }

    async fn mark_delivered(&self, seqs: Vec<u64>) -> Result<(), StoreError> {
        Ok(Buffer::mark_delivered(self, seqs).await?)
    }

    async fn dead_letter(
        &self,
        seq: u64,
        rsc: Option<u32>,
        reason: String,
    ) -> Result<(), StoreError> {
        Ok(Buffer::dead_letter(self, seq, rsc, reason).await?)
    }

    async fn get_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(Buffer::get_state(self, key).await?)
    }

    async fn put_state(&self, key: &str, value: String) -> Result<(), StoreError> {
        Ok(Buffer::put_state(self, key, value).await?)
    }

    fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        Buffer::subscribe_commits(self)
    }
}
