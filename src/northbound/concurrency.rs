//! The adaptive in-flight limit of the syncer: AIMD (additive increase, multiplicative
//! decrease) under `max_in_flight`, steered by what concurrency buys at this CSE.
//!
//! Why: a fleet of gateways shares one CSE. When it struggles (requests time out, 5xxx,
//! 429/503, answers slow down), a gateway that keeps its full in-flight count only deepens the
//! queue there. And some CSEs get *slower* with more requests in flight (ACME's MQTT binding
//! handles each request in a new Python thread: 4 in flight deliver about half of what 1 does).
//!
//! The rules, applied per answer and per window of answers (`max(4 × limit, 48)`):
//! - **decrease**: halve (never below 1) on a timeout, 4008, 5xxx, overload answer or broken
//!   connection, and on a window whose mean latency exceeds `latency_factor` × the best recent
//!   window mean (and `latency_floor`). After a cut, the answers of requests already in flight
//!   (sent under the old limit) are not signals again: one cut per event;
//! - **cost per request** of a window = its duration / its answers (the inverse of the
//!   throughput), counted only while a backlog kept the limit busy (otherwise the rate is
//!   the records', not the CSE's). Each level's cost is remembered;
//! - **probe**: now and then one window runs at a neighbour level (one more, or one less, in
//!   turn); the limit moves up when that makes a request at least 3 % cheaper, down when it
//!   makes none dearer (same throughput with fewer in flight is kinder to the CSE), and
//!   otherwise returns,
//!   with probes spaced out (1, 2, 4 … 32 windows) while they keep failing. After a cut, probes
//!   go upwards every window: the additive increase, one step per window, while it pays.
//!
//! - **start low where concurrency is suspect**: over MQTT the limit starts at 1 and the first
//!   probe upwards comes after a few windows (ACME's MQTT binding delivers about half as much
//!   with 2 in flight as with 1; starting at 4 and working down cost a noticeable share of a
//!   backlog). Moving up then takes a request 15 % cheaper (not 3 %), so that noise on a
//!   busy box does not walk the limit up. A probe upwards that is clearly dearer after a few
//!   answers (a quarter) is called off early instead of running its whole window at half the
//!   throughput.
//!
//! The controller is pure (no I/O, the time is an argument): the syncer feeds it answers, so
//! the tests below are deterministic.
use serde::Deserialize;
use std::time::{Duration, Instant};

/// `[northbound] adaptive = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// Off: the limit stays at `max_in_flight`.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// A window whose mean latency exceeds this multiple of the best recent window mean is a
    /// congestion sign (the CSE is struggling).
    #[serde(default = "default_latency_factor")]
    pub latency_factor: f64,
    /// …and only if it is also slower than this.
    #[serde(
        default = "default_latency_floor",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub latency_floor: Duration,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            enabled: default_enabled(),
            latency_factor: default_latency_factor(),
            latency_floor: default_latency_floor(),
        }
    }
}

fn default_enabled() -> bool {
    true
}

fn default_latency_factor() -> f64 {
    10.0
}

fn default_latency_floor() -> Duration {
    Duration::from_millis(500)
}

/// Answers per window: at least this many, and 4 per request in flight.
const WINDOW_MIN: usize = 48;
/// Probes that keep failing are spaced out up to 2^this windows (32).
const PROBE_SPACING_MAX: u32 = 5;
/// One more in flight is taken only when it makes a request at least 3 % cheaper…
const PROBE_UP_GAIN: f64 = 0.97;
/// …one less whenever it is not dearer: at the same throughput, fewer requests in flight
/// load the CSE less.
const PROBE_DOWN_TOLERANCE: f64 = 1.0;
/// Starting at 1, one more in flight must make a request this much cheaper: on a busy box
/// window-to-window noise alone can make a dearer level look a few percent cheaper once, and
/// each step up on a CSE like ACME over MQTT costs a large share of its throughput.
const PROBE_UP_GAIN_FROM_ONE: f64 = 0.85;
/// A probe upwards is called off after this many answers…
const PROBE_EARLY_ANSWERS: usize = 12;
/// …when a request costs this much more than at the level it came from.
const PROBE_EARLY_ABORT: f64 = 1.25;
/// Starting at 1 ([`InFlightLimit::starting_at_one`]), the first probe upwards comes after
/// 2^this windows.
const START_PROBE_SPACING: u32 = 2;
/// Window means kept for the latency baseline (a CSE that became slower for good is the new
/// normal after this many windows).
const BASELINE_WINDOWS: usize = 64;

