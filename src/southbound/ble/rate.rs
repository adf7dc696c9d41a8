//! Per-device rate control: which decoded advertisements become records.
//!
//! BLE sensors advertise every second or so, and repeat each transmission several times; a
//! street cabinet on a cellular uplink wants a record when something changed, and a heartbeat
//! now and then so that a silent sensor can be told from a dead one. Per device, in order:
//!
//! 1. presence (last seen, RSSI, count) is updated for every advertisement;
//! 2. a BTHome encryption counter that goes backwards is a replay (rejected; like bthome-ble,
//!    counters below 100 are let through so a device reset does not lock it out), the same
//!    counter again is a repeat;
//! 3. repeats of one transmission (same BTHome packet id / Ruuvi measurement sequence within
//!    the dedupe window, or an older one) are dropped;
//! 4. events (button, dimmer) are always reported;
//! 5. otherwise nothing is reported within `min_interval` of the last record; after that a
//!    record goes out when a point moved beyond its deadband (compared with the values last
//!    reported, so slow drift is reported eventually), or when `max_silence` has passed.
//!
//! Steps 4 and 5 are the shared report-by-exception filter
//! ([`crate::southbound::report_filter`]); [`RatePolicy`] gives it its rules. Pure: the caller
//! passes the time, so tests use a fake clock.

use super::decoders::Decoded;
// The tests (rate_tests.rs, `use super::*`) build values.
#[cfg(test)]
use crate::record::Value;
use crate::southbound::report_filter::{
    Deadband, Decision, PointRule, Reading, ReportFilter, ReportRules, SendReason, SuppressReason,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Counters at or above this value may not go backwards (bthome-ble's reset tolerance).
const COUNTER_RESET_TOLERANCE: u32 = 100;
/// A packet id more than this far ahead of the last one is taken as an older packet.
const MAX_SEQUENCE_STEP: u32 = 64;

/// How often one device may report.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePolicy {
    /// Minimum time between two records (events excepted).
    pub min_interval: Duration,
    /// Report even unchanged values after this long (heartbeat).
    pub max_silence: Duration,
    /// Per point: changes up to this size are not a reason to report. Points not listed
    /// report on any change.
    pub deadband: HashMap<String, f64>,
    /// Repeats of one packet id are only dropped within this window (bthome-ble uses 4 s).
    pub dedupe_window: Duration,
}

impl Default for RatePolicy {
    fn default() -> Self {
        RatePolicy {
            min_interval: Duration::from_secs(30),
            max_silence: Duration::from_secs(15 * 60),
            deadband: HashMap::new(),
            dedupe_window: Duration::from_secs(4),
        }
    }
}

/// Why an advertisement became a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitReason {
    First,
    Changed,
    Heartbeat,
    Event,
}

/// Why an advertisement was dropped (counted per reason by the adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Repeat of a transmission already seen (packet id, sequence or counter).
    Duplicate,
    /// Encryption counter went backwards: replayed or forged.
    Replay,
    /// Within `min_interval` of the last record.
    TooSoon,
    /// Nothing moved beyond its deadband and `max_silence` has not passed.
    Unchanged,
}

/// The limiter's decision for one advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Emit(EmitReason),
    Drop(DropReason),
}

/// What is known about a device being in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub first_seen: Instant,
    pub last_seen: Instant,
    pub rssi: Option<i16>,
    /// Advertisements heard, dropped ones included.
    pub adverts: u64,
}

#[derive(Debug, Clone)]
struct DeviceState {
    presence: Presence,
    last_sequence: Option<(u32, Instant)>,
    last_counter: Option<u32>,
    /// Min interval, deadbands and heartbeat over the values reported so far.
    report: ReportFilter,
}

/// Rate state of all devices of one adapter.
#[derive(Debug, Default)]
pub struct RateLimiter {
    devices: HashMap<String, DeviceState>,
}

impl RateLimiter {
    pub fn new() -> Self {
        RateLimiter::default()
    }

