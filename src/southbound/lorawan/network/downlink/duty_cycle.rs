//! Transmit duty cycle of the gateway, per EU868 sub-band (ETSI EN 300 220, as listed in
//! RP002-1.0.4 §2.4.1 and ChirpStack's band config): a downlink is sent only if the airtime
//! the gateway used in its sub-band over the last hour, plus this one, stays within the
//! sub-band's limit. Other regions have no duty-cycle limit on gateways (they use dwell time or
//! listen-before-talk, which the concentrator handles), so the tracker allows everything there.
//!
//! The airtime of the last hour is persisted ([`DutyCycle::snapshot`], [`DutyCycle::restore`])
//! so a restart of the daemon does not hand out a fresh budget.

use super::super::region::Region;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One ETSI sub-band with its duty-cycle limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubBand {
    pub name: &'static str,
    pub low_hz: u32,
    pub high_hz: u32,
    /// Allowed fraction of time on air, e.g. 0.01.
    pub limit: f64,
}

/// EU868 sub-bands. g1 holds the three default channels (1 %), g3 the RX2 channel 869.525 MHz
/// (10 %).
pub const EU868_SUB_BANDS: [SubBand; 5] = [
    SubBand {
        name: "g (863.0-868.0 MHz, 1 %)",
        low_hz: 863_000_000,
        high_hz: 868_000_000,
        limit: 0.01,
    },
    SubBand {
        name: "g1 (868.0-868.6 MHz, 1 %)",
        low_hz: 868_000_000,
        high_hz: 868_600_000,
        limit: 0.01,
    },
    SubBand {
        name: "g2 (868.7-869.2 MHz, 0.1 %)",
        low_hz: 868_700_000,
        high_hz: 869_200_000,
        limit: 0.001,
    },
    SubBand {
        name: "g3 (869.4-869.65 MHz, 10 %)",
        low_hz: 869_400_000,
        high_hz: 869_650_000,
        limit: 0.1,
    },
    SubBand {
        name: "g4 (869.7-870.0 MHz, 1 %)",
        low_hz: 869_700_000,
        high_hz: 870_000_000,
        limit: 0.01,
    },
];

/// Why a transmission is not allowed now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DutyCycleError {
    #[error("sub-band {band}: {used_ms} ms used in the last hour, {airtime_ms} ms more would exceed {limit_ms} ms")]
    Exceeded {
        band: &'static str,
        used_ms: u64,
        airtime_ms: u64,
        limit_ms: u64,
    },
    #[error("{0} Hz is outside every EU868 sub-band")]
    NoSubBand(u32),
}

struct Band {
    band: SubBand,
    /// (when, airtime µs), oldest first, all within the window.
    sent: VecDeque<(Instant, u64)>,
    used_us: u64,
}

/// Airtime used per sub-band over a sliding window (one hour).
pub struct DutyCycle {
    window: Duration,
    /// Empty: no limit (regions other than EU868).
    bands: Vec<Band>,
}

impl DutyCycle {
    /// The tracker of `region` over the regulatory one-hour window.
    pub fn for_region(region: Region) -> Self {
        Self::with_window(region, Duration::from_secs(3600))
    }

    /// Same, over `window` (tests use a short one).
    pub fn with_window(region: Region, window: Duration) -> Self {
        let bands = match region {
            Region::Eu868 => EU868_SUB_BANDS
                .iter()
                .map(|b| Band {
                    band: *b,
                    sent: VecDeque::new(),
                    used_us: 0,
                })
                .collect(),
            _ => Vec::new(),
        };
        DutyCycle { window, bands }
    }

    fn band(&mut self, freq_hz: u32, now: Instant) -> Result<Option<&mut Band>, DutyCycleError> {
        if self.bands.is_empty() {
            return Ok(None);
        }
        let window = self.window;
        let b = self
            .bands
            .iter_mut()
            .find(|b| (b.band.low_hz..=b.band.high_hz).contains(&freq_hz))
            .ok_or(DutyCycleError::NoSubBand(freq_hz))?;
        while let Some(&(t, us)) = b.sent.front() {
            if now.saturating_duration_since(t) < window {
                break;
            }
            b.sent.pop_front();
            b.used_us -= us;
        }
        Ok(Some(b))
    }

    /// Whether `airtime_us` more on `freq_hz` now stays within the sub-band's limit.
    pub fn check(
        &mut self,
        freq_hz: u32,
        airtime_us: u64,
        now: Instant,
    ) -> Result<(), DutyCycleError> {
        let window_us = self.window.as_micros() as u64;
        let Some(b) = self.band(freq_hz, now)? else {
            return Ok(());
        };
        let limit_us = (window_us as f64 * b.band.limit) as u64;
        if b.used_us + airtime_us > limit_us {
            return Err(DutyCycleError::Exceeded {
                band: b.band.name,
                used_ms: b.used_us / 1000,
                airtime_ms: airtime_us / 1000,
                limit_ms: limit_us / 1000,
            });
        }
        Ok(())
    }

    /// Counts a transmission (call once it is handed to the gateway).
    pub fn record(&mut self, freq_hz: u32, airtime_us: u64, now: Instant) {
        if let Ok(Some(b)) = self.band(freq_hz, now) {
            b.sent.push_back((now, airtime_us));
            b.used_us += airtime_us;
        }
    }
}

/// Frames of one sub-band sent within this span are stored as one entry (at the time of the
/// last of them, so the stored airtime is forgotten no earlier than the real one): at most 60
/// entries per sub-band and hour.
const SNAPSHOT_BUCKET_MS: i64 = 60_000;

/// The airtime of the last hour as stored: per sub-band (by its lower edge), `(UTC ms, µs)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DutyCycleSnapshot {
    pub bands: Vec<BandSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandSnapshot {
    pub low_hz: u32,
    pub sent: Vec<(i64, u64)>,
}

