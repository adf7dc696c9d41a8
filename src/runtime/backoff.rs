//! Exponential backoff with full jitter and a cap (AWS "full jitter"): retries from many
//! gateways after a platform outage spread out instead of arriving in waves.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The next delay: uniformly random in `[0, min(cap, base * 2^attempt)]`, never below
    /// `base / 2` so a tight loop cannot happen.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let floor = self.base / 2;
        let ms = rand::rng().random_range(
            floor.as_millis() as u64..=ceiling.as_millis().max(floor.as_millis()) as u64,
        );
        Duration::from_millis(ms)
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        exp.min(self.cap)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut max_seen = Duration::ZERO;
        for _ in 0..30 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_secs(5),
                "{d:?}"
            );
            max_seen = max_seen.max(d);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(5));
        assert!(max_seen > Duration::from_millis(400));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}
