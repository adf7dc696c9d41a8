//! Rate limiter tests on a fake clock (`t(seconds)` from one fixed Instant).

use super::*;
use crate::southbound::ble::decoders::{self, Sequence};
use std::sync::OnceLock;

fn t(secs: f64) -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_secs_f64(secs)
}

fn temp(v: f64) -> Decoded {
    let mut d = decoders::decode_bthome(&[0x40, 0x01, 0x64], None, None).unwrap();
    d.values.clear();
    d.values.insert("temperature".into(), Value::F64(v));
    d
}

fn with_seq(mut d: Decoded, seq: u32) -> Decoded {
    d.sequence = Some(Sequence {
        value: seq,
        modulus: 256,
    });
    d
}

fn policy() -> RatePolicy {
    RatePolicy {
        min_interval: Duration::from_secs(10),
        max_silence: Duration::from_secs(60),
        deadband: [("temperature".to_string(), 0.2)].into_iter().collect(),
        dedupe_window: Duration::from_secs(4),
    }
}

#[test]
fn first_then_min_interval_then_deadband_then_heartbeat() {
    let p = policy();
    let mut r = RateLimiter::new();
    assert_eq!(
        r.observe("d", t(0.0), Some(-70), &temp(20.0), &p),
        Verdict::Emit(EmitReason::First)
    );
    // A big change inside min_interval waits.
    assert_eq!(
        r.observe("d", t(5.0), None, &temp(25.0), &p),
        Verdict::Drop(DropReason::TooSoon)
    );
    // Within the deadband of the last *reported* value (20.0): unchanged.
    assert_eq!(
        r.observe("d", t(11.0), None, &temp(20.2), &p),
        Verdict::Drop(DropReason::Unchanged)
    );
    assert_eq!(
        r.observe("d", t(12.0), None, &temp(20.3), &p),
        Verdict::Emit(EmitReason::Changed)
    );
    // Slow drift: each step is small but the sum crosses the band relative to 20.3.
    assert_eq!(
        r.observe("d", t(23.0), None, &temp(20.4), &p),
        Verdict::Drop(DropReason::Unchanged)
    );
    assert_eq!(
        r.observe("d", t(24.0), None, &temp(20.6), &p),
        Verdict::Emit(EmitReason::Changed)
    );
    // Unchanged until max_silence since the last record (t=24) → heartbeat at t>=84.
    assert_eq!(
        r.observe("d", t(83.0), None, &temp(20.6), &p),
        Verdict::Drop(DropReason::Unchanged)
    );
    assert_eq!(
        r.observe("d", t(84.0), None, &temp(20.6), &p),
        Verdict::Emit(EmitReason::Heartbeat)
    );
    let pres = r.presence("d").unwrap();
    assert_eq!(pres.adverts, 8);
    assert_eq!(pres.rssi, Some(-70));
    assert_eq!(pres.last_seen, t(84.0));
    assert_eq!(pres.first_seen, t(0.0));
}

#[test]
fn points_without_deadband_report_any_change_and_new_points_count() {
    let p = policy();
    let mut r = RateLimiter::new();
    let mut d = temp(20.0);
    d.values.insert("battery".into(), Value::I64(90));
    r.observe("d", t(0.0), None, &d, &p);
    d.values.insert("battery".into(), Value::I64(89));
    assert_eq!(
        r.observe("d", t(10.0), None, &d, &p),
        Verdict::Emit(EmitReason::Changed)
    );
    let mut only_new = temp(20.0);
    only_new.values.insert("door".into(), Value::Bool(true));
    assert_eq!(
        r.observe("d", t(20.0), None, &only_new, &p),
        Verdict::Emit(EmitReason::Changed)
    );
    // A packet that carries only some of the points is not a change by omission.
    assert_eq!(
        r.observe("d", t(30.0), None, &temp(20.0), &p),
        Verdict::Drop(DropReason::Unchanged)
    );
}

#[test]
fn volatile_points_do_not_trigger_reports() {
    let p = policy();
    let mut r = RateLimiter::new();
    let mut d = temp(20.0);
    d.volatile_points = &["adv_count"];
    d.values.insert("adv_count".into(), Value::I64(1));
    r.observe("d", t(0.0), None, &d, &p);
    d.values.insert("adv_count".into(), Value::I64(500));
    assert_eq!(
        r.observe("d", t(20.0), None, &d, &p),
        Verdict::Drop(DropReason::Unchanged)
    );
}

