//! Planner tests: minimality against an exhaustive count, on the shipped SDM630 profile.
use super::*;
use crate::southbound::modbus::config::builtin;
use crate::southbound::modbus::config::DeviceConfig;
use crate::southbound::modbus::decode::{PointType, Scaling, WordOrder};
use crate::southbound::modbus::profile::resolve_device;

pub(crate) fn sdm630_points() -> Vec<Point> {
    let device: DeviceConfig =
        toml::from_str("id = \"m1\"\nunit = 1\nprofile = \"eastron_sdm630\"").unwrap();
    assert!(builtin("eastron_sdm630").is_some());
    resolve_device(&device).unwrap()
}

fn point(table: Table, address: u16, kind: PointType) -> Point {
    Point {
        name: format!("{}_{address}", table.name()),
        table,
        address,
        kind,
        order: WordOrder::Abcd,
        scaling: Scaling::NONE,
        unit: None,
        interval: Duration::from_secs(1),
    }
}

fn limits(max_registers: u16, max_gap: u16) -> Limits {
    Limits {
        max_registers,
        max_bits: 2000,
        max_gap,
    }
}

/// Fewest reads by dynamic programming over every split of the sorted point list.
fn exhaustive_minimum(points: &[Point], l: &Limits) -> usize {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by_key(|i| (points[*i].table, points[*i].address, points[*i].end()));
    let n = idx.len();
    let feasible = |from: usize, to: usize| -> bool {
        let first = &points[idx[from]];
        let mut end = first.end();
        for k in from + 1..=to {
            let p = &points[idx[k]];
            if p.table != first.table {
                return false;
            }
            if u32::from(p.address).saturating_sub(end) > l.max_gap(p.table) {
                return false;
            }
            end = end.max(p.end());
        }
        to == from || end - u32::from(first.address) <= l.max_span(first.table)
    };
    let mut best = vec![usize::MAX; n + 1];
    best[0] = 0;
    for i in 1..=n {
        for j in 0..i {
            if best[j] != usize::MAX && feasible(j, i - 1) {
                best[i] = best[i].min(best[j] + 1);
            }
        }
    }
    best[n]
}

fn assert_covers_each_point_once(points: &[Point], reqs: &[ReadRequest], l: &Limits) {
    let mut seen = vec![0; points.len()];
    for r in reqs {
        for i in &r.points {
            seen[*i] += 1;
            let p = &points[*i];
            assert_eq!(p.table, r.table);
            assert!(p.address >= r.address && p.end() <= u32::from(r.address) + u32::from(r.count));
        }
        if r.points.len() > 1 {
            assert!(u32::from(r.count) <= l.max_span(r.table), "{r:?}");
        }
    }
    assert!(seen.iter().all(|c| *c == 1), "{seen:?}");
}

#[test]
fn sdm630_default_limits_need_five_reads() {
    let points = sdm630_points();
    assert_eq!(points.len(), 53);
    let l = limits(125, 10);
    let reqs = plan(
        &points,
        &(0..points.len()).collect::<Vec<_>>(),
        &l,
        &Learned::default(),
    );
    let spans: Vec<(u16, u16)> = reqs.iter().map(|r| (r.address, r.count)).collect();
    assert_eq!(
        spans,
        vec![(0x00, 0x58), (0x64, 8), (0xC8, 8), (0xE0, 0x16), (0x156, 4)]
    );
    assert!(reqs.iter().all(|r| r.function_code() == 4));
    assert_covers_each_point_once(&points, &reqs, &l);
    assert_eq!(reqs.len(), exhaustive_minimum(&points, &l));
}

#[test]
fn sdm630_without_gaps_reads_each_contiguous_run() {
    let points = sdm630_points();
    let l = limits(125, 0);
    let reqs = plan(
        &points,
        &(0..points.len()).collect::<Vec<_>>(),
        &l,
        &Learned::default(),
    );
    assert_eq!(reqs.len(), 13);
    assert_eq!(reqs.len(), exhaustive_minimum(&points, &l));
}

#[test]
fn greedy_is_minimal_for_every_limit_combination() {
    let points = sdm630_points();
    let all: Vec<usize> = (0..points.len()).collect();
    for max_registers in [2, 3, 4, 8, 10, 17, 40, 64, 100, 125] {
        for max_gap in [0, 1, 2, 4, 8, 10, 12, 20, 100] {
            let l = limits(max_registers, max_gap);
            let reqs = plan(&points, &all, &l, &Learned::default());
            assert_covers_each_point_once(&points, &reqs, &l);
            assert_eq!(
                reqs.len(),
                exhaustive_minimum(&points, &l),
                "max_registers {max_registers} max_gap {max_gap}"
            );
        }
    }
}

