//! Drop reasons, the `reason` label of `citygate_buffer_records_dropped_total` (the buffer's
//! own closed set, documented in docs/metrics.md).

/// Evicted (drop_oldest) or refused (drop_newest) because of `max_bytes`.
pub const MAX_BYTES: &str = "max_bytes";
/// Evicted or refused because of `max_records`.
pub const MAX_RECORDS: &str = "max_records";
/// Older than `max_age`.
pub const MAX_AGE: &str = "max_age";
/// The disk was full: records could not be committed.
pub const DISK_FULL: &str = "disk_full";
/// The dead-letter table is capped; its oldest entries are removed.
pub const DEAD_LETTER_OVERFLOW: &str = "dead_letter_overflow";
/// The buffer's file system was read-only: records could not be committed.
pub const READ_ONLY: &str = "read_only";
/// A write failed for another reason (I/O error, database locked by another process).
pub const IO_ERROR: &str = "io_error";
/// A stored record could not be read back (a damaged page): skipped.
pub const DAMAGED: &str = "damaged";
/// Appends held under `when_full = "block"` when the daemon stopped (the adapter was told).
pub const SHUTDOWN: &str = "shutdown";

/// Every reason: each gets its series at 0 from the start, so the first drop is an
/// `increase()` that alert rules see.
pub const ALL: [&str; 9] = [
    MAX_BYTES,
    MAX_RECORDS,
    MAX_AGE,
    DISK_FULL,
    DEAD_LETTER_OVERFLOW,
    READ_ONLY,
    IO_ERROR,
    DAMAGED,
    SHUTDOWN,
];
