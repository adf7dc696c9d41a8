//! Backoff of one read group (one planned request) of a device.
//!
//! A meter that drops one request in three, or a register block a firmware answers only
//! sometimes, must not cost the device its other reads. A group that fails (timeout, CRC
//! error, busy device, …) while the device answers other reads is put on hold on its own,
//! for a number of its cycles drawn from the one backoff of citygate
//! ([`crate::runtime::backoff`], full jitter, base one polling interval, cap
//! [`GROUP_BACKOFF_MAX`]): the hold is the delay in whole intervals, so a single lost answer
//! costs nothing more (the first delay is at most one interval), and each failure in a row
//! doubles the ceiling. Its points carry a bad quality flag while it is held; one answer
//! clears its history.

use super::config::Table;
use super::plan::ReadRequest;
use crate::backoff::Backoff;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

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
    /// Cycles of this group still to skip.
    skip: u32,
    last_error: String,
}

/// The failing read groups of one device.
#[derive(Default)]
pub struct GroupHealth {
    failing: HashMap<GroupKey, GroupState>,
}

impl GroupHealth {
    /// Called once per cycle in which the group is due: why it is skipped this time, or
    /// `None` when it is to be read.
    pub fn skip_now(&mut self, key: &GroupKey) -> Option<String> {
        let s = self.failing.get_mut(key)?;
        if s.skip == 0 {
            return None;
        }
        s.skip -= 1;
        Some(format!(
            "{} (read on hold after {} failure(s) in a row, {} more cycle(s))",
            s.last_error,
            s.backoff.attempts(),
            s.skip
        ))
    }

    /// Records a failure; returns how many of its next cycles the group skips.
    pub fn failed(&mut self, key: GroupKey, interval: Duration, error: &str) -> u32 {
        let s = self.failing.entry(key).or_insert_with(|| GroupState {
            backoff: Backoff::new(interval, GROUP_BACKOFF_MAX),
            skip: 0,
            last_error: String::new(),
        });
        let delay = s.backoff.next_delay();
        let per_cycle = interval.as_secs_f64().max(1e-3);
        s.skip = (delay.as_secs_f64() / per_cycle).floor() as u32;
        s.last_error = error.to_string();
        s.skip
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
        assert_eq!(g.skip_now(&k), None);
        // A single failure costs no further cycle (the delay is at most one interval,
        // 1 in 500 draws lands exactly on it).
        let first = g.failed(k, interval, "timeout");
        assert!(first <= 1, "{first}");
        if first == 0 {
            assert_eq!(g.skip_now(&k), None);
        }
        let mut longest = 0;
        for _ in 0..12 {
            longest = longest.max(g.failed(k, interval, "CRC error"));
        }
        let cap = GROUP_BACKOFF_MAX.as_secs() as u32;
        assert!(longest >= 4 && longest <= cap, "{longest}");
        let skip = g.failed(k, interval, "CRC error");
        for left in (0..skip).rev() {
            let why = g.skip_now(&k).unwrap();
            assert!(
                why.starts_with("CRC error (read on hold after 14 failure(s) in a row")
                    && why.ends_with(&format!(", {left} more cycle(s))")),
                "{why}"
            );
        }
        assert_eq!(g.skip_now(&k), None);
        assert_eq!(g.skip_now(&other), None);
        assert!(g.answered(&k));
        assert!(!g.answered(&k));
        g.failed(k, interval, "timeout");
        g.failed(other, interval, "timeout");
        g.retain(&HashSet::from([other]));
        assert_eq!(g.failing(), 1);
        g.clear();
        assert_eq!(g.failing(), 0);
    }
}