#[test]
fn function_codes_are_never_merged_and_bits_use_max_bits() {
    let mut points = vec![
        point(Table::Holding, 0, PointType::U16),
        point(Table::Input, 1, PointType::U16),
        point(Table::Holding, 1, PointType::U16),
        point(Table::Coil, 0, PointType::Bool),
        point(Table::Coil, 150, PointType::Bool),
        point(Table::Discrete, 3, PointType::Bool),
    ];
    points.push(point(Table::Coil, 1999, PointType::Bool));
    let l = Limits {
        max_registers: 125,
        max_bits: 2000,
        max_gap: 10,
    };
    let all: Vec<usize> = (0..points.len()).collect();
    let reqs = plan(&points, &all, &l, &Learned::default());
    let got: Vec<(u8, u16, u16)> = reqs
        .iter()
        .map(|r| (r.function_code(), r.address, r.count))
        .collect();
    // Coils 0 and 150 merge (gap 149 <= 160 bits), 1999 is too far; fc order 1,2,3,4.
    assert_eq!(
        got,
        vec![(1, 0, 151), (1, 1999, 1), (2, 3, 1), (3, 0, 2), (4, 1, 1)]
    );
    let tight = Limits { max_bits: 100, ..l };
    assert_eq!(plan(&points, &all, &tight, &Learned::default()).len(), 6);
}

#[test]
fn learned_bad_points_and_cuts_shape_the_plan() {
    let points = sdm630_points();
    let all: Vec<usize> = (0..points.len()).collect();
    let l = limits(125, 10);
    let mut learned = Learned::default();
    learned.bad_points.insert(0); // voltage_l1 at 0x0000
    learned.cuts.insert((Table::Input, 0x46)); // frequency must start a new read
    let reqs = plan(&points, &all, &l, &learned);
    let spans: Vec<(u16, u16)> = reqs.iter().map(|r| (r.address, r.count)).collect();
    assert_eq!(spans[0], (0x02, 0x42));
    assert_eq!(spans[1], (0x46, 0x12));
    assert!(reqs.iter().all(|r| !r.points.contains(&0)));
    assert_eq!(reqs.len(), 6);
}

#[test]
fn split_halves_by_points_and_refuses_single_points() {
    let points = sdm630_points();
    let l = limits(125, 10);
    let reqs = plan(
        &points,
        &(0..points.len()).collect::<Vec<_>>(),
        &l,
        &Learned::default(),
    );
    let (a, b) = split(&points, &reqs[0]).unwrap();
    assert_eq!(a.points.len() + b.points.len(), reqs[0].points.len());
    assert_eq!(a.address, 0);
    assert!(u32::from(a.address) + u32::from(a.count) <= u32::from(b.address));
    let single = plan(&points, &[5], &l, &Learned::default());
    assert_eq!(single.len(), 1);
    assert!(split(&points, &single[0]).is_none());
}

#[test]
fn groups_with_other_intervals_are_planned_apart() {
    let mut points = sdm630_points();
    for p in points
        .iter_mut()
        .filter(|p| p.name.starts_with("energy") || p.name.contains("energy_"))
    {
        p.interval = Duration::from_secs(60);
    }
    let plans = plan_device(&points, &limits(125, 10), &Learned::default());
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].interval, Duration::from_secs(10));
    assert_eq!(plans[1].interval, Duration::from_secs(60));
    // 0x48..0x4F (4 energies) + 0x156/0x158.
    let slow: Vec<(u16, u16)> = plans[1]
        .requests
        .iter()
        .map(|r| (r.address, r.count))
        .collect();
    assert_eq!(slow, vec![(0x48, 8), (0x156, 4)]);
}

#[test]
fn addresses_at_the_top_do_not_overflow() {
    let points = vec![
        point(Table::Holding, 65534, PointType::U16),
        point(Table::Holding, 65535, PointType::U16),
    ];
    let reqs = plan(&points, &[0, 1], &limits(125, 10), &Learned::default());
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].address, reqs[0].count), (65534, 2));
}