/// The AIMD controller.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    cfg: AdaptiveConfig,
    max: usize,
    limit: usize,
    /// Answers still to come from requests sent before the last cut; not signals again.
    hold: usize,
    /// The current window: answers, sum of latencies (s), answers that came while more work
    /// was waiting, and when it started (the answer before its first).
    n: usize,
    latency_sum: f64,
    busy: usize,
    started: Option<Instant>,
    /// Cost per request (s) measured at each level, by level (index 0 unused).
    cost: Vec<Option<f64>>,
    /// Recent window mean latencies (s), newest last.
    means: std::collections::VecDeque<f64>,
    /// The level a running probe came from.
    probe_from: Option<usize>,
    /// Windows between probes, and windows since the last one.
    /// log2 of the windows between probes.
    probe_spacing: u32,
    since_probe: u32,
    /// The direction of the next probe.
    probe_up: bool,
    /// A probe upwards succeeds when a request costs at most this share of the level below…
    up_gain: f64,
    /// …in this many windows in a row, and the windows the running probe has won so far
    /// (counted from zero when a probe starts).
    up_wins_needed: u8,
    up_wins: u8,
}

impl InFlightLimit {
    pub fn new(max_in_flight: usize, cfg: AdaptiveConfig) -> Self {
        let max = max_in_flight.max(1);
        InFlightLimit {
            cfg,
            max,
            limit: max,
            hold: 0,
            n: 0,
            latency_sum: 0.0,
            busy: 0,
            started: None,
            cost: vec![None; max + 1],
            means: Default::default(),
            probe_from: None,
            probe_spacing: 0,
            since_probe: 0,
            probe_up: false,
            up_gain: PROBE_UP_GAIN,
            up_wins_needed: 1,
            up_wins: 0,
        }
    }

    /// Starts at one request in flight and probes upwards only after a few windows (for a
    /// binding where more in flight is known to cost some CSEs throughput: MQTT). A step up
    /// must then win two windows in a row: on a busy machine one window can look cheaper by
    /// noise alone, and a wrong step up costs such a CSE a large share of its throughput.
    pub fn starting_at_one(mut self) -> Self {
        self.limit = 1;
        self.probe_up = true;
        self.probe_spacing = START_PROBE_SPACING;
        self.up_gain = PROBE_UP_GAIN_FROM_ONE;
        self.up_wins_needed = 2;
        self
    }

    /// Requests allowed in flight now (1 ..= `max_in_flight`).
    pub fn limit(&self) -> usize {
        if self.cfg.enabled {
            self.limit
        } else {
            self.max
        }
    }

    /// A request was answered at `now` after `latency` (any answer that is not a congestion
    /// sign); `busy`: more requests were waiting for a free slot (a backlog), so the rate of
    /// answers is what the CSE manages at this limit.
    pub fn on_answer(&mut self, latency: Duration, now: Instant, busy: bool) {
        self.hold = self.hold.saturating_sub(1);
        let Some(started) = self.started else {
            self.started = Some(now);
            return;
        };
        self.n += 1;
        self.latency_sum += latency.as_secs_f64();
        self.busy += usize::from(busy);
        let cost = now.saturating_duration_since(started).as_secs_f64() / self.n as f64;
        if self.n >= WINDOW_MIN.max(4 * self.limit) {
            self.end_window(cost, now);
        } else if self.n == PROBE_EARLY_ANSWERS && self.busy == self.n {
            self.check_probe_early(cost, now);
        }
    }

    /// Calls off a probe upwards whose first answers already cost clearly more than at the
    /// level it came from.
    fn check_probe_early(&mut self, cost: f64, now: Instant) {
        let Some(from) = self.probe_from.filter(|from| self.limit > *from) else {
            return;
        };
        if self.cost[from].is_some_and(|c| cost > c * PROBE_EARLY_ABORT) {
            self.probe_from = None;
            self.limit = from;
            self.probe_spacing = (self.probe_spacing + 1).min(PROBE_SPACING_MAX);
            self.probe_up = false;
            self.since_probe = 0;
            self.reset_window();
            self.started = Some(now);
        }
    }

    /// A timeout, 4008, 5xxx, overload answer or broken connection.
    pub fn on_congestion(&mut self) {
        if self.hold > 0 {
            self.hold -= 1;
            return;
        }
        self.cut();
    }

    fn cut(&mut self) {
        self.hold = self.limit.saturating_sub(1);
        self.limit = (self.limit / 2).max(1);
        self.probe_from = None;
        // Recover upwards, one level per window while that pays.
        self.probe_spacing = 0;
        self.since_probe = 0;
        self.probe_up = true;
        self.reset_window();
    }

    fn reset_window(&mut self) {
        self.n = 0;
        self.latency_sum = 0.0;
        self.busy = 0;
        self.started = None;
    }

