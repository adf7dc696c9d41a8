//! Whether the buffer can commit, and what the writer does while it cannot.
//!
//! Health is judged by writes, not reads: an SD card that ext4 remounted read-only still answers
//! every `SELECT`. The writer publishes a [`BufferHealth`] after every command; `/readyz`, the
//! systemd watchdog, `STATUS=` and the `citygate_buffer_state` metric read it.
//!
//! While writes fail, the [`WriteGate`] backs off (src/runtime/backoff.rs): appends arriving
//! before the next attempt are refused at once and counted as drops under the failure's reason,
//! so adapters never hammer a failing disk. When idle, the writer probes with a tiny write (a
//! state row) at the next attempt, and every [`IDLE_PROBE_EVERY`] while healthy, so a disk that
//! went read-only is noticed even without traffic.

use super::error::BufferError;
use crate::backoff::Backoff;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the buffer can do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BufferHealth {
    /// Commits succeed.
    #[default]
    Writable,
    /// The file system or the file is read-only (ext4 remounts read-only after an I/O error).
    ReadOnly,
    /// SQLITE_FULL: no space left on the file system.
    DiskFull,
    /// Any other failed write (I/O error, a database locked by another process).
    IoError,
    /// Commits succeed, but some records could not be read (a damaged page): a person must act
    /// (see docs/buffer.md, "Recovering from a damaged file").
    Damaged,
}

impl BufferHealth {
    pub const ALL: [BufferHealth; 5] = [
        BufferHealth::Writable,
        BufferHealth::ReadOnly,
        BufferHealth::DiskFull,
        BufferHealth::IoError,
        BufferHealth::Damaged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BufferHealth::Writable => "writable",
            BufferHealth::ReadOnly => "read_only",
            BufferHealth::DiskFull => "disk_full",
            BufferHealth::IoError => "io_error",
            BufferHealth::Damaged => "damaged",
        }
    }

    /// Sets `citygate_buffer_state` (1 for this state, 0 for the others).
    pub fn publish(self, m: &crate::telemetry::BufferMetrics) {
        m.state(self.as_str(), &Self::ALL.map(Self::as_str));
    }

    /// Whether new records are being committed (a damaged buffer still commits).
    pub fn commits(self) -> bool {
        matches!(self, BufferHealth::Writable | BufferHealth::Damaged)
    }

    /// The drop reason for records refused in this state.
    pub fn drop_reason(self) -> &'static str {
        match self {
            BufferHealth::Writable | BufferHealth::IoError => super::reason::IO_ERROR,
            BufferHealth::ReadOnly => super::reason::READ_ONLY,
            BufferHealth::DiskFull => super::reason::DISK_FULL,
            BufferHealth::Damaged => super::reason::DAMAGED,
        }
    }
}

/// Whether a SQLite error means the database file is damaged (as opposed to a failing write).
pub fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// What a failed write says about the buffer. `path` is the database file: an I/O error on a
/// file system that refuses to open the file for writing is a read-only file system (ext4
/// reports the write itself as SQLITE_IOERR_WRITE).
pub fn classify_write_failure(e: &BufferError, path: &Path) -> BufferHealth {
    let class = match e {
        BufferError::DiskFull => BufferHealth::DiskFull,
        BufferError::NotWritable { state, .. } => *state,
        BufferError::Sqlite { source, .. } | BufferError::Unreadable { source, .. } => {
            match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ReadOnly) => BufferHealth::ReadOnly,
                Some(rusqlite::ErrorCode::DiskFull) => BufferHealth::DiskFull,
                _ if is_corruption(source) => BufferHealth::Damaged,
                _ => BufferHealth::IoError,
            }
        }
        _ => BufferHealth::IoError,
    };
    if class == BufferHealth::IoError && file_system_read_only(path) {
        BufferHealth::ReadOnly
    } else {
        class
    }
}

/// True when the file exists but cannot be opened for writing because its file system is
/// read-only (EROFS).
pub fn file_system_read_only(path: &Path) -> bool {
    match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error()),
    }
}