#[test]
fn packet_id_repeats_are_dropped_within_the_window() {
    let p = policy();
    let mut r = RateLimiter::new();
    assert_eq!(
        r.observe("d", t(0.0), None, &with_seq(temp(20.0), 7), &p),
        Verdict::Emit(EmitReason::First)
    );
    assert_eq!(
        r.observe("d", t(0.5), None, &with_seq(temp(20.0), 7), &p),
        Verdict::Drop(DropReason::Duplicate)
    );
    // An older packet (step >= 64 forward) is a duplicate too.
    assert_eq!(
        r.observe("d", t(1.0), None, &with_seq(temp(20.0), 6), &p),
        Verdict::Drop(DropReason::Duplicate)
    );
    // Wrap-around 255 → 0 is a step of 1.
    let mut r2 = RateLimiter::new();
    r2.observe("d", t(0.0), None, &with_seq(temp(20.0), 255), &p);
    assert_eq!(
        r2.observe("d", t(11.0), None, &with_seq(temp(30.0), 0), &p),
        Verdict::Emit(EmitReason::Changed)
    );
    // After the window the same id is accepted (devices keep the id while data is unchanged).
    assert_eq!(
        r.observe("d", t(5.0), None, &with_seq(temp(20.0), 7), &p),
        Verdict::Drop(DropReason::TooSoon)
    );
}

#[test]
fn encrypted_counter_replay_is_rejected_but_resets_are_tolerated() {
    let p = policy();
    let mut r = RateLimiter::new();
    let with_counter = |c: u32, v: f64| {
        let mut d = temp(v);
        d.counter = Some(c);
        d
    };
    assert_eq!(
        r.observe("d", t(0.0), None, &with_counter(1000, 20.0), &p),
        Verdict::Emit(EmitReason::First)
    );
    assert_eq!(
        r.observe("d", t(1.0), None, &with_counter(1000, 20.0), &p),
        Verdict::Drop(DropReason::Duplicate)
    );
    assert_eq!(
        r.observe("d", t(20.0), None, &with_counter(999, 30.0), &p),
        Verdict::Drop(DropReason::Replay)
    );
    // A device reset starts again at a small counter: accepted.
    assert_eq!(
        r.observe("d", t(21.0), None, &with_counter(3, 30.0), &p),
        Verdict::Emit(EmitReason::Changed)
    );
    assert_eq!(
        r.observe("d", t(40.0), None, &with_counter(4, 40.0), &p),
        Verdict::Emit(EmitReason::Changed)
    );
}

#[test]
fn events_bypass_min_interval_and_prune_forgets_old_devices() {
    let p = policy();
    let mut r = RateLimiter::new();
    r.observe("a", t(0.0), None, &temp(20.0), &p);
    let mut ev = temp(20.0);
    ev.has_event = true;
    assert_eq!(
        r.observe("a", t(1.0), None, &ev, &p),
        Verdict::Emit(EmitReason::Event)
    );
    r.observe("b", t(100.0), Some(-80), &temp(1.0), &p);
    assert_eq!(r.presences().count(), 2);
    assert_eq!(r.prune(t(100.0), Duration::from_secs(50)), 1);
    assert!(r.presence("a").is_none());
    assert_eq!(r.presence("b").unwrap().rssi, Some(-80));
}

#[test]
fn ruuvi_sequence_dedupes_real_repeats() {
    let p = policy();
    let mut r = RateLimiter::new();
    let hexs = "0512fc5394c37c0004fffc040cac364200cdcbb8334c884f";
    let d = decoders::decode_ruuvi(&hex::decode(hexs).unwrap()).unwrap();
    assert_eq!(d.sequence.unwrap().value, 205);
    assert_eq!(
        r.observe("ruuvi", t(0.0), None, &d, &p),
        Verdict::Emit(EmitReason::First)
    );
    assert_eq!(
        r.observe("ruuvi", t(1.0), None, &d, &p),
        Verdict::Drop(DropReason::Duplicate)
    );
}