    fn end_window(&mut self, cost: f64, now: Instant) {
        let mean = self.latency_sum / self.n as f64;
        let saturated = self.busy * 5 >= self.n * 4;
        self.reset_window();
        self.started = Some(now);
        let best_mean = self.means.iter().copied().fold(f64::INFINITY, f64::min);
        if self.means.len() == BASELINE_WINDOWS {
            self.means.pop_front();
        }
        self.means.push_back(mean);
        if mean > self.cfg.latency_floor.as_secs_f64() && mean > best_mean * self.cfg.latency_factor
        {
            self.cut();
            return;
        }
        let level = self.limit;
        if !saturated {
            // The records' rate, not the CSE's: nothing to learn; a probe is called off.
            if let Some(from) = self.probe_from.take() {
                self.limit = from;
            }
            return;
        }
        self.cost[level] = Some(match self.cost[level] {
            Some(old) if self.probe_from.is_none() => (old + cost) / 2.0,
            _ => cost,
        });
        if let Some(from) = self.probe_from.take() {
            let factor = if level > from {
                self.up_gain
            } else {
                PROBE_DOWN_TOLERANCE
            };
            let better = self.cost[from].map_or(true, |c| cost <= c * factor);
            if better && level > from && self.up_wins + 1 < self.up_wins_needed {
                // Won a window, not yet enough of them: the probe goes on.
                self.up_wins += 1;
                self.probe_from = Some(from);
                return;
            }
            if better {
                self.probe_spacing = 0;
                // Keep going the same way next window.
                self.probe_up = level > from;
            } else {
                self.limit = from;
                self.probe_spacing = (self.probe_spacing + 1).min(PROBE_SPACING_MAX);
                self.probe_up = level < from;
            }
            self.since_probe = 0;
            return;
        }
        self.since_probe += 1;
        if self.since_probe >= 1 << self.probe_spacing {
            let target = if self.probe_up {
                (level < self.max).then_some(level + 1)
            } else {
                (level > 1).then_some(level - 1)
            };
            self.probe_up = !self.probe_up;
            if let Some(target) = target {
                self.probe_from = Some(level);
                self.up_wins = 0;
                self.limit = target;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `answers` answers from a CSE whose latency depends on the requests in flight
    /// (always `limit`: a backlog; k in flight with latency L answer every L/k); returns the
    /// limit after each answer.
    fn drive(
        l: &mut InFlightLimit,
        answers: usize,
        latency: impl Fn(usize) -> Duration,
    ) -> Vec<usize> {
        let mut now = Instant::now();
        (0..answers)
            .map(|_| {
                let k = l.limit();
                let latency = latency(k);
                now += latency / k as u32;
                l.on_answer(latency, now, true);
                l.limit()
            })
            .collect()
    }

    fn share_at(limits: &[usize], level: usize) -> f64 {
        limits.iter().filter(|l| **l == level).count() as f64 / limits.len() as f64
    }

    #[test]
    fn halves_once_per_event_and_never_below_one() {
        let mut l = InFlightLimit::new(16, AdaptiveConfig::default());
        assert_eq!(l.limit(), 16);
        // 16 requests in flight time out together: one cut, not sixteen.
        for _ in 0..16 {
            l.on_congestion();
        }
        assert_eq!(l.limit(), 8);
        // The next failure after that cuts again.
        l.on_congestion();
        assert_eq!(l.limit(), 4);
        for _ in 0..100 {
            l.on_congestion();
        }
        assert_eq!(l.limit(), 1);
    }

    #[test]
    fn recovers_one_level_per_window_where_concurrency_pays() {
        // Latency independent of the number in flight: k in flight = k times the throughput.
        let mut l = InFlightLimit::new(8, AdaptiveConfig::default());
        for _ in 0..20 {
            l.on_congestion();
        }
        assert_eq!(l.limit(), 1);
        let limits = drive(&mut l, 3000, |_| 10 * MS);
        let mut steps: Vec<usize> = limits.clone();
        steps.dedup();
        assert_eq!(&steps[..4], &[1, 2, 3, 4], "{steps:?}");
        assert_eq!(*limits.last().unwrap(), 8);
        // Once there, failed probes downwards are spaced out: almost all the time at max.
        let tail = &limits[limits.len() - 1500..];
        assert!(share_at(tail, 8) > 0.9, "{}", share_at(tail, 8));
    }

    #[test]
    fn settles_at_one_where_concurrency_hurts() {
        // Like ACME's MQTT binding, starting at 4.
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default());
        let limits = drive(&mut l, 6000, acme_mqtt);
        let tail = &limits[3000..];
        assert!(share_at(tail, 1) > 0.85, "{}", share_at(tail, 1));
    }

    /// ACME over MQTT: 1 in flight 5 ms; k in flight cost 1.6 times more per request.
    fn acme_mqtt(k: usize) -> Duration {
        let k = k as f64;
        Duration::from_secs_f64(0.005 * k * if k > 1.0 { 1.6 } else { 1.0 })
    }

    /// Lengths of the runs of `level` in `limits`.
    fn runs_at(limits: &[usize], level: usize) -> Vec<usize> {
        let mut runs = vec![];
        let mut n = 0;
        for l in limits.iter().chain([&0]) {
            if *l == level {
                n += 1;
            } else if n > 0 {
                runs.push(n);
                n = 0;
            }
        }
        runs
    }

    #[test]
    fn starting_at_one_stays_there_where_concurrency_hurts() {
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default()).starting_at_one();
        assert_eq!(l.limit(), 1);
        // A backlog like the MQTT bench's (2000 records): nearly all of it at 1.
        let limits = drive(&mut l, 2000, acme_mqtt);
        assert!(share_at(&limits, 1) > 0.97, "{}", share_at(&limits, 1));
        // No probe before a few windows.
        assert!(limits[..4 * WINDOW_MIN].iter().all(|l| *l == 1));
        // Each probe upwards is called off after its first few answers.
        let probes = runs_at(&limits, 2);
        assert!(!probes.is_empty());
        assert!(
            probes.iter().all(|n| *n <= PROBE_EARLY_ANSWERS),
            "{probes:?}"
        );
        assert!(limits.iter().all(|l| *l <= 2));
    }

    #[test]
    fn starting_at_one_a_step_up_that_wins_once_by_luck_is_undone() {
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default()).starting_at_one();
        // At 2 in flight the first window is cheap (noise), every later one dearer than at 1
        // (but not so much dearer that the probe is called off early).
        let at_two = std::cell::Cell::new(0);
        let limits = drive(&mut l, 1500, |k| {
            if k == 1 {
                return 5 * MS;
            }
            at_two.set(at_two.get() + 1);
            if at_two.get() <= WINDOW_MIN + 1 {
                8 * MS
            } else {
                12 * MS
            }
        });
        let first = limits
            .iter()
            .position(|l| *l == 2)
            .expect("a probe upwards");
        let run = limits[first..].iter().take_while(|l| **l == 2).count();
        assert!(run <= 2 * WINDOW_MIN + 1, "stayed {run} answers at 2");
        assert_eq!(limits[first + run], 1, "back to 1, not further up");
    }

