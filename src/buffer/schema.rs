//! Opening the database: refusing foreign or damaged files, pragmas, migrations.
//!
//! A citygate buffer is recognised by `PRAGMA application_id` = [`APPLICATION_ID`]. Schema
//! versions are `PRAGMA user_version`; [`MIGRATIONS`] bring an older file up to date inside one
//! transaction. Nothing here ever deletes or recreates an existing file: a file that is not ours
//! or cannot be read is an error that names the file and the way out.

use super::config::{BufferConfig, Synchronous};
use super::error::BufferError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// "CGT1" — marks a SQLite file as a citygate buffer.
pub const APPLICATION_ID: i32 = 0x4347_5431;

/// One entry per schema version; entry `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: records, dead letters, drop counters, key/value state, database identity.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE records (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         device TEXT NOT NULL,
         ts_ms INTEGER NOT NULL,
         enqueued_ms INTEGER NOT NULL,
         body TEXT NOT NULL
     );
     CREATE INDEX records_by_device ON records (device, seq);
     CREATE TABLE dead_letters (
         seq INTEGER PRIMARY KEY,
         device TEXT NOT NULL,
         ts_ms INTEGER NOT NULL,
         body TEXT NOT NULL,
         rsc INTEGER,
         reason TEXT NOT NULL,
         dead_ms INTEGER NOT NULL
     );
     CREATE TABLE drops (reason TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // v2: records found unreadable (a damaged page), so they are counted once and skipped.
    "CREATE TABLE damaged (seq INTEGER PRIMARY KEY, device TEXT NOT NULL, found_ms INTEGER NOT NULL);",
    // v3: the command journal (received → executing → finished), keyed by the instance's
    // resource id at the CSE; `body` is the instance as received (see commands::journal).
    "CREATE TABLE command_journal (
         key TEXT PRIMARY KEY,
         device TEXT NOT NULL,
         state TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         body TEXT NOT NULL,
         outcome TEXT,
         updated_ms INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX command_journal_by_state ON command_journal (state, created_ms);",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens (creating if absent) the buffer at `path` and applies pragmas and migrations.
pub fn open(path: &Path, cfg: &BufferConfig) -> Result<Connection, BufferError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BufferError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let fresh = match std::fs::metadata(path) {
        // A zero-length file is not a new buffer: it lost its content (see BufferError::Empty).
        Ok(m) if m.len() == 0 => {
            return Err(BufferError::Empty {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => false,
        Err(_) => true,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| unreadable(path, e))?;
    // SQLite silently falls back to read-only when the file cannot be opened for writing.
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false)
        || super::health::file_system_read_only(path)
    {
        return Err(BufferError::ReadOnlyFile {
            path: path.to_path_buf(),
        });
    }
    if fresh {
        // Must be set before the first table exists.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| unreadable(path, e))?;
    }
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| unreadable(path, e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| unreadable(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| unreadable(path, e))?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(BufferError::Foreign {
            path: path.to_path_buf(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(BufferError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    configure(&conn, cfg).map_err(|e| unreadable(path, e))?;
    migrate(&conn, version).map_err(|e| BufferError::Sqlite {
        context: "migrating the buffer schema",
        source: e,
    })?;
    if !fresh && version < SCHEMA_VERSION {
        // An upgrade of citygate met an older buffer: say so, the records stay where they are.
        tracing::info!(
            path = %path.display(),
            from = version,
            to = SCHEMA_VERSION,
            "buffer schema migrated"
        );
    }
    Ok(conn)
}

fn configure(conn: &Connection, cfg: &BufferConfig) -> rusqlite::Result<()> {
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    let sync = match cfg.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let wal_budget = wal_budget(cfg.max_bytes);
    // Checkpoint at half the WAL budget; truncate the WAL back to the budget afterwards.
    let checkpoint_pages = (wal_budget as i64 / 2 / page_size).max(16);
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
    conn.pragma_update(None, "journal_size_limit", wal_budget as i64)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Bytes of `max_bytes` set aside for the WAL: an eighth, at most 16 MiB.
pub fn wal_budget(max_bytes: u64) -> u64 {
    (max_bytes / 8).min(16 << 20)
}

fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    if from == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        if from == 0 {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('epoch', ?1), ('created_ms', ?2)",
                rusqlite::params![new_epoch(), crate::record::now_ms().to_string()],
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A random id for this database: part of every contentInstance name, so two databases (a
/// replaced SD card, a wiped buffer) never produce the same `rn`.
fn new_epoch() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn unreadable(path: &Path, source: rusqlite::Error) -> BufferError {
    BufferError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}