impl DutyCycle {
    /// Whether the region limits the gateway's duty cycle (nothing to persist otherwise).
    pub fn is_limited(&self) -> bool {
        !self.bands.is_empty()
    }

    /// Airtime still inside the window at `now` (= `now_ms` UTC), in minute buckets.
    pub fn snapshot(&mut self, now: Instant, now_ms: i64) -> DutyCycleSnapshot {
        let window = self.window;
        let mut bands = Vec::new();
        for b in &mut self.bands {
            while let Some(&(t, us)) = b.sent.front() {
                if now.saturating_duration_since(t) < window {
                    break;
                }
                b.sent.pop_front();
                b.used_us -= us;
            }
            let mut sent: Vec<(i64, u64)> = Vec::new();
            let mut bucket_start = i64::MIN;
            for &(t, us) in &b.sent {
                let age = i64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(0);
                let ms = now_ms - age;
                match sent.last_mut() {
                    Some(last) if ms - bucket_start < SNAPSHOT_BUCKET_MS => {
                        *last = (ms, last.1 + us);
                    }
                    _ => {
                        bucket_start = ms;
                        sent.push((ms, us));
                    }
                }
            }
            if !sent.is_empty() {
                bands.push(BandSnapshot {
                    low_hz: b.band.low_hz,
                    sent,
                });
            }
        }
        DutyCycleSnapshot { bands }
    }

    /// Adds the stored airtime still inside the window at `now` (= `now_ms` UTC). A time in
    /// the future (the clock was set back) counts as now: never less airtime than was used.
    pub fn restore(&mut self, snap: &DutyCycleSnapshot, now: Instant, now_ms: i64) {
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        for s in &snap.bands {
            let Some(b) = self.bands.iter_mut().find(|b| b.band.low_hz == s.low_hz) else {
                continue;
            };
            for &(ms, us) in &s.sent {
                let age = (now_ms - ms).max(0);
                if age >= window_ms {
                    continue;
                }
                let t = now
                    .checked_sub(Duration::from_millis(age as u64))
                    .unwrap_or(now);
                b.sent.push_back((t, us));
                b.used_us += us;
            }
            b.sent.make_contiguous().sort_by_key(|(t, _)| *t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_used_budget_survives_a_snapshot_and_restore() {
        let t0 = Instant::now();
        let ms0 = 1_700_000_000_000;
        let mut dc = DutyCycle::for_region(Region::Eu868);
        // 35 s of the 36 s g1 budget, one frame a second, and 1 s in g3.
        for i in 0..35 {
            dc.record(868_100_000, 1_000_000, t0 + Duration::from_secs(i));
        }
        dc.record(869_525_000, 1_000_000, t0);
        let now = t0 + Duration::from_secs(40);
        let snap = dc.snapshot(now, ms0 + 40_000);
        assert!(snap.bands.iter().all(|b| b.sent.len() <= 60));
        let json = serde_json::to_string(&snap).unwrap();
        let back: DutyCycleSnapshot = serde_json::from_str(&json).unwrap();

        // A new process: its own Instant base, 10 s later.
        let t1 = Instant::now() + Duration::from_secs(3600);
        let mut fresh = DutyCycle::for_region(Region::Eu868);
        fresh.restore(&back, t1, ms0 + 50_000);
        assert!(fresh.check(868_100_000, 1_000_000, t1).is_ok());
        assert!(
            fresh.check(868_100_000, 1_500_000, t1).is_err(),
            "35 s still used"
        );
        // Stored at the time of the last frame of its minute: forgotten an hour after that.
        let later = t1 + Duration::from_secs(3600);
        assert!(fresh.check(868_100_000, 30_000_000, later).is_ok());
        // Older than an hour: not restored at all; a time in the future counts as now.
        let mut old = DutyCycle::for_region(Region::Eu868);
        old.restore(&back, t1, ms0 + 3_700_000);
        assert!(old.check(868_100_000, 36_000_000, t1).is_ok());
        let mut skew = DutyCycle::for_region(Region::Eu868);
        skew.restore(&back, t1, ms0 - 86_400_000);
        assert!(skew.check(868_100_000, 1_500_000, t1).is_err());
        assert!(!DutyCycle::for_region(Region::Us915).is_limited());
    }

    #[test]
    fn one_percent_sub_band_refuses_then_recovers() {
        let t0 = Instant::now();
        let mut dc = DutyCycle::with_window(Region::Eu868, Duration::from_secs(100));
        // g1 allows 1 s per 100 s: four 250 ms frames fit, the fifth does not.
        for i in 0..4 {
            dc.check(868_100_000, 250_000, t0).unwrap();
            dc.record(868_100_000, 250_000, t0 + Duration::from_millis(i));
        }
        let err = dc.check(868_300_000, 250_000, t0).unwrap_err();
        assert!(matches!(err, DutyCycleError::Exceeded { band, .. } if band.starts_with("g1")));
        // The RX2 channel is in g3 (10 %): still free.
        dc.check(869_525_000, 250_000, t0).unwrap();
        // After the window the airtime is forgotten.
        dc.check(868_100_000, 250_000, t0 + Duration::from_secs(101))
            .unwrap();
        assert_eq!(
            dc.check(870_500_000, 1, t0),
            Err(DutyCycleError::NoSubBand(870_500_000))
        );
    }

    #[test]
    fn other_regions_have_no_gateway_duty_cycle() {
        let mut dc = DutyCycle::with_window(Region::Us915, Duration::from_secs(1));
        dc.record(923_300_000, 10_000_000, Instant::now());
        dc.check(923_300_000, 10_000_000, Instant::now()).unwrap();
    }
}