    #[test]
    fn starting_at_one_climbs_where_concurrency_pays() {
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default()).starting_at_one();
        let limits = drive(&mut l, 3000, |_| 10 * MS);
        let mut steps = limits.clone();
        steps.dedup();
        assert_eq!(&steps[..4], &[1, 2, 3, 4], "{steps:?}");
        assert!(share_at(&limits[1500..], 4) > 0.9);
    }

    #[test]
    fn stays_at_max_where_concurrency_helps_a_little() {
        // Like ACME over HTTP: 4 ms at 1 in flight, 9 ms at 4 (1.8x the throughput).
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default());
        let limits = drive(&mut l, 4000, |k| {
            Duration::from_secs_f64(0.004 + 0.005 * (k as f64 - 1.0) / 3.0)
        });
        assert!(
            share_at(&limits[1000..], 4) > 0.85,
            "{}",
            share_at(&limits[1000..], 4)
        );
    }

    #[test]
    fn a_window_far_slower_than_the_baseline_is_a_cut() {
        let mut l = InFlightLimit::new(8, AdaptiveConfig::default());
        drive(&mut l, 400, |_| 20 * MS);
        let before = l.limit();
        // The CSE struggles: 2 s answers (over 10x the baseline and over the 500 ms floor).
        drive(&mut l, WINDOW_MIN.max(4 * before), |_| 2000 * MS);
        assert_eq!(l.limit(), (before / 2).max(1));
        // 10x slower but under the floor: no cut.
        let mut l = InFlightLimit::new(8, AdaptiveConfig::default());
        drive(&mut l, 400, |_| MS);
        let before = l.limit();
        drive(&mut l, WINDOW_MIN.max(4 * before), |_| 40 * MS);
        assert!(l.limit() >= before - 1, "{} < {before}", l.limit());
    }

    #[test]
    fn without_a_backlog_nothing_is_learnt() {
        // Live records only: answers come at the records' pace, whatever the limit.
        let mut l = InFlightLimit::new(4, AdaptiveConfig::default());
        let mut now = Instant::now();
        for _ in 0..5000 {
            now += Duration::from_secs(1);
            l.on_answer(5 * MS, now, false);
            assert_eq!(l.limit(), 4);
        }
    }

    #[test]
    fn disabled_stays_at_max() {
        let cfg = AdaptiveConfig {
            enabled: false,
            ..AdaptiveConfig::default()
        };
        let mut l = InFlightLimit::new(6, cfg);
        l.on_congestion();
        l.on_congestion();
        assert_eq!(l.limit(), 6);
        assert_eq!(InFlightLimit::new(0, AdaptiveConfig::default()).limit(), 1);
    }
}
