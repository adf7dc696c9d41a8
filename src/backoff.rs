//! The one backoff of citygate: exponential with full jitter and a cap (AWS "Exponential
//! Backoff And Jitter"). The n-th delay is uniform in `[0, min(cap, initial · 2^n)]`.
//!
//! Used for every retry: restarting a failed adapter, reconnecting to a Modbus device, to BlueZ,
//! and retrying the CSE. Full jitter matters at fleet scale: after a platform outage, hundreds of
//! gateways (and within one gateway, its devices) spread their retries instead of arriving in
//! waves. Nothing else in the code base computes a retry delay.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Backoff {
            initial,
            cap: cap.max(initial),
            attempt: 0,
        }
    }

    /// The upper bound of the next delay's window (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.cap)
    }

    /// The next delay; each call widens the window until the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        full_jitter(ceiling)
    }

    /// Consecutive failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a success: start again from the initial window.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A delay uniform in `[0, window]`: one full-jitter draw, for waits that are not a growing
/// retry (the first registration after start, a spread on top of a server's `Retry-After`).
pub fn full_jitter(window: Duration) -> Duration {
    let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_inside_the_window() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d <= ceiling, "{d:?} > {ceiling:?}");
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(2));
    }

    #[test]
    fn full_jitter_spreads_delays_over_the_whole_window() {
        let delays: Vec<Duration> = (0..200)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "{}", distinct.len());
        // Full jitter: the lower half of the window is used too (no floor).
        assert!(delays.iter().any(|d| *d < Duration::from_millis(250)));
    }

    #[test]
    fn one_full_jitter_draw_covers_the_window() {
        let window = Duration::from_secs(30);
        let draws: Vec<Duration> = (0..400).map(|_| full_jitter(window)).collect();
        assert!(draws.iter().all(|d| *d <= window));
        // A fleet of 400 gateways: spread over the whole window, not bunched.
        let per_tenth = |i: u32| {
            draws
                .iter()
                .filter(|d| (window * i / 10..window * (i + 1) / 10).contains(*d))
                .count()
        };
        for i in 0..10 {
            assert!(
                (10..=80).contains(&per_tenth(i)),
                "tenth {i}: {}",
                per_tenth(i)
            );
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
