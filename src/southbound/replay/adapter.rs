//! Reads the file line by line, paces records at `rate`, commits them in batches.
//!
//! With `resume`, every batch is committed together with the number of lines it completes
//! (`replay.<id>.lines_done` in the buffer's state table), in one transaction: after a crash
//! or `kill -9` the next start continues exactly after the last committed batch, so no line is
//! stored twice and none is skipped. Bad lines are counted and skipped; they never stop the
//! replay.

use super::config::ReplayConfig;
use super::line::parse_line_bytes;
use super::reader::{Content, LineReader};
use super::skipped::{Skip, SkipLog};
use crate::buffer::RecordSender;
use crate::record::Record;
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::ReplayMetrics;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Records committed in one append at most (keeps a fast replay from holding the writer).
const MAX_BATCH: usize = 500;
/// Bytes read from the file at a time.
const CHUNK_BYTES: usize = 64 * 1024;

pub struct ReplayAdapter {
    id: String,
    cfg: ReplayConfig,
    counters: ReplayMetrics,
}

/// Where a pass stands: lines read, and the position last committed.
struct Progress {
    line_no: u64,
    saved: u64,
}

impl ReplayAdapter {
    /// `counters`: the adapter's handle ([`ReplayMetrics::new`], or `detached()` in tests).
    pub fn new(id: &str, cfg: ReplayConfig, counters: ReplayMetrics) -> Self {
        ReplayAdapter {
            id: id.to_owned(),
            cfg,
            counters,
        }
    }

    fn state_key(&self) -> String {
        format!("replay.{}.lines_done", self.id)
    }

    /// Commits a batch, with the number of lines of the file it completes when resuming.
    async fn flush(
        &self,
        out: &RecordSender,
        batch: &mut Vec<Record>,
        progress: &mut Progress,
        lines_done: u64,
    ) -> Result<(), AdapterError> {
        let position_moved = self.cfg.resume && lines_done > progress.saved;
        if batch.is_empty() && !position_moved {
            return Ok(());
        }
        let records = std::mem::take(batch);
        let sent = if self.cfg.resume {
            out.send_with_state(records, &self.state_key(), lines_done.to_string())
                .await
        } else {
            out.send(records).await
        };
        let receipt = sent.map_err(AdapterError::buffer("storing records"))?;
        progress.saved = lines_done;
        tracing::debug!(adapter = %self.id, committed = receipt.seqs.len(), dropped = receipt.dropped, lines_done, "replay batch committed");
        Ok(())
    }

    /// One pass over the file. Returns `false` when stopped by shutdown.
    async fn pass(
        &self,
        out: &RecordSender,
        shutdown: &CancellationToken,
        skip: u64,
        log: &mut SkipLog,
    ) -> Result<bool, AdapterError> {
        if let Some(issue) = self.cfg.check_environment().into_iter().next() {
            return Err(AdapterError::Config(issue.message));
        }
        let file = tokio::fs::File::open(&self.cfg.file)
            .await
            .map_err(AdapterError::io(format!(
                "cannot open {}",
                self.cfg.file.display()
            )))?;
        let file_name = self.cfg.file.display().to_string();
        let max_line = usize::try_from(self.cfg.max_line_bytes).unwrap_or(usize::MAX);
        let mut reader = LineReader::new(BufReader::with_capacity(CHUNK_BYTES, file), max_line);
        let interval = (self.cfg.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.cfg.rate));
        let started = Instant::now();
        let skipped_before = self.counters.skipped();
        let mut emitted: u32 = 0;
        let mut progress = Progress {
            line_no: 0,
            saved: skip,
        };
        let mut batch = Vec::new();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => {
                    let done = progress.line_no;
                    self.flush(out, &mut batch, &mut progress, done).await?;
                    log.finish();
                    return Ok(false);
                }
                l = reader.next_line() => l,
            };
            let Some(line) = next.map_err(AdapterError::io(format!("cannot read {file_name}")))?
            else {
                break;
            };
            progress.line_no = line.number;
            if line.number <= skip {
                continue;
            }
            if line.zero_bytes > 0 {
                let bytes = line.zero_bytes;
                log.record(
                    &self.counters,
                    &file_name,
                    line.number,
                    Skip::Zeros { bytes },
                );
            }
            let bytes = match line.content {
                Content::TooLong { bytes } => {
                    log.record(
                        &self.counters,
                        &file_name,
                        line.number,
                        Skip::TooLong { bytes },
                    );
                    continue;
                }
                Content::Bytes(b) => b,
            };
            if is_blank_or_comment(bytes) {
                continue;
            }
            let record = match parse_line_bytes(&self.id, bytes) {
                Ok(r) => r,
                Err(error) => {
                    let skip = Skip::Invalid { error, line: bytes };
                    log.record(&self.counters, &file_name, line.number, skip);
                    continue;
                }
            };
            if let Some(interval) = interval {
                let due = started + interval * emitted;
                if due > Instant::now() {
                    // Everything before this line is in the batch or skipped.
                    let done = progress.line_no - 1;
                    self.flush(out, &mut batch, &mut progress, done).await?;
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(false),
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            batch.push(record);
            emitted = emitted.saturating_add(1);
            if batch.len() >= MAX_BATCH {
                let done = progress.line_no;
                self.flush(out, &mut batch, &mut progress, done).await?;
            }
        }
        let done = progress.line_no;
        self.flush(out, &mut batch, &mut progress, done).await?;
        log.finish();
        let skipped = self.counters.skipped() - skipped_before;
        tracing::info!(adapter = %self.id, file = %file_name, lines = progress.line_no, skipped, "replay file done");
        Ok(true)
    }
}

/// Blank lines and `#` comments are allowed in a capture and skipped silently.
fn is_blank_or_comment(bytes: &[u8]) -> bool {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(b) => *b == b'#',
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
        let mut log = SkipLog::new(&self.id);
        loop {
            if !self.pass(out, shutdown, skip, &mut log).await? {
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
