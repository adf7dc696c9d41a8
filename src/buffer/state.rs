//! The buffer's state as health checks see it: whether it can commit, and if not, why. Its own
//! file so errors (which carry a state) and the health logic (which derives one from an error)
//! do not depend on each other.

use serde::Serialize;

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
