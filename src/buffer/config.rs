//! `[buffer]`: where records wait until the CSE has them, and how big that may get.

use crate::config::issue::ConfigIssue;
use crate::config::units;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// What to do when a bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Evict the oldest pending records to make room (counted as drops). Default: the newest
    /// readings are usually the most valuable after a long outage.
    #[default]
    DropOldest,
    /// Refuse new records (counted as drops) and keep the backlog intact.
    DropNewest,
    /// Hold appends (adapters wait) until the syncer frees room. Devices that cannot wait lose
    /// readings upstream of citygate.
    Block,
}

impl WhenFull {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::DropNewest => "drop_newest",
            WhenFull::Block => "block",
        }
    }
}

/// SQLite `synchronous` setting: the durability/flash-wear trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync the WAL at every commit: an acknowledged record survives a power cut. Default.
    #[default]
    Full,
    /// No fsync per commit: survives a crash of citygate, but a power cut may lose the last
    /// commits (never corrupts). Fewer writes to the SD card.
    Normal,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// Database file. Default `<state_dir>/buffer.sqlite`.
    pub path: Option<PathBuf>,
    /// Bound on the database plus its WAL, in bytes ("256MiB").
    #[serde(deserialize_with = "units::size")]
    #[schemars(with = "crate::config::units::SizeText")]
    pub max_bytes: u64,
    /// Bound on pending records (unset = only `max_bytes`).
    pub max_records: Option<u64>,
    /// Pending records older than this (since they were committed) are dropped (unset = kept
    /// until evicted by another bound).
    #[serde(deserialize_with = "units::opt_duration")]
    #[schemars(with = "Option<crate::config::units::DurationText>")]
    pub max_age: Option<Duration>,
    pub when_full: WhenFull,
    /// Group commit: commit after this many records…
    pub commit_max_records: usize,
    /// …or this long after the first uncommitted record, whichever comes first.
    #[serde(deserialize_with = "units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub commit_max_delay: Duration,
    pub synchronous: Synchronous,
    /// Appends that may queue for the writer before adapters wait (backpressure point).
    pub queue_capacity: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            path: None,
            max_bytes: 256 << 20,
            max_records: None,
            max_age: None,
            when_full: WhenFull::DropOldest,
            commit_max_records: 1000,
            commit_max_delay: Duration::from_millis(20),
            synchronous: Synchronous::Full,
            queue_capacity: 4096,
        }
    }
}

/// The smallest `max_bytes` that leaves room for the schema, the WAL and one group commit.
pub const MIN_MAX_BYTES: u64 = 256 << 10;

impl BufferConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.max_bytes < MIN_MAX_BYTES {
            issues.push(
                ConfigIssue::new(
                    "max_bytes",
                    format!("max_bytes = {} is too small", self.max_bytes),
                )
                .hint("use at least \"256KiB\"; a few hundred MiB holds days of readings"),
            );
        }
        if self.max_records == Some(0) {
            issues.push(
                ConfigIssue::new("max_records", "max_records = 0 would drop every record")
                    .hint("remove the key for no record limit, or set a positive number"),
            );
        }
        if let Some(age) = self.max_age {
            if age < Duration::from_secs(60) {
                issues.push(
                    ConfigIssue::new("max_age", "max_age is shorter than a minute")
                        .hint("max_age is how long readings may wait for the uplink, e.g. \"7d\""),
                );
            }
        }
        if !(1..=100_000).contains(&self.commit_max_records) {
            issues.push(
                ConfigIssue::new(
                    "commit_max_records",
                    "commit_max_records must be between 1 and 100000",
                )
                .hint("1000 is a good value"),
            );
        }
        if self.commit_max_delay > Duration::from_secs(10) {
            issues.push(
                ConfigIssue::new(
                    "commit_max_delay",
                    "commit_max_delay longer than 10s delays every acknowledgement",
                )
                .hint("use \"20ms\" to \"1s\""),
            );
        }
        if !(1..=1_000_000).contains(&self.queue_capacity) {
            issues.push(ConfigIssue::new(
                "queue_capacity",
                "queue_capacity must be between 1 and 1000000",
            ));
        }
        issues
    }

    /// The database file, given the gateway's state directory.
    pub fn db_path(&self, state_dir: &std::path::Path) -> PathBuf {
        match &self.path {
            Some(p) => p.clone(),
            None => state_dir.join("buffer.sqlite"),
        }
    }
}
