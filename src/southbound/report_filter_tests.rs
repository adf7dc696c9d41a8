//! Report-by-exception filter on a fake clock (`t(seconds)` from one fixed Instant).

use super::*;
use std::sync::OnceLock;

fn t(secs: f64) -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_secs_f64(secs)
}

/// Device-wide intervals, one default deadband, per-point overrides.
struct Rules {
    min: Duration,
    max: Duration,
    deadband: Deadband,
    points: HashMap<&'static str, PointRule>,
}

impl ReportRules for Rules {
    fn min_interval(&self) -> Duration {
        self.min
    }
    fn max_interval(&self) -> Duration {
        self.max
    }
    fn point(&self, name: &str) -> PointRule {
        self.points.get(name).copied().unwrap_or(PointRule {
            deadband: self.deadband,
            ..PointRule::default()
        })
    }
}

fn rules(deadband: Deadband) -> Rules {
    Rules {
        min: Duration::ZERO,
        max: Duration::from_secs(900),
        deadband,
        points: HashMap::new(),
    }
}

fn v(pairs: &[(&str, Value)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn volts(x: f64) -> Values {
    v(&[("voltage", Value::F64(x))])
}

fn see(f: &mut ReportFilter, at: f64, values: &Values, r: &Rules) -> Decision {
    f.observe(t(at), &Reading::values(values), r)
}

fn see_failed(
    f: &mut ReportFilter,
    at: f64,
    values: &Values,
    failed: &[&str],
    r: &Rules,
) -> Decision {
    let reading = Reading {
        values,
        failed,
        volatile: &[],
        forced: false,
    };
    f.observe(t(at), &reading, r)
}

const SEND_CHANGED: Decision = Decision::Send(SendReason::Changed);
const UNCHANGED: Decision = Decision::Suppress(SuppressReason::Unchanged);
const TOO_SOON: Decision = Decision::Suppress(SuppressReason::TooSoon);

#[test]
fn absolute_deadband_compares_with_the_value_last_sent() {
    let r = rules(Deadband::Absolute(0.5));
    let mut f = ReportFilter::new();
    assert_eq!(
        see(&mut f, 0.0, &volts(230.0), &r),
        Decision::Send(SendReason::First)
    );
    assert_eq!(
        see(&mut f, 10.0, &volts(230.5), &r),
        UNCHANGED,
        "on the band edge"
    );
    assert_eq!(see(&mut f, 20.0, &volts(229.6), &r), UNCHANGED);
    // Drift of 0.2 per poll: goes out once it adds up beyond 0.5 from 230.0.
    assert_eq!(see(&mut f, 30.0, &volts(230.4), &r), UNCHANGED);
    assert_eq!(see(&mut f, 40.0, &volts(230.6), &r), SEND_CHANGED);
    assert_eq!(f.last_value("voltage"), Some(&Value::F64(230.6)));
    assert_eq!(see(&mut f, 50.0, &volts(230.9), &r), UNCHANGED);
    assert_eq!(
        see(&mut f, 60.0, &volts(230.0), &r),
        SEND_CHANGED,
        "downwards too"
    );
}

#[test]
fn percent_deadband_scales_with_the_last_sent_value() {
    let r = rules(Deadband::Percent(2.0));
    let mut f = ReportFilter::new();
    see(&mut f, 0.0, &volts(100.0), &r);
    assert_eq!(
        see(&mut f, 10.0, &volts(102.0), &r),
        UNCHANGED,
        "2 % of 100"
    );
    assert_eq!(see(&mut f, 20.0, &volts(97.9), &r), SEND_CHANGED);
    // Now 2 % of 97.9 = 1.958.
    assert_eq!(see(&mut f, 30.0, &volts(99.8), &r), UNCHANGED);
    assert_eq!(see(&mut f, 40.0, &volts(99.9), &r), SEND_CHANGED);
    // A last value of zero has no band: any change is reported.
    let mut z = ReportFilter::new();
    see(&mut z, 0.0, &volts(0.0), &r);
    assert_eq!(see(&mut z, 10.0, &volts(0.001), &r), SEND_CHANGED);
    // Integers too.
    let mut i = ReportFilter::new();
    let count = |n: i64| v(&[("count", Value::I64(n))]);
    see(&mut i, 0.0, &count(1000), &r);
    assert_eq!(see(&mut i, 10.0, &count(1020), &r), UNCHANGED);
    assert_eq!(see(&mut i, 20.0, &count(1021), &r), SEND_CHANGED);
}

#[test]
fn min_interval_holds_changes_and_max_interval_sends_a_heartbeat() {
    let mut r = rules(Deadband::Absolute(0.5));
    r.min = Duration::from_secs(30);
    r.max = Duration::from_secs(120);
    let mut f = ReportFilter::new();
    see(&mut f, 0.0, &volts(230.0), &r);
    assert_eq!(
        see(&mut f, 10.0, &volts(240.0), &r),
        TOO_SOON,
        "a step waits for min_interval"
    );
    assert_eq!(see(&mut f, 30.0, &volts(240.0), &r), SEND_CHANGED);
    assert_eq!(see(&mut f, 140.0, &volts(240.1), &r), UNCHANGED);
    assert_eq!(
        see(&mut f, 150.0, &volts(240.1), &r),
        Decision::Send(SendReason::Heartbeat)
    );
    // The heartbeat is the new reference, for the value and the clock.
    assert_eq!(f.last_value("voltage"), Some(&Value::F64(240.1)));
    assert_eq!(see(&mut f, 269.0, &volts(240.1), &r), UNCHANGED);
    assert_eq!(
        see(&mut f, 270.0, &volts(240.1), &r),
        Decision::Send(SendReason::Heartbeat)
    );
}

#[test]
fn point_rules_override_the_device_defaults() {
    let mut r = rules(Deadband::Absolute(0.5));
    r.points.insert(
        "energy",
        PointRule {
            deadband: Deadband::Absolute(0.01),
            min_interval: Some(Duration::from_secs(60)),
            max_interval: Some(Duration::from_secs(100)),
        },
    );
    let both =
        |volt: f64, kwh: f64| v(&[("voltage", Value::F64(volt)), ("energy", Value::F64(kwh))]);
    let mut f = ReportFilter::new();
    see(&mut f, 0.0, &both(230.0, 10.0), &r);
    // energy moved beyond its own band but its min_interval holds it back.
    assert_eq!(see(&mut f, 10.0, &both(230.0, 10.5), &r), TOO_SOON);
    assert_eq!(see(&mut f, 60.0, &both(230.0, 10.5), &r), SEND_CHANGED);
    assert_eq!(see(&mut f, 70.0, &both(230.0, 10.505), &r), UNCHANGED);
    // voltage has no min_interval of its own: its step goes out now.
    assert_eq!(see(&mut f, 80.0, &both(235.0, 10.505), &r), SEND_CHANGED);
    // energy's own heartbeat (100 s since it was last sent at 80) comes before the device's.
    assert_eq!(see(&mut f, 170.0, &both(235.0, 10.505), &r), UNCHANGED);
    assert_eq!(
        see(&mut f, 180.0, &both(235.0, 10.505), &r),
        Decision::Send(SendReason::Heartbeat)
    );
}

#[test]
fn quality_changes_and_first_errors_go_out_at_once() {
    let mut r = rules(Deadband::Absolute(0.5));
    r.min = Duration::from_secs(60);
    let mut f = ReportFilter::new();
    let none = Values::new();
    see(&mut f, 0.0, &volts(230.0), &r);
    // The device stops answering: the failure goes out within min_interval.
    assert_eq!(
        see_failed(&mut f, 10.0, &none, &["voltage"], &r),
        Decision::Send(SendReason::Quality)
    );
    // Still failing: already sent, not a change.
    assert_eq!(see_failed(&mut f, 20.0, &none, &["voltage"], &r), TOO_SOON);
    assert_eq!(see_failed(&mut f, 80.0, &none, &["voltage"], &r), UNCHANGED);
    assert_eq!(f.last_value("voltage"), None);
    // It answers again with the same value as before: a quality change, sent at once.
    assert_eq!(
        see(&mut f, 85.0, &volts(230.0), &r),
        Decision::Send(SendReason::Quality)
    );
    // One point of several failing for the first time (never sent before) is an error too.
    assert_eq!(
        see_failed(&mut f, 90.0, &volts(230.0), &["current"], &r),
        Decision::Send(SendReason::Quality)
    );
    assert_eq!(
        see_failed(&mut f, 150.0, &volts(230.0), &["current"], &r),
        UNCHANGED
    );
}

#[test]
fn failing_points_keep_their_heartbeat() {
    let mut r = rules(Deadband::Absolute(0.5));
    r.points.insert(
        "current",
        PointRule {
            max_interval: Some(Duration::from_secs(60)),
            ..PointRule::default()
        },
    );
    let mut f = ReportFilter::new();
    see_failed(&mut f, 0.0, &volts(230.0), &["current"], &r);
    assert_eq!(
        see_failed(&mut f, 50.0, &volts(230.0), &["current"], &r),
        UNCHANGED
    );
    assert_eq!(
        see_failed(&mut f, 60.0, &volts(230.0), &["current"], &r),
        Decision::Send(SendReason::Heartbeat)
    );
}

#[test]
fn non_numeric_values_go_out_when_they_change() {
    let r = rules(Deadband::Absolute(100.0));
    let state =
        |s: &str, on: bool| v(&[("mode", Value::Str(s.into())), ("relay", Value::Bool(on))]);
    let mut f = ReportFilter::new();
    see(&mut f, 0.0, &state("auto", false), &r);
    assert_eq!(see(&mut f, 10.0, &state("auto", false), &r), UNCHANGED);
    assert_eq!(see(&mut f, 20.0, &state("manual", false), &r), SEND_CHANGED);
    assert_eq!(see(&mut f, 30.0, &state("manual", true), &r), SEND_CHANGED);
    let raw = |b: &[u8]| v(&[("raw", Value::Bytes(b.to_vec()))]);
    see(&mut f, 40.0, &raw(&[1, 2]), &r);
    assert_eq!(see(&mut f, 50.0, &raw(&[1, 2]), &r), UNCHANGED);
    assert_eq!(see(&mut f, 60.0, &raw(&[1, 3]), &r), SEND_CHANGED);
}

#[test]
fn nan_infinity_and_big_counters_are_compared_exactly() {
    let r = rules(Deadband::Absolute(1.0));
    let mut f = ReportFilter::new();
    see(&mut f, 0.0, &volts(f64::NAN), &r);
    assert_eq!(see(&mut f, 10.0, &volts(f64::NAN), &r), UNCHANGED);
    assert_eq!(see(&mut f, 20.0, &volts(230.0), &r), SEND_CHANGED);
    assert_eq!(see(&mut f, 30.0, &volts(f64::INFINITY), &r), SEND_CHANGED);
    assert_eq!(see(&mut f, 40.0, &volts(f64::INFINITY), &r), UNCHANGED);
    let r0 = rules(Deadband::Absolute(0.0));
    let big = |n: i64| v(&[("energy_wh", Value::I64(n))]);
    let mut c = ReportFilter::new();
    see(&mut c, 0.0, &big(1 << 60), &r0);
    assert_eq!(see(&mut c, 10.0, &big((1 << 60) + 1), &r0), SEND_CHANGED);
    assert_eq!(see(&mut c, 20.0, &big((1 << 60) + 1), &r0), UNCHANGED);
}

#[test]
fn forced_and_volatile_readings() {
    let r = rules(Deadband::Absolute(0.5));
    let mut f = ReportFilter::new();
    let with_count = |n: i64| v(&[("voltage", Value::F64(230.0)), ("adv_count", Value::I64(n))]);
    let reading = |vals, forced| Reading {
        values: vals,
        failed: &[],
        volatile: &["adv_count"],
        forced,
    };
    let (a, b) = (with_count(1), with_count(2));
    assert_eq!(
        f.observe(t(0.0), &reading(&a, false), &r),
        Decision::Send(SendReason::First)
    );
    assert_eq!(f.observe(t(10.0), &reading(&b, false), &r), UNCHANGED);
    assert_eq!(
        f.observe(t(11.0), &reading(&b, true), &r),
        Decision::Send(SendReason::Forced)
    );
}
