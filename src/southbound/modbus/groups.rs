//! Backoff of one read group (one planned request) of a device.
//!
//! A meter that drops one request in three, or a register block a firmware answers only
//! sometimes, must not cost the device its other reads. A group that fails (timeout, CRC
//! error, busy device, …) while the device answers other reads is put on hold on its own:
//! the first failure holds it for up to one polling interval (so a single lost answer
//! usually costs nothing more), each failure in a row doubles the ceiling up to
//! [`GROUP_BACKOFF_MAX`], with full jitter ([`crate::runtime::backoff`]). Its points carry a
//! bad quality flag while it is on hold; one answer clears its history.

use super::config::Table;
use super::plan::ReadRequest;
use crate::runtime::backoff::Backoff;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// Longest hold of a failing read group: a block that never answers costs one timeout per
/// this period at most, and is tried again within it once the device is fixed.
pub const GROUP_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Identifies a read group across cycles (the plan is rebuilt when exceptions teach
/// something; groups whose read changed start with a clean history).
pub type GroupKey = (Table, u16, u16);

pub fn key(req: &ReadRequest) -> GroupKey {
    (req.table, req.address, req.count)
}

struct GroupState {
    backoff: Backoff,
    hold_until: Instant,
    last_error: String,
}

/// The failing read groups of one device.
#[derive(Default)]
pub struct GroupHealth {
    failing: HashMap<GroupKey, GroupState>,
}

impl GroupHealth {
    /// Why the group is skipped at `now`, or `None` when it is to be read.
    pub fn on_hold(&self, key: &GroupKey, now: Instant) -> Option<String> {
        let s = self.failing.get(key)?;
        (s.hold_until > now).then(|| {
            format!(
                "{} (read on hold after {} failure(s), next try in {} ms)",
                s.last_error,
                s.backoff.attempt(),
                (s.hold_until - now).as_millis()
            )
        })
    }

    /// Records a failure; returns how long the group is held.
    pub fn failed(
        &mut self,
        key: GroupKey,
        interval: Duration,
        error: &str,
        now: Instant,
    ) -> Duration {
        let s = self.failing.entry(key).or_insert_with(|| GroupState {
            backoff: Backoff::new(interval, GROUP_BACKOFF_MAX),
            hold_until: now,
            last_error: String::new(),
        });
        let hold = s.backoff.next_delay();
        s.hold_until = now + hold;
        s.last_error = error.to_string();
        hold
    }

    /// Records an answer; true when the group had been failing.
    pub fn answered(&mut self, key: &GroupKey) -> bool {
        self.failing.remove(key).is_some()
    }

    /// Forgets every failure: they were the whole device's, not the groups'.
    pub fn clear(&mut self) {
        self.failing.clear();
    }

    /// Keeps only the groups of the current plan.
    pub fn retain(&mut self, keys: &HashSet<GroupKey>) {
        self.failing.retain(|k, _| keys.contains(k));
    }

    pub fn failing(&self) -> usize {
        self.failing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_grow_with_failures_in_a_row_and_clear_on_an_answer() {
        let mut g = GroupHealth::default();
        let k = (Table::Input, 0, 10);
        let other = (Table::Input, 20, 2);
        let interval = Duration::from_secs(1);
        let now = Instant::now();
        assert_eq!(g.on_hold(&k, now), None);
        let first = g.failed(k, interval, "timeout", now);
        assert!(first >= interval / 2 && first <= interval, "{first:?}");
        let why = g.on_hold(&k, now).unwrap();
        assert!(
            why.starts_with("timeout (read on hold after 1 failure(s)"),
            "{why}"
        );
        assert_eq!(g.on_hold(&other, now), None);
        assert_eq!(g.on_hold(&k, now + interval), None);
        let mut longest = Duration::ZERO;
        for _ in 0..12 {
            longest = longest.max(g.failed(k, interval, "CRC error", now));
        }
        assert!(
            longest > 4 * interval && longest <= GROUP_BACKOFF_MAX,
            "{longest:?}"
        );
        assert!(g.answered(&k));
        assert!(!g.answered(&k));
        assert_eq!(g.on_hold(&k, now), None);
        g.failed(k, interval, "timeout", now);
        g.failed(other, interval, "timeout", now);
        g.retain(&HashSet::from([other]));
        assert_eq!(g.failing(), 1);
        g.clear();
        assert_eq!(g.failing(), 0);
    }
}
