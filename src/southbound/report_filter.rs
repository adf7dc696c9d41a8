//! Report by exception: which readings of a device are worth sending over a metered uplink.
//!
//! A meter polled every 10 s, or a BLE sensor that advertises every second, produces far more
//! readings than a city needs to pay for: most of them repeat the last one within its noise.
//! This filter is the one place that decides, for one device, whether a reading goes to the
//! buffer (and on to the platform) or is suppressed. Adapters own one [`ReportFilter`] per
//! device and ask it about each reading; the rules come from a [`ReportRules`] (the Modbus
//! `report` table, the BLE rate policy).
//!
//! A reading is sent, in this order:
//! 1. when the caller forces it (a BLE button event);
//! 2. when it is the device's first reading;
//! 3. when the quality of a point changed: a point that was sent with a value now fails
//!    (its first error), or a point sent as failed has a value again. Both go out at once,
//!    whatever the intervals. A point that keeps failing is not a change (its error was
//!    sent; the heartbeat repeats it);
//! 4. otherwise nothing goes out within the device's `min_interval` of its last record;
//! 5. after that, when a point moved beyond its deadband compared with the value last sent
//!    (so slow drift is reported once it adds up), when a point is new, when a non-numeric
//!    value differs — unless that point's own `min_interval` since it was last sent holds it
//!    back;
//! 6. or as a heartbeat, when the device's `max_interval` since its last record has passed,
//!    or a point's own `max_interval` since that point was last sent.
//!
//! The filter decides about whole readings: when one goes out, every point in it counts as
//! sent (value, quality and time). Pure: the caller passes the time, so tests use a fake
//! clock.

use crate::record::{Value, Values};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How far a numeric value may move before the move is worth a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deadband {
    /// In the point's own unit: moves up to this size are not reported (0 = any change).
    Absolute(f64),
    /// Percent of the value last sent (`2.0` = 2 %); a last value of 0 reports any change.
    Percent(f64),
}

impl Default for Deadband {
    fn default() -> Self {
        Deadband::Absolute(0.0)
    }
}

impl Deadband {
    /// True when `new` is outside the band around `old`, the value last sent.
    pub fn exceeded(self, old: f64, new: f64) -> bool {
        if old.is_nan() || new.is_nan() {
            // NaN is a value of its own (a meter reporting "no measurement").
            return old.is_nan() != new.is_nan();
        }
        if old == new {
            // Also covers equal infinities, whose difference is NaN.
            return false;
        }
        let band = match self {
            Deadband::Absolute(b) => b,
            Deadband::Percent(p) => old.abs() * p / 100.0,
        };
        (old - new).abs() > band
    }
}

/// The rules of one point. `None` leaves the decision to the device-wide rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PointRule {
    pub deadband: Deadband,
    /// A change of this point is not a reason to send before this long since the point was
    /// last sent.
    pub min_interval: Option<Duration>,
    /// Send (a heartbeat) when the point was last sent at least this long ago.
    pub max_interval: Option<Duration>,
}

/// Where the filter reads its rules from; an adapter's policy type implements it.
pub trait ReportRules {
    /// No record within this long of the device's last one (forced ones and quality
    /// changes excepted).
    fn min_interval(&self) -> Duration;
    /// Heartbeat: a record at least this often while the device delivers readings.
    fn max_interval(&self) -> Duration;
    /// The rules of point `name`.
    fn point(&self, name: &str) -> PointRule;
}

/// One reading of a device, as the filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// Points read with a value.
    pub values: &'a Values,
    /// Points that were due but failed (bad quality).
    pub failed: &'a [&'a str],
    /// Points whose changes are never a reason to send (BLE advertisement counters).
    pub volatile: &'a [&'a str],
    /// Send whatever the rules say (a BLE button event).
    pub forced: bool,
}

impl<'a> Reading<'a> {
    /// A reading of values only, nothing failed, nothing forced.
    pub fn values(values: &'a Values) -> Self {
        Reading {
            values,
            failed: &[],
            volatile: &[],
            forced: false,
        }
    }
}

/// Why a reading is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendReason {
    Forced,
    First,
    /// A point failed for the first time, or has a value again.
    Quality,
    Changed,
    Heartbeat,
}

/// Why a reading is suppressed (both are counted as suppressed readings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressReason {
    /// Within `min_interval` (the device's, or that of the point that changed).
    TooSoon,
    /// Nothing moved beyond its deadband and no heartbeat is due.
    Unchanged,
}

/// The filter's decision about one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(SendReason),
    Suppress(SuppressReason),
}

impl Decision {
    pub fn is_send(self) -> bool {
        matches!(self, Decision::Send(_))
    }
}

