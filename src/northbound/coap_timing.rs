//! RFC 7252 §4.2/§4.8 retransmission of a confirmable message: the first timeout is a random
//! duration between ACK_TIMEOUT and ACK_TIMEOUT × ACK_RANDOM_FACTOR (2–3 s), each following
//! one doubles it, and after MAX_RETRANSMIT (4) retransmissions the exchange has failed.
//!
//! This is deliberately not [`crate::backoff`]: that one spaces out reconnects and retries of
//! citygate's own choosing, while these constants are part of the CoAP protocol itself (they
//! decide how long a CSE keeps a message id for duplicate detection, EXCHANGE_LIFETIME), so a
//! client must use exactly these values and this doubling.
use std::time::Duration;

/// ACK_TIMEOUT (RFC 7252 §4.8).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// ACK_RANDOM_FACTOR (RFC 7252 §4.8).
pub const ACK_RANDOM_FACTOR: f64 = 1.5;
/// MAX_RETRANSMIT (RFC 7252 §4.8).
pub const MAX_RETRANSMIT: u32 = 4;

/// When to retransmit one confirmable message, and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct Retransmission {
    timeout: Duration,
    retransmitted: u32,
}

impl Retransmission {
    /// `random` in [0, 1) picks the initial timeout in [ACK_TIMEOUT, ACK_TIMEOUT × 1.5).
    pub fn new(random: f64) -> Self {
        let random = random.clamp(0.0, 1.0);
        let factor = 1.0 + random * (ACK_RANDOM_FACTOR - 1.0);
        Retransmission {
            timeout: ACK_TIMEOUT.mul_f64(factor),
            retransmitted: 0,
        }
    }

    /// With a random initial timeout (the RFC's reason: clients that lost the same packet
    /// must not retransmit in lockstep).
    pub fn random() -> Self {
        Retransmission::new(rand::random::<f64>())
    }

    /// How long to wait for the ACK of the transmission just made.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Retransmissions made so far.
    pub fn retransmitted(&self) -> u32 {
        self.retransmitted
    }

    /// The wait ran out: `true` = retransmit now (and wait twice as long), `false` = MAX_RETRANSMIT
    /// retransmissions were made and the exchange has failed.
    pub fn on_timeout(&mut self) -> bool {
        if self.retransmitted >= MAX_RETRANSMIT {
            return false;
        }
        self.retransmitted += 1;
        self.timeout *= 2;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_timeout_is_between_ack_timeout_and_its_random_factor() {
        assert_eq!(Retransmission::new(0.0).timeout(), Duration::from_secs(2));
        assert_eq!(
            Retransmission::new(0.5).timeout(),
            Duration::from_millis(2500)
        );
        assert!(Retransmission::new(0.999_999).timeout() < Duration::from_secs(3));
        for _ in 0..1000 {
            let t = Retransmission::random().timeout();
            assert!(
                (Duration::from_secs(2)..Duration::from_secs(3)).contains(&t),
                "{t:?}"
            );
        }
    }

    #[test]
    fn doubles_four_times_then_gives_up() {
        let mut r = Retransmission::new(0.0);
        let mut waits = vec![r.timeout()];
        while r.on_timeout() {
            waits.push(r.timeout());
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32]);
        assert_eq!(r.retransmitted(), MAX_RETRANSMIT);
        // MAX_TRANSMIT_SPAN = ACK_TIMEOUT × (2^MAX_RETRANSMIT − 1) × ACK_RANDOM_FACTOR = 45 s:
        // the last retransmission is sent at most that long after the first transmission.
        let mut r = Retransmission::new(0.999_999);
        let mut span = Duration::ZERO;
        let mut total = r.timeout();
        while r.on_timeout() {
            span = total;
            total += r.timeout();
        }
        assert!(span <= Duration::from_secs(45), "{span:?}");
        assert!(span > Duration::from_secs(44), "{span:?}");
        // MAX_TRANSMIT_WAIT = ACK_TIMEOUT × (2^(MAX_RETRANSMIT + 1) − 1) × ACK_RANDOM_FACTOR = 93 s.
        assert!(
            total <= Duration::from_secs(93) && total > Duration::from_secs(92),
            "{total:?}"
        );
    }
}
