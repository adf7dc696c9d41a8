//! Errors of the buffer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("cannot create buffer directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a citygate buffer (another program's SQLite file?). citygate never overwrites it: point [buffer] path at another file, or move this one away if it is not needed")]
    Foreign { path: PathBuf },
    #[error("cannot read buffer {path} (damaged or not a database: {source}). citygate never wipes it: move it away (e.g. `mv {path} {path}.damaged`) to start with an empty buffer, and keep the copy for recovery")]
    Unreadable {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("buffer {path} has schema version {found}, newer than this citygate supports ({supported}); upgrade citygate or point [buffer] path at another file")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("buffer database error while {context}: {source}")]
    Sqlite {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("the buffer's disk is full; the records were not stored")]
    DiskFull,
    #[error("buffer {path} is an empty file (0 bytes): whatever it held is gone (a truncated copy, or a file system repair after a power cut). citygate does not recreate it silently: move it away (e.g. `mv {path} {path}.empty`) to start a new buffer, and look for a backup")]
    Empty { path: PathBuf },
    #[error("buffer {path} cannot be opened for writing (read-only file system or file): citygate would report healthy while every record is lost. Check the storage (`dmesg`, `mount`), repair it (fsck) and remount it read-write")]
    ReadOnlyFile { path: PathBuf },
    #[error("the buffer cannot commit ({}): records refused and counted as dropped; {detail}", state.as_str())]
    NotWritable {
        state: super::state::BufferHealth,
        detail: String,
    },
    #[error("the buffer is shut down")]
    Closed,
    #[error("buffer write failed: {0}")]
    Failed(String),
}

impl BufferError {
    /// A copy for each waiting caller when one failure answers many (a group commit).
    pub fn replicate(&self) -> BufferError {
        match self {
            BufferError::DiskFull => BufferError::DiskFull,
            BufferError::Closed => BufferError::Closed,
            BufferError::NotWritable { state, detail } => BufferError::NotWritable {
                state: *state,
                detail: detail.clone(),
            },
            other => BufferError::Failed(other.to_string()),
        }
    }
}