/// What was last sent of one point.
#[derive(Debug, Clone)]
struct SentPoint {
    /// `None`: the point was sent as failed.
    value: Option<Value>,
    at: Instant,
}

/// Report-by-exception state of one device.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    last_sent: Option<Instant>,
    /// Every point sent so far (devices may spread their points over several readings).
    sent: HashMap<String, SentPoint>,
}

impl ReportFilter {
    pub fn new() -> Self {
        ReportFilter::default()
    }

    /// Decides about `reading` taken at `now`; a reading that is sent becomes the reference
    /// for the next ones.
    pub fn observe(
        &mut self,
        now: Instant,
        reading: &Reading<'_>,
        rules: &impl ReportRules,
    ) -> Decision {
        let decision = self.decide(now, reading, rules);
        if decision.is_send() {
            self.last_sent = Some(now);
            for (name, v) in reading.values {
                self.sent.insert(
                    name.clone(),
                    SentPoint {
                        value: Some(v.clone()),
                        at: now,
                    },
                );
            }
            for name in reading.failed {
                self.sent.insert(
                    (*name).to_owned(),
                    SentPoint {
                        value: None,
                        at: now,
                    },
                );
            }
        }
        decision
    }

    /// The value last sent of `point` (`None` if never sent or sent as failed).
    pub fn last_value(&self, point: &str) -> Option<&Value> {
        self.sent.get(point).and_then(|s| s.value.as_ref())
    }

    fn decide(&self, now: Instant, reading: &Reading<'_>, rules: &impl ReportRules) -> Decision {
        if reading.forced {
            return Decision::Send(SendReason::Forced);
        }
        let Some(last) = self.last_sent else {
            return Decision::Send(SendReason::First);
        };
        if self.quality_changed(reading) {
            return Decision::Send(SendReason::Quality);
        }
        let since = now.saturating_duration_since(last);
        if since < rules.min_interval() {
            return Decision::Suppress(SuppressReason::TooSoon);
        }
        let mut held = false;
        let mut heartbeat = since >= rules.max_interval();
        for (name, new) in reading.values {
            let rule = rules.point(name);
            let Some(sent) = self.sent.get(name.as_str()) else {
                if reading.volatile.contains(&name.as_str()) {
                    continue;
                }
                return Decision::Send(SendReason::Changed);
            };
            let since_point = now.saturating_duration_since(sent.at);
            heartbeat |= rule.max_interval.is_some_and(|m| since_point >= m);
            if reading.volatile.contains(&name.as_str()) {
                continue;
            }
            let moved = match &sent.value {
                Some(old) => moved(old, new, rule.deadband),
                None => true,
            };
            if moved {
                if rule.min_interval.is_some_and(|m| since_point < m) {
                    held = true;
                } else {
                    return Decision::Send(SendReason::Changed);
                }
            }
        }
        for name in reading.failed {
            if let (Some(sent), Some(max)) = (self.sent.get(*name), rules.point(name).max_interval)
            {
                heartbeat |= now.saturating_duration_since(sent.at) >= max;
            }
        }
        if heartbeat {
            Decision::Send(SendReason::Heartbeat)
        } else if held {
            Decision::Suppress(SuppressReason::TooSoon)
        } else {
            Decision::Suppress(SuppressReason::Unchanged)
        }
    }

    /// A point failed that was never sent failed, or a point sent as failed has a value.
    fn quality_changed(&self, reading: &Reading<'_>) -> bool {
        let new_failure = reading
            .failed
            .iter()
            .any(|p| !matches!(self.sent.get(*p), Some(s) if s.value.is_none()));
        let recovered = reading
            .values
            .keys()
            .any(|p| self.sent.get(p.as_str()).is_some_and(|s| s.value.is_none()));
        new_failure || recovered
    }
}

/// True when `new` differs from `old` enough to be reported: numbers beyond the deadband,
/// anything else when it is not equal.
fn moved(old: &Value, new: &Value, band: Deadband) -> bool {
    match (old, new) {
        (Value::I64(a), Value::I64(b)) => {
            // Exact for counters beyond 2^53, where f64 would hide a step.
            a != b && (i128::from(*a) - i128::from(*b)).unsigned_abs() as f64 > band_at(band, *a)
        }
        _ => match (as_f64(old), as_f64(new)) {
            (Some(a), Some(b)) => band.exceeded(a, b),
            _ => old != new,
        },
    }
}

fn band_at(band: Deadband, old: i64) -> f64 {
    match band {
        Deadband::Absolute(b) => b,
        Deadband::Percent(p) => (old as f64).abs() * p / 100.0,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::F64(x) => Some(*x),
        Value::I64(x) => Some(*x as f64),
        _ => None,
    }
}

#[cfg(test)]
#[path = "report_filter_tests.rs"]
mod tests;
