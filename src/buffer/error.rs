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
            other => BufferError::Failed(other.to_string()),
        }
    }
}
