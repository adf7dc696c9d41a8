//! The request planner: which reads cover a device's points with the fewest transactions.
//!
//! Per function code, points are sorted by address and merged greedily while the merged read
//! stays within the device's `max_registers` / `max_bits` and no hole between neighbours is
//! wider than `max_gap`. Because both limits only get easier for a shorter run of points,
//! cutting the sorted list greedily yields the minimum number of reads (the tests compare it
//! with an exhaustive dynamic program).
//!
//! Devices sometimes refuse a merged read with exception 02 (a hole is not mapped). The
//! poller then [`split`]s the read, retries the halves and records what it learned in
//! [`Learned`]: a bad point is left out of future plans, a bad hole becomes a cut that no
//! read may span.

use super::config::Table;
use super::profile::Point;
use std::collections::BTreeSet;
use std::time::Duration;

/// The device limits the planner must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_registers: u16,
    pub max_bits: u16,
    /// Unused registers a read may span; for bit tables 16 bits per register.
    pub max_gap: u16,
}

impl Limits {
    fn max_span(&self, table: Table) -> u32 {
        if table.is_bits() {
            u32::from(self.max_bits.max(1))
        } else {
            u32::from(self.max_registers.max(1))
        }
    }

    fn max_gap(&self, table: Table) -> u32 {
        if table.is_bits() {
            u32::from(self.max_gap) * 16
        } else {
            u32::from(self.max_gap)
        }
    }
}

/// One read transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub table: Table,
    pub address: u16,
    /// Registers or bits to read.
    pub count: u16,
    /// Indices into the device's point list, ascending by address.
    pub points: Vec<usize>,
}

impl ReadRequest {
    pub fn function_code(&self) -> u8 {
        self.table.function_code()
    }

    /// A read covering exactly the given points (which must share one table and be non-empty).
    fn covering(points: &[Point], idx: Vec<usize>) -> Option<ReadRequest> {
        let first = points.get(*idx.first()?)?;
        let start = idx
            .iter()
            .filter_map(|i| points.get(*i))
            .map(|p| p.address)
            .min()?;
        let end = idx
            .iter()
            .filter_map(|i| points.get(*i))
            .map(Point::end)
            .max()?;
        let count = u16::try_from(end - u32::from(start)).ok()?;
        Some(ReadRequest {
            table: first.table,
            address: start,
            count,
            points: idx,
        })
    }
}

/// What the poller learned from exception responses; survives between cycles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// Points the device refuses on their own (exception 01/02/03): not read any more.
    pub bad_points: BTreeSet<usize>,
    /// `(table, address)`: no read may include points on both sides of `address`.
    pub cuts: BTreeSet<(Table, u16)>,
}

impl Learned {
    pub fn is_empty(&self) -> bool {
        self.bad_points.is_empty() && self.cuts.is_empty()
    }

    fn cut_between(&self, table: Table, from_exclusive: u16, to_inclusive: u16) -> bool {
        if to_inclusive <= from_exclusive {
            return false;
        }
        self.cuts
            .range((table, from_exclusive + 1)..=(table, to_inclusive))
            .next()
            .is_some()
    }
}

/// Plans reads for the points `selected` (indices into `points`), skipping learned bad points.
/// Requests come out ordered by function code, then address.
pub fn plan(
    points: &[Point],
    selected: &[usize],
    limits: &Limits,
    learned: &Learned,
) -> Vec<ReadRequest> {
    let mut order: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|i| *i < points.len() && !learned.bad_points.contains(i))
        .collect();
    order.sort_by_key(|i| (points[*i].table, points[*i].address, points[*i].end()));
    order.dedup();

    let mut out: Vec<ReadRequest> = Vec::new();
    // The open read: table, start, end (exclusive, u32 so 65535 + len cannot overflow).
    let mut open: Option<(Table, u16, u32, Vec<usize>)> = None;
    for i in order {
        let p = &points[i];
        if let Some((table, start, end, members)) = open.as_mut() {
            let new_end = (*end).max(p.end());
            let gap = u32::from(p.address).saturating_sub(*end);
            let fits = *table == p.table
                && new_end - u32::from(*start) <= limits.max_span(p.table)
                && gap <= limits.max_gap(p.table)
                && !learned.cut_between(p.table, *start, p.address);
            if fits {
                *end = new_end;
                members.push(i);
                continue;
            }
        }
        if let Some((_, _, _, members)) = open.take() {
            out.extend(ReadRequest::covering(points, members));
        }
        open = Some((p.table, p.address, p.end(), vec![i]));
    }
    if let Some((_, _, _, members)) = open {
        out.extend(ReadRequest::covering(points, members));
    }
    out
}

/// Splits a refused read into two reads over the first and second half of its points.
/// `None` for a single-point read: that point itself is bad.
pub fn split(points: &[Point], req: &ReadRequest) -> Option<(ReadRequest, ReadRequest)> {
    if req.points.len() < 2 {
        return None;
    }
    let mid = req.points.len() / 2;
    let a = ReadRequest::covering(points, req.points[..mid].to_vec())?;
    let b = ReadRequest::covering(points, req.points[mid..].to_vec())?;
    Some((a, b))
}

/// The reads of one polling interval of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalPlan {
    pub interval: Duration,
    pub requests: Vec<ReadRequest>,
}

/// Plans a device by polling interval (point groups), shortest interval first. Points of
/// different intervals are never merged, so a slow group costs nothing on fast cycles.
pub fn plan_device(points: &[Point], limits: &Limits, learned: &Learned) -> Vec<IntervalPlan> {
    let mut intervals: Vec<Duration> = points.iter().map(|p| p.interval).collect();
    intervals.sort();
    intervals.dedup();
    intervals
        .into_iter()
        .map(|interval| {
            let selected: Vec<usize> = (0..points.len())
                .filter(|i| points[*i].interval == interval)
                .collect();
            IntervalPlan {
                interval,
                requests: plan(points, &selected, limits, learned),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
