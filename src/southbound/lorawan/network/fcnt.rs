//! Uplink frame counter: 16 on-air bits → 32-bit counter, and replay rejection
//! (protocols.md §2.3, ChirpStack `get_full_f_cnt_up`).
//!
//! The reconstructed value is only a candidate: the frame is accepted only if its MIC verifies
//! with it. Counters are never brute-forced; one extra MIC with the previous 64 Ki window is
//! computed only to *classify* a rejected frame as a replay rather than a bad MIC.

/// 32-bit counter the device most likely used, given the next expected value.
pub fn full_fcnt(next_expected: u32, fcnt16: u16) -> u32 {
    let next16 = next_expected as u16;
    if fcnt16 == next16.wrapping_sub(1) && next_expected > 0 {
        // Retransmission of the last accepted frame.
        return next_expected - 1;
    }
    let gap = u32::from(fcnt16.wrapping_sub(next16));
    next_expected.wrapping_add(gap)
}

/// Older counters (below `next_expected`) that end in `fcnt16`: the one in the current 64 Ki
/// window and the one in the window before. Used only to tell a replay from a forged or
/// corrupted frame after the MIC failed with [`full_fcnt`] — never to accept a frame.
pub fn older_fcnt_candidates(next_expected: u32, fcnt16: u16) -> impl Iterator<Item = u32> {
    let same = (next_expected & 0xffff_0000) | u32::from(fcnt16);
    let below = same.checked_sub(0x1_0000);
    [Some(same).filter(|c| *c < next_expected), below]
        .into_iter()
        .flatten()
}

/// Per-device uplink counter state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UplinkCounter {
    /// The next FCnt expected (last accepted + 1); 0 for a fresh session.
    pub next: u32,
}

/// How a MIC-verified counter relates to what was already accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FcntVerdict {
    /// New frame; `gap` frames were lost in between.
    New { gap: u32 },
    /// Same counter as the last accepted frame (device retransmission).
    Retransmission,
}

/// Why a verified counter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FcntError {
    #[error("FCnt {fcnt} is older than the next expected {next}")]
    Old { fcnt: u32, next: u32 },
    #[error("FCnt gap {gap} exceeds MAX_FCNT_GAP {max}")]
    GapTooLarge { gap: u32, max: u32 },
}

impl UplinkCounter {
    /// The counter to try the MIC with for on-air `fcnt16`.
    pub fn candidate(&self, fcnt16: u16) -> u32 {
        full_fcnt(self.next, fcnt16)
    }

    /// Classifies a counter whose MIC verified. `max_gap` is `Some(16384)` for devices on
    /// LoRaWAN 1.0.0–1.0.3 and `None` for 1.0.4 (which removed MAX_FCNT_GAP).
    pub fn check(&self, fcnt32: u32, max_gap: Option<u32>) -> Result<FcntVerdict, FcntError> {
        if self.next > 0 && fcnt32 == self.next - 1 {
            return Ok(FcntVerdict::Retransmission);
        }
        if fcnt32 < self.next {
            return Err(FcntError::Old {
                fcnt: fcnt32,
                next: self.next,
            });
        }
        let gap = fcnt32 - self.next;
        match max_gap {
            Some(max) if gap > max => Err(FcntError::GapTooLarge { gap, max }),
            _ => Ok(FcntVerdict::New { gap }),
        }
    }

    /// Marks `fcnt32` as accepted.
    pub fn accept(&mut self, fcnt32: u32) {
        self.next = self.next.max(fcnt32.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/lorawan_fcnt.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn shared_fcnt_vectors() {
        let v = vectors();
        let cases = v["vectors"].as_array().unwrap();
        assert_eq!(cases.len(), 6);
        for (i, c) in cases.iter().enumerate() {
            let next = c["next_expected_fcnt32"].as_u64().unwrap() as u32;
            let f16 = c["received_fcnt16"].as_u64().unwrap() as u16;
            let want = c["expected_fcnt32"].as_u64().unwrap() as u32;
            assert_eq!(full_fcnt(next, f16), want, "case {i} ({})", c["case"]);
        }
    }

    #[test]
    fn rollover_and_retransmission_classification() {
        let mut c = UplinkCounter { next: 0xffff };
        let f = c.candidate(0xffff);
        assert_eq!(f, 0xffff);
        assert_eq!(c.check(f, None), Ok(FcntVerdict::New { gap: 0 }));
        c.accept(f);
        let f = c.candidate(0);
        assert_eq!(f, 0x1_0000);
        c.accept(f);
        assert_eq!(
            c.check(c.candidate(0), None),
            Ok(FcntVerdict::Retransmission)
        );
        assert_eq!(c.candidate(5), 0x1_0005);
        assert_eq!(
            c.check(0x1_0005 + 20_000, Some(16_384)),
            Err(FcntError::GapTooLarge {
                gap: 20_004,
                max: 16_384
            })
        );
        assert!(matches!(c.check(3, None), Err(FcntError::Old { .. })));
    }

    #[test]
    fn older_candidates_cover_this_and_the_previous_window() {
        let c = |n, f| older_fcnt_candidates(n, f).collect::<Vec<_>>();
        assert_eq!(c(10, 5), [5]);
        assert!(c(10, 50).is_empty());
        assert_eq!(c(0x1_0002, 0xfff0), [0xfff0]);
        assert_eq!(c(0x1_0002, 1), [0x1_0001, 1]);
    }

    #[test]
    fn fresh_session_accepts_zero_and_does_not_underflow() {
        let c = UplinkCounter::default();
        assert_eq!(c.candidate(0), 0);
        assert_eq!(c.candidate(0xffff), 0xffff);
        assert_eq!(c.check(0, None), Ok(FcntVerdict::New { gap: 0 }));
        let mut top = UplinkCounter { next: u32::MAX };
        top.accept(u32::MAX);
        assert_eq!(top.next, u32::MAX, "never wraps back to 0");
    }
}