    /// Decides about one decoded advertisement of `device` heard at `now`.
    pub fn observe(
        &mut self,
        device: &str,
        now: Instant,
        rssi: Option<i16>,
        decoded: &Decoded,
        policy: &RatePolicy,
    ) -> Verdict {
        let st = self
            .devices
            .entry(device.to_owned())
            .or_insert_with(|| DeviceState {
                presence: Presence {
                    first_seen: now,
                    last_seen: now,
                    rssi,
                    adverts: 0,
                },
                last_sequence: None,
                last_counter: None,
                report: ReportFilter::new(),
            });
        st.presence.last_seen = now;
        st.presence.adverts += 1;
        if rssi.is_some() {
            st.presence.rssi = rssi;
        }

        if let Some(c) = decoded.counter {
            match st.last_counter {
                Some(last) if c == last => return Verdict::Drop(DropReason::Duplicate),
                Some(last) if c < last && c >= COUNTER_RESET_TOLERANCE => {
                    return Verdict::Drop(DropReason::Replay)
                }
                _ => st.last_counter = Some(c),
            }
        }
        if let Some(seq) = decoded.sequence {
            if let Some((last, at)) = st.last_sequence {
                let m = u64::from(seq.modulus.max(1));
                let step = (u64::from(seq.value) % m + m - u64::from(last) % m) % m;
                let recent = now.saturating_duration_since(at) <= policy.dedupe_window;
                if recent && (step == 0 || step >= u64::from(MAX_SEQUENCE_STEP)) {
                    return Verdict::Drop(DropReason::Duplicate);
                }
            }
            st.last_sequence = Some((seq.value, now));
        }

        let reading = Reading {
            values: &decoded.values,
            failed: &[],
            volatile: decoded.volatile_points,
            forced: decoded.has_event,
        };
        match st.report.observe(now, &reading, policy) {
            Decision::Send(SendReason::Forced) => Verdict::Emit(EmitReason::Event),
            // A BLE reading has no failed points: every other reason is a first or a change.
            Decision::Send(SendReason::First) => Verdict::Emit(EmitReason::First),
            Decision::Send(SendReason::Changed | SendReason::Quality) => {
                Verdict::Emit(EmitReason::Changed)
            }
            Decision::Send(SendReason::Heartbeat) => Verdict::Emit(EmitReason::Heartbeat),
            Decision::Suppress(SuppressReason::TooSoon) => Verdict::Drop(DropReason::TooSoon),
            Decision::Suppress(SuppressReason::Unchanged) => Verdict::Drop(DropReason::Unchanged),
        }
    }

    /// Presence of one device, if it was ever heard.
    pub fn presence(&self, device: &str) -> Option<&Presence> {
        self.devices.get(device).map(|d| &d.presence)
    }

    /// All devices heard, with their presence.
    pub fn presences(&self) -> impl Iterator<Item = (&str, &Presence)> {
        self.devices.iter().map(|(k, v)| (k.as_str(), &v.presence))
    }

    /// Forgets devices not heard for `max_age` (bounds memory when many devices pass by).
    /// Their dedupe and replay state goes too.
    pub fn prune(&mut self, now: Instant, max_age: Duration) -> usize {
        let before = self.devices.len();
        self.devices
            .retain(|_, d| now.saturating_duration_since(d.presence.last_seen) <= max_age);
        before - self.devices.len()
    }
}

/// BLE devices have one clock (min interval and heartbeat per device) and absolute deadbands;
/// points without one report any change.
impl ReportRules for RatePolicy {
    fn min_interval(&self) -> Duration {
        self.min_interval
    }
    fn max_interval(&self) -> Duration {
        self.max_silence
    }
    fn point(&self, name: &str) -> PointRule {
        PointRule {
            deadband: Deadband::Absolute(self.deadband.get(name).copied().unwrap_or(0.0)),
            ..PointRule::default()
        }
    }
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
