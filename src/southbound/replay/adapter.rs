//! Reads the file line by line, paces records at `rate`, commits them in batches.

use super::config::ReplayConfig;
use super::line::parse_line;
use crate::buffer::RecordSender;
use crate::record::Record;
use crate::southbound::{Adapter, AdapterError};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Records committed in one append at most (keeps a fast replay from holding the writer).
const MAX_BATCH: usize = 500;

pub struct ReplayAdapter {
    id: String,
    cfg: ReplayConfig,
}

impl ReplayAdapter {
    pub fn new(id: &str, cfg: ReplayConfig) -> Self {
        ReplayAdapter {
            id: id.to_owned(),
            cfg,
        }
    }

    fn state_key(&self) -> String {
        format!("replay.{}.lines_done", self.id)
    }

    /// Commits a batch and remembers how many lines of the file are done.
    async fn flush(
        &self,
        out: &RecordSender,
        batch: &mut Vec<Record>,
        lines_done: u64,
    ) -> Result<(), AdapterError> {
        if batch.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(batch);
        let receipt = out
            .send(records)
            .await
            .map_err(AdapterError::buffer("storing records"))?;
        tracing::debug!(adapter = %self.id, committed = receipt.seqs.len(), dropped = receipt.dropped, "replay batch committed");
        if self.cfg.resume {
            out.put_state(&self.state_key(), lines_done.to_string())
                .await
                .map_err(AdapterError::buffer("saving the replay position"))?;
        }
        Ok(())
    }

    /// One pass over the file. Returns `false` when stopped by shutdown.
    async fn pass(
        &self,
        out: &RecordSender,
        shutdown: &CancellationToken,
        skip: u64,
    ) -> Result<bool, AdapterError> {
        let file = tokio::fs::File::open(&self.cfg.file)
            .await
            .map_err(AdapterError::io(format!(
                "cannot open {}",
                self.cfg.file.display()
            )))?;
        let mut lines = BufReader::new(file).lines();
        let interval = (self.cfg.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.cfg.rate));
        let started = Instant::now();
        let mut emitted: u32 = 0;
        let mut line_no: u64 = 0;
        let mut bad_lines: u64 = 0;
        let mut batch = Vec::new();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.flush(out, &mut batch, line_no).await?;
                    return Ok(false);
                }
                l = lines.next_line() => l,
            };
            let Some(text) = next.map_err(|e| {
                AdapterError::io(format!("cannot read {}", self.cfg.file.display()))(e)
            })?
            else {
                break;
            };
            line_no += 1;
            if line_no <= skip || text.trim().is_empty() || text.trim_start().starts_with('#') {
                continue;
            }
            let record = match parse_line(&self.id, &text) {
                Ok(r) => r,
                Err(e) => {
                    bad_lines += 1;
                    tracing::warn!(adapter = %self.id, file = %self.cfg.file.display(), line = line_no, error = %e, "skipping bad replay line");
                    continue;
                }
            };
            if let Some(interval) = interval {
                let due = started + interval * emitted;
                if due > Instant::now() {
                    self.flush(out, &mut batch, line_no - 1).await?;
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(false),
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            batch.push(record);
            emitted = emitted.saturating_add(1);
            if batch.len() >= MAX_BATCH {
                self.flush(out, &mut batch, line_no).await?;
            }
        }
        self.flush(out, &mut batch, line_no).await?;
        tracing::info!(adapter = %self.id, file = %self.cfg.file.display(), lines = line_no, bad_lines, "replay file done");
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Adapter for ReplayAdapter {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError> {
        let mut skip = 0;
        if self.cfg.resume {
            let saved = out
                .get_state(&self.state_key())
                .await
                .map_err(AdapterError::buffer("reading the replay position"))?;
            skip = saved.and_then(|s| s.parse().ok()).unwrap_or(0);
            if skip > 0 {
                tracing::info!(adapter = %self.id, lines_done = skip, "resuming replay");
            }
        }
        loop {
            if !self.pass(out, shutdown, skip).await? {
                return Ok(());
            }
            if !self.cfg.repeat {
                shutdown.cancelled().await;
                return Ok(());
            }
            skip = 0;
        }
    }
}