/// A healthy, idle writer proves it can still commit this often (one tiny state-row upsert).
pub const IDLE_PROBE_EVERY: Duration = Duration::from_secs(10);

/// The state key the write probe upserts.
pub const PROBE_KEY: &str = "citygate.buffer.probe_ms";

/// Backoff between write attempts while writes fail.
fn write_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
}

/// The writer's view of whether writes work, and when to try again after a failure.
pub struct WriteGate {
    failure: Option<BufferHealth>,
    backoff: Backoff,
    retry_at: Instant,
    last_write_ok: Instant,
}

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate {
            failure: None,
            backoff: write_backoff(),
            retry_at: Instant::now(),
            last_write_ok: Instant::now(),
        }
    }
}

impl WriteGate {
    /// The failure state while writes must not be attempted yet (backing off).
    pub fn refusing(&self) -> Option<BufferHealth> {
        self.failure.filter(|_| Instant::now() < self.retry_at)
    }

    /// The failure state of the last write, if it failed.
    pub fn failure(&self) -> Option<BufferHealth> {
        self.failure
    }

    /// Whether the writer should try a write probe now: the next attempt is due while failing,
    /// or nothing was written for [`IDLE_PROBE_EVERY`] while healthy.
    pub fn probe_due(&self) -> bool {
        match self.failure {
            Some(_) => Instant::now() >= self.retry_at,
            None => self.last_write_ok.elapsed() >= IDLE_PROBE_EVERY,
        }
    }

    /// Whether maintenance (expiry, vacuum) may write: not while failing.
    pub fn healthy(&self) -> bool {
        self.failure.is_none()
    }

    pub fn succeeded(&mut self) {
        if let Some(was) = self.failure.take() {
            tracing::warn!(
                was = was.as_str(),
                "buffer writes work again; accepting records"
            );
        }
        self.backoff.reset();
        self.last_write_ok = Instant::now();
    }

    /// Records a failed write and schedules the next attempt.
    pub fn failed(&mut self, state: BufferHealth) {
        let delay = self.backoff.next_delay();
        if self.failure.is_none() {
            tracing::error!(
                state = state.as_str(),
                "buffer cannot commit: refusing records (counted as dropped) and retrying with backoff"
            );
        }
        self.failure = Some(state);
        self.retry_at = Instant::now() + delay;
    }

    /// The health to publish: a write failure wins over damage found while reading.
    pub fn current(&self, damaged: bool) -> BufferHealth {
        match self.failure {
            Some(f) => f,
            None if damaged => BufferHealth::Damaged,
            None => BufferHealth::Writable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_while_backing_off_and_recovers() {
        let mut g = WriteGate::default();
        assert_eq!(g.refusing(), None);
        assert_eq!(g.current(false), BufferHealth::Writable);
        g.failed(BufferHealth::ReadOnly);
        assert_eq!(g.refusing(), Some(BufferHealth::ReadOnly));
        assert_eq!(g.current(true), BufferHealth::ReadOnly);
        assert!(!g.healthy());
        g.succeeded();
        assert_eq!(g.refusing(), None);
        assert_eq!(g.current(true), BufferHealth::Damaged);
        assert!(!g.probe_due());
    }

    #[test]
    fn sqlite_errors_are_classified() {
        let p = Path::new("/nonexistent/buffer.sqlite");
        let err = |code: i32| BufferError::Sqlite {
            context: "test",
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        assert_eq!(
            classify_write_failure(&err(rusqlite::ffi::SQLITE_READONLY), p),
            BufferHealth::ReadOnly
        );
        assert_eq!(
            classify_write_failure(&err(rusqlite::ffi::SQLITE_IOERR_WRITE), p),
            BufferHealth::IoError
        );
        assert_eq!(
            classify_write_failure(&err(rusqlite::ffi::SQLITE_FULL), p),
            BufferHealth::DiskFull
        );
        assert_eq!(
            classify_write_failure(&err(rusqlite::ffi::SQLITE_CORRUPT), p),
            BufferHealth::Damaged
        );
        assert_eq!(
            classify_write_failure(&BufferError::DiskFull, p),
            BufferHealth::DiskFull
        );
    }
}
